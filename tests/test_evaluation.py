"""Evaluation (forward with train_flg=False, as eval_perplexity calls it) gives the
reference's loss, advances the recurrent state, keeps nothing for backward and allocates
nothing after its first call."""

import tracemalloc

import numpy as np
import pytest

from fastlstm.models import BetterRnnlm, Rnnlm, SimpleRnnlm
from fastlstm.reference import models as reference
from fastlstm.util import eval_perplexity

SIZES = dict(vocab_size=97, wordvec_size=13, hidden_size=13)


@pytest.mark.parametrize("name", ["SimpleRnnlm", "Rnnlm", "BetterRnnlm"])
def test_evaluation_matches_the_reference_batch_after_batch(name):
    np.random.seed(3)
    model = globals()[name](**SIZES, dtype=np.float64)
    np.random.seed(3)
    ref = getattr(reference, name)(**SIZES, dtype=np.float64)
    rng = np.random.default_rng(0)
    for _ in range(3):  # stateful: each batch starts where the last one ended
        xs, ts = rng.integers(0, 97, size=(2, 4, 5))
        np.testing.assert_allclose(model.forward(xs, ts, train_flg=False), ref.forward(xs, ts, train_flg=False),
                                   rtol=1e-12)
    recurrent = (getattr(m, "lstm_layers", None) or [m.rnn_layer] for m in (model, ref))
    for fast_layer, ref_layer in zip(*recurrent, strict=True):
        np.testing.assert_allclose(fast_layer.h, ref_layer.h, rtol=1e-12)
        with pytest.raises(RuntimeError, match="backward called before forward"):
            fast_layer.backward(np.zeros((4, 5, 13)))


@pytest.mark.parametrize("cls", [SimpleRnnlm, Rnnlm, BetterRnnlm])
def test_evaluation_allocates_nothing_after_the_first_call(cls):
    np.random.seed(0)
    model = cls(vocab_size=1000, wordvec_size=64, hidden_size=64)
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, 1000, size=(2, 10, 35)).astype(np.int32) for _ in range(4)]
    model.forward(*batches[0], train_flg=False)
    tracemalloc.start()
    try:
        for xs, ts in batches[1:]:
            model.forward(xs, ts, train_flg=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # what remains is Python's small change; one batch of hidden states alone is 10 x 35 x 64 x 4 = 90 KB
    assert peak < 64 * 1024, f"evaluation allocated up to {peak} bytes in a call after the first"


def test_eval_perplexity_does_not_swallow_a_type_error_raised_inside_forward():
    class Broken:
        def forward(self, xs, ts, train_flg=True):
            raise TypeError("a bug inside forward")

    with pytest.raises(TypeError, match="a bug inside forward"):
        eval_perplexity(Broken(), np.arange(400) % 7, batch_size=2, time_size=5)


def test_eval_perplexity_calls_a_forward_without_train_flg_plainly():
    calls = []

    class BookRnnlm:
        def forward(self, xs, ts):
            calls.append(xs.shape)
            return 1.0

    assert eval_perplexity(BookRnnlm(), np.arange(400) % 7, batch_size=2, time_size=5) == pytest.approx(np.e)
    assert calls and calls[0] == (2, 5)
