"""CUDA twin of kernels/rnn.py: one step of the book's RNN, forward and backward, with the
CPU kernels' arguments (the whole step: no block of units, and the bias gradient summed
by the caller over all steps).

As on the CPU, the caller does the matrix products (linalg_cuda.matmul); these are the
fused elementwise passes between them, one thread per (n, j), in the arrays' dtype.
"""

import functools
import math

from numba import cuda, from_dtype

from fastlstm.kernels.linalg_cuda import launch


@functools.cache
def _step_kernels(dtype):
    """(forward, backward) step kernels for one dtype: the constant 1 must have that dtype,
    or a float64 literal would promote float32 arithmetic."""
    one = from_dtype(dtype)(1)

    @cuda.jit
    def forward(a, hA, b, h):
        k = cuda.grid(1)
        N, H = h.shape
        if k < N * H:
            n = k // H
            j = k - n * H
            h[n, j] = math.tanh(a[n, j] + hA[n, j] + b[j])

    @cuda.jit
    def backward(h, dh_out, dh_next, dA):
        k = cuda.grid(1)
        N, H = h.shape
        if k < N * H:
            n = k // H
            j = k - n * H
            y = h[n, j]
            dA[n, j] = (dh_out[n, j] + dh_next[n, j]) * (one - y * y)

    return forward, backward


def rnn_step_forward(a, hA, b, h):
    """h (N, H) = tanh(a + hA + b): a (N, H) = x_t @ Wx, hA (N, H) = h_prev @ Wh, b (H,)."""
    N, H = h.shape
    launch(_step_kernels(h.dtype)[0], N * H, a, hA, b, h)


def rnn_step_backward(h, dh_out, dh_next, dA):
    """dA (N, H) = (dh_out + dh_next) * (1 - h**2): h (N, H) this step's output, dh_out (N, H)
    the gradient from it, dh_next (N, H) = dA_{t+1} @ Wh.T."""
    N, H = h.shape
    launch(_step_kernels(h.dtype)[1], N * H, h, dh_out, dh_next, dA)
