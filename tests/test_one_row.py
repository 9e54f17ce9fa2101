"""The one-row path of text generation (N = T = 1: kernels/one_row.py, the CPU backend's
_lstm_one_row and _row_affine): against the plain-NumPy reference and the sequence path,
the same bits over any lanes, state carried and reset, bad input refused."""

import numpy as np
import pytest

import fastlstm.reference.numpy_layers as ref
import fastlstm.time_layers as fast
from fastlstm import models
from fastlstm.backends import cpu
from fastlstm.lanes import Lanes
from fastlstm.reference import models as ref_models

DTYPES = [np.float32, np.float64]
WIDTHS = [1, 3, 13, 17]


def tol(dtype):
    """The reference tests' tolerance (tests/test_layers_vs_reference.py)."""
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)


def reordered(dtype):
    """Against the sequence path, whose products BLAS sums in another order: float rounding."""
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


def uneven_lanes():
    """Three lanes of uneven speeds that split even a one-row product of a few columns."""
    return Lanes(threads=3, min_rows=1, min_row_work=1, speeds=[1.0, 0.5, 2.0])


def lstm_weights(rng, dtype, D, H):
    Wx, Wh, b = (rng.standard_normal(s).astype(dtype) for s in ((D, 4 * H), (H, 4 * H), (4 * H,)))
    return Wx / dtype(np.sqrt(D)), Wh / dtype(np.sqrt(H)), b * dtype(0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("H", WIDTHS)
def test_lstm_one_token_at_a_time_follows_the_reference_forward_and_backward(dtype, H):
    rng = np.random.default_rng(H)
    D = H + 2
    w = lstm_weights(rng, dtype, D, H)
    f, r = fast.TimeLSTM(*w, stateful=True), ref.TimeLSTM(*w, stateful=True)
    for step in range(4):  # the state carries over from token to token
        xs, dhs = (rng.standard_normal((1, 1, n)).astype(dtype) for n in (D, H))
        out = f.forward(xs)
        assert out.dtype == dtype and out.shape == (1, 1, H)
        np.testing.assert_allclose(out, r.forward(xs), **tol(dtype))
        np.testing.assert_allclose(f.c, r.c, **tol(dtype))
        np.testing.assert_allclose(f.backward(dhs), r.backward(dhs), **tol(dtype))
        for gf, gr in zip(f.grads, r.grads):
            np.testing.assert_allclose(gf, gr, **tol(dtype))
        np.testing.assert_allclose(f.dh, r.dh, **tol(dtype))
    f.reset_state()
    r.reset_state()
    xs = rng.standard_normal((1, 1, D)).astype(dtype)
    np.testing.assert_allclose(f.forward(xs), r.forward(xs), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("H", WIDTHS + [130])
def test_lstm_one_row_agrees_with_the_sequence_path_and_its_bits_with_any_lanes(dtype, H):
    """Weights that are not C-contiguous take the sequence path (the fallback)."""
    rng = np.random.default_rng(100 + H)
    D = 2 * H + 1
    w = lstm_weights(rng, dtype, D, H)
    h0, c0 = (rng.standard_normal((1, H)).astype(dtype) for _ in range(2))
    tokens = rng.standard_normal((3, 1, 1, D)).astype(dtype)
    runs = {}
    for name, weights, lanes in (("one lane", w, Lanes(threads=1)), ("uneven lanes", w, uneven_lanes()),
                                 ("sequence", [np.asfortranarray(a) for a in w[:2]] + [w[2]], Lanes(threads=1))):
        layer = fast.TimeLSTM(*weights, stateful=True)
        layer.lanes = lanes
        layer.set_state(h0, c0)
        runs[name] = [(layer.forward(x), layer.h.copy(), layer.c.copy()) for x in tokens]
    for one, many, sequence in zip(runs["one lane"], runs["uneven lanes"], runs["sequence"]):
        for a, b, c in zip(one, many, sequence):
            np.testing.assert_array_equal(b, a)
            np.testing.assert_allclose(a, c, **reordered(dtype))


def test_lstm_batches_and_sequences_take_the_sequence_path_with_one_row_state():
    """N > 1 or T > 1 after one-row calls: the sequence path, starting from their state."""
    rng = np.random.default_rng(9)
    w = lstm_weights(rng, np.float64, 5, 7)
    f, r = fast.TimeLSTM(*w, stateful=True), ref.TimeLSTM(*w, stateful=True)
    for shape in ((1, 1, 5), (1, 3, 5), (1, 1, 5)):
        xs = rng.standard_normal(shape)
        np.testing.assert_allclose(f.forward(xs), r.forward(xs), **tol(np.float64))
    f.reset_state()
    r.reset_state()
    xs = rng.standard_normal((2, 1, 5))
    np.testing.assert_allclose(f.forward(xs), r.forward(xs), **tol(np.float64))
    with pytest.raises(ValueError, match="reset_state"):
        f.forward(xs[:1])


def test_lstm_infer_of_one_row_is_forward_without_saving():
    rng = np.random.default_rng(10)
    w = lstm_weights(rng, np.float32, 6, 5)
    trained, evaluated = fast.TimeLSTM(*w, stateful=True), fast.TimeLSTM(*w, stateful=True)
    for x in rng.standard_normal((3, 1, 1, 6)).astype(np.float32):
        np.testing.assert_array_equal(evaluated.infer(x), trained.forward(x))
        np.testing.assert_array_equal(evaluated.c, trained.c)
    with pytest.raises(RuntimeError, match="before forward"):
        evaluated.backward(np.zeros((1, 1, 5), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D,V", [(1, 1), (3, 5), (13, 37), (17, 300), (45, 64)])
@pytest.mark.parametrize("tied", [False, True])
def test_affine_of_one_row_reads_the_weight_where_it_lies_with_the_same_bits_on_any_lanes(dtype, D, V, tied):
    rng = np.random.default_rng(D * V)
    W = rng.standard_normal((V, D)).astype(dtype).T if tied else rng.standard_normal((D, V)).astype(dtype)
    b = rng.standard_normal(V).astype(dtype)
    x = rng.standard_normal(D).astype(dtype)
    layer = fast.TimeAffine(W, b)
    out = layer.forward(x.reshape(1, 1, D))
    assert out.shape == (1, 1, V) and out.dtype == dtype
    np.testing.assert_allclose(out[0, 0], x.astype(np.float64) @ W.astype(np.float64) + b, **reordered(dtype))
    np.testing.assert_allclose(out, ref.TimeAffine(W, b).forward(x.reshape(1, 1, D)), **tol(dtype))
    for lanes in (Lanes(threads=1), uneven_lanes()):
        again = np.empty(V, dtype)
        cpu._row_affine(x, W, b, again, lanes)
        np.testing.assert_array_equal(again, out[0, 0])


def test_affine_of_one_row_backward_and_a_strided_weight():
    """backward after a one-row forward; a weight neither C- nor F-contiguous takes BLAS."""
    rng = np.random.default_rng(11)
    W = rng.standard_normal((7, 18))[:, ::2]
    b = rng.standard_normal(9)
    x, dout = rng.standard_normal((1, 1, 7)), rng.standard_normal((1, 1, 9))
    f, r = fast.TimeAffine(W, b), ref.TimeAffine(W, b)
    np.testing.assert_allclose(f.forward(x), r.forward(x), **tol(np.float64))
    np.testing.assert_allclose(f.backward(dout), r.backward(dout), **tol(np.float64))
    for gf, gr in zip(f.grads, r.grads):
        np.testing.assert_allclose(gf, gr, **tol(np.float64))


def test_bad_input_of_one_row_is_refused():
    rng = np.random.default_rng(12)
    E = rng.standard_normal((10, 4)).astype(np.float32)
    embed = fast.TimeEmbedding(E)
    with pytest.raises(IndexError, match="10"):
        embed.forward(np.array([[10]]))
    with pytest.raises(TypeError):
        embed.forward(np.array([[1.0]]))
    lstm = fast.TimeLSTM(*lstm_weights(rng, np.float32, 4, 3))
    with pytest.raises(ValueError, match="width"):
        lstm.forward(np.zeros((1, 1, 5), np.float32))
    with pytest.raises(ValueError, match="width"):
        fast.TimeAffine(E.T, np.zeros(10, np.float32)).forward(np.zeros((1, 1, 3), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,sizes", [("Rnnlm", dict(vocab_size=41, wordvec_size=13, hidden_size=17)),
                                        ("BetterRnnlm", dict(vocab_size=41, wordvec_size=17, hidden_size=17))])
def test_models_predict_one_token_at_a_time_as_the_reference(dtype, name, sizes):
    np.random.seed(3)
    model = getattr(models, name)(dtype=dtype, **sizes)
    np.random.seed(3)
    book = getattr(ref_models, name)(dtype=dtype, **sizes)
    for p, q in zip(model.params, book.params):  # biases that are not zero
        if p.ndim == 1:
            p[...] = q[...] = np.random.standard_normal(p.shape)
    for token in (3, 40, 0, 3, 17):
        x = np.array([[token]])
        np.testing.assert_allclose(model.predict(x), book.predict(x), **tol(dtype))
    model.reset_state()
    book.reset_state()
    np.testing.assert_allclose(model.predict(np.array([[5]])), book.predict(np.array([[5]])), **tol(dtype))


@pytest.mark.parametrize("tied", [False, True])
def test_affine_of_one_row_with_a_strided_bias(tied):
    rng = np.random.default_rng(14)
    W = rng.standard_normal((11, 5)).T if tied else rng.standard_normal((5, 11))
    b = rng.standard_normal(22)[::2]
    x = rng.standard_normal((1, 1, 5))
    np.testing.assert_allclose(fast.TimeAffine(W, b).forward(x)[0, 0], x[0, 0] @ W + b, **reordered(np.float64))
