"""The book's `common.time_layers`, its time layers on fastlstm's kernels.

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
from fastlstm.checks import as_floats, as_token_ids, check_ndim, check_shape, weights_dtype
from fastlstm.functions import sigmoid
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

    def forward(self, xs):  # the book's parameter name
        W, = self.params
        drop = self.train_flg and self.dropout > 0
        self.word_mask = _draw_mask(self._backend, (W.shape[0],), W.dtype, self.dropout) if drop else None
        out, self.idx = self._gather(xs, self._backend.fresh, self.word_mask)
        return out

    def infer(self, xs):
        """Evaluation: every word kept, nothing saved for backward."""
        self.word_mask = None
        return super().infer(xs)

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

    def forward(self, xs, ts):  # the book's parameter names
        return super().forward(xs, ts)


class TimeDropout(gpu.HostPickled):
    """Inverted dropout: kept entries are scaled by 1 / (1 - ratio) when `train_flg` is set.

    Per element as in the book; with `locked=True` (variational, or locked, dropout) one mask
    per sequence, `mask` (N, 1, D), drawn per forward call and shared by its T steps.
    """

    rows_before = 0  # a data-parallel rank's first row of the whole batch: its masks are those rows'

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
            out, self.mask = _dropout_mask_apply(self._backend, xs, ratio, 1.0 / (1.0 - ratio), self.rows_before)
            return out
        xs = self._backend.floats(xs, 3, None, "xs")
        N, T, D = xs.shape
        self.mask = _draw_mask(self._backend, (N, 1, D), xs.dtype, ratio, self.rows_before)
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


class _TimeRecurrent(gpu.HostPickled):
    """What the time layers of a recurrent cell (TimeLSTM, TimeRNN, TimeGRU) share: weights
    Wx (D, G) and Wh (H, G) of `_gates` blocks of H columns (G = _gates * H), and b (G,)
    where the cell has a bias; the states named by `_states` (h, and c for the LSTM),
    carried over from call to call when stateful; the backend's `{_cell}_forward` and
    `{_cell}_backward` for the array work, and the `lanes` (fastlstm.lanes.Lanes) that
    split its CPU work over the cores: the process's default lanes unless replaced.
    After backward, `dh` holds the gradient w.r.t. the initial h.

    Recurrent dropout and weight drop, applied inside the compiled recurrence
    (fastlstm.recurrence.RecurrentMasks): while `train_flg` is set, each forward call draws
    `h_mask` (N, H), by which every step's h_{t-1} is multiplied before its products with
    Wh (recurrent_dropout > 0), and `weight_mask`, shaped like Wh, by which Wh is
    multiplied (weight_drop > 0); both are 0 or 1 / (1 - ratio), stay readable after
    forward and serve its backward. Evaluation (`infer`) draws none.
    """

    _cell, _gates, _states = None, None, ()
    rows_before = 0  # a data-parallel rank's first row of the whole batch: its h_mask is those rows'

    def __init__(self, *weights, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
        _check_weights(self._gates, *weights)
        self.recurrent_dropout = _check_ratio(recurrent_dropout, "recurrent_dropout")
        self.weight_drop = _check_ratio(weight_drop, "weight_drop")
        self._backend = backends.choose(*weights)
        self.params = self._backend.prepare_weights(*weights)
        # On the CPU, dWx and dWh are the two row blocks of one array, which one product fills
        self.grads, self._weight_grads = self._backend.recurrent_grads(*self.params)
        _TimeRecurrent.reset_state(self)
        self.dh = None
        self.stateful = stateful
        self._saved = None
        self._workspace = Workspace(self._backend.alloc)
        self.lanes = default_lanes()
        self.h_mask = self.weight_mask = None
        self.train_flg = True

    def forward(self, xs):
        return self._run(xs, self._backend.fresh, save=True)

    def infer(self, xs):
        """forward into arrays kept from call to call, saving nothing for backward (evaluation)."""
        return self._run(xs, self._workspace.empty, save=False)

    def _run(self, xs, empty, save):
        """The outputs (N, T, H); keeps the last states, and what backward needs when `save`."""
        backend = self._backend
        dtype, xs = _check_input(self._gates, self.params, xs, backend.floats)
        N, T = xs.shape[:2]
        H = self.params[1].shape[0]
        start = tuple(self._carried(getattr(self, name), N, H, name) for name in self._states)
        masks = self._draw_masks(N, train=save)
        run = getattr(backend, self._cell + "_forward")
        out, last, saved = run(xs, self.params, start, empty, self._workspace, self.lanes, masks)
        for name, state in zip(self._states, last):
            kept = empty(name, (N, H), dtype)
            backend.copy(state, kept)
            setattr(self, name, kept)
        self._saved = ((N, T, H), saved) if save else None
        return out

    def _draw_masks(self, N, train):
        """(h_mask, weight_mask), None where off, or None for both when nothing drops (not
        `train`, not train_flg, or both ratios 0): the argument `masks` of the backend's
        forward. Keeps them on the layer."""
        Wh = self.params[1]
        train = train and self.train_flg
        drop_h = train and self.recurrent_dropout > 0
        drop_w = train and self.weight_drop > 0
        backend = self._backend
        self.h_mask = (_draw_mask(backend, (N, Wh.shape[0]), Wh.dtype, self.recurrent_dropout, self.rows_before)
                       if drop_h else None)
        self.weight_mask = _draw_mask(backend, Wh.shape, Wh.dtype, self.weight_drop) if drop_w else None
        return (self.h_mask, self.weight_mask) if drop_h or drop_w else None

    def _carried(self, state, N, H, name):
        """The state this call starts from: None (zeros) unless stateful with a state, which
        must fit the batch's (N, H)."""
        if not self.stateful or state is None:
            return None
        if np.shape(state) != (N, H):
            raise ValueError(f"{type(self).__name__} state {name} has shape {np.shape(state)} but this batch needs "
                             f"{(N, H)}; call reset_state() when the batch size changes")
        return state

    def backward(self, dhs):
        _require_forward(self._saved, self)
        shape, saved = self._saved
        dhs = self._backend.floats(dhs, 3, self.params[1].dtype, "dhs")
        check_shape(dhs, shape, "dhs")
        run = getattr(self._backend, self._cell + "_backward")
        dxs, self.dh = run(saved, dhs, self.params, self.grads, self._weight_grads, self.lanes)
        return dxs

    def reset_state(self):
        for name in self._states:
            setattr(self, name, None)


class TimeLSTM(_TimeRecurrent):
    """LSTM over T steps with the book's gate order f, g, i, o in the 4H axis.

    With `stateful=True` the last h and c carry over to the next forward call;
    `reset_state()` clears them, `set_state(h, c)` sets them (host or device arrays).
    After backward, `dh` holds the gradient w.r.t. the initial h. `lanes`
    (fastlstm.lanes.Lanes) split its CPU work over the cores: the process's default lanes
    unless replaced. `recurrent_dropout` and `weight_drop` (off by default): see
    _TimeRecurrent.
    """

    _cell, _gates, _states = "lstm", 4, ("h", "c")

    def __init__(self, Wx, Wh, b, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
        super().__init__(Wx, Wh, b, stateful=stateful, recurrent_dropout=recurrent_dropout, weight_drop=weight_drop)

    def set_state(self, h, c=None):
        self.h, self.c = h, c


class TimeRNN(_TimeRecurrent):
    """The book's RNN over T steps, h_t = tanh(x_t Wx + h_t-1 Wh + b): Wx (D, H), Wh (H, H),
    b (H,).

    With `stateful=True` the last h carries over to the next forward call; `reset_state()`
    clears it, `set_state(h)` sets it. After backward, `dh` holds the gradient w.r.t. the
    initial h. `lanes`, `recurrent_dropout` and `weight_drop` as TimeLSTM's.
    """

    _cell, _gates, _states = "rnn", 1, ("h",)

    def __init__(self, Wx, Wh, b, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
        super().__init__(Wx, Wh, b, stateful=stateful, recurrent_dropout=recurrent_dropout, weight_drop=weight_drop)

    def set_state(self, h):
        self.h = h


class TimeGRU(_TimeRecurrent):
    """The book's GRU over T steps (kernels/gru.py has its equations): Wx (D, 3H) and
    Wh (H, 3H) with the gate blocks z, r, h~ side by side, and no bias, as in the book.

    `params` are [Wx, Wh] and `grads` [dWx, dWh], also readable as the book's attributes
    `Wx`, `Wh`, `dWx`, `dWh`. With `stateful=True` the last h carries over to the next
    forward call; `reset_state()` clears it, `set_state(h)` sets it. After backward, `dh`
    holds the gradient w.r.t. the initial h. `lanes`, `recurrent_dropout` and `weight_drop`
    as TimeLSTM's: with recurrent dropout, both of a step's products read the masked h_{t-1}
    (z and r from it, h~ from r times it), while (1 - z) * h_{t-1} keeps the unmasked one.
    """

    _cell, _gates, _states = "gru", 3, ("h",)

    def __init__(self, Wx, Wh, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
        if isinstance(stateful, np.ndarray) or gpu.is_device_array(stateful):
            raise TypeError("TimeGRU(Wx, Wh, stateful=False) takes no bias, as the book's GRU: got an array for "
                            "stateful")
        super().__init__(Wx, Wh, stateful=stateful, recurrent_dropout=recurrent_dropout, weight_drop=weight_drop)

    Wx = property(lambda self: self.params[0])
    Wh = property(lambda self: self.params[1])
    dWx = property(lambda self: self.grads[0])
    dWh = property(lambda self: self.grads[1])

    def set_state(self, h):
        self.h = h


class TimeBiLSTM(gpu.HostPickled):
    """The book's bidirectional LSTM: `forward_lstm` (a TimeLSTM of Wx1, Wh1, b1) over the
    sequence and `backward_lstm` (of Wx2, Wh2, b2, the same shapes) over it reversed in
    time; the output (N, T, 2H) holds the first's outputs beside the second's, put back in
    time order. `params` and `grads` are the first's then the second's."""

    def __init__(self, Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False):
        for first, second, name in ((Wx1, Wx2, "Wx"), (Wh1, Wh2, "Wh"), (b1, b2, "b")):
            if np.shape(first) != np.shape(second):
                raise ValueError(f"{name}1 and {name}2 must have one shape, got {np.shape(first)} and "
                                 f"{np.shape(second)}")
        weights = (Wx1, Wh1, b1, Wx2, Wh2, b2)
        weights_dtype(**dict(zip(["Wx1", "Wh1", "b1", "Wx2", "Wh2", "b2"], weights)))
        self._backend = backends.choose(*weights)
        weights = self._backend.prepare_weights(*weights)  # both LSTMs then choose this backend
        self.forward_lstm = TimeLSTM(*weights[:3], stateful)
        self.backward_lstm = TimeLSTM(*weights[3:], stateful)
        self.params = self.forward_lstm.params + self.backward_lstm.params
        self.grads = self.forward_lstm.grads + self.backward_lstm.grads

    def forward(self, xs):
        return self._run(xs, "forward")

    def infer(self, xs):
        """forward through the LSTMs' infer: nothing is saved for backward (evaluation)."""
        return self._run(xs, "infer")

    def _run(self, xs, method):
        backend = self._backend
        xs = backend.floats(xs, 3, self.params[0].dtype, "xs")
        first = getattr(self.forward_lstm, method)(xs)
        reversed_xs = backend.alloc(xs.shape, xs.dtype)
        backend.time_copy(xs, reversed_xs, reverse=True)
        second = getattr(self.backward_lstm, method)(reversed_xs)
        N, T, H = first.shape
        out = backend.alloc((N, T, 2 * H), first.dtype)
        backend.time_copy(first, out[:, :, :H])
        backend.time_copy(second, out[:, :, H:], reverse=True)
        return out

    def backward(self, dhs):
        _require_forward(self.forward_lstm._saved, self)
        backend = self._backend
        N, T, H = self.forward_lstm._saved[0]
        dhs = backend.floats(dhs, 3, self.params[0].dtype, "dhs")
        check_shape(dhs, (N, T, 2 * H), "dhs")
        first, second = backend.alloc((N, T, H), dhs.dtype), backend.alloc((N, T, H), dhs.dtype)
        backend.time_copy(dhs[:, :, :H], first)
        backend.time_copy(dhs[:, :, H:], second, reverse=True)
        dxs = self.forward_lstm.backward(first)
        backend.time_copy(self.backward_lstm.backward(second), dxs, reverse=True, add=True)
        return dxs


class _Step:
    """What the book's single-step cells (RNN, GRU, LSTM) share: plain NumPy on the CPU, one
    step at a time, with the time layers' contract. The weights are checked as their time
    layers check them and kept in `params` as passed; `grads` are overwritten in place by
    backward; inputs are made arrays of the weights' dtype, and checked."""

    _gates = None

    def __init__(self, *weights):
        _check_weights(self._gates, *weights)
        if any(gpu.is_device_array(w) for w in weights):
            raise TypeError(f"{type(self).__name__} runs on the CPU and takes NumPy arrays; "
                            f"Time{type(self).__name__} runs on the GPU")
        self.params = list(weights)
        self.grads = [np.zeros_like(w) for w in weights]
        self.cache = None

    def _inputs(self, x, *states):
        """x (N, D) and the states (N, H each) as arrays of the weights' dtype, checked."""
        Wx, Wh = self.params[:2]
        x = as_floats(x, 2, Wx.dtype, "x")
        if x.shape[1] != Wx.shape[0]:
            raise ValueError(f"x has width {x.shape[1]} but Wx has shape {Wx.shape}")
        names = ("h_prev", "c_prev")
        checked = [as_floats(state, 2, Wx.dtype, name) for state, name in zip(states, names)]
        for state, name in zip(checked, names):
            check_shape(state, (x.shape[0], Wh.shape[0]), name)
        return (x, *checked)

    def _gradients(self, *douts):
        """The output gradients (N, H each) as arrays of the weights' dtype, checked against forward's."""
        _require_forward(self.cache, self)
        shape = (self.cache[0].shape[0], self.params[1].shape[0])
        checked = [as_floats(d, 2, self.params[1].dtype, name) for d, name in zip(douts, ("dh_next", "dc_next"))]
        for d, name in zip(checked, ("dh_next", "dc_next")):
            check_shape(d, shape, name)
        return checked

    def _input_and_weight_grads(self, x, h_prev, dA):
        """(dx, dh_prev) = dA @ Wx.T, dA @ Wh.T from the pre-activation gradient dA (N, G);
        grads = x.T @ dA, h_prev.T @ dA and dA's column sums."""
        Wx, Wh, b = self.params
        self.grads[0][...] = x.T @ dA
        self.grads[1][...] = h_prev.T @ dA
        self.grads[2][...] = dA.sum(axis=0)
        return dA @ Wx.T, dA @ Wh.T


class RNN(_Step):
    """One step of the book's RNN: h_next = tanh(x Wx + h_prev Wh + b)."""

    _gates = 1

    def __init__(self, Wx, Wh, b):
        super().__init__(Wx, Wh, b)

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        x, h_prev = self._inputs(x, h_prev)
        h_next = np.tanh(x @ Wx + h_prev @ Wh + b)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next):
        """(dx, dh_prev)."""
        dh_next, = self._gradients(dh_next)
        x, h_prev, h_next = self.cache
        return self._input_and_weight_grads(x, h_prev, dh_next * (1 - h_next * h_next))


class LSTM(_Step):
    """One step of the book's LSTM, gate order f, g, i, o in the 4H axis."""

    _gates = 4

    def __init__(self, Wx, Wh, b):
        super().__init__(Wx, Wh, b)

    def forward(self, x, h_prev, c_prev):
        """(h_next, c_next)."""
        Wx, Wh, b = self.params
        x, h_prev, c_prev = self._inputs(x, h_prev, c_prev)
        H = Wh.shape[0]
        A = x @ Wx + h_prev @ Wh + b
        f, i, o = (sigmoid(A[:, k * H:(k + 1) * H]) for k in (0, 2, 3))
        g = np.tanh(A[:, H:2 * H])
        c_next = f * c_prev + g * i
        tanh_c = np.tanh(c_next)
        self.cache = (x, h_prev, c_prev, f, g, i, o, tanh_c)
        return o * tanh_c, c_next

    def backward(self, dh_next, dc_next):
        """(dx, dh_prev, dc_prev)."""
        dh_next, dc_next = self._gradients(dh_next, dc_next)
        x, h_prev, c_prev, f, g, i, o, tanh_c = self.cache
        ds = dc_next + dh_next * o * (1 - tanh_c * tanh_c)
        dA = np.hstack((ds * c_prev * f * (1 - f), ds * i * (1 - g * g), ds * g * i * (1 - i),
                        dh_next * tanh_c * o * (1 - o)))
        return (*self._input_and_weight_grads(x, h_prev, dA), ds * f)


class GRU(_Step):
    """One step of the book's GRU (kernels/gru.py has its equations): Wx (D, 3H) and
    Wh (H, 3H), gate blocks z, r, h~, no bias. `params` are [Wx, Wh], `grads` [dWx, dWh],
    also readable as the book's attributes `Wx`, `Wh`, `dWx`, `dWh`."""

    _gates = 3

    def __init__(self, Wx, Wh):
        super().__init__(Wx, Wh)

    Wx, Wh, dWx, dWh = TimeGRU.Wx, TimeGRU.Wh, TimeGRU.dWx, TimeGRU.dWh

    def forward(self, x, h_prev):
        Wx, Wh = self.params
        x, h_prev = self._inputs(x, h_prev)
        H = Wh.shape[0]
        a = x @ Wx
        zr = sigmoid(a[:, :2 * H] + h_prev @ Wh[:, :2 * H])
        z, r = zr[:, :H], zr[:, H:]
        h_hat = np.tanh(a[:, 2 * H:] + (r * h_prev) @ Wh[:, 2 * H:])
        self.cache = (x, h_prev, z, r, h_hat)
        return (1 - z) * h_prev + z * h_hat

    def backward(self, dh_next):
        """(dx, dh_prev)."""
        dh_next, = self._gradients(dh_next)
        Wx, Wh = self.params
        x, h_prev, z, r, h_hat = self.cache
        H = Wh.shape[0]
        dt = dh_next * z * (1 - h_hat * h_hat)  # of h~'s pre-activation
        drh = dt @ Wh[:, 2 * H:].T  # of r * h_prev
        dzr = np.hstack((dh_next * (h_hat - h_prev) * z * (1 - z), drh * h_prev * r * (1 - r)))
        dA = np.hstack((dzr, dt))
        self.grads[0][...] = x.T @ dA
        self.grads[1][:, :2 * H] = h_prev.T @ dzr
        self.grads[1][:, 2 * H:] = (r * h_prev).T @ dt
        return dA @ Wx.T, dh_next * (1 - z) + r * drh + dzr @ Wh[:, :2 * H].T


def _check_weights(gates, Wx, Wh, b=None):
    """The weights' dtype, after checking that Wx (D, G), Wh (H, G) and, where given, b (G,)
    fit together, G = gates * H."""
    dtype = weights_dtype(Wx=Wx, Wh=Wh) if b is None else weights_dtype(Wx=Wx, Wh=Wh, b=b)
    check_ndim(Wx, 2, "Wx")
    check_ndim(Wh, 2, "Wh")
    if b is not None:
        check_ndim(b, 1, "b")
    H = Wh.shape[0]
    G = gates * H
    if Wh.shape != (H, G) or H == 0:
        blocks = f"{gates}H" if gates > 1 else "H"
        raise ValueError(f"Wh must have shape (H, {blocks}) with H > 0, got {Wh.shape}")
    if Wx.shape[1] != G:
        raise ValueError(f"Wx must have shape (D, {G}) to match Wh {Wh.shape}, got {Wx.shape}")
    if b is not None and b.shape != (G,):
        raise ValueError(f"b must have shape ({G},) to match Wh {Wh.shape}, got {b.shape}")
    return dtype


def _check_input(gates, params, xs, as_array):
    """(dtype, xs) with xs (N, T, D) made an array of the weights' dtype by as_array (the host's
    or the device's) and checked against Wx."""
    dtype = _check_weights(gates, *params)
    Wx = params[0]
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
