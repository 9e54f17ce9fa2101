"""Fused softmax cross-entropy: per row a pass for the max and one for exp-sum and loss;
the gradient is written straight into its output, so no probability matrix is kept.
A training step's forward can write the gradient too, while each row is in the cache."""

import numpy as np
from numba import njit, prange

from fastlstm.kernels.vecmath import KERNEL_OPTIONS, exp


# Terms summed in x's dtype before they join a row's float64 sum: float32 sums vectorise
# twice as wide, and a block this short loses nothing measurable (1.2x faster forward).
SUM_BLOCK = 256


@njit(cache=True, **KERNEL_OPTIONS)
def _row_loss(x, ts, m, row_lse, row_loss):
    """Row m's log-sum-exp into row_lse[m] and its loss into row_loss[m] (0 when ignored)."""
    row = x[m]
    V = row.size
    mx = row[0]
    for v in range(1, V):
        if row[v] > mx:
            mx = row[v]
    s = 0.0
    for v0 in range(0, V, SUM_BLOCK):
        block = row[v0:min(v0 + SUM_BLOCK, V)]
        part = mx - mx  # zero in x's dtype
        for v in range(block.size):
            part += exp(block[v] - mx)
        s += part
    lse = mx + np.log(s)
    row_lse[m] = lse
    t = ts[m]
    row_loss[m] = lse - row[t] if t >= 0 else 0.0


@njit(cache=True, **KERNEL_OPTIONS)
def _row_gradient(x, ts, m, row_lse, scale, dx):
    """dx[m] = (softmax(x[m]) - onehot(t)) * scale, or 0 for an ignored row."""
    V = x.shape[1]
    t = ts[m]
    if t < 0:
        for v in range(V):
            dx[m, v] = 0
        return
    lse = row_lse[m]
    for v in range(V):
        dx[m, v] = exp(x[m, v] - lse) * scale
    dx[m, t] -= scale


@njit(parallel=True, cache=True, **KERNEL_OPTIONS)
def softmax_cross_entropy_forward(x, ts, row_lse, row_loss):
    """Per-row log-sum-exp and loss -log softmax(x)[t]; rows with t < 0 (ignored) lose 0.

    x (M, V) logits; ts (M,) targets in [0, V) or -1. Out: row_lse (M,) in x's dtype,
    row_loss (M,) float64. Each row's sum adds blocks of SUM_BLOCK terms in float64.
    """
    for m in prange(x.shape[0]):
        _row_loss(x, ts, m, row_lse, row_loss)


@njit(parallel=True, cache=True, **KERNEL_OPTIONS)
def softmax_cross_entropy_backward(x, ts, row_lse, scale, dx):
    """dx = (softmax(x) - onehot(t)) * scale per row, and 0 for ignored rows.

    x (M, V); ts (M,); row_lse (M,) from forward; scale = dout / count, a scalar of
    x's dtype; dx (M, V).
    """
    for m in prange(x.shape[0]):
        _row_gradient(x, ts, m, row_lse, scale, dx)


@njit(parallel=True, cache=True, **KERNEL_OPTIONS)
def softmax_cross_entropy_forward_backward(x, ts, row_lse, row_loss, scale, dx):
    """softmax_cross_entropy_forward, and the backward's dx for this `scale` in the same
    pass over each row (the same values, to the bit): the row is read from memory once
    instead of twice."""
    for m in prange(x.shape[0]):
        _row_loss(x, ts, m, row_lse, row_loss)
        _row_gradient(x, ts, m, row_lse, scale, dx)
