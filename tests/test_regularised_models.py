"""VariationalRnnlm and AwdRnnlm: against the same models on the plain-NumPy reference
layers (the same masks), float64 finite differences of the whole loss with AR and TAR,
their shapes and tying, and train_flg."""

import numpy as np
import pytest

from fastlstm import models
from fastlstm.models import AwdRnnlm, BetterRnnlm, VariationalRnnlm
from fastlstm.optimizer import ASGD, SGD
from fastlstm.reference import models as reference
from fastlstm.training_step import train_step
from fastlstm.util import eval_perplexity
from gradcheck import assert_grad_close, numerical_grad

CASES = [("VariationalRnnlm", dict(vocab_size=60, wordvec_size=24, hidden_size=24, weight_drop=0.3, alpha=2.0,
                                   beta=1.0)),
         ("AwdRnnlm", dict(vocab_size=60, wordvec_size=12, hidden_size=21))]


def train(model, steps, optimizer, seed=0):
    rng = np.random.default_rng(seed)
    V = model.params[0].shape[0]
    losses = []
    for _ in range(steps):
        xs, ts = rng.integers(0, V, (4, 9)), rng.integers(0, V, (4, 9))
        losses.append(train_step(model, optimizer, xs, ts, 0.25)[0])
    return losses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,sizes", CASES, ids=[c[0] for c in CASES])
def test_training_follows_the_reference_with_every_regulariser(name, sizes, dtype):
    runs = []
    for kit in (models, reference):
        np.random.seed(1)
        model = getattr(kit, name)(dtype=dtype, **sizes)
        optimizer = ASGD(5.0, nonmono=1, weight_decay=1e-3)
        losses = train(model, 2, optimizer)
        for figure in (2.0, 1.0, 1.5, 1.6):
            optimizer.observe(figure)
        losses += train(model, 2, optimizer, seed=1)  # averaging
        runs.append((losses, [p.copy() for p in model.params], [a.copy() for a in optimizer.ax], model.penalty))
    (lf, pf, af, penalty_f), (lr, pr, ar, penalty_r) = runs
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(lf, lr, rtol=rtol)
    assert penalty_f > 0 and penalty_f == pytest.approx(penalty_r, rel=rtol)
    for a, b in zip(pf + af, pr + ar):
        np.testing.assert_allclose(a, b, rtol=rtol * 10, atol=rtol / 10)


@pytest.mark.parametrize("cls", [VariationalRnnlm, AwdRnnlm])
def test_the_whole_loss_and_its_gradient_with_masks_held(cls):
    """Cross-entropy plus large AR and TAR, every mask on, against finite differences of
    every weight (the tied embedding through both of its uses)."""
    np.random.seed(2)
    if cls is VariationalRnnlm:
        model = cls(11, 4, 4, recurrent_dropout=0.3, embed_dropout=0.3, weight_drop=0.3, alpha=50.0, beta=30.0,
                    dtype=np.float64)
    else:
        model = cls(11, 3, 5, alpha=50.0, beta=30.0, dtype=np.float64)
    rng = np.random.default_rng(3)
    xs, ts = rng.integers(0, 11, (2, 4)), rng.integers(0, 11, (2, 4))
    for p in model.params[1:-2]:  # outputs far from zero, where AR and TAR weigh
        p += rng.standard_normal(p.shape)

    def loss():
        np.random.seed(5)
        model.reset_state()
        return model.forward(xs, ts)

    loss()
    assert model.penalty > 0.1
    model.backward()
    grads = [g.copy() for g in model.grads]
    grads[0] += grads[-2].T  # the tied output weight, as remove_duplicate merges it
    for i, (p, g) in enumerate(zip(model.params, grads)):
        if i != len(model.params) - 2:
            assert_grad_close(g, numerical_grad(loss, p), f"params[{i}]")


def test_awd_layers_widths_and_tying():
    np.random.seed(0)
    model = AwdRnnlm(50, 7, 13, num_layers=3)
    shapes = [p.shape for p in model.params]
    assert shapes == [(50, 7), (7, 52), (13, 52), (52,), (13, 52), (13, 52), (52,), (13, 28), (7, 28), (28,),
                      (7, 50), (50,)]
    assert model.params[-2].base is model.params[0]
    assert [type(layer).__name__ for layer in model.layers] == ["TimeEmbedding", "TimeDropout"] + \
        ["TimeLSTM", "TimeDropout"] * 3 + ["TimeAffine"]
    assert [layer.dropout_ratio for layer in model.layers if hasattr(layer, "locked")] == [0.4, 0.25, 0.25, 0.4]
    assert all(layer.locked for layer in model.layers if hasattr(layer, "locked"))
    assert [layer.weight_drop for layer in model.lstm_layers] == [0.5] * 3
    assert model.layers[0].dropout == 0.1
    assert type(model.penalties[7]).__name__ == "ActivationRegularisation"  # the last dropout's output
    assert type(model.penalties[6]).__name__ == "TemporalActivationRegularisation"  # the last LSTM's
    assert model.penalties[7].alpha == 2.0 and model.penalties[6].beta == 1.0
    one = AwdRnnlm(50, 7, 13, num_layers=1)
    assert [p.shape for p in one.params] == [(50, 7), (7, 28), (7, 28), (28,), (7, 50), (50,)]
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="num_layers"):
            AwdRnnlm(50, 7, 13, num_layers=bad)


def test_variational_starts_as_better_and_evaluates_alike():
    """The same seed gives VariationalRnnlm BetterRnnlm's weights; evaluation drops nothing, so
    the two evaluate to the same perplexity, and train_flg=False leaves no mask drawn."""
    corpus = np.random.default_rng(4).integers(0, 40, 400)
    models = []
    for cls in (BetterRnnlm, VariationalRnnlm):
        np.random.seed(6)
        models.append(cls(40, 8, 8))
    for a, b in zip(*[m.params for m in models]):
        np.testing.assert_array_equal(a, b)
    variational = models[1]
    train(variational, 1, SGD(1.0))
    for a, b in zip(models[0].params, variational.params):
        a[...] = b
    variational.reset_state()
    assert eval_perplexity(variational, corpus) == eval_perplexity(models[0], corpus)
    for layer in variational.drop_layers:
        assert layer.train_flg is False
    assert variational.lstm_layers[0].h_mask is None and variational.layers[0].word_mask is None
    variational.reset_state()
    variational.forward(corpus[:8].reshape(2, 4), corpus[1:9].reshape(2, 4))  # train_flg=True again
    assert all(layer.train_flg for layer in variational.drop_layers)
    assert variational.layers[1].mask.shape == (2, 1, 8) and variational.lstm_layers[1].h_mask.shape == (2, 8)


def test_the_masks_follow_numpys_seed():
    runs = []
    for _ in range(2):
        np.random.seed(7)
        model = AwdRnnlm(30, 4, 6)
        runs.append(train(model, 2, SGD(1.0)))
    assert runs[0] == runs[1]
