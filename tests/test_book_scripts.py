"""The book's chapter 6 scripts run unchanged after the two import substitutions.

The scripts train for the book's epochs, so the loader is narrowed to a few batches of
each PTB split: every line of each script still runs.
"""

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from fastlstm.dataset import ptb
from fastlstm.optimizer import SGD
from fastlstm.reference import models as ref_models
from fastlstm.trainer import stateful_batch
from fastlstm.util import clip_grads, eval_perplexity, remove_duplicate

BOOK = Path(__file__).with_name("book_ch06")
TOKENS = {"train": 2 * 20 * 35 + 1, "val": 10 * 35 + 2, "valid": 10 * 35 + 2, "test": 10 * 35 + 2}


@pytest.fixture
def book_dir(tmp_path, monkeypatch, no_display):
    """cwd and import path as when running `python script.py` from the chapter folder, with short splits."""
    real_load_data = ptb.load_data

    def short_load_data(data_type="train", data_dir=None):
        corpus, word_to_id, id_to_word = real_load_data(data_type, data_dir)
        return corpus[:TOKENS[data_type]], word_to_id, id_to_word

    monkeypatch.setattr(ptb, "load_data", short_load_data)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(BOOK))
    for name in ("rnnlm", "better_rnnlm"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def run_script(name):
    runpy.run_path(str(BOOK / name), run_name="__main__")


def reference_rnnlm_perplexities():
    """(untrained, trained) test perplexities of the book's recipe on the short splits, run on
    the NumPy reference model with the book's training loop written out (float32 as the script)."""
    corpus, word_to_id, _ = ptb.load_data("train")
    test = ptb.load_data("test")[0]
    np.random.seed(0)
    model = ref_models.Rnnlm(len(word_to_id), 100, 100)
    model.reset_state()
    untrained = eval_perplexity(model, test)
    model.reset_state()
    optimizer, xs, ts = SGD(20.0), corpus[:-1], corpus[1:]
    iters = len(xs) // (20 * 35)
    for k in range(4 * iters):
        batch_x, batch_t = stateful_batch(xs, ts, 20, 35, 35 * k)
        model.forward(batch_x, batch_t)
        model.backward()
        params, grads = remove_duplicate(model.params, model.grads)
        clip_grads(grads, 0.25)
        optimizer.update(params, grads)
    model.reset_state()
    return untrained, eval_perplexity(model, test)


def test_train_rnnlm_then_eval(book_dir, capsys):
    untrained, reference = reference_rnnlm_perplexities()
    np.random.seed(0)
    run_script("train_rnnlm.py")
    out = capsys.readouterr().out
    assert "| epoch 4 |  iter 1 / 2 |" in out
    trained = float(out.split("test perplexity: ")[1].split()[0])
    assert trained == pytest.approx(reference, rel=1e-3) and trained < untrained / 2
    assert (book_dir / "Rnnlm.pkl").is_file()

    run_script("eval.py")
    evaluated = float(capsys.readouterr().out.split("test perplexity: ")[1].split()[0])
    # the saved weights are float16, so the perplexity moves a little
    assert evaluated == pytest.approx(trained, rel=2e-3)


def test_better_rnnlm_model_file(book_dir):
    sys.modules.pop("better_rnnlm", None)
    from better_rnnlm import BetterRnnlm

    np.random.seed(0)
    model = BetterRnnlm(vocab_size=50, wordvec_size=16, hidden_size=16)
    xs = np.random.randint(0, 50, size=(2, 5))
    loss = model.forward(xs, xs)
    model.backward()
    assert np.isfinite(loss)
    embed, affine = model.params[0], model.params[7]
    assert affine.base is embed and np.shares_memory(affine, embed)
    assert model.grads[7].shape == affine.shape


@pytest.mark.slow
def test_train_better_rnnlm(book_dir, capsys):
    np.random.seed(0)
    run_script("train_better_rnnlm.py")
    out = capsys.readouterr().out
    assert out.count("valid perplexity: ") == 40
    assert "test perplexity: " in out
    assert (book_dir / "BetterRnnlm.pkl").is_file()
