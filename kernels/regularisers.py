"""Activation regularisation (AR) and temporal activation regularisation (TAR) of a
recurrent layer's outputs h (N, T, H): the sums their penalties need and their gradients
added in place. Sums run in float64 in an order fixed by the shape alone (rows in
parallel, then added in order), so they do not depend on the thread count. The sum of
squares of AR is kernels/optim.py's `sum_squares`.
"""

import numpy as np
from numba import prange

from fastlstm.kernels.parallel import parallel_kernel


@parallel_kernel()
def temporal_sum_squares(h):
    """Sum over n, t >= 1 and j of (h[n, t, j] - h[n, t - 1, j])**2, in float64. h (N, T, H)."""
    N, T, H = h.shape
    partial = np.zeros(N, dtype=np.float64)
    for n in prange(N):
        s = 0.0
        for t in range(1, T):
            now, before = h[n, t], h[n, t - 1]
            for j in range(H):
                d = np.float64(now[j]) - np.float64(before[j])
                s += d * d
        partial[n] = s
    total = 0.0
    for n in range(N):
        total += partial[n]
    return total


@parallel_kernel()
def add_scaled(dh, h, coef):
    """dh += coef * h in place (the gradient of AR's coef / 2 * sum of h**2). dh, h (K,)."""
    for k in prange(dh.shape[0]):
        dh[k] += coef * h[k]


@parallel_kernel()
def add_temporal_gradient(dh, h, coef):
    """dh += the gradient of coef / 2 * sum over t >= 1 of (h[:, t] - h[:, t - 1])**2, in
    place: coef * (h_t - h_{t-1}) added at t and taken away at t - 1. dh, h (N, T, H)."""
    N, T, H = h.shape
    for n in prange(N):
        for t in range(1, T):
            now, before = h[n, t], h[n, t - 1]
            d_now, d_before = dh[n, t], dh[n, t - 1]
            for j in range(H):
                g = coef * (now[j] - before[j])
                d_now[j] += g
                d_before[j] -= g
