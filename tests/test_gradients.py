"""Every layer's backward against central finite differences in float64, w.r.t. its
inputs and every one of its params, at odd sizes."""

import numpy as np
import pytest

from fastlstm.time_layers import (GRU, LSTM, RNN, TimeAffine, TimeBiLSTM, TimeDropout, TimeEmbedding, TimeGRU, TimeLSTM,
                                  TimeRNN, TimeSoftmaxWithLoss)
from gradcheck import assert_grad_close, numerical_grad

rng = np.random.default_rng(1234)


def randn(*shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("N,T,D,H", [(1, 1, 1, 1), (2, 3, 3, 5), (3, 4, 2, 3)])
def test_time_lstm(N, T, D, H):
    layer = TimeLSTM(randn(D, 4 * H) * 0.5, randn(H, 4 * H) * 0.5, randn(4 * H) * 0.5, stateful=True)
    xs, h0, c0, R = randn(N, T, D), randn(N, H), randn(N, H), randn(N, T, H)

    def loss():
        layer.set_state(h0, c0)
        return np.sum(layer.forward(xs) * R)

    loss()
    dxs = layer.backward(R)
    assert_grad_close(dxs, numerical_grad(loss, xs), "dxs")
    assert_grad_close(layer.dh, numerical_grad(loss, h0), "dh")
    for name, p, g in zip(["Wx", "Wh", "b"], layer.params, layer.grads):
        analytic = g.copy()
        assert_grad_close(analytic, numerical_grad(loss, p), name)


@pytest.mark.parametrize("cls,gates", [(TimeRNN, 1), (TimeGRU, 3)])
@pytest.mark.parametrize("N,T,D,H", [(1, 1, 1, 1), (2, 3, 3, 5), (3, 4, 2, 3)])
def test_time_rnn_and_gru(cls, gates, N, T, D, H):
    weights = [randn(D, gates * H) * 0.5, randn(H, gates * H) * 0.5] + ([randn(H) * 0.5] if cls is TimeRNN else [])
    layer = cls(*weights, stateful=True)
    xs, h0, R = randn(N, T, D), randn(N, H), randn(N, T, H)

    def loss():
        layer.set_state(h0)
        return np.sum(layer.forward(xs) * R)

    loss()
    dxs = layer.backward(R)
    assert_grad_close(dxs, numerical_grad(loss, xs), "dxs")
    assert_grad_close(layer.dh, numerical_grad(loss, h0), "dh")
    for k, (p, g) in enumerate(zip(layer.params, layer.grads, strict=True)):
        analytic = g.copy()
        assert_grad_close(analytic, numerical_grad(loss, p), f"params[{k}]")


@pytest.mark.parametrize("N,T,D,H", [(1, 1, 1, 1), (2, 3, 3, 2)])
def test_time_bilstm(N, T, D, H):
    layer = TimeBiLSTM(*(randn(*shape) * 0.5 for shape in [(D, 4 * H), (H, 4 * H), (4 * H,)] * 2))
    xs, R = randn(N, T, D), randn(N, T, 2 * H)

    def loss():
        return np.sum(layer.forward(xs) * R)

    loss()
    dxs = layer.backward(R)
    assert_grad_close(dxs, numerical_grad(loss, xs), "dxs")
    for k, (p, g) in enumerate(zip(layer.params, layer.grads, strict=True)):
        analytic = g.copy()
        assert_grad_close(analytic, numerical_grad(loss, p), f"params[{k}]")


@pytest.mark.parametrize("cls,gates,states", [(RNN, 1, 1), (GRU, 3, 1), (LSTM, 4, 2)])
def test_single_steps(cls, gates, states):
    N, D, H = 3, 2, 4
    layer = cls(*[randn(D, gates * H) * 0.5, randn(H, gates * H) * 0.5] + ([] if cls is GRU else [randn(gates * H)]))
    x, inputs = randn(N, D), [randn(N, H) for _ in range(states)]  # h_prev (and c_prev)
    Rs = [randn(N, H) for _ in range(states)]

    def loss():
        out = layer.forward(x, *inputs)
        return sum(np.sum(o * R) for o, R in zip(out if states > 1 else [out], Rs))

    loss()
    dx, *dstates = layer.backward(*Rs)
    assert_grad_close(dx, numerical_grad(loss, x), "dx")
    for k, (d, a) in enumerate(zip(dstates, inputs, strict=True)):
        assert_grad_close(d, numerical_grad(loss, a), f"d state {k}")
    for k, (p, g) in enumerate(zip(layer.params, layer.grads, strict=True)):
        analytic = g.copy()
        assert_grad_close(analytic, numerical_grad(loss, p), f"params[{k}]")


def test_time_embedding_with_repeated_ids():
    W = randn(7, 3)
    ids = np.array([[0, 6, 6], [6, 2, 0]])
    R = randn(2, 3, 3)
    layer = TimeEmbedding(W)

    def loss():
        return np.sum(layer.forward(ids) * R)

    loss()
    assert layer.backward(R) is None
    assert_grad_close(layer.grads[0], numerical_grad(loss, W), "W")


@pytest.mark.parametrize("tied", [False, True])
def test_time_affine(tied):
    D, V = 4, 5
    E = randn(V, D)
    W = E.T if tied else randn(D, V)
    b = randn(V)
    x, R = randn(2, 3, D), randn(2, 3, V)
    layer = TimeAffine(W, b)

    def loss():
        return np.sum(layer.forward(x) * R)

    loss()
    dx = layer.backward(R)
    assert_grad_close(dx, numerical_grad(loss, x), "dx")
    assert_grad_close(layer.grads[0], numerical_grad(loss, W), "W")
    assert_grad_close(layer.grads[1], numerical_grad(loss, b), "b")


@pytest.mark.parametrize("ignored", [0, 1, 3])
def test_time_softmax_with_loss(ignored):
    xs = randn(2, 3, 7) * 3
    ts = rng.integers(0, 7, size=(2, 3))
    ts.reshape(-1)[:ignored] = -1
    layer = TimeSoftmaxWithLoss()

    def loss():
        return layer.forward(xs, ts)

    loss()
    dout = 1.7
    dx = layer.backward(dout)
    assert_grad_close(dx, dout * numerical_grad(loss, xs), "dxs")
    assert np.all(dx.reshape(6, 7)[:ignored] == 0)


def test_time_dropout():
    layer = TimeDropout(0.3)
    xs, R = randn(3, 4, 5), randn(3, 4, 5)

    def loss():
        np.random.seed(7)  # the same mask on every call
        return np.sum(layer.forward(xs) * R)

    loss()
    dxs = layer.backward(R)
    assert_grad_close(dxs, numerical_grad(loss, xs), "dxs")
