"""CUDA twin of kernels/dropout.py: inverted dropout on device arrays.

The draw is the CPU module's own `_uniform` (SplitMix64 of seed and index), called from
the kernel: a plain @njit function of integer and float arithmetic compiles for the CUDA
target as well, so there is one definition of the hash and the masks are bit-identical
to the CPU's for the same seed.
"""

import numpy as np
from numba import cuda

from fastlstm.kernels.dropout import _uniform
from fastlstm.kernels.linalg_cuda import launch


@cuda.jit
def _forward(x, seed, ratio, scale, mask, out):
    k = cuda.grid(1)
    if k < x.shape[0]:
        mask[k] = scale if _uniform(seed, k) > ratio else 0.0
        out[k] = x[k] * mask[k]


def dropout_forward(x, seed, ratio, scale, mask, out):
    """Keep each element whose uniform draw exceeds `ratio`, multiplied by `scale`.

    x (K,) flat input; seed, as uint64 (a Python int would make the hash float arithmetic).
    Out: mask (K,) holding 0 or scale; out (K,) = x * mask.
    """
    launch(_forward, x.shape[0], x, np.uint64(seed), float(ratio), float(scale), mask, out)


@cuda.jit
def _backward(dout, mask, dx):
    k = cuda.grid(1)
    if k < dout.shape[0]:
        dx[k] = dout[k] * mask[k]


def dropout_backward(dout, mask, dx):
    """dx = dout * mask, with the mask that forward drew. dout, mask, dx (K,)."""
    launch(_backward, dout.shape[0], dout, mask, dx)
