"""fastlstm: the recurrent models of "Deep Learning from Scratch 2" on Numba kernels, a drop-in for the book's `common`."""

import os

# Where Numba runs on OpenMP (without the tbb wheel: threads.use_fork_safe_threading_layer),
# its workers spin after each parallel kernel by default, and BLAS threads run between those
# kernels on the same cores: spinning workers starve BLAS. Passive waiting hands the cores
# over at once. It is read when OpenMP starts, so it is set before any kernel runs; a value
# the user set wins (_SETS_OMP_WAIT_POLICY: fastlstm chose it; the PyTorch peer of `fastlstm bench`
# starts torch's own OpenMP without it, as a user of PyTorch runs it).
_SETS_OMP_WAIT_POLICY = "OMP_WAIT_POLICY" not in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from fastlstm.threads import apply_env as _apply_env, get_num_threads, set_num_threads  # noqa: E402
from fastlstm.threads import use_fork_safe_threading_layer as _use_fork_safe_threading_layer  # noqa: E402

_use_fork_safe_threading_layer()  # before the imports below load any parallel kernel

from fastlstm.models import AwdRnnlm, BetterRnnlm, Rnnlm, VariationalRnnlm  # noqa: E402
from fastlstm.optimizer import ASGD, SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop  # noqa: E402
from fastlstm.time_layers import TimeAffine, TimeDropout, TimeEmbedding, TimeLSTM, TimeSoftmaxWithLoss  # noqa: E402
from fastlstm.trainer import RnnlmTrainer, Trainer  # noqa: E402
from fastlstm.util import clip_grads, eval_perplexity, eval_seq2seq  # noqa: E402

_apply_env()  # last: importing the modules above loads a second BLAS (SciPy's), which must be set too

__all__ = [
    "TimeEmbedding", "TimeLSTM", "TimeAffine", "TimeSoftmaxWithLoss", "TimeDropout",
    "Rnnlm", "BetterRnnlm", "VariationalRnnlm", "AwdRnnlm",
    "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "ASGD",
    "Trainer", "RnnlmTrainer", "eval_perplexity", "eval_seq2seq", "clip_grads",
    "set_num_threads", "get_num_threads",
]
