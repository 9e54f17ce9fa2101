"""The LSTM's serial loop over time steps, split over cores by hidden units.

Each step's product with Wh (N x H times H x 4H, N about 20) is too small for BLAS's
threads to pay. Split by hidden units instead, each lane (fastlstm/lanes.py) owns a block
of units: its columns of Wh in the forward pass (f, g, i, o side by side), its rows of
Wh in backward, and the elementwise work of its units. A lane packs its part of Wh once
per call and multiplies by it with kernels/packed_product.py, which at these few rows
beats BLAS (that packs its operand on every call). The lanes meet once per step, when the
step's h (forward) or dA (backward) is complete and every lane needs all of it: each lane
runs its whole loop in compiled code (kernels/recurrence.py) and waits for the others by
spinning (kernels/spin.py), since a thread put to sleep and woken at every step costs
more than the step; while another process holds one of their cores, they spin less (the
lanes' rest policy). The results do not depend on the number of lanes, nor on where the units are cut, to the
bit: the units go to the lanes by their speeds, as the products have measured them.
"""

import numpy as np

from fastlstm.kernels.packed_product import TILE_ROWS, pack, packed_shape, panel_width
from fastlstm.kernels.recurrence import backward_lane, forward_lane
from fastlstm.kernels.spin import ABORT


def forward_steps(gates, hs, cs, tanh_cs, out, hs_inputs, Wh, b, lanes, empty):
    """Run the T steps forward on `lanes` (a fastlstm.lanes.Lanes): gates (T, N, 4H) holds
    x_t @ Wx on entry and the activated gates on return; hs[0], cs[0] (N, H) the initial
    state, hs[t + 1], cs[t + 1] filled with the state after step t, tanh_cs[t] with tanh
    of it, out (N, T, H), the layer's output, with hs[1:] batch-major, and hs_inputs[1:]
    (T, N, H, any strides) with hs[1:T], the h each step multiplies, kept beside x_t for
    the weight gradients' one product (each lane copies its units' h as it makes them,
    instead of a pass over all of them after the loop). `empty(name, shape, dtype)` gives the lanes' scratch arrays (a workspace's:
    nothing of them outlives the call)."""
    T, N, G = gates.shape
    H = G // 4

    def lane(k, j0, j1):
        K = j1 - j0
        packed = empty(f"Wh_packed{k}", packed_shape(H, 4 * K, Wh.dtype), Wh.dtype)
        pack(Wh, packed, starts=[g * H + j0 for g in range(4)], width=K)
        edge = empty(f"edge_lane{k}", (TILE_ROWS, panel_width(Wh.dtype)), Wh.dtype)
        hA = empty(f"hA_lane{k}", (N, 4 * K), Wh.dtype)
        return forward_lane, (gates, hs, cs, tanh_cs, out, hs_inputs, packed, hA, edge, b, j0), T

    _run_lanes(lane, H, lanes)


def backward_steps(gates, cs, tanh_cs, dhs, Wh, dA, dh, db, lanes):
    """Run the T steps backward on `lanes` from the gradients dhs (N, T, H, C-contiguous) of
    the outputs: fills dA (T, N, 4H) with the gates' pre-activation gradients, db (4H,)
    with their sums over steps and rows (the bias gradient) and dh (N, H) with the
    gradient of the initial h."""
    N, T, H = dhs.shape
    dc = np.zeros((N, H), dtype=dh.dtype)
    db[...] = 0

    def lane(k, j0, j1):
        K = j1 - j0
        packed = np.empty(packed_shape(4 * H, K, Wh.dtype), Wh.dtype)
        pack(Wh[j0:j1].T, packed)
        edge = np.empty((TILE_ROWS, panel_width(Wh.dtype)), Wh.dtype)
        dh_k = dh_lanes[j0, j1] = np.zeros((N, K), dtype=dh.dtype)
        return backward_lane, (gates, cs, tanh_cs, dhs, dA, db, dh_k, dc, packed, edge, j0), 2 * T

    dh_lanes = {}
    _run_lanes(lane, H, lanes)
    for (j0, j1), dh_k in dh_lanes.items():
        dh[:, j0:j1] = dh_k


def _run_lanes(prepare, H, lanes):
    """Run each lane's compiled loop, prepare(k, j0, j1) -> (kernel, args, done), over its
    block of the H units, resuming it after each rest until it reaches `done`."""
    n_lanes = lanes.count(H, lanes.min_units)
    progress = np.zeros(n_lanes + 1, dtype=np.int64)

    def lane(k, j0, j1):
        try:
            kernel, args, done = prepare(k, j0, j1)
            position = 0
            while position != done:
                start, position = position, kernel(*args, progress, k, position, lanes.recurrence_spins())
                if position < 0:
                    return
                if position != done:
                    lanes.recurrence_rest(again=position == start)
        except BaseException:
            progress[ABORT] = 1
            raise

    lanes.run(lane, H, n_lanes, quantum=1, follow=True)  # any cut gives the same bits
