"""Plain-NumPy reference of the book's time layers, step by step as the book
writes them, for tests and benchmarks only: the yardstick that fastlstm's kernels are
checked and timed against. Arrays carry the weights' dtype instead of the book's fixed
float32, so the reference also runs in float64.

The regularisers are written here as plainly: locked dropout, embedding dropout, recurrent
dropout and weight drop in the LSTM (the masked h and the masked Wh of each step, as
autograd would see them), AR and TAR. Their masks come from `draw_mask`, the counter-based
generator of kernels/dropout.py in NumPy's uint64 arithmetic, seeded from NumPy's global
RNG in the order fastlstm's layers draw, so a reference model gets the same masks.
"""

import numpy as np

from fastlstm.functions import sigmoid, softmax


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


class TimeLSTM:
    def __init__(self, Wx, Wh, b, stateful=False, recurrent_dropout=0.0, weight_drop=0.0):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h, self.c = None, None
        self.dh = None
        self.stateful = stateful
        self.recurrent_dropout, self.weight_drop = recurrent_dropout, weight_drop
        self.h_mask = self.weight_mask = None
        self.train_flg = True

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        dropping = self.train_flg and self.recurrent_dropout > 0
        self.h_mask = draw_mask((N, H), Wh.dtype, self.recurrent_dropout) if dropping else None
        dropping = self.train_flg and self.weight_drop > 0
        self.weight_mask = draw_mask(Wh.shape, Wh.dtype, self.weight_drop) if dropping else None
        Wh_used = Wh if self.weight_mask is None else Wh * self.weight_mask
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
        if self.weight_mask is not None:
            grads[1] = grads[1] * self.weight_mask
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None


class RNN:
    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        h_next = np.tanh(np.dot(h_prev, Wh) + np.dot(x, Wx) + b)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next):
        Wx, Wh, b = self.params
        x, h_prev, h_next = self.cache
        dt = dh_next * (1 - h_next ** 2)
        self.grads[0][...] = np.dot(x.T, dt)
        self.grads[1][...] = np.dot(h_prev.T, dt)
        self.grads[2][...] = np.sum(dt, axis=0)
        return np.dot(dt, Wx.T), np.dot(dt, Wh.T)


class TimeRNN:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h, self.dh = None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        for t in range(T):
            layer = RNN(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        dxs = np.empty((N, T, Wx.shape[0]), dtype=Wx.dtype)
        dh = 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None


class GRU:
    """The book's GRU step (no bias, gate blocks z, r, h~), with params and grads lists."""

    def __init__(self, Wx, Wh):
        self.params = [Wx, Wh]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh)]
        self.cache = None

    def _blocks(self):
        Wx, Wh = self.params
        H = Wh.shape[0]
        return [(Wx[:, k * H:(k + 1) * H], Wh[:, k * H:(k + 1) * H]) for k in range(3)]

    def forward(self, x, h_prev):
        (Wxz, Whz), (Wxr, Whr), (Wxh, Whh) = self._blocks()
        z = sigmoid(np.dot(x, Wxz) + np.dot(h_prev, Whz))
        r = sigmoid(np.dot(x, Wxr) + np.dot(h_prev, Whr))
        h_hat = np.tanh(np.dot(x, Wxh) + np.dot(r * h_prev, Whh))
        self.cache = (x, h_prev, z, r, h_hat)
        return (1 - z) * h_prev + z * h_hat

    def backward(self, dh_next):
        (Wxz, Whz), (Wxr, Whr), (Wxh, Whh) = self._blocks()
        x, h_prev, z, r, h_hat = self.cache
        da_h = dh_next * z * (1 - h_hat ** 2)  # the pre-activations' gradients
        d_rh = np.dot(da_h, Whh.T)
        da_z = dh_next * (h_hat - h_prev) * z * (1 - z)
        da_r = d_rh * h_prev * r * (1 - r)
        self.grads[0][...] = np.hstack([np.dot(x.T, da) for da in (da_z, da_r, da_h)])
        self.grads[1][...] = np.hstack((np.dot(h_prev.T, da_z), np.dot(h_prev.T, da_r), np.dot((r * h_prev).T, da_h)))
        dx = np.dot(da_z, Wxz.T) + np.dot(da_r, Wxr.T) + np.dot(da_h, Wxh.T)
        dh_prev = dh_next * (1 - z) + r * d_rh + np.dot(da_z, Whz.T) + np.dot(da_r, Whr.T)
        return dx, dh_prev


class TimeGRU:
    def __init__(self, Wx, Wh, stateful=False):
        self.params = [Wx, Wh]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh)]
        self.layers = None
        self.h, self.dh = None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        for t in range(T):
            layer = GRU(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx, Wh = self.params
        N, T, H = dhs.shape
        dxs = np.empty((N, T, Wx.shape[0]), dtype=Wx.dtype)
        dh = 0
        grads = [0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None


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
