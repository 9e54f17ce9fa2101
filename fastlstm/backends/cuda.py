"""The CUDA backend: the layers' array work on numba.cuda device arrays, with the CUDA kernels
(kernels/*_cuda.py), and the same numbers as the CPU backend (fastlstm/backends/cpu.py),
whose functions (`__all__`) it mirrors.

numba.cuda and the kernels are imported on first use: importing this module needs no
numba-cuda. Weights passed as NumPy arrays are copied to the GPU once (`prepare_weights`): a
host array given to several layers, or given to one and transposed into another (the book's
weight tying, `TimeAffine(embed_W.T, b)`), maps to one device array, so tied weights stay
tied. Inputs may be host or device arrays; outputs and gradients are device arrays, losses
NumPy floats. Token ids and targets are checked on the host and then copied over (Numba
does not check bounds).
"""

import functools
import weakref
from types import SimpleNamespace

import numpy as np

from fastlstm import gpu
from fastlstm.checks import as_floats

__all__ = ["alloc", "fresh", "zeros_like", "prepare_weights", "floats", "copy", "affine_forward",
           "affine_backward", "gather_rows", "scatter_add_rows", "cross_entropy", "cross_entropy_gradient",
           "dropout_apply", "dropout_gradient", "draw_mask", "locked_dropout", "activation_penalty",
           "temporal_penalty", "add_activation_gradient", "add_temporal_gradient", "recurrent_grads", "lstm_forward",
           "lstm_backward", "rnn_forward", "rnn_backward", "gru_forward", "gru_backward", "time_copy"]


@functools.cache
def _k():
    """numba.cuda and the CUDA kernel modules, imported on first use (numba-cuda is optional)."""
    from numba import cuda

    from fastlstm.kernels import (dropout_cuda, embedding_cuda, gru_cuda, linalg_cuda, lstm_cuda, optim_cuda,
                                  regularisers_cuda, rnn_cuda, softmax_cuda)

    return SimpleNamespace(cuda=cuda, linalg=linalg_cuda, lstm=lstm_cuda, rnn=rnn_cuda, gru=gru_cuda,
                           softmax=softmax_cuda, embedding=embedding_cuda, dropout=dropout_cuda, optim=optim_cuda,
                           regularisers=regularisers_cuda)


def alloc(shape, dtype):
    """A new device array."""
    return _k().cuda.device_array(shape, dtype=dtype)


def fresh(name, shape, dtype):
    """A new device array on every call: the training path."""
    return alloc(shape, dtype)


def _zeros(shape, dtype):
    a = alloc(shape, dtype)
    if a.size:
        _k().linalg.zero(a.reshape(1, a.size))
    return a


def zeros_like(w):
    """Device zeros of w's shape, dtype and memory order (F for a transposed view), as np.zeros_like."""
    if w.ndim == 2 and not w.is_c_contiguous() and w.is_f_contiguous():
        return _k().linalg.transpose_view(_zeros(w.shape[::-1], w.dtype))
    return _zeros(w.shape, w.dtype)


def _numba_array(x):
    """A device array as a numba.cuda one (a view of a CuPy array's memory, say); else x."""
    if gpu.is_device_array(x) and not hasattr(x, "copy_to_host"):
        return _k().cuda.as_cuda_array(x)
    return x


def floats(x, ndim, dtype, name):
    """x as a C-contiguous device array of dtype, checked by checks.as_floats; a host array is copied over."""
    return gpu.to_device(as_floats(_numba_array(x), ndim, dtype, name, device=True))


def copy(src, dst):
    dst.copy_to_device(src)


def _upload(empty, name, a):
    """The host array a copied into the device array that empty(name, ...) gives."""
    d = empty(name, a.shape, a.dtype)
    d.copy_to_device(a)
    return d


# (address, shape, strides, dtype) of a host weight -> (weak reference to the memory's owner, device copy)
_device_copies = {}


def _on_device(w):
    """Weight w as a numba device array. A host array is copied once: the same host memory,
    also seen through a transposed view (weight tying), always maps to the same device memory."""
    if gpu.is_device_array(w):
        return _numba_array(w)
    transposed = w.ndim == 2 and not w.flags.c_contiguous and w.flags.f_contiguous
    base = w.T if transposed else w
    key = (base.__array_interface__["data"][0], base.shape, base.strides, base.dtype.str)
    owner, copied = _device_copies.get(key, (None, None))
    if owner is None or owner() is None:
        copied = gpu.to_device(base)
        try:  # forgotten when the host memory is freed (its address may then be reused)
            owner = weakref.ref(w if w.base is None else w.base, lambda _: _device_copies.pop(key, None))
            _device_copies[key] = (owner, copied)
        except TypeError:  # memory owned by an object without weak references: not shared
            pass
    return _k().linalg.transpose_view(copied) if transposed else copied


def prepare_weights(*weights):
    """The weights a layer holds in `params`: device arrays as they are, host arrays copied over once."""
    return [_on_device(w) for w in weights]


def affine_forward(x2, W, b, out2):
    linalg = _k().linalg
    linalg.matmul(x2, W, out2)
    linalg.add_bias(out2, b)


def affine_backward(x2, dout2, W, dW, db, dx2):
    linalg = _k().linalg
    linalg.matmul_tn_into(x2, dout2, dW)
    linalg.column_sums(dout2, db)
    linalg.matmul(dout2, linalg.transpose_view(W), dx2)


def gather_rows(W, ids, out, empty, scale=None):
    M, D = ids.size, W.shape[1]
    d_ids = _upload(empty, "ids", ids)
    if scale is None:
        _k().embedding.embedding_forward(W, d_ids.reshape(M), out.reshape(M, D))
    else:
        _k().embedding.embedding_forward_scaled(W, d_ids.reshape(M), scale, out.reshape(M, D))
    return d_ids


def scatter_add_rows(ids, dout, dW, scale=None):
    M, D = ids.size, dW.shape[1]
    _k().embedding.embedding_backward(ids.reshape(M), dout.reshape(M, D), dW)
    if scale is not None:
        _k().embedding.scale_rows(dW, scale)


def cross_entropy(x2, ts, count, empty, with_gradient):
    M = x2.shape[0]
    d_ts = _upload(empty, "ts", ts)
    row_lse = empty("row_lse", (M,), x2.dtype)
    row_loss = empty("row_loss", (M,), np.float64)
    _k().softmax.softmax_cross_entropy_forward(x2, d_ts, row_lse, row_loss)
    saved = (x2, d_ts, row_lse)
    dx = cross_entropy_gradient(saved, 1, count) if with_gradient else None
    return row_loss.copy_to_host().sum() / count, saved, dx


def cross_entropy_gradient(saved, dout, count):
    x2, ts, row_lse = saved
    dx = alloc(x2.shape, x2.dtype)
    _k().softmax.softmax_cross_entropy_backward(x2, ts, row_lse, x2.dtype.type(dout / count), dx)
    return dx


def dropout_apply(x, seed, ratio, scale):
    K = x.size
    mask = alloc(x.shape, x.dtype)
    out = alloc(x.shape, x.dtype)
    _k().dropout.dropout_forward(x.reshape(K), seed, ratio, scale, mask.reshape(K), out.reshape(K))
    return out, mask


def dropout_gradient(dout, mask):
    K = dout.size
    dx = alloc(dout.shape, dout.dtype)
    _k().dropout.dropout_backward(dout.reshape(K), mask.reshape(K), dx.reshape(K))
    return dx


def draw_mask(shape, dtype, seed, ratio, scale):
    mask = alloc(shape, dtype)
    _k().dropout.dropout_mask(seed, ratio, scale, mask.reshape(mask.size))
    return mask


def locked_dropout(x, mask):
    N, T, D = x.shape
    out = alloc(x.shape, x.dtype)
    _k().dropout.locked_apply(x, mask.reshape(N, D), out)
    return out


def activation_penalty(h):
    return _k().optim.sum_squares(h.reshape(h.size))


def temporal_penalty(h):
    return _k().regularisers.temporal_sum_squares(h)


def add_activation_gradient(dh, h, coef):
    _k().regularisers.add_scaled(dh.reshape(dh.size), h.reshape(h.size), h.dtype.type(coef))


def add_temporal_gradient(dh, h, coef):
    _k().regularisers.add_temporal_gradient(dh, h, h.dtype.type(coef))


def recurrent_grads(Wx, Wh, *bias):
    """(grads, None): device zeros laid out like each weight; no joined block here."""
    return [zeros_like(w) for w in (Wx, Wh, *bias)], None


def _start(first, state, dtype):
    """first (N, H) = the carried state (a host or device array), or zeros where it is None."""
    if state is None:
        _k().linalg.zero(first)
    elif gpu.is_device_array(state) and state.dtype == dtype:
        first.copy_to_device(_numba_array(state))
    else:
        first.copy_to_device(np.ascontiguousarray(gpu.to_host(state), dtype=dtype))


def _sequence(xs, Wx, Wh, h0, masks, empty):
    """(hs, xs_t, pre, masks): what every cell's forward over xs (N, T, D) starts from,
    time-major as on the CPU: hs (T + 1, N, H), hs[0] the initial state h0 (zeros where
    None), hs[t + 1] the state after step t; xs_t (T, N, D); pre (T, N, G) = xs_t @ Wx in
    one product; masks: the _Masks of the layer's (h_mask or None, weight_mask or None) or None."""
    N, T, D = xs.shape
    H, G = Wh.shape
    dtype = Wh.dtype
    linalg = _k().linalg
    hs = empty("hs", (T + 1, N, H), dtype)
    _start(hs[0], h0, dtype)
    xs_t = empty("xs_t", (T, N, D), dtype)
    linalg.swap_01(xs, xs_t)
    pre = empty("gates", (T, N, G), dtype)
    linalg.matmul(xs_t.reshape(T * N, D), Wx, pre.reshape(T * N, G))
    return hs, xs_t, pre, _Masks(masks, hs, Wh, empty)


class _Masks(gpu.HostPickled):
    """A call's recurrent dropout and weight drop on the device, applied per step (cuBLAS
    reads no mask): `Wh` is what the products take, Wh or a copy of it times the weight
    mask; `operand(hs, t)` the h step t multiplies, hs[t] or hs[t] times the h mask, kept
    in `hm` (T, N, H) for the weight gradients. Backward multiplies the products' gradients
    of the masked h by the mask (`to_h`) and dWh by the weight mask (`weight_gradient`).
    Saved for backward, it is copied and pickled with its layer, through the host."""

    def __init__(self, masks, hs, Wh, empty):
        self.h, self.weight = masks or (None, None)
        self.Wh = Wh if self.weight is None else alloc(Wh.shape, Wh.dtype)
        if self.weight is not None:
            _k().dropout.multiply(Wh, self.weight, self.Wh)
        self.hm = hs if self.h is None else empty("hm", (hs.shape[0] - 1,) + hs.shape[1:], hs.dtype)

    def operand(self, hs, t):
        if self.h is not None:
            _k().dropout.multiply(hs[t], self.h, self.hm[t])
        return self.hm[t]

    def to_h(self, dh):
        """dh (N, H) *= the h mask, in place: the gradient of the masked h made that of h."""
        if self.h is not None:
            _k().dropout.multiply(dh, self.h, dh)

    def weight_gradient(self, dWh):
        """dWh *= the weight mask, in place: the gradient of Wh * mask made that of Wh."""
        if self.weight is not None:
            _k().dropout.multiply(dWh, self.weight, dWh)


def _batch_major(a, empty=fresh):
    """The (N, T, W) copy of the time-major a (T, N, W)."""
    T, N, W = a.shape
    out = empty("out", (N, T, W), a.dtype)
    _k().linalg.swap_01(a, out)
    return out


def _time_major(a):
    """The (T, N, W) copy of the batch-major a (N, T, W)."""
    N, T, W = a.shape
    out = alloc((T, N, W), a.dtype)
    _k().linalg.swap_01(a, out)
    return out


def _input_grads(dA, Wx):
    """dxs (N, T, D) = dA @ Wx.T from dA (T, N, G)."""
    T, N, G = dA.shape
    dxs_t = alloc((T, N, Wx.shape[0]), dA.dtype)
    linalg = _k().linalg
    linalg.matmul(dA.reshape(T * N, G), linalg.transpose_view(Wx), dxs_t.reshape(T * N, Wx.shape[0]))
    return _batch_major(dxs_t)


def _input_and_weight_grads(xs_t, masks, dA, params, grads):
    """dxs (N, T, D) from dA (T, N, G), and grads = x.T @ dA, h.T @ dA (the h each step
    multiplied, through the weight mask) and dA's column sums."""
    T, N, G = dA.shape
    dA2 = dA.reshape(T * N, G)
    linalg = _k().linalg
    linalg.matmul_tn_into(xs_t.reshape(T * N, xs_t.shape[2]), dA2, grads[0])
    linalg.matmul_tn_into(masks.hm[:T].reshape(T * N, masks.hm.shape[2]), dA2, grads[1])
    masks.weight_gradient(grads[1])
    linalg.column_sums(dA2, grads[2])
    return _input_grads(dA, params[0])


def lstm_forward(xs, params, state, empty, workspace, lanes, masks=None):
    """As the CPU's (`lanes` serve the CPU alone): one product for the inputs of all steps,
    then per step one product with Wh and the step kernel."""
    Wx, Wh, b = params
    h0, c0 = state
    hs, xs_t, gates, masks = _sequence(xs, Wx, Wh, h0, masks, empty)
    T, N, H = gates.shape[0], xs.shape[0], Wh.shape[0]
    dtype = Wh.dtype
    k = _k()
    cs = empty("cs", (T + 1, N, H), dtype)
    _start(cs[0], c0, dtype)
    tanh_cs = empty("tanh_cs", (T, N, H), dtype)
    hA = empty("hA", (N, 4 * H), dtype)
    for t in range(T):
        k.linalg.matmul(masks.operand(hs, t), masks.Wh, hA)
        k.lstm.lstm_step_forward(gates[t], hA, b, cs[t], cs[t + 1], tanh_cs[t], hs[t + 1])
    return _batch_major(hs[1:], empty), (hs[T], cs[T]), (xs_t, cs, tanh_cs, gates, masks)


def lstm_backward(saved, dhs, params, grads, joined, lanes):
    xs_t, cs, tanh_cs, gates, masks = saved
    T, N, H = gates.shape[0], cs.shape[1], cs.shape[2]
    k = _k()
    dhs_t = _time_major(dhs)
    dA = alloc(gates.shape, gates.dtype)
    dh = _zeros((N, H), gates.dtype)
    dc = _zeros((N, H), gates.dtype)
    WhT = k.linalg.transpose_view(masks.Wh)
    for t in range(T - 1, -1, -1):
        k.lstm.lstm_step_backward(gates[t], cs[t], tanh_cs[t], dhs_t[t], dh, dc, dA[t])
        k.linalg.matmul(dA[t], WhT, dh)
        masks.to_h(dh)
    return _input_and_weight_grads(xs_t, masks, dA, params, grads), dh


def rnn_forward(xs, params, state, empty, workspace, lanes, masks=None):
    Wx, Wh, b = params
    hs, xs_t, pre, masks = _sequence(xs, Wx, Wh, state[0], masks, empty)
    k = _k()
    hA = empty("hA", hs.shape[1:], Wh.dtype)
    for t in range(pre.shape[0]):
        k.linalg.matmul(masks.operand(hs, t), masks.Wh, hA)
        k.rnn.rnn_step_forward(pre[t], hA, b, hs[t + 1])
    return _batch_major(hs[1:], empty), (hs[pre.shape[0]],), (xs_t, hs, masks)


def rnn_backward(saved, dhs, params, grads, joined, lanes):
    xs_t, hs, masks = saved
    k = _k()
    dhs_t = _time_major(dhs)
    dA = alloc(dhs_t.shape, dhs_t.dtype)
    dh = _zeros(hs.shape[1:], dhs_t.dtype)
    WhT = k.linalg.transpose_view(masks.Wh)
    for t in range(dA.shape[0] - 1, -1, -1):
        k.rnn.rnn_step_backward(hs[t + 1], dhs_t[t], dh, dA[t])
        k.linalg.matmul(dA[t], WhT, dh)
        masks.to_h(dh)
    return _input_and_weight_grads(xs_t, masks, dA, params, grads), dh


def gru_forward(xs, params, state, empty, workspace, lanes, masks=None):
    """As the CPU's: per step, the product with Wh's z and r columns, the gates' kernel, the
    product of r * h with its h~ columns, the hidden state's kernel; with recurrent
    dropout both products read the masked h, (1 - z) * h_prev the unmasked."""
    Wx, Wh = params
    hs, xs_t, gates, masks = _sequence(xs, Wx, Wh, state[0], masks, empty)
    T, (N, H) = gates.shape[0], hs.shape[1:]
    k = _k()
    rhs = empty("rhs", (T, N, H), Wh.dtype)
    hA_zr, hA_h = empty("hA", (N, 2 * H), Wh.dtype), empty("hA_h", (N, H), Wh.dtype)
    Wh_zr, Wh_h = masks.Wh[:, :2 * H], masks.Wh[:, 2 * H:]
    for t in range(T):
        h = masks.operand(hs, t)
        k.linalg.matmul(h, Wh_zr, hA_zr)
        k.gru.gru_step_gates(gates[t], hA_zr, h, rhs[t])
        k.linalg.matmul(rhs[t], Wh_h, hA_h)
        k.gru.gru_step_hidden(gates[t], hA_h, hs[t], hs[t + 1])
    return _batch_major(hs[1:], empty), (hs[T],), (xs_t, hs, rhs, gates, masks)


def gru_backward(saved, dhs, params, grads, joined, lanes):
    xs_t, hs, rhs, gates, masks = saved
    Wx = params[0]
    T, N, G = gates.shape
    H = G // 3
    k = _k()
    linalg = k.linalg
    dhs_t = _time_major(dhs)
    dA = alloc(gates.shape, gates.dtype)
    dh, dh_direct, drh = _zeros((N, H), gates.dtype), _zeros((N, H), gates.dtype), alloc((N, H), gates.dtype)
    Wh_zrT, Wh_hT = linalg.transpose_view(masks.Wh[:, :2 * H]), linalg.transpose_view(masks.Wh[:, 2 * H:])
    for t in range(T - 1, -1, -1):
        k.gru.gru_step_backward_hidden(gates[t], hs[t], dhs_t[t], dh, dh_direct, dA[t])
        linalg.matmul(dA[t][:, 2 * H:], Wh_hT, drh)
        masks.to_h(drh)
        k.gru.gru_step_backward_gates(gates[t], hs[t], drh, dh_direct, dA[t])
        linalg.matmul(dA[t][:, :2 * H], Wh_zrT, dh)
        masks.to_h(dh)
    linalg.time_copy(dh_direct.reshape(1, N, H), dh.reshape(1, N, H), add=True)  # dh += dh_direct
    dA2 = dA.reshape(T * N, G)
    dWx, dWh = grads
    linalg.matmul_tn_into(xs_t.reshape(T * N, xs_t.shape[2]), dA2, dWx)
    linalg.matmul_tn_into(masks.hm[:T].reshape(T * N, H), dA2[:, :2 * H], dWh[:, :2 * H])
    linalg.matmul_tn_into(rhs.reshape(T * N, H), dA2[:, 2 * H:], dWh[:, 2 * H:])
    masks.weight_gradient(dWh)
    return _input_grads(dA, Wx), dh


def time_copy(src, dst, reverse=False, add=False):
    _k().linalg.time_copy(src, dst, reverse, add)
