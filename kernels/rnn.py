"""One time step of the book's RNN, h_next = tanh(x Wx + h_prev Wh + b), forward and
backward: the fused elementwise pass between the matrix products.

As for the LSTM (kernels/lstm.py), the caller does the products: the input projection of
all T steps at once, `h @ Wh` before each forward step, `dt @ Wh.T` after each backward
step; a call computes one block of hidden units, j0 to j0 + K, and the loops index slices
from 0 so that they vectorise. `rnn_lane_forward` and `rnn_lane_backward` are the step
kernels as the recurrence's lanes call them (one phase of one block), and
`rnn_forward_lane`, `rnn_backward_lane` the RNN's lane loops made from them.
"""

from numba import njit

from fastlstm.kernels.recurrence import keep_h, lane_loops, mask_units
from fastlstm.kernels.vecmath import STEP_OPTIONS, one_like, tanh


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def rnn_step_forward(a, hA, b, h, j0):
    """The hidden state of one step at the units j0 .. j0 + K - 1.

    a (N, H) = x_t @ Wx; hA (N, K) = h_prev @ the block's columns of Wh; b (H,).
    Out: h (N, H) at the block's units. All C-contiguous.
    """
    K = hA.shape[1]
    j1 = j0 + K
    bb = b[j0:j1]
    for n in range(a.shape[0]):
        an, hn, out = a[n, j0:j1], hA[n], h[n, j0:j1]
        for j in range(K):
            out[j] = tanh(an[j] + hn[j] + bb[j])


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def rnn_step_backward(h, dh_outs, t, dh_next, dA, db, j0):
    """The pre-activation gradient of one step going backwards in time at the units
    j0 .. j0 + K - 1, added to the bias gradient as it is made.

    h (N, H): this step's output; dh_outs (N, T, H) the gradients from the layer's outputs,
    of which step t's is read (passed whole, as for the LSTM: a strided slice keeps the
    loop scalar); dh_next (N, K) = dA_{t+1} @ Wh.T at the block's units; db (H,) the bias
    gradient, to which each row of dA is added in order. Out: dA (N, H) at the block's
    units. All C-contiguous.
    """
    K = dh_next.shape[1]
    j1 = j0 + K
    one = one_like(h[0, 0])
    bb = db[j0:j1]
    for n in range(h.shape[0]):
        hn, dho, dhn, da = h[n, j0:j1], dh_outs[n, t, j0:j1], dh_next[n], dA[n, j0:j1]
        for j in range(K):
            d = (dho[j] + dhn[j]) * (one - hn[j] * hn[j])
            da[j] = d
            bb[j] += d


@njit(cache=True, nogil=True)
def rnn_lane_forward(phase, t, state, products, j0):
    """Step t forward at a lane's units (kernels/recurrence.py's step_forward; one phase).

    state = (pre, hs, out, hs_inputs, b, hm, mask): pre (T, N, H) the input projections,
    hs (T + 1, N, H) the states (hs[0] given), out (N, T, H) the layer's output, hs_inputs
    (T, N, H, any strides) the h each step multiplies (fastlstm.backends.cpu.rnn_forward),
    hm and mask as kernels/recurrence.py's keep_h takes them (the masked h the products
    read, and the recurrent mask or no rows); products[0] (N, K): hm[t] @ the lane's
    columns of Wh.
    """
    pre, hs, out, hs_inputs, b, hm, mask = state
    hA = products[0]
    rnn_step_forward(pre[t], hA, b, hs[t + 1], j0)
    keep_h(hs, hm, mask, out, hs_inputs, t, j0, hA.shape[1])


@njit(cache=True, nogil=True)
def rnn_lane_backward(phase, t, state, products, j0):
    """Step t backward at a lane's units (kernels/recurrence.py's step_backward; one phase),
    writing dA[t], the operand of the product that follows.

    state = (hs, dhs, dA, db, mask): hs (T + 1, N, H) as forward left them, dhs (N, T, H)
    the outputs' gradients, dA (T, N, H), db (H,), mask the recurrent mask or no rows;
    products[0] (N, K): dA[t + 1] @ Wh.T at the lane's units (zero before the last step),
    the gradient of the (masked) h_t that step t + 1 multiplied.
    """
    hs, dhs, dA, db, mask = state
    mask_units(products[0], mask, j0)
    rnn_step_backward(hs[t + 1], dhs, t, products[0], dA[t], db, j0)


rnn_forward_lane, rnn_backward_lane = lane_loops("rnn", rnn_lane_forward, rnn_lane_backward)
