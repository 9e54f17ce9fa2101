"""One time step of the LSTM, forward and backward: the fused elementwise pass between
the matrix products, gate order f, g, i, o as in the book.

The caller does the products with BLAS: the input projection of all T steps at once,
`h @ Wh` before each forward step, `dA @ Wh.T` after each backward step, and the weight
gradients as single products over all steps. These kernels are serial and release the
GIL: per step there are only N x H elements, too few for threads to pay, and a caller
may run two layers' steps side by side.

The loops index per-gate slices from 0 so that LLVM vectorises them: an index like
`H + j` may be negative for all Numba knows, and its wraparound check keeps the loop
scalar (3x slower here).
"""

from numba import njit

from fastlstm.kernels.vecmath import KERNEL_OPTIONS, one_like, sigmoid, tanh


@njit(cache=True, nogil=True, **KERNEL_OPTIONS)
def lstm_step_forward(a, hA, b, c_prev, c, tanh_c, h):
    """Gates, cell and hidden state of one step.

    a (N, 4H): x_t @ Wx on entry, the activated gates f, g, i, o on return (backward
    needs them); hA (N, 4H) = h_prev @ Wh; b (4H,); c_prev (N, H).
    Out: c (N, H), tanh_c (N, H) = tanh(c), h (N, H). All C-contiguous.
    """
    N, H = c.shape
    bf, bg, bi, bo = b[:H], b[H:2 * H], b[2 * H:3 * H], b[3 * H:]
    for n in range(N):
        af, ag, ai, ao = a[n, :H], a[n, H:2 * H], a[n, 2 * H:3 * H], a[n, 3 * H:]
        hf, hg, hi, ho = hA[n, :H], hA[n, H:2 * H], hA[n, 2 * H:3 * H], hA[n, 3 * H:]
        cp, cn, tn, hn = c_prev[n], c[n], tanh_c[n], h[n]
        for j in range(H):
            f = sigmoid(af[j] + hf[j] + bf[j])
            g = tanh(ag[j] + hg[j] + bg[j])
            i = sigmoid(ai[j] + hi[j] + bi[j])
            o = sigmoid(ao[j] + ho[j] + bo[j])
            x = f * cp[j] + g * i
            tc = tanh(x)
            af[j] = f
            ag[j] = g
            ai[j] = i
            ao[j] = o
            cn[j] = x
            tn[j] = tc
            hn[j] = o * tc


@njit(cache=True, nogil=True, **KERNEL_OPTIONS)
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
        gf, gg, gi, go = gates[n, :H], gates[n, H:2 * H], gates[n, 2 * H:3 * H], gates[n, 3 * H:]
        df, dg, di, do = dA[n, :H], dA[n, H:2 * H], dA[n, 2 * H:3 * H], dA[n, 3 * H:]
        cp, tn, dho, dhn, dcn = c_prev[n], tanh_c[n], dh_out[n], dh_next[n], dc[n]
        for j in range(H):
            f = gf[j]
            g = gg[j]
            i = gi[j]
            o = go[j]
            tc = tn[j]
            dh = dho[j] + dhn[j]
            ds = dcn[j] + dh * o * (one - tc * tc)
            dcn[j] = ds * f
            df[j] = ds * cp[j] * f * (one - f)
            dg[j] = ds * i * (one - g * g)
            di[j] = ds * g * i * (one - i)
            do[j] = dh * tc * o * (one - o)
