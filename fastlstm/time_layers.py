"""The book's `common.time_layers` for chapter 6, on fastlstm's kernels.

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
from fastlstm.layers import (Affine, Embedding, SoftmaxWithLoss, _check_ratio, _draw_mask, _dropout_backward,
                             _dropout_mask_apply, _require_forward)
from fastlstm.checks import check_ndim, check_shape, weights_dtype
from fastlstm.lanes import default as default_lanes
from fastlstm.workspace import Workspace


class TimeEmbedding(Embedding):
    """Embedding of token ids xs (N, T) into (N, T, D).

    With `dropout` > 0 (embedding dropout), while `train_flg` is set, each forward call
    drops whole words: row v of W is multiplied by word_mask[v], 0 or 1 / (1 - dropout),
    for every position of the call; `word_mask` (V,) stays readable after forward.
    """

    _ndim = 2
    _backend_for = staticmethod(backends.choose)

    def __init__(self, W, dropout=0.0):
        super().__init__(W)
        self.dropout = _check_ratio(dropout, "dropout")
        self.word_mask = None
        self.train_flg = True

    def forward(self, idx):
        W, = self.params
        drop = self.train_flg and self.dropout > 0
        self.word_mask = _draw_mask(self._backend, (W.shape[0],), W.dtype, self.dropout) if drop else None
        out, self.idx = self._gather(idx, self._backend.fresh, self.word_mask)
        return out

    def infer(self, idx):
        """Evaluation: every word kept, nothing saved for backward."""
        self.word_mask = None
        return super().infer(idx)

    def backward(self, dout):
        self._scatter(dout, self.word_mask)
        return None


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


class TimeDropout(gpu.HostPickled):
    """Inverted dropout: kept entries are scaled by 1 / (1 - ratio) when `train_flg` is set.

    Per element as in the book; with `locked=True` (variational, or locked, dropout) one mask
    per sequence, `mask` (N, 1, D), drawn per forward call and shared by its T steps.
    """

    def __init__(self, dropout_ratio=0.5, locked=False):
        self.params, self.grads = [], []
        self.dropout_ratio = _check_ratio(dropout_ratio)
        self.locked = bool(locked)
        self._backend = backends.choose()
        self.mask = None
        self._steps = None  # T of the locked mask's call, which its gradient must have
        self.train_flg = True

    def infer(self, xs):
        """Evaluation passes xs through."""
        self.mask = None
        return xs

    def forward(self, xs):
        if not self.train_flg:
            return self.infer(xs)
        ratio = self.dropout_ratio
        if not self.locked:
            out, self.mask = _dropout_mask_apply(self._backend, xs, ratio, 1.0 / (1.0 - ratio))
            return out
        xs = self._backend.floats(xs, 3, None, "xs")
        N, T, D = xs.shape
        self.mask = _draw_mask(self._backend, (N, 1, D), xs.dtype, ratio)
        self._steps = T
        return self._backend.locked_dropout(xs, self.mask)

    def backward(self, dout):
        if self.mask is None:
            return dout
        if not self.locked:
            return _dropout_backward(self._backend, dout, self.mask)
        N, _, D = self.mask.shape
        dout = self._backend.floats(dout, 3, self.mask.dtype, "dout")
        check_shape(dout, (N, self._steps, D), "dout")
        return self._backend.locked_dropout(dout, self.mask)


class _RecurrentDropout:
    """Recurrent dropout and weight drop for a recurrent time layer, whose backend applies
    the masks inside its compiled recurrence (fastlstm.recurrence.RecurrentMasks): while
    `train_flg` is set, each forward call draws `h_mask` (N, H), by which every step's
    h_{t-1} is multiplied before the product with Wh (recurrent_dropout > 0), and
    `weight_mask`, shaped like Wh, by which Wh is multiplied (weight_drop > 0); both are
    0 or 1 / (1 - ratio), and stay readable after forward."""

    def _init_dropout(self, recurrent_dropout, weight_drop):
        self.recurrent_dropout = _check_ratio(recurrent_dropout, "recurrent_dropout")
        self.weight_drop = _check_ratio(weight_drop, "weight_drop")
        self.h_mask = self.weight_mask = None
        self.train_flg = True

    def _draw_masks(self, N, Wh, train):
        """(h_mask, weight_mask), None where off, or None for both when nothing drops (not
        `train`, not train_flg, or both ratios 0): the argument `masks` of the backend's
        forward. Keeps them on the layer."""
        train = train and self.train_flg
        drop_h = train and self.recurrent_dropout > 0
        drop_w = train and self.weight_drop > 0
        backend = self._backend
        self.h_mask = _draw_mask(backend, (N, Wh.shape[0]), Wh.dtype, self.recurrent_dropout) if drop_h else None
        self.weight_mask = _draw_mask(backend, Wh.shape, Wh.dtype, self.weight_drop) if drop_w else None
        return (self.h_mask, self.weight_mask) if drop_h or drop_w else None


class TimeLSTM(gpu.HostPickled, _RecurrentDropout):
    """LSTM over T steps with the book's gate order f, g, i, o in the 4H axis.

    With `stateful=True` the last h and c carry over to the next forward call;
    `reset_state()` clears them, `set_state(h, c)` sets them (host or device arrays).
    After backward, `dh` holds the gradient w.r.t. the initial h. `lanes`
    (fastlstm.lanes.Lanes) split its CPU work over the cores: the process's default lanes
    unless replaced. `recurrent_dropout` and `weight_drop`: see _RecurrentDropout.
    """

    def __init__(self, Wx, Wh, b, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
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
        self._init_dropout(recurrent_dropout, weight_drop)

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
        masks = self._draw_masks(N, self.params[1], train=save)
        out, h, c, saved = backend.lstm_forward(xs, self.params, h0, c0, empty, self._workspace, self.lanes, masks)
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
        gates = self._saved[-2]  # (T, N, 4H): forward saves, on either backend, ..., gates, masks
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

