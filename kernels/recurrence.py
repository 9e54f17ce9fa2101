"""One lane's loops over a recurrent cell's time steps, forward and backward, compiled
whole and generic over the cell.

A lane (fastlstm/recurrence.py) owns a block of hidden units j0 .. j0 + K - 1. A cell's
step runs in one or more phases. In each, every lane multiplies the phase's whole operand
(N rows) by its packed block of the recurrent weights (kernels/packed_product.py) and
runs the cell's step kernel on its units; the lanes meet before each product
(kernels/spin.py), when every lane's part of the operand is written. Here the loop runs
without the GIL and without a Python call per step.

How a cell plugs in: it writes two step kernels, `step_forward(phase, t, state, products,
j0)` and `step_backward(phase, t, state, products, j0)`, that do its elementwise work at
the lane's units, `state` being a tuple of its arrays, and gets its loops from
`lane_loops(name, step_forward, step_backward)`; fastlstm/recurrence.py's `Cell` says
how its Wh is cut into blocks and phases. Nothing of the lanes, the packing or the
barrier is written again.

Recurrent dropout (one mask per sequence on h_{t-1}, for all steps of a call) and weight
drop (a mask on Wh) need nothing of the loops either: fastlstm/recurrence.py packs Wh
times its mask, and the masked h is just another operand. A cell's state holds the
mask (N, H) and the masked h hm (T + 1, N, H); its forward step writes its new h at its
units with `keep_h` (h as output, h * mask as the next products' operand), and its
backward step first turns each product it reads that came through a masked h into the
gradient of h with `mask_units`. Without recurrent dropout the mask has no rows, hm is
hs, and both keep the bits of the unmasked cell.
- LSTM (kernels/lstm.py): one phase. Forward multiplies h_t by the lane's f, g, i, o
  columns of Wh; backward multiplies dA_t by the lane's rows of Wh, transposed.
- RNN (kernels/rnn.py), h = tanh(x Wx + h_prev Wh + b): one phase, one block, as the
  LSTM's.
- GRU (kernels/gru.py), z and r from x and h_prev, h~ = tanh(x Wx_h + (r * h_prev) Wh_h):
  two phases, the second product depending on the first. Forward phase 0 multiplies h_t
  by the z and r columns, and its kernel makes z and r and writes r * h_t at the lane's
  units into a second operand; phase 1 multiplies that by the h~ columns, and its kernel makes h~
  and h. Backward runs the phases last first: phase 0's kernel writes the gradients of
  h~'s and z's pre-activations, and the product of the first with the h~ rows gives
  d(r * h_prev) at the lane's units; phase 1's kernel makes r's, and the product of the
  z and r gradients with their rows gives h_prev's gradient through the gates. What
  reaches h_prev directly the kernels keep at the lane's units, and its caller adds it to
  the lanes' last products.

The loops can stop early and be resumed: they return where to go on from (a position),
`done` when finished, or -1 when another lane failed. They stop when the barrier has
spun `spins` rounds in vain, so that the caller can sleep for a moment.

Why a loop per cell rather than one loop taking the step kernels as arguments: Numba
specialises a function on its dispatcher arguments, but its cache keys them by an
identity that is new in every process, so a fresh process compiled such a loop again
(and added one more entry to the cache). `lane_loops` instead makes a function per cell
from the templates here, with the step kernels bound as its globals (a direct call, as
to any other kernel) and a name of the cell's own (`lstm_forward_lane`), under which the
cache keeps it; the cache's stamp covers every kernel source (kernels/__init__.py), so
a change to a step kernel recompiles its cell's loops.
"""

from types import FunctionType

from numba import njit

from fastlstm.kernels.packed_product import packed_product
from fastlstm.kernels.spin import publish, wait_all


def _forward_lane(steps, first, operands, state, packed, products, edge, j0, progress, lane, position, spins):
    """Phases position .. steps * P - 1 forward for the lane's units, P = len(operands);
    position t * P + p is step t's phase p; done = steps * P.

    operands: P arrays of one type, operands[p][t] (N, H) the left operand of step t's
    phase p, all C-contiguous; packed[p]: the lane's columns of the phase's blocks of Wh,
    side by side, packed; products[p] (N, K * blocks of phase p) receives the product;
    state: the cell's arrays; edge scratch; progress (lanes + 1,) int64. The steps before
    `first` (1 from a zero initial state, else 0) have operands of zeros: their products
    are zeros, with no multiply-adds (a product of zeros sums to +0 as the kernel adds it).
    """
    P = len(operands)
    for p in range(position, steps * P):
        t, phase = p // P, p % P
        waited = wait_all(progress, p, spins)  # every lane's part of operands[phase][t] is written
        if waited != 1:
            return p if waited == 0 else -1
        if t < first:
            products[phase][:, :] = 0
        else:
            packed_product(operands[phase][t], packed[phase], products[phase], edge)
        step_forward(phase, t, state, products, j0)  # noqa: F821 (bound by lane_loops)
        publish(progress, lane, p + 1)
    return steps * P


def _backward_lane(steps, operands, state, packed, products, edge, j0, progress, lane, position, spins):
    """Phases backward for the lane's units, P = len(operands): round r is phase r % P
    (the phases in backward order) of step steps - 1 - r // P; position 2r is its kernel,
    2r + 1 its product, after the wait; done = 2 * steps * P.

    operands[p][t] (N, width): what phase p's kernel writes at every lane's units,
    C-contiguous; packed[p]: the lane's rows of the phase's blocks of Wh, transposed and
    packed; products[p] (N, K): the product, read by the next round's kernels (zero
    before the first), the last one the gradient of the initial h.
    """
    P = len(operands)
    for p in range(position, 2 * steps * P):
        r = p // 2
        t, phase = steps - 1 - r // P, r % P
        if p % 2 == 0:
            step_backward(phase, t, state, products, j0)  # noqa: F821 (bound by lane_loops)
            publish(progress, lane, r + 1)
            continue
        waited = wait_all(progress, r + 1, spins)  # every lane's part of operands[phase][t] is written
        if waited != 1:
            return p if waited == 0 else -1
        packed_product(operands[phase][t], packed[phase], products[phase], edge)
    return 2 * steps * P


def lane_loops(name, step_forward, step_backward, cache=True):
    """(forward, backward): the compiled lane loops of the cell `name` over its step kernels,
    named `{name}_forward_lane` and `{name}_backward_lane` in the step kernels' module."""
    kernels = {"step_forward": step_forward, "step_backward": step_backward}
    return tuple(_bind(template, f"{name}_{direction}_lane", step_forward.py_func.__module__, kernels, cache)
                 for template, direction in ((_forward_lane, "forward"), (_backward_lane, "backward")))


def _bind(template, name, module, kernels, cache):
    function = FunctionType(template.__code__, {**template.__globals__, **kernels}, name)
    function.__qualname__, function.__module__, function.__doc__ = name, module, template.__doc__
    return njit(cache=cache, nogil=True)(function)


@njit(cache=True, nogil=True)
def keep_h(hs, hm, mask, out, hs_inputs, t, j0, K):
    """Copy the lane's units of the new h, hs[t + 1] (N, H), into the layer's output out[:, t]
    (out: (N, T, H)) and, but for the last step, into hs_inputs[t + 1] (T, N, H, any
    strides), the h that the weight gradients' product reads, while it is in this core's
    cache. With recurrent dropout (mask (N, H) has rows), h times the mask goes into
    hm[t + 1] (T + 1, N, H), the operand of the next step's products, and into
    hs_inputs[t + 1], so that the weight gradients' product reads the h that Wh
    multiplied; without (no rows), hm is hs and the unmasked h goes on as it is."""
    T = out.shape[1]
    masked = mask.shape[0] != 0
    for n in range(hs.shape[1]):
        h, h_out = hs[t + 1, n, j0:j0 + K], out[n, t, j0:j0 + K]
        for j in range(K):
            h_out[j] = h[j]
        if masked:
            m, h = mask[n, j0:j0 + K], hm[t + 1, n, j0:j0 + K]
            for j in range(K):
                h[j] = h_out[j] * m[j]
        if t + 1 < T:
            h_in = hs_inputs[t + 1, n, j0:j0 + K]
            for j in range(K):
                h_in[j] = h[j]


@njit(cache=True, nogil=True)
def mask_units(dh, mask, j0):
    """dh (N, K) *= the lane's units of the recurrent mask (N, H), j0 .. j0 + K - 1: the
    product's gradient of the masked h made the gradient of h. Nothing where the mask has
    no rows (no recurrent dropout)."""
    if mask.shape[0] == 0:
        return
    N, K = dh.shape
    for n in range(N):
        d, m = dh[n], mask[n, j0:j0 + K]
        for j in range(K):
            d[j] *= m[j]
