"""Seconds per call of each kernel path through the public time layers, in float32 (the book)
and float64 (the study notebook), at the widths of Rnnlm (100) and BetterRnnlm (650);
batch N=20 x T=35 and vocabulary V=10000 as in the book's training."""

import numpy as np

from fastlstm.time_layers import TimeEmbedding, TimeLSTM, TimeSoftmaxWithLoss

DTYPES = ["float32", "float64"]
WIDTHS = [100, 650]
N, T, V = 20, 35, 10000


class LSTM:
    """TimeLSTM with D = H = width: one input product, then per step h @ Wh and the fused gate pass."""

    params = (DTYPES, WIDTHS)
    param_names = ["dtype", "width"]

    def setup(self, dtype, width):
        rng = np.random.default_rng(0)
        H = width
        Wx, Wh = (rng.standard_normal((2, H, 4 * H)) / np.sqrt(H)).astype(dtype)
        self.layer = TimeLSTM(Wx, Wh, np.zeros(4 * H, dtype))
        self.xs, self.dhs = rng.standard_normal((2, N, T, H)).astype(dtype)
        self.layer.forward(self.xs)  # warms the JIT and saves what backward needs
        self.layer.backward(self.dhs)

    def time_forward(self, dtype, width):
        self.layer.forward(self.xs)

    def time_backward(self, dtype, width):
        self.layer.backward(self.dhs)


class SoftmaxCrossEntropy:
    """TimeSoftmaxWithLoss forward + backward over N x T rows of V scores (no width: V sets the size)."""

    params = (DTYPES,)
    param_names = ["dtype"]

    def setup(self, dtype):
        rng = np.random.default_rng(0)
        self.scores = rng.standard_normal((N, T, V)).astype(dtype)
        self.ts = rng.integers(0, V, size=(N, T))
        self.layer = TimeSoftmaxWithLoss()
        self.time_forward_backward(dtype)

    def time_forward_backward(self, dtype):
        self.layer.forward(self.scores, self.ts)
        self.layer.backward()


class EmbeddingBackward:
    """TimeEmbedding backward: the race-free scatter-add of N x T rows into a V x width gradient."""

    params = (DTYPES, WIDTHS)
    param_names = ["dtype", "width"]

    def setup(self, dtype, width):
        rng = np.random.default_rng(0)
        self.layer = TimeEmbedding(rng.standard_normal((V, width)).astype(dtype))
        self.layer.forward(rng.integers(0, V, size=(N, T)))
        self.dout = rng.standard_normal((N, T, width)).astype(dtype)
        self.layer.backward(self.dout)

    def time_backward(self, dtype, width):
        self.layer.backward(self.dout)
