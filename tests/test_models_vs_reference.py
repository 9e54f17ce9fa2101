"""Rnnlm and BetterRnnlm on fastlstm's layers against the same models on the plain-NumPy
reference of the book's layers: training losses, and weights saved by the book's code."""

import pickle

import numpy as np
import pytest

from fastlstm.dataset import ptb
from fastlstm.models import BetterRnnlm, Rnnlm
from fastlstm.optimizer import SGD
from fastlstm.reference import models as reference
from fastlstm.trainer import RnnlmTrainer
from fastlstm.util import eval_perplexity


def training_losses(model_cls, corpus, iters, **sizes):
    np.random.seed(0)  # the same initial weights for both implementations
    model = model_cls(**sizes)
    trainer = RnnlmTrainer(model, SGD(20.0))
    data = corpus[:iters * 20 * 35 + 1]
    trainer.fit(data[:-1], data[1:], max_epoch=1, batch_size=20, time_size=35, max_grad=0.25, eval_interval=1)
    return np.log(trainer.ppl_list)


def test_rnnlm_follows_the_reference_loss_sequence(capsys):
    corpus = ptb.load_data("train")[0]
    fast = training_losses(Rnnlm, corpus, 20)
    ref = training_losses(reference.Rnnlm, corpus, 20)
    assert len(fast) == len(ref) == 20
    assert fast[-1] < fast[0] - 0.5  # it learns
    np.testing.assert_allclose(fast, ref, rtol=1e-3)


def save_like_the_book(model, path):
    """The book's BaseModel.save_params: a pickled list of float16 arrays."""
    with open(path, "wb") as f:
        pickle.dump([p.astype(np.float16) for p in model.params], f)


@pytest.mark.parametrize("name,sizes", [("Rnnlm", dict(wordvec_size=32, hidden_size=24)),
                                        ("BetterRnnlm", dict(wordvec_size=24, hidden_size=24))])
def test_weights_saved_by_the_book_evaluate_to_the_same_perplexity(tmp_path, name, sizes, capsys):
    corpus = ptb.load_data("test")[0][:3 * 10 * 35 + 1]
    np.random.seed(1)
    book_model = getattr(reference, name)(**sizes)
    for p in book_model.params:  # weights as training leaves them, not as initialised
        p += np.random.standard_normal(p.shape).astype(p.dtype) * 0.05
    save_like_the_book(book_model, tmp_path / "book.pkl")
    book_model.load_params(tmp_path / "book.pkl")  # the float16 rounding, on both sides
    expected = eval_perplexity(book_model, corpus)

    model = globals()[name](**sizes)
    tied = model.params[-2] if name == "BetterRnnlm" else None
    model.load_params(tmp_path / "book.pkl")
    if tied is not None:
        assert model.params[-2] is tied and tied.base is model.params[0]
    assert eval_perplexity(model, corpus) == pytest.approx(expected, rel=1e-5)
