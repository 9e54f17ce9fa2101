"""The book's `common.np`: `from fastlstm.np import *` gives `np`, which is always NumPy.

The book swaps in CuPy here when `config.GPU` is set; fastlstm keeps NumPy arrays in the
API and lets `config.GPU` choose the CUDA kernels instead.
"""

import numpy as np

from fastlstm.config import GPU
