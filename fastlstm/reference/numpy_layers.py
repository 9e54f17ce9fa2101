"""Plain-NumPy reference of the book's time layers, step by step as the book
writes them, for tests and benchmarks only: the yardstick that fastlstm's kernels are
checked and timed against. Arrays carry the weights' dtype instead of the book's fixed
float32, so the reference also runs in float64.

The regularisers are written here as plainly: locked dropout, embedding dropout, recurrent
dropout and weight drop in the LSTM, the RNN and the GRU (the masked h and the masked Wh of
each step, as autograd would see them), AR and TAR. Their masks come from `draw_mask`, the counter-based
generator of kernels/dropout.py in NumPy's uint64 arithmetic, seeded from NumPy's global
RNG in the order fastlstm's layers draw, so a reference model gets the same masks.
"""

import numpy as np

from fastlstm.functions import sigmoid, softmax
from fastlstm.layers import MatMul, Sigmoid, SigmoidWithLoss, Softmax, cross_entropy_error  # noqa: F401 (plain NumPy)


_GOLDEN, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def draw_mask(shape, dtype, ratio):
    """An inverted-dropout mask (0 or 1 / (1 - ratio)) from a seed drawn from NumPy's global RNG:
    element k keeps where the SplitMix64 hash of seed + (k + 1) * golden, as a uniform in
    [0, 1), exceeds ratio."""
    seed = np.uint64(np.random.randint(0, 2**63 - 1, dtype=np.int64))
    z = seed + np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64) * _GOLDEN  # wraps modulo 2**64
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    uniform = (z >> np.uint64(11)).astype(np.float64) / 2.0**53
    return np.where(uniform > ratio, 1.0 / (1.0 - ratio), 0.0).astype(dtype).reshape(shape)


class Embedding:
    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx = None

    def forward(self, idx):
        W, = self.params
        self.idx = idx
        return W[idx]

    def backward(self, dout):
        dW, = self.grads
        dW[...] = 0
        np.add.at(dW, self.idx, dout)
        return None


class TimeEmbedding:
    def __init__(self, W, dropout=0.0):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.layers = None
        self.W = W
        self.dropout = dropout
        self.word_mask = None
        self.train_flg = True

    def forward(self, xs):
        N, T = xs.shape
        V, D = self.W.shape
        self.word_mask = None
        W = self.W
        if self.train_flg and self.dropout > 0:
            self.word_mask = draw_mask((V,), W.dtype, self.dropout)
            W = W * self.word_mask[:, None]
        out = np.empty((N, T, D), dtype=self.W.dtype)
        self.layers = []
        for t in range(T):
            layer = Embedding(W)
            out[:, t, :] = layer.forward(xs[:, t])
            self.layers.append(layer)
        return out

    def backward(self, dout):
        N, T, D = dout.shape
        grad = 0
        for t in range(T):
            layer = self.layers[t]
            layer.backward(dout[:, t, :])
            grad += layer.grads[0]
        if self.word_mask is not None:
            grad = grad * self.word_mask[:, None]
        self.grads[0][...] = grad
        return None


class TimeAffine:
    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        N, T, D = x.shape
        W, b = self.params
        rx = x.reshape(N * T, -1)
        out = np.dot(rx, W) + b
        self.x = x
        return out.reshape(N, T, -1)

    def backward(self, dout):
        x = self.x
        N, T, D = x.shape
        W, b = self.params
        dout = dout.reshape(N * T, -1)
        rx = x.reshape(N * T, -1)
        self.grads[0][...] = np.dot(rx.T, dout)
        self.grads[1][...] = np.sum(dout, axis=0)
        return np.dot(dout, W.T).reshape(*x.shape)


class TimeSoftmaxWithLoss:
    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None
        self.ignore_label = -1

    def forward(self, xs, ts):
        N, T, V = xs.shape
        if ts.ndim == 3:
            ts = ts.argmax(axis=2)
        mask = ts != self.ignore_label
        xs = xs.reshape(N * T, V)
        ts = ts.reshape(N * T)
        mask = mask.reshape(N * T)
        ys = softmax(xs)
        ls = np.log(ys[np.arange(N * T), ts])
        ls *= mask
        loss = -np.sum(ls)
        loss /= mask.sum()
        self.cache = (ts, ys, mask, (N, T, V))
        return loss

    def backward(self, dout=1):
        ts, ys, mask, (N, T, V) = self.cache
        dx = ys
        dx[np.arange(N * T), ts] -= 1
        dx *= dout
        dx /= mask.sum()
        dx *= mask[:, np.newaxis]
        return dx.reshape((N, T, V))


class TimeDropout:
    def __init__(self, dropout_ratio=0.5, locked=False):
        self.params, self.grads = [], []
        self.dropout_ratio = dropout_ratio
        self.locked = locked
        self.mask = None
        self.train_flg = True

    def forward(self, xs):
        if self.train_flg:
            if self.locked:  # one mask per sequence, for all its steps
                N, T, D = xs.shape
                self.mask = draw_mask((N, 1, D), xs.dtype, self.dropout_ratio)
                return xs * self.mask
            flg = np.random.rand(*xs.shape) > self.dropout_ratio
            scale = 1 / (1.0 - self.dropout_ratio)
            self.mask = flg.astype(xs.dtype) * scale
            return xs * self.mask
        return xs

    def backward(self, dout):
        return dout * self.mask


class LSTM:
    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        N, H = h_prev.shape
        A = np.dot(x, Wx) + np.dot(h_prev, Wh) + b
        f = sigmoid(A[:, :H])
        g = np.tanh(A[:, H:2 * H])
        i = sigmoid(A[:, 2 * H:3 * H])
        o = sigmoid(A[:, 3 * H:])
        c_next = f * c_prev + g * i
        h_next = o * np.tanh(c_next)
        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def backward(self, dh_next, dc_next):
        Wx, Wh, b = self.params
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache
        tanh_c_next = np.tanh(c_next)
        ds = dc_next + (dh_next * o) * (1 - tanh_c_next ** 2)
        dc_prev = ds * f
        di = ds * g
        df = ds * c_prev
        do = dh_next * tanh_c_next
        dg = ds * i
        di *= i * (1 - i)
        df *= f * (1 - f)
        do *= o * (1 - o)
        dg *= (1 - g ** 2)
        dA = np.hstack((df, dg, di, do))
        self.grads[0][...] = np.dot(x.T, dA)
        self.grads[1][...] = np.dot(h_prev.T, dA)
        self.grads[2][...] = dA.sum(axis=0)
        dx = np.dot(dA, Wx.T)
        dh_prev = np.dot(dA, Wh.T)
        return dx, dh_prev, dc_prev


class _RecurrentMasks:
    """Recurrent dropout and weight drop of a recurrent reference layer, drawn as fastlstm's
    layers draw them (the h mask (N, H), then the weight mask, each only while train_flg is
    set and its ratio is above 0)."""

    def _init_masks(self, recurrent_dropout, weight_drop):
        self.recurrent_dropout, self.weight_drop = recurrent_dropout, weight_drop
        self.h_mask = self.weight_mask = None
        self.train_flg = True

    def _draw_masks(self, N):
        """Draws this call's masks; returns Wh as its steps multiply it (times the weight mask)."""
        Wh = self.params[1]
        dropping = self.train_flg and self.recurrent_dropout > 0
        self.h_mask = draw_mask((N, Wh.shape[0]), Wh.dtype, self.recurrent_dropout) if dropping else None
        dropping = self.train_flg and self.weight_drop > 0
        self.weight_mask = draw_mask(Wh.shape, Wh.dtype, self.weight_drop) if dropping else None
        return Wh if self.weight_mask is None else Wh * self.weight_mask

    def _set_grads(self, grads):
        """self.grads = the sums over the steps, dWh times the weight mask (the gradient of Wh)."""
        if self.weight_mask is not None:
            grads[1] = grads[1] * self.weight_mask
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad


class TimeLSTM(_RecurrentMasks):
    def __init__(self, Wx, Wh, b, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h, self.c = None, None
        self.dh = None
        self.stateful = stateful
        self._init_masks(recurrent_dropout, weight_drop)

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        Wh_used = self._draw_masks(N)
        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=Wx.dtype)
        for t in range(T):
            layer = LSTM(Wx, Wh_used, b)
            h_in = self.h if self.h_mask is None else self.h * self.h_mask
            self.h, self.c = layer.forward(xs[:, t, :], h_in, self.c)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D = Wx.shape[0]
        dxs = np.empty((N, T, D), dtype=Wx.dtype)
        dh, dc = 0, 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh, dc = layer.backward(dhs[:, t, :] + dh, dc)
            if self.h_mask is not None:
                dh = dh * self.h_mask
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad
        self._set_grads(grads)
        self.dh = dh
        return dxs

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None


class RNN:
    """The book's RNN step; with `h_mask` (recurrent dropout), h_prev times the mask is what
    Wh multiplies."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, h_mask=None):
        Wx, Wh, b = self.params
        h_in = h_prev if h_mask is None else h_prev * h_mask
        h_next = np.tanh(np.dot(h_in, Wh) + np.dot(x, Wx) + b)
        self.cache = (x, h_in, h_mask, h_next)
        return h_next

    def backward(self, dh_next):
        Wx, Wh, b = self.params
        x, h_in, h_mask, h_next = self.cache
        dt = dh_next * (1 - h_next ** 2)
        self.grads[0][...] = np.dot(x.T, dt)
        self.grads[1][...] = np.dot(h_in.T, dt)
        self.grads[2][...] = np.sum(dt, axis=0)
        dh_prev = np.dot(dt, Wh.T)
        return np.dot(dt, Wx.T), dh_prev if h_mask is None else dh_prev * h_mask


class GRU:
    """The book's GRU step (no bias, gate blocks z, r, h~), with params and grads lists; with
    `h_mask` (recurrent dropout), both products read h_prev times the mask, and
    (1 - z) * h_prev the unmasked h_prev."""

    def __init__(self, Wx, Wh):
        self.params = [Wx, Wh]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh)]
        self.cache = None

    def _blocks(self):
        Wx, Wh = self.params
        H = Wh.shape[0]
        return [(Wx[:, k * H:(k + 1) * H], Wh[:, k * H:(k + 1) * H]) for k in range(3)]

    def forward(self, x, h_prev, h_mask=None):
        (Wxz, Whz), (Wxr, Whr), (Wxh, Whh) = self._blocks()
        h_in = h_prev if h_mask is None else h_prev * h_mask
        z = sigmoid(np.dot(x, Wxz) + np.dot(h_in, Whz))
        r = sigmoid(np.dot(x, Wxr) + np.dot(h_in, Whr))
        h_hat = np.tanh(np.dot(x, Wxh) + np.dot(r * h_in, Whh))
        self.cache = (x, h_prev, h_in, h_mask, z, r, h_hat)
        return (1 - z) * h_prev + z * h_hat

    def backward(self, dh_next):
        (Wxz, Whz), (Wxr, Whr), (Wxh, Whh) = self._blocks()
        x, h_prev, h_in, h_mask, z, r, h_hat = self.cache
        da_h = dh_next * z * (1 - h_hat ** 2)  # the pre-activations' gradients
        d_rh = np.dot(da_h, Whh.T)
        da_z = dh_next * (h_hat - h_prev) * z * (1 - z)
        da_r = d_rh * h_in * r * (1 - r)
        self.grads[0][...] = np.hstack([np.dot(x.T, da) for da in (da_z, da_r, da_h)])
        self.grads[1][...] = np.hstack((np.dot(h_in.T, da_z), np.dot(h_in.T, da_r), np.dot((r * h_in).T, da_h)))
        dx = np.dot(da_z, Wxz.T) + np.dot(da_r, Wxr.T) + np.dot(da_h, Wxh.T)
        dh_in = r * d_rh + np.dot(da_z, Whz.T) + np.dot(da_r, Whr.T)  # through the products
        return dx, dh_next * (1 - z) + (dh_in if h_mask is None else dh_in * h_mask)


class _TimeHidden(_RecurrentMasks):
    """A time layer of a cell whose only state is h (the RNN, the GRU): the cell's step
    layer `_step` over the T steps, with one recurrent mask for all of them."""

    _step = None

    def __init__(self, *params, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
        self.params = list(params)
        self.grads = [np.zeros_like(p) for p in params]
        self.layers = None
        self.h, self.dh = None, None
        self.stateful = stateful
        self._init_masks(recurrent_dropout, weight_drop)

    def forward(self, xs):
        Wx, Wh = self.params[:2]
        N, T, D = xs.shape
        H = Wh.shape[0]
        weights = [Wx, self._draw_masks(N)] + self.params[2:]
        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        for t in range(T):
            layer = self._step(*weights)
            self.h = layer.forward(xs[:, t, :], self.h, self.h_mask)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx = self.params[0]
        N, T, H = dhs.shape
        dxs = np.empty((N, T, Wx.shape[0]), dtype=Wx.dtype)
        dh = 0
        grads = [0] * len(self.params)
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad
        self._set_grads(grads)
        self.dh = dh
        return dxs

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None


class TimeRNN(_TimeHidden):
    _step = RNN

    def __init__(self, Wx, Wh, b, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
        super().__init__(Wx, Wh, b, stateful=stateful, recurrent_dropout=recurrent_dropout, weight_drop=weight_drop)


class TimeGRU(_TimeHidden):
    _step = GRU

    def __init__(self, Wx, Wh, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
        super().__init__(Wx, Wh, stateful=stateful, recurrent_dropout=recurrent_dropout, weight_drop=weight_drop)


class TimeBiLSTM:
    def __init__(self, Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False):
        self.forward_lstm = TimeLSTM(Wx1, Wh1, b1, stateful)
        self.backward_lstm = TimeLSTM(Wx2, Wh2, b2, stateful)
        self.params = self.forward_lstm.params + self.backward_lstm.params
        self.grads = self.forward_lstm.grads + self.backward_lstm.grads

    def forward(self, xs):
        o1 = self.forward_lstm.forward(xs)
        o2 = self.backward_lstm.forward(xs[:, ::-1])
        return np.concatenate((o1, o2[:, ::-1]), axis=2)

    def backward(self, dhs):
        H = dhs.shape[2] // 2
        dxs1 = self.forward_lstm.backward(dhs[:, :, :H])
        dxs2 = self.backward_lstm.backward(dhs[:, :, H:][:, ::-1])
        return dxs1 + dxs2[:, ::-1]


class ActivationRegularisation:
    """AR: alpha * mean(h ** 2); backward adds its gradient into dh in place."""

    def __init__(self, alpha):
        self.alpha = alpha
        self.h = None

    def forward(self, h):
        self.h = h
        return self.alpha * np.mean(h.astype(np.float64) ** 2)

    def backward(self, dh):
        dh += (2 * self.alpha / self.h.size) * self.h
        return dh


class TemporalActivationRegularisation:
    """TAR: beta * mean((h[:, t] - h[:, t - 1]) ** 2) over t >= 1; backward adds its gradient into dh in place."""

    def __init__(self, beta):
        self.beta = beta
        self.h = None

    def forward(self, h):
        self.h = h
        if h.shape[1] < 2:
            return 0.0
        return self.beta * np.mean((h[:, 1:].astype(np.float64) - h[:, :-1]) ** 2)

    def backward(self, dh):
        if self.h.shape[1] > 1:
            g = (2 * self.beta / self.h[:, 1:].size) * (self.h[:, 1:] - self.h[:, :-1])
            dh[:, 1:] += g
            dh[:, :-1] -= g
        return dh


# ------------------------------------------------------- the rest of common.layers and common.time_layers
# With these the module has the names the book's model files import from `common.layers` and
# `common.time_layers`, so a book-style file runs on it as it runs on fastlstm
# (fastlstm/reference/book_files.py). MatMul, Sigmoid, SigmoidWithLoss and Softmax, which
# fastlstm.layers keeps as the book's plain NumPy, come from there.


class Affine:
    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        W, b = self.params
        self.x = x
        return np.dot(x, W) + b

    def backward(self, dout):
        W, b = self.params
        self.grads[0][...] = np.dot(self.x.T, dout)
        self.grads[1][...] = np.sum(dout, axis=0)
        return np.dot(dout, W.T)


class SoftmaxWithLoss:
    def __init__(self):
        self.params, self.grads = [], []
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        if self.t.size == self.y.size:
            self.t = self.t.argmax(axis=1)
        return cross_entropy_error(self.y, self.t)

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        dx *= dout
        return dx / batch_size


class TimeSigmoidWithLoss:
    def __init__(self):
        self.params, self.grads = [], []
        self.xs_shape = None
        self.layers = None

    def forward(self, xs, ts):
        N, T = xs.shape
        self.xs_shape = xs.shape
        self.layers = []
        loss = 0
        for t in range(T):
            layer = SigmoidWithLoss()
            loss += layer.forward(xs[:, t], ts[:, t])
            self.layers.append(layer)
        return loss / T

    def backward(self, dout=1):
        N, T = self.xs_shape
        dxs = np.empty(self.xs_shape, dtype=self.layers[0].y.dtype)
        dout *= 1 / T
        for t in range(T):
            dxs[:, t] = self.layers[t].backward(dout)
        return dxs


class Simple_TimeSoftmaxWithLoss:
    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, xs, ts):
        N, T, V = xs.shape
        layers = []
        loss = 0
        for t in range(T):
            layer = SoftmaxWithLoss()
            loss += layer.forward(xs[:, t, :], ts[:, t])
            layers.append(layer)
        loss /= T
        self.cache = (layers, xs)
        return loss

    def backward(self, dout=1):
        layers, xs = self.cache
        N, T, V = xs.shape
        dxs = np.empty(xs.shape, dtype=xs.dtype)
        dout *= 1 / T
        for t in range(T):
            dxs[:, t, :] = layers[t].backward(dout)
        return dxs


class Simple_TimeAffine:
    """The book's, with its backward reading the Affine layers' grads (the book's reads dW, db,
    which Affine does not have)."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.dW, self.db = None, None
        self.layers = None

    def forward(self, xs):
        N, T, D = xs.shape
        D, M = self.W.shape
        self.layers = []
        out = np.empty((N, T, M), dtype=self.W.dtype)
        for t in range(T):
            layer = Affine(self.W, self.b)
            out[:, t, :] = layer.forward(xs[:, t, :])
            self.layers.append(layer)
        return out

    def backward(self, dout):
        N, T, M = dout.shape
        D, M = self.W.shape
        dxs = np.empty((N, T, D), dtype=self.W.dtype)
        self.dW, self.db = 0, 0
        for t in range(T):
            layer = self.layers[t]
            dxs[:, t, :] = layer.backward(dout[:, t, :])
            self.dW += layer.grads[0]
            self.db += layer.grads[1]
        return dxs
