"""One time step of the LSTM, forward and backward: the fused elementwise pass between
the matrix products, gate order f, g, i, o as in the book.

The caller does the products: the input projection of all T steps at once, `h @ Wh`
before each forward step, `dA @ Wh.T` after each backward step (kernels/packed_product.py),
and the weight gradients as single products over all steps. A call computes one block of
hidden units, j0 to j0 + K: the whole step when j0 = 0 and K = H, or one lane's share
when the caller splits a step over cores (fastlstm/recurrence.py). The kernels are serial
and release the GIL, so the lanes' calls run side by side. `lstm_lane_forward` and
`lstm_lane_backward` are the step kernels as the recurrence's lanes call them, and
`lstm_forward_lane`, `lstm_backward_lane` the LSTM's lane loops made from them
(kernels/recurrence.py).

The loops index per-gate slices from 0 so that LLVM vectorises them: an index like
`H + j` may be negative for all Numba knows, and its wraparound check keeps the loop
scalar. For the same reason the kernels raise nothing: the caller
passes blocks that fit (0 <= j0 and j0 + K <= H).
"""

from numba import njit

from fastlstm.kernels.recurrence import keep_h, lane_loops, mask_units
from fastlstm.kernels.vecmath import STEP_OPTIONS, one_like, sigmoid, tanh


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def lstm_step_forward(a, hA, b, c_prev, c, tanh_c, h, j0):
    """Gates, cell and hidden state of one step, for the hidden units j0 .. j0 + K - 1.

    a (N, 4H): x_t @ Wx on entry, the activated gates f, g, i, o on return (backward
    needs them); hA (N, 4K) = h_prev @ the block's columns of Wh, its f, g, i, o parts
    side by side; b (4H,); c_prev (N, H). Out: c (N, H), tanh_c (N, H) = tanh(c),
    h (N, H), at the block's units. All C-contiguous.
    """
    N, H = c.shape
    K = hA.shape[1] // 4
    j1 = j0 + K
    bf, bg, bi, bo = b[j0:j1], b[H + j0:H + j1], b[2 * H + j0:2 * H + j1], b[3 * H + j0:3 * H + j1]
    for n in range(N):
        af, ag = a[n, j0:j1], a[n, H + j0:H + j1]
        ai, ao = a[n, 2 * H + j0:2 * H + j1], a[n, 3 * H + j0:3 * H + j1]
        hf, hg, hi, ho = hA[n, :K], hA[n, K:2 * K], hA[n, 2 * K:3 * K], hA[n, 3 * K:]
        cp, cn, tn, hn = c_prev[n, j0:j1], c[n, j0:j1], tanh_c[n, j0:j1], h[n, j0:j1]
        for j in range(K):
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


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def lstm_step_backward(gates, c_prev, tanh_c, dh_outs, t, dh_next, dc, dA, db, j0):
    """Gate pre-activation gradients of one step going backwards in time, for the hidden
    units j0 .. j0 + K - 1, added to the bias gradient as they are made (a separate column
    sum over all steps' dA would read it back from memory).

    gates (N, 4H) activated f, g, i, o; c_prev (N, H); tanh_c (N, H) of this step;
    dh_outs (N, T, H) the gradients from the layer's outputs, of which step t's is read
    (passed whole, as the layer has them: the slice dh_outs[:, t] is an array of strided
    rows to Numba, on which the loop does not vectorise); dh_next (N, K)
    = dA_{t+1} @ Wh.T at the block's units; dc (N, H): the cell gradient from step t+1 on
    entry, the one for step t-1 on return (at the block's units); db (4H,): the bias
    gradient, to which each row of dA is added in order. Out: dA (N, 4H) at the block's
    units. All C-contiguous.
    """
    N, H = dc.shape
    K = dh_next.shape[1]
    j1 = j0 + K
    one = one_like(dc[0, 0])
    bf, bg, bi, bo = db[j0:j1], db[H + j0:H + j1], db[2 * H + j0:2 * H + j1], db[3 * H + j0:3 * H + j1]
    for n in range(N):
        gf, gg = gates[n, j0:j1], gates[n, H + j0:H + j1]
        gi, go = gates[n, 2 * H + j0:2 * H + j1], gates[n, 3 * H + j0:3 * H + j1]
        df, dg = dA[n, j0:j1], dA[n, H + j0:H + j1]
        di, do = dA[n, 2 * H + j0:2 * H + j1], dA[n, 3 * H + j0:3 * H + j1]
        cp, tn, dho, dcn = c_prev[n, j0:j1], tanh_c[n, j0:j1], dh_outs[n, t, j0:j1], dc[n, j0:j1]
        dhn = dh_next[n]
        for j in range(K):
            f = gf[j]
            g = gg[j]
            i = gi[j]
            o = go[j]
            tc = tn[j]
            dh = dho[j] + dhn[j]
            ds = dcn[j] + dh * o * (one - tc * tc)
            dcn[j] = ds * f
            af = ds * cp[j] * f * (one - f)
            ag = ds * i * (one - g * g)
            ai = ds * g * i * (one - i)
            ao = dh * tc * o * (one - o)
            df[j] = af
            dg[j] = ag
            di[j] = ai
            do[j] = ao
            bf[j] += af
            bg[j] += ag
            bi[j] += ai
            bo[j] += ao


@njit(cache=True, nogil=True)
def lstm_lane_forward(phase, t, state, products, j0):
    """Step t forward at a lane's units (kernels/recurrence.py's step_forward; one phase).

    state = (gates, hs, cs, tanh_cs, out, hs_inputs, b, hm, mask) as
    fastlstm.recurrence.forward_steps takes them: with recurrent dropout, mask (N, H) and
    hm (T + 1, N, H) the masked h that the products read; without, mask has no rows (and
    hm is hs). products[0] (N, 4K): the operand h_t @ the lane's f, g, i, o columns of Wh.
    """
    gates, hs, cs, tanh_cs, out, hs_inputs, b, hm, mask = state
    hA = products[0]
    lstm_step_forward(gates[t], hA, b, cs[t], cs[t + 1], tanh_cs[t], hs[t + 1], j0)
    keep_h(hs, hm, mask, out, hs_inputs, t, j0, hA.shape[1] // 4)


@njit(cache=True, nogil=True)
def lstm_lane_backward(phase, t, state, products, j0):
    """Step t backward at a lane's units (kernels/recurrence.py's step_backward; one phase),
    writing dA[t], the operand of the product that follows.

    state = (gates, cs, tanh_cs, dhs, dA, db, dc, mask) as fastlstm.recurrence.backward_steps
    takes them, dc (N, H) the cell gradient, mask (N, H) the recurrent mask or no rows;
    products[0] (N, K): dA[t + 1] @ Wh.T at the lane's units (zero before the last step),
    the gradient of the (masked) h_t that step t + 1 multiplied.
    """
    gates, cs, tanh_cs, dhs, dA, db, dc, mask = state
    mask_units(products[0], mask, j0)
    lstm_step_backward(gates[t], cs[t], tanh_cs[t], dhs, t, products[0], dc, dA[t], db, j0)


lstm_forward_lane, lstm_backward_lane = lane_loops("lstm", lstm_lane_forward, lstm_lane_backward)
