"""Inverted dropout with a counter-based generator: the mask depends on (seed, index)
only, so it is the same whatever the thread count, and a seed is all a resumed run needs.

Besides the book's per-element dropout (`dropout_forward`), the regularisers draw a mask
alone (`dropout_mask`: a locked mask of one row per sequence, a recurrent mask on h, a
weight mask on Wh, a word mask on the embedding's rows) and apply it by broadcasting
(`locked_apply`) or in place (`multiply_into`).
"""

import numpy as np
from numba import njit, prange

from fastlstm.kernels.parallel import ARITHMETIC, parallel_kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(inline="always")
def _uniform(seed, i):
    """A uniform float64 in [0, 1) from the SplitMix64 hash of seed + (i + 1) * golden."""
    z = seed + np.uint64(i + 1) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def mask_value(seed, i, ratio, scale):
    """Element i of the mask of `seed`: `scale` where its uniform draw exceeds `ratio`, else 0."""
    return scale if _uniform(seed, i) > ratio else 0.0


@parallel_kernel(cost=ARITHMETIC)
def dropout_forward(x, seed, ratio, scale, mask, out):
    """Keep each element where its uniform draw exceeds `ratio`, multiplied by `scale`
    (1 / (1 - ratio) for inverted dropout, 1 for the book's plain Dropout).

    x (K,) flat input; seed uint64. Out: mask (K,) holding 0 or scale; out (K,) = x * mask.
    """
    for k in prange(x.shape[0]):
        mask[k] = mask_value(seed, k, ratio, scale)
        out[k] = x[k] * mask[k]


@parallel_kernel()
def dropout_backward(dout, mask, dx):
    """dx = dout * mask, with the mask that forward drew. dout, mask, dx (K,)."""
    for k in prange(dout.shape[0]):
        dx[k] = dout[k] * mask[k]


@parallel_kernel(cost=ARITHMETIC)
def dropout_mask(seed, ratio, scale, mask):
    """mask (K,) = the mask of `seed`: 0 or `scale`, element k as dropout_forward draws it."""
    for k in prange(mask.shape[0]):
        mask[k] = mask_value(seed, k, ratio, scale)


@parallel_kernel()
def locked_apply(x, mask, out):
    """out[n, t] = x[n, t] * mask[n] for every step t: one mask per sequence, shared by its
    steps (locked, or variational, dropout). x, out (N, T, D); mask (N, D)."""
    N, T, D = x.shape
    for r in prange(N * T):
        n, t = r // T, r % T
        row, m, o = x[n, t], mask[n], out[n, t]
        for d in range(D):
            o[d] = row[d] * m[d]


@parallel_kernel()
def multiply_into(x, mask):
    """x *= mask in place, element by element. x, mask (K,)."""
    for k in prange(x.shape[0]):
        x[k] *= mask[k]
