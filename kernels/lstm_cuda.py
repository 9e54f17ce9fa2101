"""CUDA twin of kernels/lstm.py: one LSTM time step, forward and backward, gate order
f, g, i, o, with the CPU kernels' arguments.

As on the CPU, the caller does the matrix products (linalg_cuda.matmul: `h @ Wh` before
each forward step, `dA @ Wh.T` after each backward step, the input projection and the
weight gradients over all steps); these are the fused elementwise passes between them,
one thread per (n, j). Arithmetic stays in the arrays' dtype (float32 math for float32),
as in the CPU kernels, so the two agree to rounding (sigmoid from vecmath_cuda.py).
"""

import functools
import math

from numba import cuda, from_dtype

from fastlstm.kernels import vecmath_cuda
from fastlstm.kernels.linalg_cuda import launch


@functools.cache
def _step_kernels(dtype):
    """(forward, backward) step kernels for one dtype: the constant 1 must have that dtype,
    or a float64 literal would promote float32 arithmetic."""
    one = from_dtype(dtype)(1)
    sigmoid = vecmath_cuda.sigmoid(dtype)

    @cuda.jit
    def forward(a, hA, b, c_prev, c, tanh_c, h):
        k = cuda.grid(1)
        N, H = c.shape
        if k >= N * H:
            return
        n = k // H
        j = k - n * H
        f = sigmoid(a[n, j] + hA[n, j] + b[j])
        g = math.tanh(a[n, H + j] + hA[n, H + j] + b[H + j])
        i = sigmoid(a[n, 2 * H + j] + hA[n, 2 * H + j] + b[2 * H + j])
        o = sigmoid(a[n, 3 * H + j] + hA[n, 3 * H + j] + b[3 * H + j])
        cn = f * c_prev[n, j] + g * i
        tc = math.tanh(cn)
        a[n, j] = f
        a[n, H + j] = g
        a[n, 2 * H + j] = i
        a[n, 3 * H + j] = o
        c[n, j] = cn
        tanh_c[n, j] = tc
        h[n, j] = o * tc

    @cuda.jit
    def backward(gates, c_prev, tanh_c, dh_out, dh_next, dc, dA):
        k = cuda.grid(1)
        N, H = dc.shape
        if k >= N * H:
            return
        n = k // H
        j = k - n * H
        f = gates[n, j]
        g = gates[n, H + j]
        i = gates[n, 2 * H + j]
        o = gates[n, 3 * H + j]
        tc = tanh_c[n, j]
        dh = dh_out[n, j] + dh_next[n, j]
        ds = dc[n, j] + dh * o * (one - tc * tc)
        dc[n, j] = ds * f
        dA[n, j] = ds * c_prev[n, j] * f * (one - f)
        dA[n, H + j] = ds * i * (one - g * g)
        dA[n, 2 * H + j] = ds * g * i * (one - i)
        dA[n, 3 * H + j] = dh * tc * o * (one - o)

    return forward, backward


def lstm_step_forward(a, hA, b, c_prev, c, tanh_c, h):
    """Gates, cell and hidden state of one step.

    a (N, 4H): x_t @ Wx on entry, the activated gates f, g, i, o on return; hA (N, 4H) =
    h_prev @ Wh; b (4H,); c_prev (N, H). Out: c (N, H), tanh_c (N, H) = tanh(c), h (N, H).
    """
    N, H = c.shape
    launch(_step_kernels(c.dtype)[0], N * H, a, hA, b, c_prev, c, tanh_c, h)


def lstm_step_backward(gates, c_prev, tanh_c, dh_out, dh_next, dc, dA):
    """Gate pre-activation gradients of one step, going backwards in time.

    gates (N, 4H) activated f, g, i, o; c_prev (N, H); tanh_c (N, H) of this step;
    dh_out (N, H) gradient from this step's output; dh_next (N, H) = dA_{t+1} @ Wh.T;
    dc (N, H): the cell gradient from step t+1 on entry, the one for step t-1 on return.
    Out: dA (N, 4H).
    """
    N, H = dc.shape
    launch(_step_kernels(dc.dtype)[1], N * H, gates, c_prev, tanh_c, dh_out, dh_next, dc, dA)
