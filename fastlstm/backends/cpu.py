"""The CPU backend: the layers' array work on NumPy arrays, with the CPU kernels, the lanes'
products (fastlstm.blas) and the LSTM's recurrence (fastlstm.recurrence).

The layers check their inputs and call these for the rest; fastlstm/backends/cuda.py
defines the same functions (`__all__`) on device arrays. Dimension letters as in kernels/:
N batch, T time steps, D input width, H hidden width, V vocabulary, M rows.
"""

import numba
import numpy as np

from fastlstm.blas import dot, dots, tn_product
from fastlstm.checks import as_floats
from fastlstm.kernels.dropout import dropout_backward, dropout_forward, dropout_mask, locked_apply, multiply_into
from fastlstm.kernels.embedding import embedding_backward, embedding_forward, embedding_forward_scaled, scale_rows
from fastlstm.kernels.linalg import column_sums
from fastlstm.kernels.optim import sum_squares
from fastlstm.kernels import regularisers
from fastlstm.kernels.softmax import softmax_cross_entropy_forward, softmax_cross_entropy_forward_backward
from fastlstm.recurrence import RecurrentMasks, backward_steps, forward_steps
from fastlstm.workspace import fresh

__all__ = ["alloc", "fresh", "zeros_like", "prepare_weights", "floats", "copy", "affine_forward",
           "affine_backward", "gather_rows", "scatter_add_rows", "cross_entropy", "cross_entropy_gradient",
           "dropout_apply", "dropout_gradient", "draw_mask", "locked_dropout", "activation_penalty",
           "temporal_penalty", "add_activation_gradient", "add_temporal_gradient", "lstm_grads", "lstm_forward",
           "lstm_backward"]

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
    """out2 (M, V) = x2 (M, D) @ W + b."""
    dot(x2, W, out=out2, bias=b)


def affine_backward(x2, dout2, W, dW, db, dx2):
    """dW = x2.T @ dout2, db = the column sums of dout2, dx2 = dout2 @ W.T."""
    dots(tn_product(x2, dout2, dW), (dout2, W.T, dx2))
    column_sums(dout2, db)


def gather_rows(W, ids, out, empty, scale=None):
    """out (..., D) = the rows of W picked by the checked host ids, each times scale[id]
    when a scale (V,) is given; returns the ids as backward reads them."""
    if scale is None:
        embedding_forward(W, ids.reshape(-1), out.reshape(-1, W.shape[1]))
    else:
        embedding_forward_scaled(W, ids.reshape(-1), scale, out.reshape(-1, W.shape[1]))
    return ids


def scatter_add_rows(ids, dout, dW, scale=None):
    """dW = 0, then dW[ids[m]] += dout[m] for every position m; with a scale (V,), the rows
    reached are then multiplied by theirs (the gradient of W * scale[:, None])."""
    embedding_backward(ids.reshape(-1), dout.reshape(-1, dW.shape[1]), dW)
    if scale is not None:
        scale_rows(dW, np.unique(ids), scale)


def cross_entropy(x2, ts, count, empty, with_gradient):
    """(mean loss over the `count` targets that are not ignored, what cross_entropy_gradient
    needs, the gradient for dout = 1 when `with_gradient` else None) of scores x2 (M, V) and
    checked host targets ts (M,). With the gradient, one pass over the scores makes both."""
    row_loss = empty("row_loss", (x2.shape[0],), np.float64)
    dx = None
    if with_gradient:
        dx = np.empty_like(x2)
        softmax_cross_entropy_forward_backward(x2, ts, row_loss, x2.dtype.type(1 / count), dx)
    else:
        tasks = max(1, min(x2.shape[0], numba.get_num_threads()))
        softmax_cross_entropy_forward(x2, ts, row_loss, empty("exps", (tasks, x2.shape[1]), x2.dtype))
    return row_loss.sum() / count, (x2, ts), dx


def cross_entropy_gradient(saved, dout, count):
    """The gradient (M, V) of dout times the mean loss that cross_entropy saved for."""
    x2, ts = saved
    dx = np.empty_like(x2)
    softmax_cross_entropy_forward_backward(x2, ts, np.empty(x2.shape[0]), x2.dtype.type(dout / count), dx)
    return dx


def dropout_apply(x, seed, ratio, scale):
    """(x * mask, mask) with a fresh mask from `seed` whose kept entries hold `scale`."""
    mask = np.empty_like(x)
    out = np.empty_like(x)
    dropout_forward(x.reshape(-1), seed, ratio, scale, mask.reshape(-1), out.reshape(-1))
    return out, mask


def dropout_gradient(dout, mask):
    dx = np.empty_like(mask)
    dropout_backward(dout.reshape(-1), mask.reshape(-1), dx.reshape(-1))
    return dx


def draw_mask(shape, dtype, seed, ratio, scale):
    """A fresh mask of shape and dtype from `seed`: 0 or `scale`, drawn as dropout_apply draws."""
    mask = np.empty(shape, dtype)
    dropout_mask(seed, ratio, scale, mask.reshape(-1))
    return mask


def locked_dropout(x, mask):
    """x (N, T, D) times mask (N, 1, D): one mask per sequence for all its steps (also the
    gradient, with dout for x)."""
    out = np.empty_like(x)
    locked_apply(x, mask.reshape(mask.shape[0], mask.shape[2]), out)
    return out


def activation_penalty(h):
    """The sum of h**2 over all elements, in float64 (AR)."""
    return sum_squares(h.reshape(-1))


def temporal_penalty(h):
    """The sum of (h[:, t] - h[:, t - 1])**2 over t >= 1 and the rest, in float64 (TAR). h (N, T, H)."""
    return regularisers.temporal_sum_squares(h)


def add_activation_gradient(dh, h, coef):
    """dh += coef * h in place."""
    regularisers.add_scaled(dh.reshape(-1), h.reshape(-1), h.dtype.type(coef))


def add_temporal_gradient(dh, h, coef):
    """dh += coef * (h_t - h_{t-1}) at t, and minus that at t - 1, in place. dh, h (N, T, H)."""
    regularisers.add_temporal_gradient(dh, h, h.dtype.type(coef))


def lstm_grads(Wx, Wh, b):
    """(grads, joined): zeros for dWx, dWh and db, where dWx and dWh are the two row blocks of
    `joined` (D + H, 4H), which one product fills (lstm_backward)."""
    joined = np.zeros((Wx.shape[0] + Wh.shape[0], Wh.shape[1]), dtype=Wh.dtype)
    return [joined[:Wx.shape[0]], joined[Wx.shape[0]:], np.zeros_like(b)], joined


def lstm_forward(xs, params, h0, c0, empty, workspace, lanes, masks=None):
    """(out (N, T, H), last h, last c, saved for lstm_backward) of the LSTM over xs (N, T, D)
    from the state h0, c0 (N, H), or zeros where None. `empty` makes the arrays (fresh ones,
    or a workspace's), `workspace` holds the lanes' scratch, `lanes` (fastlstm.lanes.Lanes)
    run the products and the recurrence. `masks` (h_mask (N, H) or None, weight_mask like
    Wh or None), when given: recurrent dropout on every step's h_{t-1} and weight drop on Wh."""
    Wx, Wh, b = params
    N, T, D = xs.shape
    H = Wh.shape[0]
    dtype = Wh.dtype
    # Time-major arrays: every step's slice is C-contiguous, as BLAS and the kernels want.
    # hs[0] and cs[0] hold the initial state, hs[t + 1] and cs[t + 1] the state after step t.
    hs = empty("hs", (T + 1, N, H), dtype)
    cs = empty("cs", (T + 1, N, H), dtype)
    hs[0] = 0 if h0 is None else h0
    cs[0] = 0 if c0 is None else c0
    # Each step's input x_t and the h it multiplies side by side: [x_t, h_t] (T, N, D + H)
    # is the left operand of the weight gradients' one product.
    inputs = empty("inputs", (T, N, D + H), dtype)
    xs_t, hs_inputs = inputs[:, :, :D], inputs[:, :, D:]
    np.copyto(xs_t, xs.transpose(1, 0, 2))
    recurrent = None if masks is None else _recurrent_masks(masks, hs, empty)
    hs_inputs[0] = hs[0] if recurrent is None else recurrent.hm[0]
    gates = empty("gates", (T, N, 4 * H), dtype)
    dot(xs_t.reshape(T * N, D), Wx, out=gates.reshape(T * N, 4 * H), lanes=lanes)
    tanh_cs = empty("tanh_cs", (T, N, H), dtype)
    out = empty("out", (N, T, H), dtype)
    forward_steps(gates, hs, cs, tanh_cs, out, hs_inputs, Wh, b, lanes, workspace.empty, recurrent)
    return out, hs[T], cs[T], (inputs, cs, tanh_cs, gates, recurrent)


def _recurrent_masks(masks, hs, empty):
    """The RecurrentMasks of a call from (h_mask or None, weight_mask or None): the masked
    operand hm (T + 1, N, H) with hm[0] = hs[0] * h_mask, or hs itself without an h_mask."""
    h_mask, weight_mask = masks
    if h_mask is None:
        return RecurrentMasks(np.zeros((0, 0), hs.dtype), weight_mask, hs)
    hm = empty("hm", hs.shape, hs.dtype)
    np.multiply(hs[0], h_mask, out=hm[0])
    return RecurrentMasks(h_mask, weight_mask, hm)


def lstm_backward(saved, dhs, params, grads, joined, lanes):
    """(dxs (N, T, D), dh (N, H)) from the outputs' gradients dhs (N, T, H) on `lanes`; fills
    grads, whose dWx and dWh are `joined`'s row blocks unless arrays were put in their place.
    Through the masks forward drew: dWh is the gradient of Wh * weight_mask times the mask."""
    inputs, cs, tanh_cs, gates, masks = saved
    Wx, Wh, b = params
    T, N, D = inputs.shape[0], inputs.shape[1], Wx.shape[0]
    H = Wh.shape[0]
    dA = np.empty_like(gates)
    dh = np.empty((N, H), dtype=gates.dtype)
    backward_steps(gates, cs, tanh_cs, np.ascontiguousarray(dhs), Wh, dA, dh, grads[2], lanes, masks)
    dA2 = dA.reshape(T * N, 4 * H)
    dxs = np.empty((T * N, D), dtype=gates.dtype)
    # [dWx; dWh] = [x_t, h_t].T @ dA in one product, beside dxs
    dots(tn_product(inputs.reshape(T * N, D + H), dA2, joined), (dA2, Wx.T, dxs), lanes=lanes)
    if masks is not None and masks.weight is not None:
        multiply_into(joined[D:].reshape(-1), masks.weight.reshape(-1))
    for grad, block in zip(grads[:2], (joined[:D], joined[D:])):
        if grad.base is not joined:  # a gradient array put in its place
            grad[...] = block
    return dxs.reshape(T, N, D).transpose(1, 0, 2).copy(), dh
