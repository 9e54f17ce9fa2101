"""The CPU backend: the layers' array work on NumPy arrays, with the CPU kernels, the lanes'
products (fastlstm.blas) and the recurrent cells' recurrence (fastlstm.recurrence); one row
(N * T = 1, text generation) with the one-row kernels (kernels/one_row.py).

The layers check their inputs and call these for the rest; fastlstm/backends/cuda.py
defines the same functions (`__all__`) on device arrays. Dimension letters as in kernels/:
N batch, T time steps, D input width, H hidden width, V vocabulary, M rows.
"""

import numba
import numpy as np

from fastlstm.blas import dot, dots, tn_product
from fastlstm.checks import as_floats
from fastlstm.kernels import regularisers
from fastlstm.kernels.dropout import dropout_backward, dropout_forward, dropout_mask, locked_apply, multiply_into
from fastlstm.kernels.embedding import embedding_backward, embedding_forward, embedding_forward_scaled, scale_rows
from fastlstm.kernels.linalg import column_sums
from fastlstm.kernels.one_row import PARTIALS, lstm_row_products, lstm_row_step, row_times_columns, row_times_rows
from fastlstm.kernels.optim import sum_squares
from fastlstm.kernels.softmax import softmax_cross_entropy_forward, softmax_cross_entropy_forward_backward
from fastlstm.lanes import default as default_lanes, loop
from fastlstm.recurrence import GRU, RNN, RecurrentMasks, backward, backward_steps, forward, forward_steps
from fastlstm.workspace import fresh

__all__ = ["alloc", "fresh", "zeros_like", "prepare_weights", "floats", "copy", "affine_forward",
           "affine_backward", "gather_rows", "scatter_add_rows", "cross_entropy", "cross_entropy_gradient",
           "dropout_apply", "dropout_gradient", "draw_mask", "locked_dropout", "activation_penalty",
           "temporal_penalty", "add_activation_gradient", "add_temporal_gradient", "recurrent_grads", "lstm_forward",
           "lstm_backward", "rnn_forward", "rnn_backward", "gru_forward", "gru_backward", "time_copy"]

alloc = np.empty  # alloc(shape, dtype): new arrays, as a workspace makes them
zeros_like = np.zeros_like


def prepare_weights(*weights):
    """The weights a layer holds in `params`: the very arrays passed in."""
    return list(weights)


def floats(x, ndim, dtype, name):
    """x as a C-contiguous array of dtype, checked by checks.as_floats."""
    return as_floats(x, ndim, dtype, name)


def copy(src, dst):
    np.copyto(dst, src)


def affine_forward(x2, W, b, out2):
    """out2 (M, V) = x2 (M, D) @ W + b; one row (generation) by the one-row kernels."""
    if x2.shape[0] == 1 and (W.flags.c_contiguous or W.T.flags.c_contiguous):
        _row_affine(x2[0], W, b, out2[0], default_lanes())
    else:
        dot(x2, W, out=out2, bias=b)


def _row_affine(x, W, b, out, lanes):
    """out (V,) = x (D,) @ W + b, W read where it lies: by its rows, or by the rows of W.T
    (a tied weight), C-contiguous either way."""
    def lane(k, j0, j1):
        if W.flags.c_contiguous:
            row_times_rows(x, W, b, j0, out[j0:j1])
        else:
            row_times_columns(x, W.T, b, j0, out[j0:j1], np.empty(PARTIALS, W.dtype))

    _run_row(lane, out.shape[0], W.size, lanes)


def _run_row(lane, columns, work, lanes):
    """lane(k, j0, j1) over the blocks of `columns` outputs of a one-row product of `work`
    multiply-adds, cut by the lanes' speeds (any cut gives the same bits); on this thread
    alone, with no hand-off, where the work is too small to share."""
    n = work // lanes.min_row_work
    if n > 1:  # the thread count's look-up takes a lock: only where there is work to share
        n = min(n, lanes.count(columns, lanes.min_rows))
    if n <= 1:
        lane(0, 0, columns)
    else:
        lanes.run(lane, columns, n, quantum=1, follow=True, learn=True)


def affine_backward(x2, dout2, W, dW, db, dx2):
    """dW = x2.T @ dout2, db = the column sums of dout2, dx2 = dout2 @ W.T."""
    dots(tn_product(x2, dout2, dW), (dout2, W.T, dx2))
    loop(column_sums, dout2.size)(dout2, db)


def gather_rows(W, ids, out, empty, scale=None):
    """out (..., D) = the rows of W picked by the checked host ids, each times scale[id]
    when a scale (V,) is given; returns the ids as backward reads them. One id without a
    scale (generation) is a row's copy, with no parallel loop to start."""
    if scale is not None:
        loop(embedding_forward_scaled, out.size)(W, ids.reshape(-1), scale, out.reshape(-1, W.shape[1]))
    elif ids.size == 1:
        out.reshape(-1)[...] = W[ids.reshape(-1)[0]]
    else:
        loop(embedding_forward, out.size)(W, ids.reshape(-1), out.reshape(-1, W.shape[1]))
    return ids


def scatter_add_rows(ids, dout, dW, scale=None):
    """dW = 0, then dW[ids[m]] += dout[m] for every position m; with a scale (V,), the rows
    reached are then multiplied by theirs (the gradient of W * scale[:, None])."""
    loop(embedding_backward, dW.size + dout.size)(ids.reshape(-1), dout.reshape(-1, dW.shape[1]), dW)
    if scale is not None:
        rows = np.unique(ids)
        loop(scale_rows, rows.size * dW.shape[1])(dW, rows, scale)


def cross_entropy(x2, ts, count, empty, with_gradient):
    """(mean loss over the `count` targets that are not ignored, what cross_entropy_gradient
    needs, the gradient for dout = 1 when `with_gradient` else None) of scores x2 (M, V) and
    checked host targets ts (M,). With the gradient, one pass over the scores makes both."""
    row_loss = empty("row_loss", (x2.shape[0],), np.float64)
    dx = None
    if with_gradient:
        dx = np.empty_like(x2)
        loop(softmax_cross_entropy_forward_backward, x2.size)(x2, ts, row_loss, x2.dtype.type(1 / count), dx)
    else:
        kernel = loop(softmax_cross_entropy_forward, x2.size)
        tasks = 1 if kernel is softmax_cross_entropy_forward.serial else min(x2.shape[0], numba.get_num_threads())
        kernel(x2, ts, row_loss, empty("exps", (max(1, tasks), x2.shape[1]), x2.dtype))
    return row_loss.sum() / count, (x2, ts), dx


def cross_entropy_gradient(saved, dout, count):
    """The gradient (M, V) of dout times the mean loss that cross_entropy saved for."""
    x2, ts = saved
    dx = np.empty_like(x2)
    loop(softmax_cross_entropy_forward_backward, x2.size)(x2, ts, np.empty(x2.shape[0]), x2.dtype.type(dout / count), dx)
    return dx


def dropout_apply(x, seed, ratio, scale):
    """(x * mask, mask) with a fresh mask from `seed` whose kept entries hold `scale`."""
    mask = np.empty_like(x)
    out = np.empty_like(x)
    loop(dropout_forward, x.size)(x.reshape(-1), seed, ratio, scale, mask.reshape(-1), out.reshape(-1))
    return out, mask


def dropout_gradient(dout, mask):
    dx = np.empty_like(mask)
    loop(dropout_backward, dx.size)(dout.reshape(-1), mask.reshape(-1), dx.reshape(-1))
    return dx


def draw_mask(shape, dtype, seed, ratio, scale):
    """A fresh mask of shape and dtype from `seed`: 0 or `scale`, drawn as dropout_apply draws."""
    mask = np.empty(shape, dtype)
    loop(dropout_mask, mask.size)(seed, ratio, scale, mask.reshape(-1))
    return mask


def locked_dropout(x, mask):
    """x (N, T, D) times mask (N, 1, D): one mask per sequence for all its steps (also the
    gradient, with dout for x)."""
    out = np.empty_like(x)
    loop(locked_apply, x.size)(x, mask.reshape(mask.shape[0], mask.shape[2]), out)
    return out


def activation_penalty(h):
    """The sum of h**2 over all elements, in float64 (AR)."""
    return loop(sum_squares, h.size)(h.reshape(-1))


def temporal_penalty(h):
    """The sum of (h[:, t] - h[:, t - 1])**2 over t >= 1 and the rest, in float64 (TAR). h (N, T, H)."""
    return loop(regularisers.temporal_sum_squares, h.size)(h)


def add_activation_gradient(dh, h, coef):
    """dh += coef * h in place."""
    loop(regularisers.add_scaled, h.size)(dh.reshape(-1), h.reshape(-1), h.dtype.type(coef))


def add_temporal_gradient(dh, h, coef):
    """dh += coef * (h_t - h_{t-1}) at t, and minus that at t - 1, in place. dh, h (N, T, H)."""
    loop(regularisers.add_temporal_gradient, h.size)(dh, h, h.dtype.type(coef))


def recurrent_grads(Wx, Wh, *bias):
    """(grads, joined): zeros for dWx, dWh and the bias's gradient (where the cell has a
    bias), where dWx and dWh are the two row blocks of `joined` (D + H, G), which one
    product fills (_input_and_weight_grads)."""
    D = Wx.shape[0]
    joined = np.zeros((D + Wh.shape[0], Wh.shape[1]), dtype=Wh.dtype)
    return [joined[:D], joined[D:]] + [np.zeros_like(b) for b in bias], joined


def _sequence(xs, Wx, Wh, h0, masks, empty, lanes, bias=None):
    """(hs, inputs, pre, out, masks): what every cell's forward over xs (N, T, D) starts from,
    made by `empty`. Time-major, so that every step's slice is C-contiguous: hs (T + 1, N, H),
    hs[0] the initial state h0 (zeros where None), hs[t + 1] the state after step t;
    inputs (T, N, D + H), each step's input x_t and the h it multiplies side by side, the
    left operand of the weight gradients' one product, x and h_0 filled in; pre (T, N, G)
    = x_t @ Wx (+ bias) for all steps in one product. out (N, T, H) the layer's output.
    masks: the RecurrentMasks of the layer's (h_mask or None, weight_mask or None), or
    none where it passed None, with the masked initial h."""
    N, T, D = xs.shape
    H, G = Wh.shape
    dtype = Wh.dtype
    hs = empty("hs", (T + 1, N, H), dtype)
    hs[0] = 0 if h0 is None else h0
    masks = _recurrent_masks(masks, hs, empty)
    inputs = empty("inputs", (T, N, D + H), dtype)
    xs_t = inputs[:, :, :D]
    np.copyto(xs_t, xs.transpose(1, 0, 2))
    inputs[0, :, D:] = masks.hm[0]
    pre = empty("gates", (T, N, G), dtype)
    dot(xs_t.reshape(T * N, D), Wx, out=pre.reshape(T * N, G), bias=bias, lanes=lanes)
    return hs, inputs, pre, empty("out", (N, T, H), dtype), masks


def _recurrent_masks(masks, hs, empty):
    """The RecurrentMasks of a call from the layer's (h_mask or None, weight_mask or None), or
    None for no masks: with an h_mask, the masked operand hm (T + 1, N, H), hm[0] = hs[0] * h_mask."""
    h_mask, weight_mask = masks or (None, None)
    if h_mask is None:
        return RecurrentMasks.none(hs, weight_mask)
    hm = empty("hm", hs.shape, hs.dtype)
    np.multiply(hs[0], h_mask, out=hm[0])
    return RecurrentMasks(h_mask, weight_mask, hm)


def lstm_forward(xs, params, state, empty, workspace, lanes, masks=None):
    """(out (N, T, H), (last h, last c), saved for lstm_backward) of the LSTM over xs (N, T, D)
    from state = (h0, c0) (N, H), zeros where None. `empty` makes the arrays (fresh ones, or
    a workspace's), `workspace` holds the lanes' scratch, `lanes` (fastlstm.lanes.Lanes) run
    the products and the recurrence. `masks` (h_mask (N, H) or None, weight_mask like Wh or
    None), when given: recurrent dropout on every step's h_{t-1} and weight drop on Wh."""
    Wx, Wh, b = params
    h0, c0 = state
    if (xs.shape[0] * xs.shape[1] == 1 and masks is None
            and Wx.flags.c_contiguous and Wh.flags.c_contiguous and b.flags.c_contiguous):
        return _lstm_one_row(xs, params, state, empty, lanes)
    hs, inputs, gates, out, masks = _sequence(xs, Wx, Wh, h0, masks, empty, lanes)
    T, N, H = len(gates), xs.shape[0], Wh.shape[0]
    cs = empty("cs", (T + 1, N, H), Wh.dtype)
    cs[0] = 0 if c0 is None else c0
    tanh_cs = empty("tanh_cs", (T, N, H), Wh.dtype)
    forward_steps(gates, hs, cs, tanh_cs, out, inputs[:, :, xs.shape[2]:], Wh, b, lanes, workspace.empty, masks,
                  zero_start=h0 is None)
    return out, (hs[T], cs[T]), (inputs, cs, tanh_cs, gates, masks)


def _lstm_one_row(xs, params, state, empty, lanes):
    """lstm_forward of one row, one step (generation): the same arrays, the lanes
    computing bands of the gates' columns (kernels/one_row.py) with no BLAS call, then
    the step's elementwise pass on this thread; any cut of the columns gives the same bits."""
    Wx, Wh, b = params
    h0, c0 = state
    D, (H, G) = Wx.shape[0], Wh.shape
    dtype = Wh.dtype
    hs, cs = empty("hs", (2, 1, H), dtype), empty("cs", (2, 1, H), dtype)
    hs[0] = 0 if h0 is None else h0
    cs[0] = 0 if c0 is None else c0
    inputs, gates = empty("inputs", (1, 1, D + H), dtype), empty("gates", (1, 1, G), dtype)
    hA, tanh_cs = empty("hA", (1, G), dtype), empty("tanh_cs", (1, 1, H), dtype)

    def lane(k, g0, g1):  # gate columns g0 .. g1 - 1
        lstm_row_products(xs, hs, Wx, Wh, gates, hA, g0, g1)

    _run_row(lane, G, (D + H) * G, lanes)
    lstm_row_step(xs, b, hs, cs, inputs, gates, hA, tanh_cs)
    return hs[1:], (hs[1], cs[1]), (inputs, cs, tanh_cs, gates, RecurrentMasks.none(hs))


def lstm_backward(saved, dhs, params, grads, joined, lanes):
    """(dxs (N, T, D), dh (N, H)) from the outputs' gradients dhs (N, T, H, C-contiguous) on
    `lanes`; fills grads, whose dWx and dWh are `joined`'s row blocks unless arrays were put
    in their place. Through the masks forward drew: dWh is the gradient of Wh * weight_mask
    times the mask."""
    inputs, cs, tanh_cs, gates, masks = saved
    Wx, Wh, b = params
    dA = np.empty_like(gates)
    dh = np.empty(cs.shape[1:], dtype=gates.dtype)
    backward_steps(gates, cs, tanh_cs, dhs, Wh, dA, dh, grads[2], lanes, masks)
    return _input_and_weight_grads(inputs, dA, Wx, grads, joined, lanes, masks), dh


def rnn_forward(xs, params, state, empty, workspace, lanes, masks=None):
    """As lstm_forward, for the RNN from state = (h0,): h_t+1 = tanh(x_t Wx + h_t Wh + b)."""
    Wx, Wh, b = params
    hs, inputs, pre, out, masks = _sequence(xs, Wx, Wh, state[0], masks, empty, lanes)
    step_state = (pre, hs, out, inputs[:, :, xs.shape[2]:], b, masks.hm, masks.h)
    forward(RNN, (masks.hm,), step_state, Wh, lanes, workspace.empty, masks, zero_start=state[0] is None)
    return out, (hs[len(pre)],), (inputs, hs, masks)


def rnn_backward(saved, dhs, params, grads, joined, lanes):
    """As lstm_backward, for the RNN."""
    inputs, hs, masks = saved
    Wx, Wh, b = params
    dA = np.empty(inputs.shape[:2] + Wh.shape[:1], dtype=Wh.dtype)
    dh = np.empty(hs.shape[1:], dtype=Wh.dtype)
    grads[2][...] = 0  # each step's rows of dA are added to it
    backward(RNN, (dA,), (hs, dhs, dA, grads[2], masks.h), Wh, dh, lanes, masks)
    return _input_and_weight_grads(inputs, dA, Wx, grads, joined, lanes, masks), dh


def gru_forward(xs, params, state, empty, workspace, lanes, masks=None):
    """As lstm_forward, for the book's GRU (kernels/gru.py) from state = (h0,)."""
    Wx, Wh = params
    hs, inputs, gates, out, masks = _sequence(xs, Wx, Wh, state[0], masks, empty, lanes)
    rhs = empty("rhs", hs[1:].shape, Wh.dtype)  # r * h_t, the operand of each step's second product
    step_state = (gates, hs, rhs, out, inputs[:, :, xs.shape[2]:], masks.hm, masks.h)
    forward(GRU, (masks.hm, rhs), step_state, Wh, lanes, workspace.empty, masks, zero_start=state[0] is None)
    return out, (hs[len(gates)],), (inputs, hs, rhs, gates, masks)


def gru_backward(saved, dhs, params, grads, joined, lanes):
    """As lstm_backward, for the book's GRU. Its h~ block of dWh takes r * h_t where the
    others take h_t, so its weight gradients are three products, not one."""
    inputs, hs, rhs, gates, masks = saved
    Wx, Wh = params
    T, N, G = gates.shape
    D, H = Wx.shape[0], Wh.shape[0]
    dA = np.empty_like(gates)
    dh = np.empty((N, H), dtype=Wh.dtype)
    dh_direct = np.zeros((N, H), dtype=Wh.dtype)
    step_state = (gates, hs, dhs, dA, dh_direct, masks.h)
    backward(GRU, (dA[:, :, 2 * H:], dA[:, :, :2 * H]), step_state, Wh, dh, lanes, masks)
    dh += dh_direct
    dA2, inputs2 = dA.reshape(T * N, G), inputs.reshape(T * N, D + H)
    dWx, dWh = grads
    dxs = np.empty((T * N, D), dtype=Wh.dtype)
    dots(tn_product(inputs2[:, :D], dA2, dWx), (inputs2[:, D:].T, dA2[:, :2 * H], dWh[:, :2 * H]),
         (rhs.reshape(T * N, H).T, dA2[:, 2 * H:], dWh[:, 2 * H:]), (dA2, Wx.T, dxs), lanes=lanes)
    _drop_weight_gradient(dWh, masks)
    return _batch_major(dxs, T, N), dh


def _input_and_weight_grads(inputs, dA, Wx, grads, joined, lanes, masks):
    """dxs (N, T, D) = dA @ Wx.T from dA (T, N, G), beside [dWx; dWh] = [x_t, h_t].T @ dA in
    one product into `joined`, whose blocks a gradient array put in their place receives;
    dWh through the weight mask of `masks`."""
    T, N, G = dA.shape
    D = Wx.shape[0]
    dA2 = dA.reshape(T * N, G)
    dxs = np.empty((T * N, D), dtype=dA.dtype)
    dots(tn_product(inputs.reshape(T * N, inputs.shape[2]), dA2, joined), (dA2, Wx.T, dxs), lanes=lanes)
    _drop_weight_gradient(joined[D:], masks)
    for grad, block in zip(grads[:2], (joined[:D], joined[D:])):
        if grad.base is not joined:  # a gradient array put in its place
            grad[...] = block
    return _batch_major(dxs, T, N)


def _drop_weight_gradient(dWh, masks):
    """dWh *= the weight mask where weight drop is on: the gradient of Wh from that of
    Wh * mask, zero where dropped (a gradient array put in dWh's place may have any layout)."""
    if masks.weight is None:
        return
    if dWh.flags.c_contiguous:
        loop(multiply_into, dWh.size)(dWh.reshape(-1), masks.weight.reshape(-1))
    else:
        np.multiply(dWh, masks.weight, out=dWh)


def _batch_major(a2, T, N):
    """A copy (N, T, W) of the time-major rows a2 (T * N, W)."""
    return a2.reshape(T, N, a2.shape[1]).transpose(1, 0, 2).copy()


def time_copy(src, dst, reverse=False, add=False):
    """dst[:, t] = src[:, T - 1 - t] where `reverse`, else src[:, t]; added to dst where `add`.
    src, dst (N, T, W), any strides (a bidirectional layer's halves)."""
    src = src[:, ::-1] if reverse else src
    if add:
        dst += src
    else:
        np.copyto(dst, src)
