"""CUDA twins of the time layers of fastlstm.time_layers, on numba.cuda device arrays.

The CPU classes hand over to these in their `__new__` (see `wants_gpu`): a time layer built
from weights that live on the GPU, or any time layer built while `fastlstm.config.GPU` is
True, is one of these. They keep the CPU classes' API and numbers: `params`, `grads` (which
backward overwrites in place), forward / backward / infer, the stateful `h` and `c`, `dh`,
`ignore_label`, `train_flg`, dropout masks bit-identical to the CPU's for the same
`np.random` seed (one hash, one seed sequence), outputs and gradients in the weights' dtype.

Weights passed as NumPy arrays are copied to the GPU once, and `params` then holds the
device copies (as the book's CuPy mode holds CuPy arrays). A host array given to several
layers, or given to one and transposed into another (the book's weight tying,
`TimeAffine(embed_W.T, b)`), maps to one device array, so tied weights stay tied.

Outputs and gradients are device arrays, losses NumPy floats as on the CPU; inputs may be
host or device arrays. Token ids and targets are checked on the host before they are
copied over (Numba does not check bounds). Dimension letters as in kernels/: N batch,
T time steps, D input width, H hidden width, V vocabulary.
"""

import functools
import weakref
from types import SimpleNamespace

import numpy as np

from fastlstm import config, gpu, time_layers
from fastlstm.checks import as_floats, as_token_ids, check_ndim, check_shape, weights_dtype
from fastlstm.layers import _draw_seed, _require_forward
from fastlstm.time_layers import _as_state, _check_lstm_input, _check_lstm_weights
from fastlstm.workspace import Workspace


def wants_gpu(*arrays):
    """True when a layer built from these arguments runs on the GPU: one of them is a
    device array, or fastlstm.config.GPU is set."""
    return bool(config.GPU) or any(gpu.is_device_array(a) for a in arrays)


@functools.cache
def _k():
    """numba.cuda and the CUDA kernel modules, imported on first use (numba-cuda is optional)."""
    from numba import cuda

    from fastlstm.kernels import dropout_cuda, embedding_cuda, linalg_cuda, lstm_cuda, softmax_cuda

    return SimpleNamespace(cuda=cuda, linalg=linalg_cuda, lstm=lstm_cuda, softmax=softmax_cuda,
                           embedding=embedding_cuda, dropout=dropout_cuda)


def _device_empty(shape, dtype):
    return _k().cuda.device_array(shape, dtype=dtype)


def _fresh(name, shape, dtype):
    """A new device array on every call: the training path (workspace.fresh on the GPU)."""
    return _device_empty(shape, dtype)


def _zeros(shape, dtype):
    a = _device_empty(shape, dtype)
    if a.size:
        _k().linalg.zero(a.reshape(1, a.size))
    return a


def _zeros_like(w):
    """Device zeros of w's shape, dtype and memory order (F for a transposed view), as np.zeros_like."""
    if w.ndim == 2 and not w.is_c_contiguous() and w.is_f_contiguous():
        return _k().linalg.transpose_view(_zeros(w.shape[::-1], w.dtype))
    return _zeros(w.shape, w.dtype)


def _numba_array(x):
    """A device array as a numba.cuda one (a view of a CuPy array's memory, say); else x."""
    if gpu.is_device_array(x) and not hasattr(x, "copy_to_host"):
        return _k().cuda.as_cuda_array(x)
    return x


def _floats(x, ndim, dtype, name):
    """x as a C-contiguous device array of dtype, checked by checks.as_floats; a host array is copied over."""
    return gpu.to_device(as_floats(_numba_array(x), ndim, dtype, name, device=True))


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
    owner, copy = _device_copies.get(key, (None, None))
    if owner is None or owner() is None:
        copy = gpu.to_device(base)
        try:  # forgotten when the host memory is freed (its address may then be reused)
            owner = weakref.ref(w if w.base is None else w.base, lambda _: _device_copies.pop(key, None))
            _device_copies[key] = (owner, copy)
        except TypeError:  # memory owned by an object without weak references: not shared
            pass
    return _k().linalg.transpose_view(copy) if transposed else copy


def _state(s, N, H, dtype, name):
    """A carried-over h or c to copy into the first step: a device array of the batch's (N, H)
    as it is; anything else through the host and time_layers._as_state's check."""
    if gpu.is_device_array(s) and s.shape == (N, H) and s.dtype == dtype:
        return _numba_array(s)
    return _as_state(gpu.to_host(s), N, H, name).astype(dtype, copy=False)


class _OnDevice:
    """Built directly: the CPU classes' constructor hook would hand the call back here."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)


class TimeEmbedding(_OnDevice, time_layers.TimeEmbedding):
    """Embedding of token ids xs (N, T) into (N, T, D); backward scatter-adds into grads[0]."""

    _new_array = staticmethod(_fresh)

    def __init__(self, W):
        gpu.require()
        weights_dtype(W=W)
        check_ndim(W, 2, "W")
        W = _on_device(W)
        self.params = [W]
        self.grads = [_zeros_like(W)]
        self.idx = None
        self._workspace = Workspace(_device_empty)

    def _gather(self, idx, empty):
        W, = self.params
        weights_dtype(W=W)
        ids = as_token_ids(gpu.to_host(idx), W.shape[0], "token ids")
        check_ndim(ids, 2, "token ids")
        N, T = ids.shape
        D = W.shape[1]
        d_ids = _upload(empty, "ids", ids)
        out = empty("out", (N, T, D), W.dtype)
        _k().embedding.embedding_forward(W, d_ids.reshape(N * T), out.reshape(N * T, D))
        return out, d_ids

    def backward(self, dout):
        _require_forward(self.idx, self)
        W, = self.params
        N, T = self.idx.shape
        D = W.shape[1]
        dout = _floats(dout, 3, W.dtype, "dout")
        check_shape(dout, (N, T, D), "dout")
        _k().embedding.embedding_backward(self.idx.reshape(N * T), dout.reshape(N * T, D), self.grads[0])
        return None


class TimeAffine(_OnDevice, time_layers.TimeAffine):
    """x @ W + b at every time step: (N, T, D) -> (N, T, V); W is read where it lies (a tied
    W is a transposed view of the embedding weight)."""

    _new_array = staticmethod(_fresh)

    def __init__(self, W, b):
        gpu.require()
        weights_dtype(W=W, b=b)
        check_ndim(W, 2, "W")
        check_shape(b, (W.shape[1],), "b")
        W, b = _on_device(W), _on_device(b)
        self.params = [W, b]
        self.grads = [_zeros_like(W), _zeros_like(b)]
        self.x = None
        self._workspace = Workspace(_device_empty)

    def _apply(self, x, empty):
        W, b = self.params
        dtype = weights_dtype(W=W, b=b)
        x = _floats(x, 3, dtype, "x")
        N, T, D = x.shape
        if D != W.shape[0]:
            raise ValueError(f"x has width {D} but W has shape {W.shape}")
        V = W.shape[1]
        out = empty("out", (N, T, V), dtype)
        out2 = out.reshape(N * T, V)
        linalg = _k().linalg
        linalg.matmul(x.reshape(N * T, D), W, out2)
        linalg.add_bias(out2, b)
        return out, x

    def backward(self, dout):
        _require_forward(self.x, self)
        W, b = self.params
        N, T, D = self.x.shape
        V = W.shape[1]
        dout = _floats(dout, 3, W.dtype, "dout")
        check_shape(dout, (N, T, V), "dout")
        linalg = _k().linalg
        x2, dout2 = self.x.reshape(N * T, D), dout.reshape(N * T, V)
        linalg.matmul_tn_into(x2, dout2, self.grads[0])
        linalg.column_sums(dout2, self.grads[1])
        dx = _device_empty((N, T, D), W.dtype)
        linalg.matmul(dout2, linalg.transpose_view(W), dx.reshape(N * T, D))
        return dx


class TimeSoftmaxWithLoss(_OnDevice, time_layers.TimeSoftmaxWithLoss):
    """Mean softmax cross-entropy of scores (N, T, V) over the targets (N, T) that are not
    `ignore_label` (-1); targets may also be one-hot (N, T, V)."""

    _new_array = staticmethod(_fresh)
    _precomputes_gradient = False

    def __init__(self):
        gpu.require()
        self.params, self.grads = [], []
        self.cache = None
        self._workspace = Workspace(_device_empty)

    def _loss(self, x, t, empty):
        x = x if gpu.is_device_array(x) else np.asarray(x)
        x = _floats(x, 3, weights_dtype(scores=x), "scores")
        N, T, V = x.shape
        t = gpu.to_host(t)
        if t.shape == x.shape:
            t = t.argmax(axis=-1)
        check_shape(t, (N, T), "targets")
        ts = as_token_ids(t, V, "targets", self.ignore_label).reshape(N * T)
        count = int(np.count_nonzero(ts >= 0))
        if count == 0:
            raise ValueError(f"every target equals ignore_label {self.ignore_label}: the mean loss is undefined")
        x2 = x.reshape(N * T, V)
        d_ts = _upload(empty, "ts", ts)
        row_lse = empty("row_lse", (N * T,), x.dtype)
        row_loss = empty("row_loss", (N * T,), np.float64)
        _k().softmax.softmax_cross_entropy_forward(x2, d_ts, row_lse, row_loss)
        return row_loss.copy_to_host().sum() / count, (x2, d_ts, row_lse, count, x.shape)

    def backward(self, dout=1):
        _require_forward(self.cache, self)
        x2, ts, row_lse, count, shape = self.cache
        dx = _device_empty(shape, x2.dtype)
        scale = x2.dtype.type(dout / count)
        _k().softmax.softmax_cross_entropy_backward(x2, ts, row_lse, scale, dx.reshape(x2.shape))
        return dx


class TimeDropout(_OnDevice, time_layers.TimeDropout):
    """Inverted dropout on the GPU, with the CPU's mask for the same seed."""

    def __init__(self, dropout_ratio=0.5):
        gpu.require()
        super().__init__(dropout_ratio)

    @staticmethod
    def _mask_apply(xs, ratio, scale):
        xs = xs if gpu.is_device_array(xs) else np.asarray(xs)
        xs = _floats(xs, xs.ndim, weights_dtype(xs=xs), "xs")
        K = xs.size
        mask = _device_empty(xs.shape, xs.dtype)
        out = _device_empty(xs.shape, xs.dtype)
        _k().dropout.dropout_forward(xs.reshape(K), _draw_seed(), ratio, scale, mask.reshape(K), out.reshape(K))
        return out, mask

    def _masked(self, dout):
        dout = _floats(dout, self.mask.ndim, self.mask.dtype, "dout")
        check_shape(dout, self.mask.shape, "dout")
        K = dout.size
        dx = _device_empty(dout.shape, dout.dtype)
        _k().dropout.dropout_backward(dout.reshape(K), self.mask.reshape(K), dx.reshape(K))
        return dx


class TimeLSTM(_OnDevice, time_layers.TimeLSTM):
    """LSTM over T steps with the book's gate order f, g, i, o in the 4H axis.

    With `stateful=True` the last h and c carry over to the next forward call;
    `reset_state()` clears them, `set_state(h, c)` sets them (host or device arrays).
    After backward, `dh` holds the gradient w.r.t. the initial h.
    """

    _new_array = staticmethod(_fresh)
    _as_floats = staticmethod(_floats)

    def __init__(self, Wx, Wh, b, stateful=False):
        gpu.require()
        _check_lstm_weights(Wx, Wh, b)
        self.params = [_on_device(w) for w in (Wx, Wh, b)]
        self.grads = [_zeros_like(w) for w in self.params]
        self.h, self.c = None, None
        self.dh = None
        self.stateful = stateful
        self._saved = None
        self._workspace = Workspace(_device_empty)

    def _run(self, xs, empty, save):
        Wx, Wh, b = self.params
        dtype, xs = _check_lstm_input(self.params, xs, self._as_floats)
        N, T, D = xs.shape
        H = Wh.shape[0]
        k = _k()
        linalg = k.linalg
        # Time-major, as on the CPU: hs[0], cs[0] the initial state, hs[t + 1], cs[t + 1] after step t.
        hs = empty("hs", (T + 1, N, H), dtype)
        cs = empty("cs", (T + 1, N, H), dtype)
        for state, first, name in ((self.h, hs[0], "h"), (self.c, cs[0], "c")):
            if self.stateful and state is not None:
                first.copy_to_device(_state(state, N, H, dtype, name))
            else:
                linalg.zero(first)
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
        return self._finish(empty, save, hs, cs, out, (xs_t, hs, cs, tanh_cs, gates))

    @staticmethod
    def _copy(src, dst):
        dst.copy_to_device(src)

    def backward(self, dhs):
        (xs_t, hs, cs, tanh_cs, gates), dhs = self._backward_inputs(dhs)
        Wx, Wh, b = self.params
        T, N, D = xs_t.shape
        H = Wh.shape[0]
        dtype = hs.dtype
        k = _k()
        linalg = k.linalg
        dhs_t = _device_empty((T, N, H), dtype)
        linalg.swap_01(dhs, dhs_t)
        dA = _device_empty((T, N, 4 * H), dtype)
        dh = _zeros((N, H), dtype)
        dc = _zeros((N, H), dtype)
        WhT = linalg.transpose_view(Wh)
        for t in range(T - 1, -1, -1):
            k.lstm.lstm_step_backward(gates[t], cs[t], tanh_cs[t], dhs_t[t], dh, dc, dA[t])
            linalg.matmul(dA[t], WhT, dh)
        dA2 = dA.reshape(T * N, 4 * H)
        linalg.matmul_tn_into(xs_t.reshape(T * N, D), dA2, self.grads[0])
        linalg.matmul_tn_into(hs[:T].reshape(T * N, H), dA2, self.grads[1])
        linalg.column_sums(dA2, self.grads[2])
        self.dh = dh
        dxs_t = _device_empty((T, N, D), dtype)
        linalg.matmul(dA2, linalg.transpose_view(Wx), dxs_t.reshape(T * N, D))
        dxs = _device_empty((N, T, D), dtype)
        linalg.swap_01(dxs_t, dxs)
        return dxs

