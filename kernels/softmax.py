"""Fused softmax cross-entropy: per row a pass for the max, one that writes exp(x - max),
one that sums those, and, for the gradient, one that scales those exps in place (in the cache),
so no probability matrix is kept and each score goes through exp once. A training step's
forward can write the gradient too, while each row is in the cache."""

import numpy as np
from numba import njit, prange

from fastlstm.kernels.parallel import ARITHMETIC, parallel_kernel

from fastlstm.kernels.vecmath import KERNEL_OPTIONS, LANES, exp, interleaved_sum, lane_maxima


@njit(cache=True, **KERNEL_OPTIONS)
def _row_max(row, lanes):
    """max(row), through LANES interleaved maxima (in `lanes`, a scratch of LANES in row's dtype)
    so that the comparisons run as SIMD vectors; NaN after row[0] is passed over, as by `>`."""
    V = row.size
    body = V - V % LANES
    mx = row[0]
    if body > 0:
        lane_maxima(row, body // LANES, lanes)
        for j in range(LANES):
            if lanes[j] > mx:
                mx = lanes[j]
    for v in range(body, V):
        if row[v] > mx:
            mx = row[v]
    return mx


@njit(cache=True, **KERNEL_OPTIONS)
def _row_exps(x, ts, m, e, row_loss, maxes, sums):
    """e = exp(x[m] - max(x[m])); row m's loss -log softmax(x[m])[t] into row_loss[m] (0 when
    ignored). Returns the sum of e, in float64. maxes (LANES, x's dtype) and sums (LANES,
    float64) are scratch. Every path to a row's loss or gradient comes through here, so that
    they round alike."""
    row = x[m]
    mx = _row_max(row, maxes)
    for v in range(row.size):
        e[v] = exp(row[v] - mx)
    s = interleaved_sum(e, sums, False)
    t = ts[m]
    row_loss[m] = mx + np.log(s) - row[t] if t >= 0 else 0.0
    return s


@njit(cache=True, **KERNEL_OPTIONS)
def _gradient_from_exps(e, t, s, scale):
    """e = (e / s - onehot(t)) * scale in place, with e a row's exps summing to s; 0 for an
    ignored row (t < 0)."""
    if t < 0:
        for v in range(e.size):
            e[v] = 0
        return
    factor = e.dtype.type(scale / s)
    for v in range(e.size):
        e[v] *= factor
    e[t] -= scale


@parallel_kernel(cost=ARITHMETIC, **KERNEL_OPTIONS)
def softmax_cross_entropy_forward(x, ts, row_loss, exps):
    """Per-row loss -log softmax(x)[t]; rows with t < 0 (ignored) lose 0.

    x (M, V) logits; ts (M,) targets in [0, V) or -1; exps (P, V) scratch, one row per
    parallel task (each takes a contiguous block of rows). Out: row_loss (M,) float64.
    """
    M = x.shape[0]
    P = exps.shape[0]
    for p in prange(P):
        maxes, sums = np.empty(LANES, x.dtype), np.empty(LANES)
        for m in range(p * M // P, (p + 1) * M // P):
            _row_exps(x, ts, m, exps[p], row_loss, maxes, sums)


@parallel_kernel(cost=ARITHMETIC, **KERNEL_OPTIONS)
def softmax_cross_entropy_forward_backward(x, ts, row_loss, scale, dx):
    """softmax_cross_entropy_forward, and dx = (softmax(x) - onehot(t)) * scale per row (0
    for ignored rows) in the same pass over each row: the row is read from memory once.
    Backward alone runs this too, so that a gradient is the same to the bit whichever
    call made it.

    scale = dout / count, a scalar of x's dtype; dx (M, V): each row receives its exps,
    then becomes the gradient in place.
    """
    for m in prange(x.shape[0]):
        s = _row_exps(x, ts, m, dx[m], row_loss, np.empty(LANES, x.dtype), np.empty(LANES))
        _gradient_from_exps(dx[m], ts[m], s, scale)
