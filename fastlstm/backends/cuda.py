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
           "dropout_apply", "dropout_gradient", "lstm_grads", "lstm_forward", "lstm_backward"]


@functools.cache
def _k():
    """numba.cuda and the CUDA kernel modules, imported on first use (numba-cuda is optional)."""
    from numba import cuda

    from fastlstm.kernels import dropout_cuda, embedding_cuda, linalg_cuda, lstm_cuda, softmax_cuda

    return SimpleNamespace(cuda=cuda, linalg=linalg_cuda, lstm=lstm_cuda, softmax=softmax_cuda,
                           embedding=embedding_cuda, dropout=dropout_cuda)


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


def gather_rows(W, ids, out, empty):
    M, D = ids.size, W.shape[1]
    d_ids = _upload(empty, "ids", ids)
    _k().embedding.embedding_forward(W, d_ids.reshape(M), out.reshape(M, D))
    return d_ids


def scatter_add_rows(ids, dout, dW):
    M, D = ids.size, dW.shape[1]
    _k().embedding.embedding_backward(ids.reshape(M), dout.reshape(M, D), dW)


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


def lstm_grads(Wx, Wh, b):
    """(grads, None): device zeros laid out like each weight; no joined block here."""
    return [zeros_like(w) for w in (Wx, Wh, b)], None


def _start(first, state, dtype):
    """first (N, H) = the carried state (a host or device array), or zeros where it is None."""
    if state is None:
        _k().linalg.zero(first)
    elif gpu.is_device_array(state) and state.dtype == dtype:
        first.copy_to_device(_numba_array(state))
    else:
        first.copy_to_device(np.ascontiguousarray(gpu.to_host(state), dtype=dtype))


def lstm_forward(xs, params, h0, c0, empty, workspace, lanes):
    """As the CPU's (`lanes` serve the CPU alone): one product for the inputs of all steps,
    then per step one product with Wh and the step kernel."""
    Wx, Wh, b = params
    N, T, D = xs.shape
    H = Wh.shape[0]
    dtype = Wh.dtype
    k = _k()
    linalg = k.linalg
    # Time-major, as on the CPU: hs[0], cs[0] the initial state, hs[t + 1], cs[t + 1] after step t.
    hs = empty("hs", (T + 1, N, H), dtype)
    cs = empty("cs", (T + 1, N, H), dtype)
    _start(hs[0], h0, dtype)
    _start(cs[0], c0, dtype)
    xs_t = empty("xs_t", (T, N, D), dtype)
    linalg.swap_01(xs, xs_t)
    gates = empty("gates", (T, N, 4 * H), dtype)
    linalg.matmul(xs_t.reshape(T * N, D), Wx, gates.reshape(T * N, 4 * H))
    tanh_cs = empty("tanh_cs", (T, N, H), dtype)
    hA = empty("hA", (N, 4 * H), dtype)
    for t in range(T):
        linalg.matmul(hs[t], Wh, hA)
        k.lstm.lstm_step_forward(gates[t], hA, b, cs[t], cs[t + 1], tanh_cs[t], hs[t + 1])
    out = empty("out", (N, T, H), dtype)
    linalg.swap_01(hs[1:], out)
    return out, hs[T], cs[T], (xs_t, hs, cs, tanh_cs, gates)


def lstm_backward(saved, dhs, params, grads, joined, lanes):
    xs_t, hs, cs, tanh_cs, gates = saved
    Wx, Wh, b = params
    T, N, D = xs_t.shape
    H = Wh.shape[0]
    dtype = hs.dtype
    k = _k()
    linalg = k.linalg
    dhs_t = alloc((T, N, H), dtype)
    linalg.swap_01(dhs, dhs_t)
    dA = alloc((T, N, 4 * H), dtype)
    dh = _zeros((N, H), dtype)
    dc = _zeros((N, H), dtype)
    WhT = linalg.transpose_view(Wh)
    for t in range(T - 1, -1, -1):
        k.lstm.lstm_step_backward(gates[t], cs[t], tanh_cs[t], dhs_t[t], dh, dc, dA[t])
        linalg.matmul(dA[t], WhT, dh)
    dA2 = dA.reshape(T * N, 4 * H)
    linalg.matmul_tn_into(xs_t.reshape(T * N, D), dA2, grads[0])
    linalg.matmul_tn_into(hs[:T].reshape(T * N, H), dA2, grads[1])
    linalg.column_sums(dA2, grads[2])
    dxs_t = alloc((T, N, D), dtype)
    linalg.matmul(dA2, linalg.transpose_view(Wx), dxs_t.reshape(T * N, D))
    dxs = alloc((N, T, D), dtype)
    linalg.swap_01(dxs_t, dxs)
    return dxs, dh
