"""TimeRNN, TimeGRU and TimeBiLSTM, and the book's single-step RNN, GRU and LSTM, against
the plain-NumPy reference of the book's layers in float32 and float64 at odd shapes, with
the book's state semantics; the same bits on any lanes; evaluation; bad input."""

import numpy as np
import pytest

import fastlstm.reference.numpy_layers as ref
import fastlstm.time_layers as fast
from fastlstm.lanes import Lanes
from test_layers_vs_reference import DTYPES, assert_same, weights

# (N, T, width): batch 1, one time step, widths not multiples of 8 or 16, and wider ones
SHAPES = [(1, 1, 1), (1, 5, 3), (4, 1, 13), (3, 7, 17), (2, 4, 100), (2, 3, 256)]
# gate blocks of H columns in Wx and Wh, and whether the cell has a bias
CELLS = {"RNN": (1, True), "GRU": (3, False), "LSTM": (4, True)}


def cell_weights(rng, dtype, cell, D, H):
    gates, bias = CELLS[cell]
    Wx, Wh, b = weights(rng, dtype, (D, gates * H), (H, gates * H), (gates * H,))
    Wx /= np.sqrt(D)
    Wh /= np.sqrt(H)
    return (Wx, Wh, b) if bias else (Wx, Wh)


def time_pair(rng, dtype, cell, D, H, stateful=False):
    """(fastlstm's, the reference's) Time{cell} on the same weight arrays."""
    w = cell_weights(rng, dtype, cell, D, H)
    return getattr(fast, "Time" + cell)(*w, stateful=stateful), getattr(ref, "Time" + cell)(*w, stateful=stateful)


def check_step(f, r, xs, dhs, dtype):
    assert_same(f.forward(xs), r.forward(xs), dtype, "hs")
    assert_same(f.h, r.h, dtype, "h")
    assert_same(f.backward(dhs), r.backward(dhs), dtype, "dxs")
    for k, (gf, gr) in enumerate(zip(f.grads, r.grads, strict=True)):
        assert_same(gf, gr, dtype, f"grads[{k}]")
    assert_same(f.dh, r.dh, dtype, "dh")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,T,W", SHAPES)
@pytest.mark.parametrize("cell", ["RNN", "GRU"])
def test_time_layers_follow_the_reference(cell, dtype, N, T, W):
    rng = np.random.default_rng(W)
    f, r = time_pair(rng, dtype, cell, W, W)
    xs, dhs = weights(rng, dtype, (N, T, W), (N, T, W), scale=1.0)
    check_step(f, r, xs, dhs, dtype)
    assert all(a is b for a, b in zip(f.params, r.params, strict=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ["RNN", "GRU"])
def test_stateful_calls_reset_and_set_state(cell, dtype):
    rng = np.random.default_rng(5)
    N, T, D, H = 3, 4, 5, 7
    f, r = time_pair(rng, dtype, cell, D, H, stateful=True)
    for _ in range(2):  # the second call starts from the state the first left
        xs, dhs = weights(rng, dtype, (N, T, D), (N, T, H), scale=1.0)
        check_step(f, r, xs, dhs, dtype)
    f.reset_state()
    r.reset_state()
    assert f.h is None
    check_step(f, r, xs, dhs, dtype)
    h, = weights(rng, dtype, (N, H), scale=1.0)
    f.set_state(h)
    r.set_state(h)
    check_step(f, r, xs, dhs, dtype)


@pytest.mark.parametrize("cell", ["RNN", "GRU"])
def test_not_stateful_starts_from_zero_each_call(cell):
    rng = np.random.default_rng(6)
    f, _ = time_pair(rng, np.float64, cell, 3, 4)
    xs, = weights(rng, np.float64, (2, 3, 3), scale=1.0)
    first = f.forward(xs)
    f.set_state(np.ones((2, 4)))  # ignored: not stateful
    np.testing.assert_array_equal(f.forward(xs), first)


@pytest.mark.parametrize("cell", ["RNN", "GRU"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_any_lanes_give_the_same_bits(cell, dtype):
    """The units cut anywhere over three lanes of uneven speeds, against one lane."""
    rng = np.random.default_rng(7)
    N, T, D, H = 3, 6, 5, 41
    w = cell_weights(rng, dtype, cell, D, H)
    xs, dhs = weights(rng, dtype, (N, T, D), (N, T, H), scale=1.0)
    runs = []
    for lanes in (Lanes(threads=1), Lanes(threads=3, min_units=1, min_step_work=0, speeds=[1.0, 0.5, 2.0])):
        layer = getattr(fast, "Time" + cell)(*w)
        layer.lanes = lanes
        runs.append([layer.forward(xs), layer.backward(dhs), layer.dh] + [g.copy() for g in layer.grads])
    for k, (one, many) in enumerate(zip(*runs)):
        np.testing.assert_array_equal(many, one, err_msg=f"result {k}")


@pytest.mark.parametrize("cell", ["RNN", "GRU"])
def test_infer_keeps_nothing_for_backward_and_reuses_its_arrays(cell):
    rng = np.random.default_rng(8)
    N, T, D, H = 2, 3, 4, 5
    w = cell_weights(rng, np.float64, cell, D, H)
    trained, evaluated = (getattr(fast, "Time" + cell)(*w, stateful=True) for _ in range(2))
    batches = weights(rng, np.float64, (N, T, D), (N, T, D), scale=1.0)
    outs = []
    for xs in batches:  # stateful: the second batch starts where the first ended
        want = trained.forward(xs)
        outs.append(evaluated.infer(xs))
        np.testing.assert_array_equal(outs[-1], want)
        np.testing.assert_array_equal(evaluated.h, trained.h)
    assert outs[1] is outs[0]  # the workspace's array
    with pytest.raises(RuntimeError, match="backward called before forward"):
        evaluated.backward(np.zeros((N, T, H)))


def bilstm_pair(rng, dtype, D, H):
    w = cell_weights(rng, dtype, "LSTM", D, H) + cell_weights(rng, dtype, "LSTM", D, H)
    return fast.TimeBiLSTM(*w), ref.TimeBiLSTM(*w), w


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,T,W", [(1, 1, 1), (3, 7, 17), (2, 4, 100)])
def test_bilstm_follows_the_reference(dtype, N, T, W):
    rng = np.random.default_rng(W + 2)
    f, r, w = bilstm_pair(rng, dtype, W, W)
    assert all(p is q for p, q in zip(f.params, w, strict=True))
    assert f.grads == f.forward_lstm.grads + f.backward_lstm.grads
    xs, dhs = weights(rng, dtype, (N, T, W), (N, T, 2 * W), scale=1.0)
    assert_same(f.forward(xs), r.forward(xs), dtype, "hs")
    assert_same(f.infer(xs), r.forward(xs), dtype, "hs of infer")
    f.forward(xs)
    assert_same(f.backward(dhs), r.backward(dhs), dtype, "dxs")
    for k, (gf, gr) in enumerate(zip(f.grads, r.grads, strict=True)):
        assert_same(gf, gr, dtype, f"grads[{k}]")


def test_bilstm_second_lstm_reads_the_sequence_backwards():
    """With the same weights in both directions, the second half of the output is the first
    half of the output for the reversed sequence, in time order."""
    rng = np.random.default_rng(9)
    w = cell_weights(rng, np.float64, "LSTM", 3, 4)
    layer = fast.TimeBiLSTM(*w, *w)
    xs, = weights(rng, np.float64, (2, 5, 3), scale=1.0)
    out = layer.forward(xs)
    np.testing.assert_allclose(out[:, :, :4], fast.TimeLSTM(*w).forward(xs), rtol=1e-14)
    np.testing.assert_allclose(out[:, ::-1, 4:], fast.TimeLSTM(*w).forward(xs[:, ::-1]), rtol=1e-14)


def as_tuple(out):
    """A single step's outputs as a tuple: (h_next,), or the LSTM's (h_next, c_next)."""
    return out if isinstance(out, tuple) else (out,)


def step_pair(rng, dtype, cell, D, H):
    w = cell_weights(rng, dtype, cell, D, H)
    return getattr(fast, cell)(*w), getattr(ref, cell)(*w)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,W", [(1, 1), (4, 13), (2, 100)])
@pytest.mark.parametrize("cell", ["RNN", "GRU", "LSTM"])
def test_single_steps_follow_the_reference(cell, dtype, N, W):
    rng = np.random.default_rng(W + 3)
    f, r = step_pair(rng, dtype, cell, W, W)
    states = 2 if cell == "LSTM" else 1
    x, *inputs = weights(rng, dtype, (N, W), *[(N, W)] * states, scale=1.0)
    douts = weights(rng, dtype, *[(N, W)] * states, scale=1.0)
    for got, want in zip(as_tuple(f.forward(x, *inputs)), as_tuple(r.forward(x, *inputs)), strict=True):
        assert_same(got, want, dtype, "forward")
    for k, (got, want) in enumerate(zip(f.backward(*douts), r.backward(*douts), strict=True)):
        assert_same(got, want, dtype, f"backward's result {k}")
    for k, (gf, gr) in enumerate(zip(f.grads, r.grads, strict=True)):
        assert_same(gf, gr, dtype, f"grads[{k}]")
    assert all(a is b for a, b in zip(f.params, r.params, strict=True))


def test_gru_has_the_books_attributes():
    rng = np.random.default_rng(10)
    Wx, Wh = cell_weights(rng, np.float64, "GRU", 2, 3)
    for layer in (fast.GRU(Wx, Wh), fast.TimeGRU(Wx, Wh)):
        assert layer.Wx is Wx and layer.Wh is Wh
        assert layer.dWx is layer.grads[0] and layer.dWh is layer.grads[1]
        assert len(layer.params) == len(layer.grads) == 2


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,shapes,message", [
    (fast.TimeRNN, ((3, 2), (2, 4), (2,)), r"Wh must have shape \(H, H\)"),
    (fast.TimeRNN, ((3, 4), (2, 2), (2,)), r"Wx must have shape \(D, 2\) to match Wh \(2, 2\), got \(3, 4\)"),
    (fast.TimeRNN, ((3, 2), (2, 2), (3,)), r"b must have shape \(2,\) to match Wh \(2, 2\), got \(3,\)"),
    (fast.TimeGRU, ((3, 6), (2, 4)), r"Wh must have shape \(H, 3H\)"),
    (fast.TimeGRU, ((3, 4), (2, 6)), r"Wx must have shape \(D, 6\) to match Wh \(2, 6\), got \(3, 4\)"),
    (fast.RNN, ((3, 2), (2, 4), (2,)), r"Wh must have shape \(H, H\)"),
    (fast.GRU, ((3, 6), (2, 6, 1)), r"Wh must be 2-D"),
])
def test_bad_weights(cls, shapes, message):
    with pytest.raises(ValueError, match=message):
        cls(*(np.zeros(s) for s in shapes))


def test_gru_takes_no_bias_and_weights_of_one_dtype():
    Wx, Wh = np.zeros((3, 6)), np.zeros((2, 6))
    with pytest.raises(TypeError, match=r"TimeGRU\(Wx, Wh, stateful=False\) takes no bias"):
        fast.TimeGRU(Wx, Wh, np.zeros(6))
    with pytest.raises(TypeError, match="share one dtype"):
        fast.TimeGRU(Wx, Wh.astype(np.float32))
    with pytest.raises(TypeError, match="must be float32 or float64"):
        fast.TimeRNN(np.zeros((3, 2), int), np.zeros((2, 2)), np.zeros(2))


@pytest.mark.parametrize("cell", ["RNN", "GRU"])
def test_bad_inputs_of_the_time_layers(cell):
    layer, _ = time_pair(np.random.default_rng(0), np.float32, cell, 3, 2)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"xs must be 3-D, got shape \(2, 3\)"):
        layer.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"xs has width 4 but Wx has shape \(3, "):
        layer.forward(np.zeros((1, 2, 4), np.float32))
    with pytest.raises(TypeError, match="xs must hold floats, got int64"):
        layer.forward(np.zeros((1, 2, 3), np.int64))
    with pytest.raises(ValueError, match="at least one sequence of one step"):
        layer.forward(np.zeros((1, 0, 3), np.float32))
    assert layer.forward(np.zeros((1, 2, 3))).dtype == np.float32  # float64 input, float32 weights
    with pytest.raises(ValueError, match=r"dhs must have shape \(1, 2, 2\), got \(1, 2, 3\)"):
        layer.backward(np.zeros((1, 2, 3), np.float32))
    layer.stateful = True
    layer.reset_state()
    layer.forward(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"state h has shape \(2, 2\) but this batch needs \(3, 2\)"):
        layer.forward(np.zeros((3, 2, 3), np.float32))


def test_bad_inputs_of_the_bilstm():
    w = cell_weights(np.random.default_rng(0), np.float32, "LSTM", 3, 2)
    with pytest.raises(ValueError, match=r"Wh1 and Wh2 must have one shape"):
        fast.TimeBiLSTM(*w, w[0], np.zeros((3, 12), np.float32), np.zeros(12, np.float32))
    with pytest.raises(TypeError, match="share one dtype"):
        fast.TimeBiLSTM(*w, *(a.astype(np.float64) for a in w))
    layer = fast.TimeBiLSTM(*w, *w)
    with pytest.raises(RuntimeError, match="TimeBiLSTM.backward called before forward"):
        layer.backward(np.zeros((1, 2, 4), np.float32))
    with pytest.raises(ValueError, match="xs has width 4"):
        layer.forward(np.zeros((1, 2, 4), np.float32))
    layer.forward(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"dhs must have shape \(1, 2, 4\), got \(1, 2, 2\)"):
        layer.backward(np.zeros((1, 2, 2), np.float32))


@pytest.mark.parametrize("cell", ["RNN", "GRU", "LSTM"])
def test_bad_inputs_of_the_single_steps(cell):
    f, _ = step_pair(np.random.default_rng(0), np.float32, cell, 3, 2)
    states = [np.zeros((1, 2))] * (2 if cell == "LSTM" else 1)
    douts = [np.zeros((1, 2))] * len(states)
    with pytest.raises(RuntimeError, match=f"{cell}.backward called before forward"):
        f.backward(*douts)
    with pytest.raises(ValueError, match=r"x has width 4 but Wx has shape \(3, "):
        f.forward(np.zeros((1, 4)), *states)
    with pytest.raises(ValueError, match=r"h_prev must have shape \(1, 2\), got \(2, 2\)"):
        f.forward(np.zeros((1, 3)), np.zeros((2, 2)), *states[1:])
    out = f.forward(np.zeros((1, 3)), *states)
    assert all(o.dtype == np.float32 for o in as_tuple(out))
    with pytest.raises(ValueError, match=r"dh_next must have shape \(1, 2\), got \(1, 3\)"):
        f.backward(np.zeros((1, 3)), *douts[1:])
    assert all(d.dtype == np.float32 for d in f.backward(*douts))


@pytest.mark.parametrize("cell", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("T", [1, 3])
@pytest.mark.parametrize("n_lanes", [1, 3])
def test_a_zero_initial_state_gives_the_bits_of_one_set_to_zeros(cell, T, n_lanes):
    """A call from no state skips its first step's products with Wh (zeros); one from a state
    set to zeros computes them: the same bits, forward and backward, evaluation too."""
    rng = np.random.default_rng(9)
    N, D, H = 3, 5, 19
    w = cell_weights(rng, np.float32, cell, D, H)
    xs, dhs = weights(rng, np.float32, (N, T, D), (N, T, H), scale=1.0)
    runs = []
    for start in (None, 0.0):
        layer = getattr(fast, "Time" + cell)(*w, stateful=start is not None)
        layer.lanes = Lanes(threads=n_lanes, min_units=1, min_step_work=0, speeds=[1.0, 0.5, 2.0][:n_lanes])
        if start is not None:
            layer.set_state(*(np.full((N, H), start, np.float32) for _ in layer._states))
        states = [getattr(layer, name) for name in layer._states]
        evaluated = layer.infer(xs).copy()
        if start is not None:  # infer carried the state on: start from the zeros again
            layer.set_state(*states)
        runs.append([evaluated, layer.forward(xs), layer.backward(dhs), layer.dh] + [g.copy() for g in layer.grads])
    for k, (zero_start, zeros) in enumerate(zip(*runs)):
        np.testing.assert_array_equal(zero_start, zeros, err_msg=f"result {k}")
