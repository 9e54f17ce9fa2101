"""The regularisers (locked, recurrent and embedding dropout, weight drop, AR and TAR):
float64 finite differences with the masks held fixed, the plain-NumPy reference with the
same masks, what the masks hold and when they are drawn, and the same bits on any number
of lanes."""

import numpy as np
import pytest

import fastlstm.reference.numpy_layers as ref
import fastlstm.time_layers as fast
from fastlstm.lanes import Lanes
from fastlstm.regularisers import ActivationRegularisation, TemporalActivationRegularisation
from gradcheck import assert_grad_close, numerical_grad

DTYPES = [np.float32, np.float64]
SEED = 11  # np.random.seed before a forward: the masks it draws


def tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)


def randn(rng, *shape, dtype=np.float64, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# gate blocks of H columns in Wx and Wh, and whether the cell has a bias
CELLS = {"LSTM": (4, True), "RNN": (1, True), "GRU": (3, False)}


def cell_weights(rng, cell, D, H, dtype=np.float64):
    """Wx, Wh (and b) of Time{cell}."""
    gates, bias = CELLS[cell]
    weights = (randn(rng, D, gates * H, dtype=dtype, scale=1 / np.sqrt(D)),
               randn(rng, H, gates * H, dtype=dtype, scale=1 / np.sqrt(H)))
    return weights + (randn(rng, gates * H, dtype=dtype, scale=0.5),) if bias else weights


def time_layer(cell, weights, **options):
    return getattr(fast, "Time" + cell)(*weights, **options)


# --- finite differences, masks held fixed ------------------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("recurrent_dropout,weight_drop", [(0.4, 0.0), (0.0, 0.5), (0.3, 0.3)])
@pytest.mark.parametrize("N,T,D,H", [(1, 1, 1, 2), (2, 3, 3, 5), (3, 4, 2, 3)])
def test_gradients_through_the_recurrent_masks(cell, recurrent_dropout, weight_drop, N, T, D, H):
    rng = np.random.default_rng(N * 100 + H)
    layer = time_layer(cell, cell_weights(rng, cell, D, H), stateful=True, recurrent_dropout=recurrent_dropout,
                       weight_drop=weight_drop)
    xs, h0, c0, R = randn(rng, N, T, D), randn(rng, N, H), randn(rng, N, H), randn(rng, N, T, H)
    states = (h0, c0) if cell == "LSTM" else (h0,)

    def loss():
        np.random.seed(SEED)
        layer.set_state(*states)
        return np.sum(layer.forward(xs) * R)

    loss()
    dxs = layer.backward(R)
    grads, dh = [g.copy() for g in layer.grads], layer.dh.copy()
    if recurrent_dropout and N * H > 2:  # some units kept, some dropped, at these seeds
        assert 0 < np.count_nonzero(layer.h_mask) < layer.h_mask.size
    assert_grad_close(dxs, numerical_grad(loss, xs), "dxs")
    assert_grad_close(dh, numerical_grad(loss, h0), "dh")
    for name, p, g in zip(["Wx", "Wh", "b"], layer.params, grads):
        assert_grad_close(g, numerical_grad(loss, p), name)
    if weight_drop:
        assert np.all(grads[1][layer.weight_mask == 0] == 0)  # dropped connections get no gradient
        assert np.any(grads[1] != 0)


def test_embedding_dropout_gradient_with_repeated_ids():
    rng = np.random.default_rng(2)
    W, R = randn(rng, 9, 3), randn(rng, 2, 4, 3)
    ids = np.array([[0, 8, 8, 3], [8, 2, 0, 5]])
    layer = fast.TimeEmbedding(W, dropout=0.5)

    def loss():
        np.random.seed(SEED)
        return np.sum(layer.forward(ids) * R)

    loss()
    assert layer.backward(R) is None
    assert 0 < np.count_nonzero(layer.word_mask) < 9  # some words dropped, some kept, at this seed
    assert_grad_close(layer.grads[0], numerical_grad(loss, W), "W")


def test_locked_dropout_gradient():
    rng = np.random.default_rng(3)
    xs, R = randn(rng, 3, 4, 5), randn(rng, 3, 4, 5)
    layer = fast.TimeDropout(0.4, locked=True)

    def loss():
        np.random.seed(SEED)
        return np.sum(layer.forward(xs) * R)

    loss()
    assert_grad_close(layer.backward(R), numerical_grad(loss, xs), "dxs")


@pytest.mark.parametrize("T", [1, 2, 5])
def test_ar_and_tar_gradients(T):
    rng = np.random.default_rng(T)
    h, dh = randn(rng, 3, T, 4), randn(rng, 3, T, 4)
    for penalty, want in ((ActivationRegularisation(2.0), 2.0 * np.mean(h ** 2)),
                          (TemporalActivationRegularisation(1.5),
                           1.5 * np.mean((h[:, 1:] - h[:, :-1]) ** 2) if T > 1 else 0.0)):
        assert penalty.forward(h) == pytest.approx(want, rel=1e-12, abs=1e-15)
        got = penalty.backward(dh.copy()) - dh
        assert_grad_close(got, numerical_grad(lambda: penalty.forward(h), h), type(penalty).__name__)


def test_ar_and_tar_refuse_bad_coefficients():
    for bad in (-1.0, float("nan"), float("inf"), True, "2"):
        with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
            ActivationRegularisation(bad)
    with pytest.raises(ValueError, match="beta"):
        TemporalActivationRegularisation(-0.5)


# --- the plain-NumPy reference, with the same masks ---------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,T,D,H", [(1, 1, 1, 1), (3, 7, 17, 13), (2, 3, 650, 650)])
def test_recurrent_layers_match_the_reference_with_their_masks(cell, dtype, N, T, D, H):
    rng = np.random.default_rng(H)
    weights = cell_weights(rng, cell, D, H, dtype)
    options = dict(stateful=True, recurrent_dropout=0.3, weight_drop=0.4)
    f, r = time_layer(cell, weights, **options), getattr(ref, "Time" + cell)(*weights, **options)
    for _ in range(2):  # the second call starts from the state the first left, with new masks
        xs, dhs = randn(rng, N, T, D, dtype=dtype), randn(rng, N, T, H, dtype=dtype)
        np.random.seed(SEED)
        got = f.forward(xs)
        np.random.seed(SEED)
        want = r.forward(xs)
        np.testing.assert_array_equal(f.h_mask, r.h_mask)
        np.testing.assert_array_equal(f.weight_mask, r.weight_mask)
        np.testing.assert_allclose(got, want, **tol(dtype))
        np.testing.assert_allclose(f.backward(dhs), r.backward(dhs), **tol(dtype))
        for k, (gf, gr) in enumerate(zip(f.grads, r.grads, strict=True)):
            np.testing.assert_allclose(gf, gr, err_msg=f"grads[{k}]", **tol(dtype))
        np.testing.assert_allclose(f.dh, r.dh, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_and_locked_dropout_match_the_reference(dtype):
    rng = np.random.default_rng(4)
    W = randn(rng, 40, 6, dtype=dtype)
    ids = rng.integers(0, 40, (3, 5))
    f, r = fast.TimeEmbedding(W, dropout=0.4), ref.TimeEmbedding(W, dropout=0.4)
    np.random.seed(SEED)
    out = f.forward(ids)
    np.random.seed(SEED)
    np.testing.assert_array_equal(out, r.forward(ids))
    np.testing.assert_array_equal(f.word_mask, r.word_mask)
    dout = randn(rng, 3, 5, 6, dtype=dtype)
    f.backward(dout)
    r.backward(dout)
    np.testing.assert_allclose(f.grads[0], r.grads[0], **tol(dtype))

    fd, rd = fast.TimeDropout(0.3, locked=True), ref.TimeDropout(0.3, locked=True)
    np.random.seed(SEED)
    dropped = fd.forward(out)
    np.random.seed(SEED)
    np.testing.assert_array_equal(dropped, rd.forward(out))
    np.testing.assert_array_equal(fd.backward(dout), rd.backward(dout))


# --- the masks --------------------------------------------------------------------------------

def test_masks_hold_zeros_and_the_inverse_keep_rate_at_the_ratio():
    rng = np.random.default_rng(5)
    layer = fast.TimeLSTM(*cell_weights(rng, "LSTM", 8, 200, np.float32), recurrent_dropout=0.3, weight_drop=0.6)
    layer.forward(randn(rng, 300, 2, 8, dtype=np.float32))
    for mask, ratio in ((layer.h_mask, 0.3), (layer.weight_mask, 0.6)):
        assert mask.dtype == np.float32
        assert set(np.unique(mask)) == {np.float32(0), np.float32(1 / (1 - ratio))}
        assert np.mean(mask == 0) == pytest.approx(ratio, abs=0.01)
    locked = fast.TimeDropout(0.25, locked=True)
    xs = np.ones((400, 6, 50), np.float32)
    out = locked.forward(xs)
    assert locked.mask.shape == (400, 1, 50)
    assert np.all(out == out[:, :1])  # one mask per sequence, the same at every step
    assert np.mean(locked.mask == 0) == pytest.approx(0.25, abs=0.01)
    embedding = fast.TimeEmbedding(np.ones((5000, 2)), dropout=0.1)
    embedding.forward(np.zeros((1, 1), np.int64))
    assert embedding.word_mask.shape == (5000,) and np.mean(embedding.word_mask == 0) == pytest.approx(0.1, abs=0.015)


@pytest.mark.parametrize("cell", list(CELLS))
def test_masks_follow_train_flg_and_evaluation_applies_none(cell):
    rng = np.random.default_rng(6)
    weights = cell_weights(rng, cell, 4, 5)
    xs = randn(rng, 2, 3, 4)
    plain = time_layer(cell, weights).forward(xs)
    layer = time_layer(cell, weights, recurrent_dropout=0.5, weight_drop=0.5)
    assert not np.array_equal(layer.forward(xs), plain)
    assert layer.h_mask is not None and layer.weight_mask is not None
    layer.train_flg = False
    state = np.random.get_state()
    np.testing.assert_array_equal(layer.forward(xs), plain)
    assert layer.h_mask is None and layer.weight_mask is None
    layer.train_flg = True
    np.testing.assert_array_equal(layer.infer(xs), plain)  # evaluation's path drops nothing either
    assert layer.h_mask is None
    assert np.random.get_state()[2] == state[2] and np.array_equal(np.random.get_state()[1], state[1])
    embedding = fast.TimeEmbedding(randn(rng, 7, 3), dropout=0.5)
    embedding.train_flg = False
    ids = np.array([[1, 2]])
    np.testing.assert_array_equal(embedding.forward(ids), embedding.params[0][ids])
    assert embedding.word_mask is None
    locked = fast.TimeDropout(0.5, locked=True)
    locked.train_flg = False
    assert locked.forward(xs) is xs and locked.mask is None


@pytest.mark.parametrize("cell", list(CELLS))
def test_zero_ratios_keep_the_books_layers_to_the_bit_and_draw_nothing(cell):
    rng = np.random.default_rng(7)
    weights = cell_weights(rng, cell, 6, 9, np.float32)
    xs, dhs = randn(rng, 4, 5, 6, dtype=np.float32), randn(rng, 4, 5, 9, dtype=np.float32)
    book, zero = time_layer(cell, weights), time_layer(cell, weights, recurrent_dropout=0.0, weight_drop=0.0)
    state = np.random.get_state()
    np.testing.assert_array_equal(zero.forward(xs), book.forward(xs))
    np.testing.assert_array_equal(zero.backward(dhs), book.backward(dhs))
    for a, b in zip(zero.grads, book.grads):
        np.testing.assert_array_equal(a, b)
    assert zero.h_mask is None and zero.weight_mask is None
    W = randn(rng, 11, 3, dtype=np.float32)
    ids = rng.integers(0, 11, (2, 4))
    np.testing.assert_array_equal(fast.TimeEmbedding(W, dropout=0.0).forward(ids), fast.TimeEmbedding(W).forward(ids))
    assert np.array_equal(np.random.get_state()[1], state[1])  # no seed drawn
    np.random.seed(3)
    book_drop = fast.TimeDropout(0.3).forward(xs)
    np.random.seed(3)
    np.testing.assert_array_equal(fast.TimeDropout(0.3, locked=False).forward(xs), book_drop)


def test_bad_ratios_and_gradients_are_refused():
    rng = np.random.default_rng(8)
    for bad, cell in ((1.0, "LSTM"), (-0.1, "RNN"), (1.5, "GRU")):
        with pytest.raises(ValueError, match="recurrent_dropout must be in"):
            time_layer(cell, cell_weights(rng, cell, 2, 3), recurrent_dropout=bad)
        with pytest.raises(ValueError, match="weight_drop must be in"):
            time_layer(cell, cell_weights(rng, cell, 2, 3), weight_drop=bad)
        with pytest.raises(ValueError, match="dropout must be in"):
            fast.TimeEmbedding(np.ones((3, 2)), dropout=bad)
    with pytest.raises(TypeError, match="weight_drop must be a number"):
        fast.TimeLSTM(*cell_weights(rng, "LSTM", 2, 3), weight_drop="0.5")
    locked = fast.TimeDropout(0.5, locked=True)
    locked.forward(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="dout"):
        locked.backward(np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="3-D"):
        locked.forward(np.ones((2, 3)))


# --- lanes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_recurrence_gives_the_same_bits_on_any_lanes(cell, dtype):
    """The masks act per unit (h) and per packed element (Wh): any cut of the units gives the
    one lane's bits."""
    rng = np.random.default_rng(9)
    weights = cell_weights(rng, cell, 7, 37, dtype)
    xs, dhs = randn(rng, 3, 6, 7, dtype=dtype), randn(rng, 3, 6, 37, dtype=dtype)
    runs = []
    for lanes in (Lanes(threads=1), Lanes(threads=3, min_units=1, min_step_work=0, speeds=[1.0, 0.4, 1.9])):
        layer = time_layer(cell, weights, recurrent_dropout=0.3, weight_drop=0.3)
        layer.lanes = lanes
        np.random.seed(SEED)
        out = layer.forward(xs)
        runs.append([out, layer.backward(dhs), layer.dh, *[g.copy() for g in layer.grads]])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_a_part_of_a_batch_draws_its_rows_of_the_whole_batchs_masks(cell):
    """A layer given rows_before = R (a rank of a data-parallel run holding rows R onwards) draws,
    from the same RNG state, the rows from R on of the masks that the whole batch's layer draws:
    per-element and locked dropout, and the recurrent mask."""
    rng = np.random.default_rng(5)
    N, T, D, H, R = 6, 4, 5, 3, 2
    xs = randn(rng, N, T, D)
    weights = cell_weights(rng, cell, D, H)
    layers = {"per element": lambda: fast.TimeDropout(0.5), "locked": lambda: fast.TimeDropout(0.5, locked=True),
              "recurrent": lambda: time_layer(cell, weights, recurrent_dropout=0.5)}
    for name, make in layers.items():
        whole, part = make(), make()
        part.rows_before = R
        np.random.seed(SEED)
        whole.forward(xs)
        np.random.seed(SEED)
        part.forward(xs[R:R + 3])
        mask = "h_mask" if name == "recurrent" else "mask"
        assert np.array_equal(getattr(part, mask), getattr(whole, mask)[R:R + 3]), name
        assert 0 < np.count_nonzero(getattr(part, mask)) < getattr(part, mask).size, name
