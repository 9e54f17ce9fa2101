"""train_step against the training step written out as the book's trainer runs it."""

import numpy as np
import pytest

from fastlstm.models import BetterRnnlm, Rnnlm
from fastlstm.optimizer import SGD, Adam
from fastlstm.training_step import train_step
from fastlstm.util import clip_grads, remove_duplicate

V, N, T = 30, 3, 5


pytestmark = pytest.mark.usefixtures("one_thread")

def build(cls, dtype):
    np.random.seed(0)
    return cls(vocab_size=V, wordvec_size=8, hidden_size=8, dtype=dtype)


def batches(steps=3):
    return np.random.default_rng(4).integers(0, V, size=(steps, 2, N, T))


def book_step(model, optimizer, xs, ts, max_grad):
    """The book's RnnlmTrainer.fit step: forward, backward, remove_duplicate, clip_grads, update."""
    loss = model.forward(xs, ts)
    model.backward()
    params, grads = remove_duplicate(model.params, model.grads)
    norm = None if max_grad is None else clip_grads(grads, max_grad)
    optimizer.update(params, grads)
    return float(loss), norm


def run(step, model, optimizer, max_grad):
    np.random.seed(1)  # BetterRnnlm's dropout masks
    return [step(model, optimizer, xs, ts, max_grad) for xs, ts in batches()]


@pytest.mark.parametrize("cls", [Rnnlm, BetterRnnlm])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("max_grad", [0.05, None])
def test_train_step_gives_the_books_step_bit_for_bit(cls, dtype, max_grad):
    ours, book = build(cls, dtype), build(cls, dtype)
    got = run(train_step, ours, SGD(20.0), max_grad)
    want = run(book_step, book, SGD(20.0), max_grad)
    assert got == want
    if max_grad is not None:  # the clipping's scale went through SGD's fused update
        assert all(norm > 2 * max_grad for _, norm in got)
    else:
        assert all(norm is None for _, norm in got)
    assert all(isinstance(loss, float) for loss, _ in got)
    for p, q in zip(ours.params, book.params):
        assert p.dtype == dtype
        np.testing.assert_array_equal(p, q)
    if cls is BetterRnnlm:
        assert np.shares_memory(ours.params[-2], ours.params[0])  # still tied


def test_train_step_with_another_optimizer_clips_the_grads_first():
    ours, book = build(BetterRnnlm, np.float64), build(BetterRnnlm, np.float64)
    assert run(train_step, ours, Adam(0.01), 0.05) == run(book_step, book, Adam(0.01), 0.05)
    for p, q in zip(ours.params, book.params):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("cls", [Rnnlm, BetterRnnlm])
def test_a_huge_gradient_is_scaled_to_max_grad(cls):
    """The update of a clipped step is lr times the merged gradients scaled to max_grad, as
    clip_grads scales copies of them; the norm is the one of all merged gradients."""
    model, twin = build(cls, np.float64), build(cls, np.float64)
    (xs, ts), lr, max_grad = batches(1)[0], 20.0, 1e-4
    np.random.seed(1)
    twin.forward(xs, ts)
    twin.backward()
    twin_params, twin_grads = remove_duplicate(twin.params, twin.grads)
    grads = [g.copy() for g in twin_grads]
    expected_norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    assert clip_grads(grads, max_grad) == pytest.approx(expected_norm, rel=1e-12)
    before = [p.copy() for p in twin_params]

    np.random.seed(1)
    loss, norm = train_step(model, SGD(lr), xs, ts, max_grad)
    params = remove_duplicate(model.params, model.grads)[0]
    assert norm == pytest.approx(expected_norm, rel=1e-12) and norm > 1000 * max_grad
    steps = [b - p for b, p in zip(before, params)]
    for step, g in zip(steps, grads):
        np.testing.assert_allclose(step, lr * g, rtol=1e-9, atol=1e-15)
    step_norm = np.sqrt(sum(np.sum(s ** 2) for s in steps))
    assert step_norm == pytest.approx(lr * max_grad * norm / (norm + 1e-6), rel=1e-9)  # the book's rule


def test_check_finite_stops_before_any_update():
    model = build(Rnnlm, np.float64)
    (xs, ts), optimizer = batches(1)[0], SGD(20.0)
    model.params[4][0, 0] = np.nan  # the output weight: the loss becomes NaN
    before = [p.copy() for p in model.params]
    with pytest.raises(FloatingPointError, match="loss is nan"):
        train_step(model, optimizer, xs, ts, 0.25, check_finite=True)
    for p, b in zip(model.params, before):
        np.testing.assert_array_equal(p, b)
    assert optimizer.iter == 0
    loss, norm = train_step(model, optimizer, xs, ts, 0.25)  # unchecked, the step goes on
    assert np.isnan(loss) and np.isnan(norm) and optimizer.iter == 1


def test_check_finite_stops_on_an_infinite_gradient_norm(monkeypatch):
    model = build(Rnnlm, np.float64)
    (xs, ts), optimizer = batches(1)[0], SGD(20.0)
    backward = model.backward

    def overflowing():
        backward()
        model.grads[2][0, 0] = np.inf
    monkeypatch.setattr(model, "backward", overflowing)
    before = [p.copy() for p in model.params]
    with pytest.raises(FloatingPointError, match="gradient norm is inf"):
        train_step(model, optimizer, xs, ts, 0.25, check_finite=True)
    for p, b in zip(model.params, before):
        np.testing.assert_array_equal(p, b)
    assert train_step(model, optimizer, xs, ts, None, check_finite=True)[1] is None  # no clipping, no norm
