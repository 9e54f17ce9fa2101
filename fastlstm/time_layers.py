"""The book's `common.time_layers`, on fastlstm's kernels.

`from fastlstm.time_layers import *` also brings `np` and the plain layers, as the
book's module does, so the book's model files run unchanged.

Each time layer picks its backend at construction (fastlstm.backends.choose): CUDA when
fastlstm.config.GPU is set or its weights already live on the GPU, else the CPU. It keeps
its class either way; on the GPU, host weights are copied over once (`params` then holds
the device copies, tied weights stay tied) and outputs and gradients are device arrays.
"""

import numpy as np

from fastlstm.np import *  # noqa: F401,F403  (the book's model files expect `np` from here)
from fastlstm.layers import *  # noqa: F401,F403
from fastlstm import backends, gpu
from fastlstm.layers import (Affine, Embedding, SoftmaxWithLoss, _check_ratio, _dropout_backward, _dropout_mask_apply,
                             _require_forward)
from fastlstm.checks import as_floats, as_token_ids, check_ndim, check_shape, weights_dtype
from fastlstm.functions import sigmoid
from fastlstm.lanes import default as default_lanes
from fastlstm.workspace import Workspace


class TimeEmbedding(Embedding):
    """Embedding of token ids xs (N, T) into (N, T, D)."""

    _ndim = 2
    _backend_for = staticmethod(backends.choose)

    def forward(self, xs):  # the book's parameter name
        return super().forward(xs)


class TimeAffine(Affine):
    """Affine map of every time step: (N, T, D) -> (N, T, V)."""

    _ndim = 3
    _backend_for = staticmethod(backends.choose)


class TimeSoftmaxWithLoss(SoftmaxWithLoss):
    """Mean softmax cross-entropy of scores (N, T, V) over the targets (N, T) that are
    not `ignore_label` (-1)."""

    _ndim = 3
    ignore_label = -1
    _backend_for = staticmethod(backends.choose)

    def forward(self, xs, ts):  # the book's parameter names
        return super().forward(xs, ts)


class TimeDropout(gpu.HostPickled):
    """Inverted dropout: kept entries are scaled by 1 / (1 - ratio) when `train_flg` is set."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = _check_ratio(dropout_ratio)
        self._backend = backends.choose()
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
        out, self.mask = _dropout_mask_apply(self._backend, xs, ratio, 1.0 / (1.0 - ratio))
        return out

    def backward(self, dout):
        if self.mask is None:
            return dout
        return _dropout_backward(self._backend, dout, self.mask)


class TimeLSTM(gpu.HostPickled):
    """LSTM over T steps with the book's gate order f, g, i, o in the 4H axis.

    With `stateful=True` the last h and c carry over to the next forward call;
    `reset_state()` clears them, `set_state(h, c)` sets them (host or device arrays).
    After backward, `dh` holds the gradient w.r.t. the initial h. `lanes`
    (fastlstm.lanes.Lanes) split its CPU work over the cores: the process's default lanes
    unless replaced.
    """

    def __init__(self, Wx, Wh, b, stateful=False):
        _check_lstm_weights(Wx, Wh, b)
        self._backend = backends.choose(Wx, Wh, b)
        self.params = self._backend.prepare_weights(Wx, Wh, b)
        # On the CPU, dWx and dWh are the two row blocks of one array, which one product fills
        self.grads, self._weight_grads = self._backend.lstm_grads(*self.params)
        self.h, self.c = None, None
        self.dh = None
        self.stateful = stateful
        self._saved = None
        self._workspace = Workspace(self._backend.alloc)
        self.lanes = default_lanes()

    def forward(self, xs):
        return self._run(xs, self._backend.fresh, save=True)

    def infer(self, xs):
        """forward into arrays kept from call to call, saving nothing for backward (evaluation)."""
        return self._run(xs, self._workspace.empty, save=False)

    def _run(self, xs, empty, save):
        """The outputs (N, T, H); keeps the last h and c, and what backward needs when `save`."""
        backend = self._backend
        dtype, xs = _check_lstm_input(self.params, xs, backend.floats)
        N, T, D = xs.shape
        H = self.params[1].shape[0]
        h0 = self._carried(self.h, N, H, "h")
        c0 = self._carried(self.c, N, H, "c")
        out, h, c, saved = backend.lstm_forward(xs, self.params, h0, c0, empty, self._workspace, self.lanes)
        self.h = empty("h", (N, H), dtype)
        self.c = empty("c", (N, H), dtype)
        backend.copy(h, self.h)
        backend.copy(c, self.c)
        self._saved = saved if save else None
        return out

    def _carried(self, state, N, H, name):
        """The h or c this call starts from: None (zeros) unless stateful with a state, which
        must fit the batch's (N, H)."""
        if not self.stateful or state is None:
            return None
        if np.shape(state) != (N, H):
            raise ValueError(f"LSTM state {name} has shape {np.shape(state)} but this batch needs {(N, H)};"
                             " call reset_state() when the batch size changes")
        return state

    def backward(self, dhs):
        _require_forward(self._saved, self)
        gates = self._saved[-1]  # (T, N, 4H), the last of what forward saved on either backend
        T, N, G = gates.shape
        dhs = self._backend.floats(dhs, 3, gates.dtype, "dhs")
        check_shape(dhs, (N, T, G // 4), "dhs")
        dxs, self.dh = self._backend.lstm_backward(self._saved, dhs, self.params, self.grads, self._weight_grads,
                                                         self.lanes)
        return dxs

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



# ---------------------------------------------------------------- the book's simple time layers
# The book keeps these beside its time layers as step-by-step versions (and a sigmoid loss
# over time). Here they take the fused paths of the layers above, with the same numbers.


class TimeSigmoidWithLoss:
    """Mean binary cross-entropy of sigmoid(xs) (N, T) against 0/1 labels ts (N, T), as the
    book's mean over the T steps of SigmoidWithLoss (with its 1e-7 inside the log)."""

    def __init__(self):
        self.params, self.grads = [], []
        self.xs_shape = None
        self.cache = None

    def forward(self, xs, ts):
        xs = as_floats(xs, 2, None, "xs")
        ts = as_token_ids(ts, 2, "labels")
        check_shape(ts, xs.shape, "labels")
        y = sigmoid(xs)
        picked = np.where(ts == 1, y, 1 - y)
        self.xs_shape = xs.shape
        self.cache = (y, ts)
        return -np.log(picked + xs.dtype.type(1e-7)).mean(dtype=xs.dtype)

    def backward(self, dout=1):
        _require_forward(self.cache, self)
        y, ts = self.cache
        return (y - ts.astype(y.dtype)) * y.dtype.type(dout / y.size)


class Simple_TimeSoftmaxWithLoss(SoftmaxWithLoss):
    """The book's step-by-step softmax loss over scores (N, T, V) and targets (N, T): the mean
    over all N x T losses, with no ignore_label, in TimeSoftmaxWithLoss's fused pass."""

    _ndim = 3
    _backend_for = staticmethod(backends.choose)

    def forward(self, xs, ts):  # the book's parameter names
        return super().forward(xs, ts)


class Simple_TimeAffine(TimeAffine):
    """The book's step-by-step TimeAffine: W, b, dW and db as attributes (the arrays of
    `params` and `grads`); the book's own backward reads attributes Affine lacks, this one works."""

    def forward(self, xs):  # the book's parameter name
        return super().forward(xs)

    W = property(lambda self: self.params[0])
    b = property(lambda self: self.params[1])
    dW = property(lambda self: self.grads[0])
    db = property(lambda self: self.grads[1])
