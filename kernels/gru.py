"""One time step of the book's GRU, forward and backward: the fused elementwise passes
between its two dependent products. Gate order z, r, h~ in the 3H axis of Wx and Wh:

    z = sigmoid(x Wx_z + h_prev Wh_z)        r = sigmoid(x Wx_r + h_prev Wh_r)
    h~ = tanh(x Wx_h + (r * h_prev) Wh_h)    h = (1 - z) * h_prev + z * h~

A step runs in two phases (kernels/recurrence.py): the product of h_prev with the z and r
columns of Wh, then `gru_step_gates`, which writes r * h_prev; the product of that with
the h~ columns, then `gru_step_hidden`. Backward runs them last first:
`gru_step_backward_hidden` makes the pre-activation gradients of h~ and z, the product
of the first with the h~ rows of Wh gives the gradient of r * h_prev, from which
`gru_step_backward_gates` makes r's; the product of the z and r gradients with their rows
of Wh gives what the step hands back to h_prev through the gates. What reaches h_prev
directly, (1 - z) and r * h_prev, the kernels keep in `dh_direct`.

With recurrent dropout (a mask m per sequence, kernels/recurrence.py) both products read
the masked h: z and r from (m * h_prev) Wh, h~ from (r * m * h_prev) Wh_h, while
h = (1 - z) * h_prev + z * h~ keeps the unmasked h_prev; the lane kernels pass the masked
h where the products' operands are made and the unmasked one elsewhere.

As for the LSTM (kernels/lstm.py), a call computes one block of hidden units, j0 to
j0 + K, and the loops index slices from 0 so that they vectorise. `gru_lane_forward` and
`gru_lane_backward` are the step kernels as the recurrence's lanes call them, and
`gru_forward_lane`, `gru_backward_lane` the GRU's lane loops made from them.
"""

from numba import njit

from fastlstm.kernels.recurrence import keep_h, lane_loops, mask_units
from fastlstm.kernels.vecmath import STEP_OPTIONS, one_like, sigmoid, tanh


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def gru_step_gates(a, hA, h_prev, rh, j0):
    """The gates z and r of one step at the units j0 .. j0 + K - 1, and r * h_prev.

    a (N, 3H): x_t @ Wx on entry, z and r in its first 2H columns on return (at the
    block's units); hA (N, 2K) = h_prev @ the block's z and r columns of Wh, side by side;
    h_prev (N, H). Out: rh (N, H) = r * h_prev at the block's units. All C-contiguous.
    """
    H = h_prev.shape[1]
    K = hA.shape[1] // 2
    j1 = j0 + K
    for n in range(a.shape[0]):
        az, ar, hz, hr = a[n, j0:j1], a[n, H + j0:H + j1], hA[n, :K], hA[n, K:]
        hp, out = h_prev[n, j0:j1], rh[n, j0:j1]
        for j in range(K):
            z = sigmoid(az[j] + hz[j])
            r = sigmoid(ar[j] + hr[j])
            az[j] = z
            ar[j] = r
            out[j] = r * hp[j]


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def gru_step_hidden(a, hA, h_prev, h, j0):
    """h~ and the new hidden state of one step at the units j0 .. j0 + K - 1.

    a (N, 3H): z and r as gru_step_gates left them, x_t @ Wx_h in its last H columns on
    entry and h~ there on return; hA (N, K) = (r * h_prev) @ the block's h~ columns of
    Wh; h_prev (N, H). Out: h (N, H) at the block's units. All C-contiguous.
    """
    H = h_prev.shape[1]
    K = hA.shape[1]
    j1 = j0 + K
    one = one_like(h[0, 0])
    for n in range(a.shape[0]):
        az, ah, hh, hp, out = a[n, j0:j1], a[n, 2 * H + j0:2 * H + j1], hA[n], h_prev[n, j0:j1], h[n, j0:j1]
        for j in range(K):
            z = az[j]
            c = tanh(ah[j] + hh[j])
            ah[j] = c
            out[j] = (one - z) * hp[j] + z * c


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def gru_step_backward_hidden(gates, h_prev, dh_outs, t, dh_next, dh_direct, dA, j0):
    """The pre-activation gradients of h~ and z of one step going backwards in time, at
    the units j0 .. j0 + K - 1.

    gates (N, 3H) z, r, h~; h_prev (N, H); dh_outs (N, T, H) the gradients from the
    layer's outputs, of which step t's is read (passed whole, as for the LSTM); dh_next
    (N, K): the product part of the gradient of this step's output, from step t + 1 (at
    the block's units); dh_direct (N, H): the direct part on entry, the gradient of h_prev
    through (1 - z) * h_prev on return. Out: dA (N, 3H), its z and h~ blocks, at the
    block's units. All C-contiguous.
    """
    H = h_prev.shape[1]
    K = dh_next.shape[1]
    j1 = j0 + K
    one = one_like(h_prev[0, 0])
    for n in range(h_prev.shape[0]):
        gz, gh = gates[n, j0:j1], gates[n, 2 * H + j0:2 * H + j1]
        dz, dhh = dA[n, j0:j1], dA[n, 2 * H + j0:2 * H + j1]
        hp, dho, dhn, dd = h_prev[n, j0:j1], dh_outs[n, t, j0:j1], dh_next[n], dh_direct[n, j0:j1]
        for j in range(K):
            z = gz[j]
            c = gh[j]
            dh = dho[j] + dd[j] + dhn[j]
            dhh[j] = dh * z * (one - c * c)
            dz[j] = dh * (c - hp[j]) * z * (one - z)
            dd[j] = dh * (one - z)


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def gru_step_backward_gates(gates, h_prev, drh, dh_direct, dA, j0):
    """The pre-activation gradient of r of one step going backwards in time, at the units
    j0 .. j0 + K - 1.

    gates (N, 3H) z, r, h~; h_prev (N, H); drh (N, K): the gradient of r * h_prev at the
    block's units (dA's h~ block @ Wh_h.T); dh_direct (N, H): r * drh is added to it.
    Out: dA (N, 3H), its r block, at the block's units. All C-contiguous.
    """
    H = h_prev.shape[1]
    K = drh.shape[1]
    j1 = j0 + K
    one = one_like(h_prev[0, 0])
    for n in range(h_prev.shape[0]):
        gr, dr, hp, d, dd = gates[n, H + j0:H + j1], dA[n, H + j0:H + j1], h_prev[n, j0:j1], drh[n], dh_direct[n, j0:j1]
        for j in range(K):
            r = gr[j]
            dd[j] += r * d[j]
            dr[j] = d[j] * hp[j] * r * (one - r)


@njit(cache=True, nogil=True)
def gru_lane_forward(phase, t, state, products, j0):
    """Step t's phase forward at a lane's units (kernels/recurrence.py's step_forward).

    state = (gates, hs, rhs, out, hs_inputs, hm, mask): gates (T, N, 3H) the input
    projections, made z, r, h~; hs (T + 1, N, H) the states (hs[0] given); rhs (T, N, H)
    r * hm[t], the operand of phase 1; out (N, T, H) the layer's output; hs_inputs
    (T, N, H, any strides) the h each step multiplies (fastlstm.backends.cpu.gru_forward);
    hm and mask as kernels/recurrence.py's keep_h takes them (the masked h, and the
    recurrent mask or no rows): with recurrent dropout both products read the masked h,
    (1 - z) * h_prev the unmasked. products[0] (N, 2K): hm[t] @ the lane's z and r columns
    of Wh; products[1] (N, K): rhs[t] @ its h~ columns.
    """
    gates, hs, rhs, out, hs_inputs, hm, mask = state
    if phase == 0:
        gru_step_gates(gates[t], products[0], hm[t], rhs[t], j0)
    else:
        gru_step_hidden(gates[t], products[1], hs[t], hs[t + 1], j0)
        keep_h(hs, hm, mask, out, hs_inputs, t, j0, products[1].shape[1])


@njit(cache=True, nogil=True)
def gru_lane_backward(phase, t, state, products, j0):
    """Step t's phase backward at a lane's units (kernels/recurrence.py's step_backward),
    h~ first: phase 0 writes dA[t]'s h~ block, the operand of the product with the h~
    rows of Wh; phase 1 its r block, after which its z and r blocks are the operand of the
    product with their rows.

    state = (gates, hs, dhs, dA, dh_direct, mask): as forward left gates and hs; dhs
    (N, T, H) the outputs' gradients; dA (T, N, 3H); dh_direct (N, H) zero before the last
    step; mask the recurrent mask or no rows. products[0] (N, K): dA[t]'s h~ block @
    Wh_h.T; products[1] (N, K): dA[t + 1]'s z and r blocks @ their rows of Wh, transposed
    (zero before the last step), at the lane's units. Both are gradients of what the
    masked h made, so each is multiplied by the mask before its kernel reads it; then
    d(r * h_prev) = r * products[0] * mask, and d r = products[0] * mask * h_prev.
    """
    gates, hs, dhs, dA, dh_direct, mask = state
    if phase == 0:
        mask_units(products[1], mask, j0)
        gru_step_backward_hidden(gates[t], hs[t], dhs, t, products[1], dh_direct, dA[t], j0)
    else:
        mask_units(products[0], mask, j0)
        gru_step_backward_gates(gates[t], hs[t], products[0], dh_direct, dA[t], j0)


gru_forward_lane, gru_backward_lane = lane_loops("gru", gru_lane_forward, gru_lane_backward)
