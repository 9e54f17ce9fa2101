"""fastlstm's time layers against the plain-NumPy reference of the book's layers, in
float32 and float64, at odd and book-sized shapes, with the book's state semantics."""

import numpy as np
import pytest

import fastlstm.time_layers as fast
import fastlstm.reference.numpy_layers as ref

DTYPES = [np.float32, np.float64]
# (N, T, width): batch 1, one time step, widths not multiples of 8 or 16, and the book's sizes
SHAPES = [(1, 1, 1), (1, 5, 3), (4, 1, 13), (3, 7, 17), (2, 4, 100), (2, 3, 650)]


def tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)


def weights(rng, dtype, *shapes, scale=0.5):
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]


def assert_same(a, b, dtype, what):
    assert a.dtype == dtype, f"{what}: dtype {a.dtype}, expected {dtype}"
    np.testing.assert_allclose(a, b, err_msg=what, **tol(dtype))


def lstm_pair(rng, dtype, D, H, stateful=False):
    Wx, Wh, b = weights(rng, dtype, (D, 4 * H), (H, 4 * H), (4 * H,))
    Wx /= np.sqrt(D)
    Wh /= np.sqrt(H)
    return fast.TimeLSTM(Wx, Wh, b, stateful), ref.TimeLSTM(Wx, Wh, b, stateful)


def check_lstm_step(f, r, xs, dhs, dtype):
    assert_same(f.forward(xs), r.forward(xs), dtype, "hs")
    assert_same(f.h, r.h, dtype, "h")
    assert_same(f.c, r.c, dtype, "c")
    assert_same(f.backward(dhs), r.backward(dhs), dtype, "dxs")
    for name, gf, gr in zip(["dWx", "dWh", "db"], f.grads, r.grads):
        assert_same(gf, gr, dtype, name)
    assert_same(f.dh, r.dh, dtype, "dh")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,T,W", SHAPES)
def test_lstm(dtype, N, T, W):
    rng = np.random.default_rng(W)
    f, r = lstm_pair(rng, dtype, W, W)
    xs, dhs = weights(rng, dtype, (N, T, W), (N, T, W), scale=1.0)
    check_lstm_step(f, r, xs, dhs, dtype)
    assert f.params[0] is r.params[0]


@pytest.mark.parametrize("replaced", [0, 1])
def test_lstm_gradient_arrays_put_in_place_of_its_own_receive_the_gradients(replaced):
    rng = np.random.default_rng(3)
    N, T, D, H = 2, 3, 5, 7
    f, r = lstm_pair(rng, np.float64, D, H)
    f.grads[replaced] = np.full_like(f.grads[replaced], np.nan)
    xs, dhs = weights(rng, np.float64, (N, T, D), (N, T, H), scale=1.0)
    check_lstm_step(f, r, xs, dhs, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_stateful_calls_reset_and_set_state(dtype):
    rng = np.random.default_rng(5)
    N, T, D, H = 3, 4, 5, 7
    f, r = lstm_pair(rng, dtype, D, H, stateful=True)
    for _ in range(2):  # the second call starts from the state the first left
        xs, dhs = weights(rng, dtype, (N, T, D), (N, T, H), scale=1.0)
        check_lstm_step(f, r, xs, dhs, dtype)
    f.reset_state()
    r.reset_state()
    assert f.h is None and f.c is None
    xs, dhs = weights(rng, dtype, (N, T, D), (N, T, H), scale=1.0)
    check_lstm_step(f, r, xs, dhs, dtype)
    h, c = weights(rng, dtype, (N, H), (N, H), scale=1.0)
    f.set_state(h, c)
    r.set_state(h, c)
    check_lstm_step(f, r, xs, dhs, dtype)
    f.set_state(h)  # c=None starts from a zero cell
    r.set_state(h)
    check_lstm_step(f, r, xs, dhs, dtype)


def test_lstm_not_stateful_starts_from_zero_each_call():
    rng = np.random.default_rng(6)
    f, _ = lstm_pair(rng, np.float64, 3, 4)
    xs, = weights(rng, np.float64, (2, 3, 3), scale=1.0)
    first = f.forward(xs)
    np.testing.assert_array_equal(f.forward(xs), first)


def test_lstm_gate_order_is_f_g_i_o():
    # With zero weights and bias only, one step from c = 0 gives c = tanh(bg) * sigmoid(bi), h = sigmoid(bo) * tanh(c)
    H = 2
    b = np.zeros(4 * H)
    b[:H], b[H:2 * H], b[2 * H:3 * H], b[3 * H:] = 5.0, 0.3, -0.7, 1.1  # f, g, i, o
    layer = fast.TimeLSTM(np.zeros((1, 4 * H)), np.zeros((H, 4 * H)), b)
    hs = layer.forward(np.zeros((1, 1, 1)))
    sig = lambda z: 1 / (1 + np.exp(-z))
    c = np.tanh(0.3) * sig(-0.7)
    np.testing.assert_allclose(layer.c, np.full((1, H), c))
    np.testing.assert_allclose(hs[0, 0], np.full(H, sig(1.1) * np.tanh(c)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,T,W", SHAPES)
def test_embedding_affine_softmax(dtype, N, T, W):
    rng = np.random.default_rng(W + 1)
    V = W + 10
    E, b = weights(rng, dtype, (V, W), (V,))
    E /= np.sqrt(W)  # scores of order 1, where the book's unfused softmax does not underflow
    ids = rng.integers(0, V, size=(N, T)).astype(np.int32)
    fe, re = fast.TimeEmbedding(E), ref.TimeEmbedding(E)
    x = fe.forward(ids)
    assert_same(x, re.forward(ids), dtype, "embedding out")
    fa, ra = fast.TimeAffine(E.T, b), ref.TimeAffine(E.T, b)  # tied: the transposed view
    assert fa.params[0].base is E
    scores = fa.forward(x)
    assert_same(scores, ra.forward(x), dtype, "affine out")
    ts = rng.integers(0, V, size=(N, T))
    ts[0, 0] = -1 if N * T > 1 else ts[0, 0]
    fl, rl = fast.TimeSoftmaxWithLoss(), ref.TimeSoftmaxWithLoss()
    loss = fl.forward(scores, ts)
    np.testing.assert_allclose(loss, rl.forward(scores.copy(), ts), **tol(dtype))
    dscores = fl.backward()
    assert_same(dscores, rl.backward(), dtype, "softmax dx")
    dx = fa.backward(dscores)
    assert_same(dx, ra.backward(dscores), dtype, "affine dx")
    for name, gf, gr in zip(["dW", "db"], fa.grads, ra.grads):
        assert_same(gf, gr, dtype, name)
    fe.backward(dx)
    re.backward(dx)
    assert_same(fe.grads[0], re.grads[0], dtype, "embedding dW")


def test_one_hot_targets_equal_ids():
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((2, 3, 5))
    ts = rng.integers(0, 5, size=(2, 3))
    layer = fast.TimeSoftmaxWithLoss()
    by_id = layer.forward(xs, ts)
    assert layer.forward(xs, np.eye(5)[ts]) == by_id


def test_ignored_targets_do_not_count():
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((1, 4, 6))
    ts = np.array([[2, -1, 5, -1]])
    layer = fast.TimeSoftmaxWithLoss()
    loss = layer.forward(xs, ts)
    kept = fast.TimeSoftmaxWithLoss().forward(xs[:, [0, 2]], ts[:, [0, 2]])
    np.testing.assert_allclose(loss, kept)
    dx = layer.backward()
    assert np.all(dx[0, [1, 3]] == 0)
    np.testing.assert_allclose(dx[0, [0, 2]].sum(axis=-1), 0, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,T,V", [(1, 1, 1), (3, 7, 17), (2, 35, 1000)])
def test_gradient_made_in_forward_is_backwards_to_the_bit(dtype, N, T, V):
    """After a forward followed by backward, the next forward writes the gradient (for
    dout = 1) in its pass over the scores; backward hands it out, the same bits as a
    gradient made in backward, once; other douts and a second call make their own."""
    rng = np.random.default_rng(V)
    steps = [(rng.standard_normal((N, T, V)).astype(dtype) * 3, rng.integers(-1, V, size=(N, T))) for _ in range(3)]
    for _, ts in steps:
        ts[0, 0] = max(ts[0, 0], 0)
    trained = fast.TimeSoftmaxWithLoss()
    for k, (xs, ts) in enumerate(steps):
        loss = trained.forward(xs, ts)
        made_in_forward = trained.cache[-1]
        assert (made_in_forward is not None) == (k > 0)
        fresh = fast.TimeSoftmaxWithLoss()
        assert fresh.forward(xs, ts) == loss
        want = fresh.backward()
        got = trained.backward()
        if k > 0:
            assert got.base is made_in_forward
        np.testing.assert_array_equal(got, want)
        got[...] = 7
        np.testing.assert_array_equal(trained.backward(), want)
        np.testing.assert_array_equal(trained.backward(2.5), fresh.backward(2.5))
    trained.forward(*steps[0])
    trained.forward(*steps[1])  # no backward came after the last forward: the gradient waits for backward
    assert trained.cache[-1] is None
    np.testing.assert_array_equal(trained.backward(), _gradient(*steps[1]))


def _gradient(xs, ts):
    layer = fast.TimeSoftmaxWithLoss()
    layer.forward(xs, ts)
    return layer.backward()


def test_tied_weight_gradient_lands_in_the_transposed_buffer():
    rng = np.random.default_rng(8)
    E = rng.standard_normal((11, 4))
    W = E.T
    affine = fast.TimeAffine(W, np.zeros(11))
    assert affine.params[0] is W and W.base is E  # the view itself, not a copy
    x = rng.standard_normal((2, 3, 4))
    dout = rng.standard_normal((2, 3, 11))
    affine.forward(x)
    affine.backward(dout)
    np.testing.assert_allclose(affine.grads[0], x.reshape(6, 4).T @ dout.reshape(6, 11))
    E[0, 0] += 1.0  # the layer sees updates made through the tied embedding
    np.testing.assert_allclose(affine.forward(x), x @ E.T)
