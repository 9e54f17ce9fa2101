"""A recurrent cell's serial loop over time steps, split over cores by hidden units,
written once for every cell.

Each step's product with Wh (N x H times H x blocks * H, N about 20) is too small for
BLAS's threads to pay. Split by hidden units instead, each lane (fastlstm/lanes.py) owns a
block of units: its columns of every gate block of Wh in the forward pass, side by side,
its rows of Wh in backward, and the elementwise work of its units. A lane packs its part
of Wh once per call and multiplies by it with kernels/packed_product.py, which at these
few rows beats BLAS (that packs its operand on every call). The lanes meet once per
phase of a step, when the operand of the next product is complete and every lane needs
all of it: each lane runs its whole loop in compiled code (kernels/recurrence.py) and
waits for the others by spinning (kernels/spin.py), since a thread put to sleep would
lose a wake-up and the GIL at every step; while another process holds one of their
cores, they spin less (the lanes' rest policy). The results do not depend on the number of
lanes, nor on where the units are cut, to the bit: the units go to the lanes by their
speeds, as the products have measured them.

A cell is its step kernels, its lane loops made from them (kernels/recurrence.py tells
how a cell plugs in) and a `Cell`: how many gate blocks of H columns its Wh holds and
which of them each phase's product takes. `forward` and `backward` run any cell: `LSTM`,
`RNN` and `GRU` here (fastlstm/backends/cpu.py hands them their arrays); `forward_steps`
and `backward_steps` are the LSTM's.
"""

from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from fastlstm.kernels.dropout import multiply_into
from fastlstm.kernels.gru import gru_backward_lane, gru_forward_lane
from fastlstm.kernels.lstm import lstm_backward_lane, lstm_forward_lane
from fastlstm.kernels.packed_product import TILE_ROWS, pack, packed_shape, panel_width
from fastlstm.kernels.rnn import rnn_backward_lane, rnn_forward_lane
from fastlstm.kernels.spin import ABORT


@dataclass(frozen=True)
class Cell:
    """What the lanes need of a cell: its compiled lane loops, and its phases, the number of
    gate blocks of H columns of Wh (H, blocks * H) that each phase's product takes, in
    forward order, the blocks of a phase following those of the phase before (the LSTM:
    (4,), f, g, i, o in one product; an RNN (1,); a GRU (2, 1), z and r, then h~)."""

    forward_lane: object
    backward_lane: object
    phases: tuple

    def blocks(self):
        """[(first, last) for each phase]: its gate blocks first .. last - 1."""
        ends = list(accumulate(self.phases, initial=0))
        return list(zip(ends[:-1], ends[1:]))


LSTM = Cell(lstm_forward_lane, lstm_backward_lane, phases=(4,))
RNN = Cell(rnn_forward_lane, rnn_backward_lane, phases=(1,))
GRU = Cell(gru_forward_lane, gru_backward_lane, phases=(2, 1))


@dataclass(frozen=True)
class RecurrentMasks:
    """The masks of one call of a recurrent layer: h (N, H), the recurrent mask by which
    every step's h_{t-1} is multiplied before its products with Wh, or no rows (no
    recurrent dropout); weight (like Wh) or None, the weight-drop mask by which Wh is
    multiplied as the lanes pack it; hm (T + 1, N, H), the h the products read: hs itself
    without a recurrent mask, else the masked h (hm[0] the masked initial h, the others
    written by the step kernels). The step kernels take hm and h in their state."""

    h: np.ndarray
    weight: object
    hm: np.ndarray

    @classmethod
    def none(cls, hs, weight=None):
        """No recurrent mask: every step multiplies hs by Wh (by Wh * weight with a weight mask)."""
        return cls(_NO_ROWS[hs.dtype], weight, hs)


# The `h` of RecurrentMasks without a recurrent mask, per dtype: no rows, so nothing writes to it.
_NO_ROWS = {np.dtype(t): np.zeros((0, 0), dtype=t) for t in (np.float32, np.float64)}


def forward_steps(gates, hs, cs, tanh_cs, out, hs_inputs, Wh, b, lanes, empty, masks=None, zero_start=False):
    """Run the LSTM's T steps forward on `lanes` (a fastlstm.lanes.Lanes): gates (T, N, 4H)
    holds x_t @ Wx on entry and the activated gates on return; hs[0], cs[0] (N, H) the
    initial state, hs[t + 1], cs[t + 1] filled with the state after step t, tanh_cs[t]
    with tanh of it, out (N, T, H), the layer's output, with hs[1:] batch-major, and
    hs_inputs[1:] (T, N, H, any strides) with hm[1:T], the h each step multiplies, kept
    beside x_t for the weight gradients' one product (each lane copies its units' h as it
    makes them). `empty(name, shape, dtype)` gives the lanes' scratch arrays (a
    workspace's: nothing of them outlives the call). `masks` (RecurrentMasks; none by
    default): recurrent dropout and weight drop. `zero_start`: hs[0] is zeros (forward)."""
    masks = masks or RecurrentMasks.none(hs)
    state = (gates, hs, cs, tanh_cs, out, hs_inputs, b, masks.hm, masks.h)
    forward(LSTM, (masks.hm,), state, Wh, lanes, empty, masks, zero_start)


def backward_steps(gates, cs, tanh_cs, dhs, Wh, dA, dh, db, lanes, masks=None):
    """Run the LSTM's T steps backward on `lanes` from the gradients dhs (N, T, H,
    C-contiguous) of the outputs: fills dA (T, N, 4H) with the gates' pre-activation
    gradients, db (4H,) with their sums over steps and rows (the bias gradient) and dh
    (N, H) with the gradient of the initial h, through the `masks` forward used."""
    dc = np.zeros(dh.shape, dtype=dh.dtype)
    db[...] = 0
    h_mask = RecurrentMasks.none(dh).h if masks is None else masks.h
    backward(LSTM, (dA,), (gates, cs, tanh_cs, dhs, dA, db, dc, h_mask), Wh, dh, lanes, masks)


def forward(cell, operands, state, Wh, lanes, empty, masks=None, zero_start=False):
    """Run `cell` forward over T steps on `lanes`: operands[p][t] (N, H) is the left operand
    of step t's phase p, operands[0] (T + 1, N, H) the h of every step (masks.hm: the
    initial h given, the others written by the step kernels), `state` the step kernels'
    arrays. With `masks` (RecurrentMasks), the products take Wh * masks.weight where it
    is given, packed so. `empty(name, shape, dtype)` gives the lanes' scratch arrays;
    phase 0's are named as a one-phase cell's. `zero_start`: the initial h is zeros, so
    that the first step's products are zeros (every cell's operands at step 0 are h_0 times
    something), made without multiply-adds, and one step needs no packed Wh."""
    _check_rows(operands)
    weight_mask = None if masks is None else masks.weight
    T, N, H = len(operands[0]) - 1, operands[0].shape[1], Wh.shape[0]

    def lane(k, j0, j1):
        K = j1 - j0
        packed, products = [], []
        for p, (first, last) in enumerate(cell.blocks()):
            suffix = f"{k}" if p == 0 else f"{k}.{p}"
            packed.append(empty(f"Wh_packed{suffix}", packed_shape(H, (last - first) * K, Wh.dtype), Wh.dtype))
            if T > zero_start:
                pack(Wh, packed[-1], starts=[g * H + j0 for g in range(first, last)], width=K, mask=weight_mask)
            products.append(empty(f"hA_lane{suffix}", (N, (last - first) * K), Wh.dtype))
        edge = empty(f"edge_lane{k}", (TILE_ROWS, panel_width(Wh.dtype)), Wh.dtype)
        args = (T, int(zero_start), tuple(operands), state, tuple(packed), tuple(products), edge, j0)
        return cell.forward_lane, args, T * len(cell.phases)

    _run_lanes(lane, H, N * H * sum(cell.phases), T, lanes)


def backward(cell, operands, state, Wh, dh, lanes, masks=None):
    """Run `cell` backward over T steps on `lanes`: operands[p] (T, N, width of the phase's
    blocks) receives, from the step kernels, the left operand of backward phase p's
    product (the phases last first; dA for the LSTM; column blocks of one array may serve),
    `state` the step kernels' arrays; fills dh (N, H) with the lanes' last products: the
    gradient of the initial h, but for what a cell's kernels hand to it directly. With
    `masks` (RecurrentMasks, as forward had them), the products take (Wh * masks.weight).T
    where it is given, and dh is multiplied by masks.h where it has rows (the initial h
    was masked too)."""
    _check_rows(operands)
    weight_mask, h_mask = (None, None) if masks is None else (masks.weight, masks.h)
    T, (N, H) = len(operands[0]), dh.shape

    def lane(k, j0, j1):
        K = j1 - j0
        packed, products = [], []
        for first, last in reversed(cell.blocks()):
            packed.append(np.empty(packed_shape((last - first) * H, K, Wh.dtype), Wh.dtype))
            block = (slice(j0, j1), slice(first * H, last * H))
            pack(Wh[block].T, packed[-1], mask=None if weight_mask is None else weight_mask[block].T)
            products.append(np.zeros((N, K), dtype=dh.dtype))
        dh_lanes[j0, j1] = products[-1]
        edge = np.empty((TILE_ROWS, panel_width(Wh.dtype)), Wh.dtype)
        args = (T, tuple(operands), state, tuple(packed), tuple(products), edge, j0)
        return cell.backward_lane, args, 2 * T * len(cell.phases)

    dh_lanes = {}
    _run_lanes(lane, H, N * H * sum(cell.phases), T, lanes)
    for (j0, j1), dh_k in dh_lanes.items():
        dh[:, j0:j1] = dh_k
    if h_mask is not None and h_mask.shape[0] != 0:
        lanes.loop(multiply_into, dh.size)(dh.reshape(-1), h_mask.reshape(-1))


def _check_rows(operands):
    """The products read each operand's rows as contiguous runs (kernels/packed_product.py)."""
    for operand in operands:
        if operand.strides[-1] != operand.itemsize:
            raise ValueError(f"a recurrence operand's rows must be contiguous, got strides {operand.strides}")


def _run_lanes(prepare, H, unit_work, steps, lanes):
    """Run each lane's compiled loop, prepare(k, j0, j1) -> (kernel, args, done), over its
    block of the H units, each taking `unit_work` multiply-adds a step over `steps` steps,
    resuming it after each rest until it reaches `done`."""
    n_lanes = lanes.recurrence_count(H, unit_work, steps)
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

    if n_lanes == 1:  # on this thread: the loops call no BLAS, whose threads need no switch
        lane(0, 0, H)
    else:
        lanes.run(lane, H, n_lanes, quantum=1, follow=True)  # any cut gives the same bits
