"""Fused softmax cross-entropy: one pass per row for max, exp-sum and loss; the
gradient is written straight into its output, so no probability matrix is kept."""

import numpy as np
from numba import njit, prange

from fastlstm.kernels.vecmath import KERNEL_OPTIONS, exp


@njit(parallel=True, cache=True, **KERNEL_OPTIONS)
def softmax_cross_entropy_forward(x, ts, row_lse, row_loss):
    """Per-row log-sum-exp and loss -log softmax(x)[t]; rows with t < 0 (ignored) lose 0.
    Returns the number of rows that count (t >= 0).

    x (M, V) logits; ts (M,) targets in [0, V) or -1. Out: row_lse (M,) in x's dtype,
    row_loss (M,) float64. Sums are accumulated in float64.
    """
    M, V = x.shape
    count = 0
    for m in prange(M):
        mx = x[m, 0]
        for v in range(1, V):
            if x[m, v] > mx:
                mx = x[m, v]
        s = 0.0
        for v in range(V):
            s += exp(x[m, v] - mx)
        lse = mx + np.log(s)
        row_lse[m] = lse
        t = ts[m]
        if t >= 0:
            row_loss[m] = lse - x[m, t]
            count += 1
        else:
            row_loss[m] = 0.0
    return count


@njit(parallel=True, cache=True, **KERNEL_OPTIONS)
def softmax_cross_entropy_backward(x, ts, row_lse, scale, dx):
    """dx = (softmax(x) - onehot(t)) * scale per row, and 0 for ignored rows.

    x (M, V); ts (M,); row_lse (M,) from forward; scale = dout / count, a scalar of
    x's dtype; dx (M, V).
    """
    M, V = x.shape
    for m in prange(M):
        t = ts[m]
        if t < 0:
            for v in range(V):
                dx[m, v] = 0
            continue
        lse = row_lse[m]
        for v in range(V):
            dx[m, v] = exp(x[m, v] - lse) * scale
        dx[m, t] -= scale
