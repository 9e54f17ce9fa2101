"""fastlstm: the book's chapter 6 LSTM language models on Numba kernels."""

from fastlstm.threads import get_num_threads, set_num_threads, apply_env as _apply_env

_apply_env()
