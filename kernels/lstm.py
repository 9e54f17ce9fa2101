"""One time step of the LSTM, forward and backward: the fused elementwise pass between
the matrix products, gate order f, g, i, o as in the book.

The caller does the products with BLAS: the input projection of all T steps at once,
`h @ Wh` before each forward step, `dA @ Wh.T` after each backward step, and the weight
gradients as single products over all steps. These kernels are serial and release the
GIL: per step there are only N x H elements, too few for threads to pay, and a caller
may run two layers' steps side by side.
"""

from numba import njit

from fastlstm.kernels.vecmath import FASTMATH, one_like, sigmoid, tanh


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def lstm_step_forward(a, hA, b, c_prev, c, tanh_c, h):
    """Gates, cell and hidden state of one step.

    a (N, 4H): x_t @ Wx on entry, the activated gates f, g, i, o on return (backward
    needs them); hA (N, 4H) = h_prev @ Wh; b (4H,); c_prev (N, H).
    Out: c (N, H), tanh_c (N, H) = tanh(c), h (N, H). All C-contiguous.
    """
    N, H = c.shape
    for n in range(N):
        for j in range(H):
            f = sigmoid(a[n, j] + hA[n, j] + b[j])
            g = tanh(a[n, H + j] + hA[n, H + j] + b[H + j])
            i = sigmoid(a[n, 2 * H + j] + hA[n, 2 * H + j] + b[2 * H + j])
            o = sigmoid(a[n, 3 * H + j] + hA[n, 3 * H + j] + b[3 * H + j])
            cn = f * c_prev[n, j] + g * i
            tc = tanh(cn)
            a[n, j] = f
            a[n, H + j] = g
            a[n, 2 * H + j] = i
            a[n, 3 * H + j] = o
            c[n, j] = cn
            tanh_c[n, j] = tc
            h[n, j] = o * tc


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def lstm_step_backward(gates, c_prev, tanh_c, dh_out, dh_next, dc, dA):
    """Gate pre-activation gradients of one step, going backwards in time.

    gates (N, 4H) activated f, g, i, o; c_prev (N, H); tanh_c (N, H) of this step;
    dh_out (N, H) gradient from this step's output; dh_next (N, H) = dA_{t+1} @ Wh.T;
    dc (N, H): the cell gradient from step t+1 on entry, the one for step t-1 on return.
    Out: dA (N, 4H). All C-contiguous.
    """
    N, H = dc.shape
    one = one_like(dc[0, 0])
    for n in range(N):
        for j in range(H):
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
