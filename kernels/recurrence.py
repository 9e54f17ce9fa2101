"""One lane's loop over the LSTM's time steps, forward and backward, compiled whole.

A lane (fastlstm/recurrence.py) owns a block of hidden units j0 .. j0 + K - 1. Every step
it multiplies the whole previous h (forward) or dA (backward) by its packed block of Wh
(kernels/packed_product.py) and runs the fused step kernel on its units (kernels/lstm.py);
between the two, the lanes meet (kernels/spin.py). Here the loop runs without the GIL and
without a Python call per step.

Both loops can stop early and be resumed: they return where to go on from (a position),
`done` when finished, or -1 when another lane failed. They stop when the barrier has
spun `spins` rounds in vain, so that the caller can sleep for a moment.
"""

from numba import njit

from fastlstm.kernels.lstm import lstm_step_backward, lstm_step_forward
from fastlstm.kernels.packed_product import packed_product
from fastlstm.kernels.spin import publish, wait_all


@njit(cache=True, nogil=True)
def forward_lane(gates, hs, cs, tanh_cs, out, hs_inputs, packed, hA, edge, b, j0, progress, lane, position, spins):
    """Steps position .. T - 1 forward for the lane's units; positions are time steps, done = T.

    gates (T, N, 4H), hs and cs (T + 1, N, H), tanh_cs (T, N, H), out (N, T, H) and
    hs_inputs (T, N, H) as in fastlstm.recurrence.forward_steps; packed: the lane's
    columns of Wh (f, g, i, o blocks side by side), packed; hA (N, 4K) and edge scratch;
    progress (lanes + 1,) int64.
    """
    T, N = gates.shape[0], gates.shape[1]
    K = hA.shape[1] // 4
    for t in range(position, T):
        waited = wait_all(progress, t, spins)  # every lane's part of hs[t] is written
        if waited != 1:
            return t if waited == 0 else -1
        packed_product(hs[t], packed, hA, edge)
        lstm_step_forward(gates[t], hA, b, cs[t], cs[t + 1], tanh_cs[t], hs[t + 1], j0)
        for n in range(N):  # while the new h is in this core's cache
            h, h_out = hs[t + 1, n, j0:j0 + K], out[n, t, j0:j0 + K]
            for j in range(K):
                h_out[j] = h[j]
            if t + 1 < T:
                h_in = hs_inputs[t + 1, n, j0:j0 + K]
                for j in range(K):
                    h_in[j] = h[j]
        publish(progress, lane, t + 1)
    return T


@njit(cache=True, nogil=True)
def backward_lane(gates, cs, tanh_cs, dhs, dA, db, dh_k, dc, packed, edge, j0, progress, lane, position, spins):
    """Steps backward for the lane's units; position 2i is step T - 1 - i from its start,
    2i + 1 the same step's product, after the wait; done = 2T.

    gates, cs, tanh_cs, dhs, dA, db as in fastlstm.recurrence.backward_steps; dh_k (N, K):
    dA_{t+1} @ Wh.T at the lane's units (zero before the last step); dc (N, H); packed: the
    lane's rows of Wh, transposed and packed; progress (lanes + 1,) int64.
    """
    T = gates.shape[0]
    for p in range(position, 2 * T):
        i = p // 2
        t = T - 1 - i
        if p % 2 == 0:
            lstm_step_backward(gates[t], cs[t], tanh_cs[t], dhs, t, dh_k, dc, dA[t], db, j0)
            publish(progress, lane, i + 1)
            continue
        waited = wait_all(progress, i + 1, spins)  # every lane's part of dA[t] is written
        if waited != 1:
            return p if waited == 0 else -1
        packed_product(dA[t], packed, dh_k, edge)
    return 2 * T
