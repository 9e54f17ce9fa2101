"""CUDA twin of kernels/gru.py: the book's GRU step in its two phases, forward and
backward, gate order z, r, h~, with the CPU kernels' arguments (the whole step: no block
of units).

As on the CPU, the caller does the matrix products (linalg_cuda.matmul); these are the
fused elementwise passes between them, one thread per (n, j), in the arrays' dtype
(sigmoid from vecmath_cuda.py).
"""

import functools
import math

from numba import cuda, from_dtype

from fastlstm.kernels import vecmath_cuda
from fastlstm.kernels.linalg_cuda import launch


@functools.cache
def _step_kernels(dtype):
    """(gates, hidden, backward_hidden, backward_gates) for one dtype: the constant 1 must
    have that dtype, or a float64 literal would promote float32 arithmetic."""
    one = from_dtype(dtype)(1)
    sigmoid = vecmath_cuda.sigmoid(dtype)

    @cuda.jit
    def gates(a, hA, h_prev, rh):
        k = cuda.grid(1)
        N, H = h_prev.shape
        if k < N * H:
            n = k // H
            j = k - n * H
            z = sigmoid(a[n, j] + hA[n, j])
            r = sigmoid(a[n, H + j] + hA[n, H + j])
            a[n, j] = z
            a[n, H + j] = r
            rh[n, j] = r * h_prev[n, j]

    @cuda.jit
    def hidden(a, hA, h_prev, h):
        k = cuda.grid(1)
        N, H = h_prev.shape
        if k < N * H:
            n = k // H
            j = k - n * H
            z = a[n, j]
            c = math.tanh(a[n, 2 * H + j] + hA[n, j])
            a[n, 2 * H + j] = c
            h[n, j] = (one - z) * h_prev[n, j] + z * c

    @cuda.jit
    def backward_hidden(g, h_prev, dh_out, dh_next, dh_direct, dA):
        k = cuda.grid(1)
        N, H = h_prev.shape
        if k < N * H:
            n = k // H
            j = k - n * H
            z = g[n, j]
            c = g[n, 2 * H + j]
            dh = dh_out[n, j] + dh_direct[n, j] + dh_next[n, j]
            dA[n, 2 * H + j] = dh * z * (one - c * c)
            dA[n, j] = dh * (c - h_prev[n, j]) * z * (one - z)
            dh_direct[n, j] = dh * (one - z)

    @cuda.jit
    def backward_gates(g, h_prev, drh, dh_direct, dA):
        k = cuda.grid(1)
        N, H = h_prev.shape
        if k < N * H:
            n = k // H
            j = k - n * H
            r = g[n, H + j]
            d = drh[n, j]
            dh_direct[n, j] += r * d
            dA[n, H + j] = d * h_prev[n, j] * r * (one - r)

    return gates, hidden, backward_hidden, backward_gates


def gru_step_gates(a, hA, h_prev, rh):
    """z and r into a[:, :2H] (x_t @ Wx on entry) and rh = r * h_prev. a (N, 3H); hA (N, 2H) =
    h_prev @ Wh's z and r columns; h_prev, rh (N, H)."""
    N, H = h_prev.shape
    launch(_step_kernels(h_prev.dtype)[0], N * H, a, hA, h_prev, rh)


def gru_step_hidden(a, hA, h_prev, h):
    """h~ into a[:, 2H:] (x_t @ Wx_h on entry) and h = (1 - z) * h_prev + z * h~. a (N, 3H);
    hA (N, H) = (r * h_prev) @ Wh's h~ columns; h_prev, h (N, H)."""
    N, H = h_prev.shape
    launch(_step_kernels(h_prev.dtype)[1], N * H, a, hA, h_prev, h)


def gru_step_backward_hidden(gates, h_prev, dh_out, dh_next, dh_direct, dA):
    """dA's h~ and z blocks (N, 3H) from the gradient dh_out + dh_direct + dh_next of this
    step's output (N, H each); dh_direct becomes the gradient of h_prev through
    (1 - z) * h_prev. gates (N, 3H) z, r, h~."""
    N, H = h_prev.shape
    launch(_step_kernels(h_prev.dtype)[2], N * H, gates, h_prev, dh_out, dh_next, dh_direct, dA)


def gru_step_backward_gates(gates, h_prev, drh, dh_direct, dA):
    """dA's r block (N, 3H) from drh (N, H), the gradient of r * h_prev; r * drh is added to
    dh_direct (N, H)."""
    N, H = h_prev.shape
    launch(_step_kernels(h_prev.dtype)[3], N * H, gates, h_prev, drh, dh_direct, dA)
