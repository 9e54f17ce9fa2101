"""The book's `common.time_layers` for chapter 6, on fastlstm's kernels.

`from fastlstm.time_layers import *` also brings `np` and the plain layers, as the
book's module does, so the book's model files run unchanged.
"""

import numpy as np

from fastlstm.np import *  # noqa: F401,F403  (the book's model files expect `np` from here)
from fastlstm.layers import *  # noqa: F401,F403
from fastlstm.layers import Affine, Embedding, SoftmaxWithLoss, _check_ratio, _dropout_backward, _dropout_mask_apply
from fastlstm.blas import dot, dots, tn_product
from fastlstm.checks import as_floats, check_ndim, check_shape, weights_dtype
from fastlstm.lanes import default as default_lanes
from fastlstm.recurrence import backward_steps, forward_steps
from fastlstm.workspace import Workspace, fresh


class _CudaWhenAsked:
    """Construct the CUDA twin (fastlstm/cuda_layers.py) instead, when the weights live on
    the GPU or fastlstm.config.GPU is set."""

    def __new__(cls, *args, **kwargs):
        from fastlstm import cuda_layers
        if cuda_layers.wants_gpu(*args, *kwargs.values()):
            twin = next(getattr(cuda_layers, c.__name__) for c in cls.__mro__ if hasattr(cuda_layers, c.__name__))
            return twin(*args, **kwargs)
        return super().__new__(cls)


class TimeEmbedding(_CudaWhenAsked, Embedding):
    """Embedding of token ids xs (N, T) into (N, T, D)."""

    _ndim = 2


class TimeAffine(_CudaWhenAsked, Affine):
    """Affine map of every time step: (N, T, D) -> (N, T, V)."""

    _ndim = 3


class TimeSoftmaxWithLoss(_CudaWhenAsked, SoftmaxWithLoss):
    """Mean softmax cross-entropy of scores (N, T, V) over the targets (N, T) that are
    not `ignore_label` (-1)."""

    _ndim = 3
    ignore_label = -1


class TimeDropout(_CudaWhenAsked):
    """Inverted dropout: kept entries are scaled by 1 / (1 - ratio) when `train_flg` is set."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = _check_ratio(dropout_ratio)
        self.mask = None
        self.train_flg = True

    def infer(self, xs):
        """Evaluation passes xs through."""
        self.mask = None
        return xs

    def forward(self, xs):
        if not self.train_flg:
            return self.infer(xs)
        ratio = self.dropout_ratio
        out, self.mask = self._mask_apply(xs, ratio, 1.0 / (1.0 - ratio))
        return out

    def backward(self, dout):
        if self.mask is None:
            return dout
        return self._masked(dout)

    _mask_apply = staticmethod(_dropout_mask_apply)

    def _masked(self, dout):
        return _dropout_backward(dout, self.mask)


class TimeLSTM(_CudaWhenAsked):
    """LSTM over T steps with the book's gate order f, g, i, o in the 4H axis.

    With `stateful=True` the last h and c carry over to the next forward call;
    `reset_state()` clears them, `set_state(h, c)` sets them. After backward, `dh` holds
    the gradient w.r.t. the initial h. `lanes` (fastlstm.lanes.Lanes) splits its work over
    the cores: the process's default lanes unless replaced.
    """

    def __init__(self, Wx, Wh, b, stateful=False):
        dtype = _check_lstm_weights(Wx, Wh, b)
        self.params = [Wx, Wh, b]
        # dWx and dWh are the two blocks of one array, which one product fills (backward)
        self._weight_grads = np.zeros((Wx.shape[0] + Wh.shape[0], Wh.shape[1]), dtype=dtype)
        self.grads = [self._weight_grads[:Wx.shape[0]], self._weight_grads[Wx.shape[0]:], np.zeros_like(b)]
        self.h, self.c = None, None
        self.dh = None
        self.stateful = stateful
        self._saved = None
        self._workspace = Workspace()
        self.lanes = default_lanes()

    _new_array = staticmethod(fresh)  # where forward's arrays are made (the CUDA twin: on the device)
    _as_floats = staticmethod(as_floats)  # how inputs are checked and converted (the CUDA twin: onto the device)

    def forward(self, xs):
        return self._run(xs, self._new_array, save=True)

    def infer(self, xs):
        """forward into arrays kept from call to call, saving nothing for backward (evaluation)."""
        return self._run(xs, self._workspace.empty, save=False)

    def _run(self, xs, empty, save):
        Wx, Wh, b = self.params
        dtype, xs = _check_lstm_input(self.params, xs, self._as_floats)
        N, T, D = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=dtype)
        # Time-major arrays: every step's slice is C-contiguous, as BLAS and the kernels want.
        # hs[0] and cs[0] hold the initial state, hs[t + 1] and cs[t + 1] the state after step t.
        hs = empty("hs", (T + 1, N, H), dtype)
        cs = empty("cs", (T + 1, N, H), dtype)
        hs[0] = _as_state(self.h, N, H, "h")
        cs[0] = _as_state(self.c, N, H, "c")
        # Each step's input x_t and the h it multiplies side by side: [x_t, h_t] (T, N, D + H)
        # is the left operand of the weight gradients' one product.
        inputs = empty("inputs", (T, N, D + H), dtype)
        xs_t, hs_inputs = inputs[:, :, :D], inputs[:, :, D:]
        np.copyto(xs_t, xs.transpose(1, 0, 2))
        hs_inputs[0] = hs[0]
        gates = empty("gates", (T, N, 4 * H), dtype)
        dot(xs_t.reshape(T * N, D), Wx, out=gates.reshape(T * N, 4 * H), lanes=self.lanes)
        tanh_cs = empty("tanh_cs", (T, N, H), dtype)
        out = empty("out", (N, T, H), dtype)
        forward_steps(gates, hs, cs, tanh_cs, out, hs_inputs, Wh, b, self.lanes, self._workspace.empty)
        return self._finish(empty, save, hs, cs, out, (inputs, cs, tanh_cs, gates))

    def _finish(self, empty, save, hs, cs, out, saved):
        """Keep the last h and c, keep `saved` (time-major arrays, the gates last) for backward
        when `save`, return `out`, the outputs (N, T, H)."""
        T, N, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        self.h = empty("h", (N, H), hs.dtype)
        self.c = empty("c", (N, H), hs.dtype)
        self._copy(hs[T], self.h)
        self._copy(cs[T], self.c)
        self._saved = saved if save else None
        return out

    @staticmethod
    def _copy(src, dst):
        np.copyto(dst, src)

    def _backward_inputs(self, dhs):
        """What forward saved for backward, its last array the gates (T, N, 4H), and dhs
        (N, T, H) checked against them."""
        if self._saved is None:
            raise RuntimeError("TimeLSTM.backward called before forward")
        T, N, G = self._saved[-1].shape
        dhs = self._as_floats(dhs, 3, self._saved[-1].dtype, "dhs")
        check_shape(dhs, (N, T, G // 4), "dhs")
        return self._saved, dhs

    def backward(self, dhs):
        (inputs, cs, tanh_cs, gates), dhs = self._backward_inputs(dhs)
        Wx, Wh, b = self.params
        T, N, D = inputs.shape[0], inputs.shape[1], Wx.shape[0]
        H = Wh.shape[0]
        dA = np.empty_like(gates)
        dh = np.empty((N, H), dtype=gates.dtype)
        backward_steps(gates, cs, tanh_cs, np.ascontiguousarray(dhs), Wh, dA, dh, self.grads[2], self.lanes)
        dA2 = dA.reshape(T * N, 4 * H)
        dxs = np.empty((T * N, D), dtype=gates.dtype)
        # [dWx; dWh] = [x_t, h_t].T @ dA in one product (1.05x faster than two), beside dxs
        dots(tn_product(inputs.reshape(T * N, D + H), dA2, self._weight_grads), (dA2, Wx.T, dxs), lanes=self.lanes)
        for grad, block in zip(self.grads[:2], (self._weight_grads[:D], self._weight_grads[D:])):
            if grad.base is not self._weight_grads:  # a gradient array put in its place
                grad[...] = block
        self.dh = dh
        return dxs.reshape(T, N, D).transpose(1, 0, 2).copy()

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None


def _check_lstm_weights(Wx, Wh, b):
    """The weights' dtype, after checking that Wx (D, 4H), Wh (H, 4H) and b (4H,) fit together."""
    dtype = weights_dtype(Wx=Wx, Wh=Wh, b=b)
    check_ndim(Wx, 2, "Wx")
    check_ndim(Wh, 2, "Wh")
    check_ndim(b, 1, "b")
    H = Wh.shape[0]
    if Wh.shape != (H, 4 * H) or H == 0:
        raise ValueError(f"Wh must have shape (H, 4H) with H > 0, got {Wh.shape}")
    if Wx.shape[1] != 4 * H:
        raise ValueError(f"Wx must have shape (D, {4 * H}) to match Wh {Wh.shape}, got {Wx.shape}")
    if b.shape != (4 * H,):
        raise ValueError(f"b must have shape ({4 * H},) to match Wh {Wh.shape}, got {b.shape}")
    return dtype


def _check_lstm_input(params, xs, as_array):
    """(dtype, xs) with xs (N, T, D) made an array of the weights' dtype by as_array (the host's
    or the device's) and checked against Wx."""
    Wx, Wh, b = params
    dtype = _check_lstm_weights(Wx, Wh, b)
    xs = as_array(xs, 3, dtype, "xs")
    if xs.shape[2] != Wx.shape[0]:
        raise ValueError(f"xs has width {xs.shape[2]} but Wx has shape {Wx.shape}")
    if xs.shape[0] == 0 or xs.shape[1] == 0:
        raise ValueError(f"xs must hold at least one sequence of one step, got shape {xs.shape}")
    return dtype, xs


def _as_state(s, N, H, name):
    """A carried-over h or c, checked against the batch's (N, H)."""
    s = np.asarray(s)
    if s.shape != (N, H):
        raise ValueError(f"LSTM state {name} has shape {s.shape} but this batch needs {(N, H)};"
                         " call reset_state() when the batch size changes")
    return s
