"""CUDA twin of kernels/dropout.py: inverted dropout, mask draws, locked masks and masks
applied by multiplication, on device arrays.

The draw is the CPU module's own `mask_value` (SplitMix64 of seed and index), called from
the kernel: a plain @njit function of integer and float arithmetic compiles for the CUDA
target as well, so there is one definition of the hash and the masks are bit-identical
to the CPU's for the same seed.
"""

import numpy as np
from numba import cuda

from fastlstm.kernels.dropout import mask_value
from fastlstm.kernels.linalg_cuda import launch


@cuda.jit
def _forward(x, seed, ratio, scale, mask, out):
    k = cuda.grid(1)
    if k < x.shape[0]:
        mask[k] = mask_value(seed, k, ratio, scale)
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


@cuda.jit
def _mask(seed, ratio, scale, mask):
    k = cuda.grid(1)
    if k < mask.shape[0]:
        mask[k] = mask_value(seed, k, ratio, scale)


def dropout_mask(seed, ratio, scale, mask):
    """mask (K,) = the mask of `seed`: 0 or `scale`, element k as dropout_forward draws it."""
    launch(_mask, mask.shape[0], np.uint64(seed), float(ratio), float(scale), mask)


@cuda.jit
def _locked(x, mask, out):
    k = cuda.grid(1)
    N, T, D = x.shape
    if k < N * T * D:
        n = k // (T * D)
        t = (k // D) % T
        d = k % D
        out[n, t, d] = x[n, t, d] * mask[n, d]


def locked_apply(x, mask, out):
    """out[n, t] = x[n, t] * mask[n] for every step t. x, out (N, T, D); mask (N, D)."""
    launch(_locked, x.shape[0] * x.shape[1] * x.shape[2], x, mask, out)


@cuda.jit
def _multiply(a, b, out):
    k = cuda.grid(1)
    P, Q = out.shape
    if k < P * Q:
        i = k // Q
        j = k - i * Q
        out[i, j] = a[i, j] * b[i, j]


def multiply(a, b, out):
    """out = a * b, element by element (out may be a: in place). a, b, out (P, Q), any layout."""
    launch(_multiply, out.shape[0] * out.shape[1], a, b, out)
