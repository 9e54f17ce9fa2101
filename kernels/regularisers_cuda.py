"""CUDA twin of kernels/regularisers.py: TAR's sum and the AR and TAR gradients on device
arrays. AR's sum of squares is kernels/optim_cuda.py's. The sum reduces each block in
shared memory (float64) and adds the block sums with an atomic add (optim_cuda's
add_block_sum), so its last bits may vary from run to run; the gradients are exact
elementwise work.
"""

import functools

import numpy as np
from numba import cuda, float64

from fastlstm.kernels.linalg_cuda import launch, threads_per_block
from fastlstm.kernels.optim_cuda import add_block_sum


@functools.cache
def _temporal_kernel(threads):
    """The block-reduction kernel of temporal_sum_squares for blocks of `threads` threads."""

    @cuda.jit
    def temporal(h, total):
        buf = cuda.shared.array(threads, float64)
        N, T, H = h.shape
        k = cuda.grid(1)
        s = 0.0
        if k < N * (T - 1) * H:
            n = k // ((T - 1) * H)
            t = (k // H) % (T - 1) + 1
            j = k % H
            d = float64(h[n, t, j]) - float64(h[n, t - 1, j])
            s = d * d
        add_block_sum(buf, s, total)

    return temporal


def temporal_sum_squares(h):
    """Sum over n, t >= 1 and j of (h[n, t, j] - h[n, t - 1, j])**2, as a Python float. h (N, T, H)."""
    N, T, H = h.shape
    n = N * (T - 1) * H
    total = cuda.to_device(np.zeros(1, dtype=np.float64))
    if n:
        threads = threads_per_block()
        _temporal_kernel(threads)[(n + threads - 1) // threads, threads](h, total)
    return float(total.copy_to_host()[0])


@cuda.jit
def _add_scaled(dh, h, coef):
    k = cuda.grid(1)
    if k < dh.shape[0]:
        dh[k] += coef * h[k]


def add_scaled(dh, h, coef):
    """dh += coef * h in place. dh, h (K,); coef of their dtype."""
    launch(_add_scaled, dh.shape[0], dh, h, coef)


@cuda.jit
def _add_temporal(dh, h, coef):
    # one thread per (n, j): its steps in order, as the CPU kernel adds them
    k = cuda.grid(1)
    N, T, H = h.shape
    if k < N * H:
        n = k // H
        j = k % H
        for t in range(1, T):
            g = coef * (h[n, t, j] - h[n, t - 1, j])
            dh[n, t, j] += g
            dh[n, t - 1, j] -= g


def add_temporal_gradient(dh, h, coef):
    """dh += coef * (h_t - h_{t-1}) at t, and minus that at t - 1, in place. dh, h (N, T, H); coef of their dtype."""
    launch(_add_temporal, h.shape[0] * h.shape[2], dh, h, coef)
