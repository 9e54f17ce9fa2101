"""RnnlmTrainer against a transcription of the book's get_batch, a short training, and plotting."""

import sys

import numpy as np
import pytest

from fastlstm import util
from fastlstm.dataset import ptb
from fastlstm.models import Rnnlm
from fastlstm.optimizer import SGD
from fastlstm.trainer import RnnlmTrainer, remove_duplicate


pytestmark = pytest.mark.usefixtures("one_thread")

def book_get_batch(trainer, x, t, batch_size, time_size):
    """The book's RnnlmTrainer.get_batch, loop for loop."""
    batch_x = np.empty((batch_size, time_size), dtype='i')
    batch_t = np.empty((batch_size, time_size), dtype='i')
    data_size = len(x)
    jump = data_size // batch_size
    offsets = [i * jump for i in range(batch_size)]
    for time in range(time_size):
        for i, offset in enumerate(offsets):
            batch_x[i, time] = x[(offset + trainer.time_idx) % data_size]
            batch_t[i, time] = t[(offset + trainer.time_idx) % data_size]
        trainer.time_idx += 1
    return batch_x, batch_t


@pytest.mark.parametrize("data_size, batch_size, time_size", [(1000, 20, 35), (97, 5, 7), (50, 3, 40), (10, 20, 3)])
def test_get_batch_matches_the_book(data_size, batch_size, time_size):
    rng = np.random.default_rng(data_size)
    x = rng.integers(0, 10000, data_size)
    t = rng.integers(0, 10000, data_size)
    ours, book = RnnlmTrainer(None, None), RnnlmTrainer(None, None)
    ours.time_idx = book.time_idx = 0
    for _ in range(2 * data_size // time_size + 3):  # wraps around the end of the data
        got = ours.get_batch(x, t, batch_size, time_size)
        want = book_get_batch(book, x, t, batch_size, time_size)
        assert ours.time_idx == book.time_idx
        for g, w in zip(got, want):
            assert g.dtype == np.int32
            np.testing.assert_array_equal(g, w)


def test_remove_duplicate_is_reexported_from_util():
    assert remove_duplicate is util.remove_duplicate


def test_fit_lowers_perplexity(capsys):
    corpus = ptb.load_data("train")[0][:1000]
    np.random.seed(0)
    model = Rnnlm(int(corpus.max()) + 1, 16, 16)
    trainer = RnnlmTrainer(model, SGD(lr=1.0))
    trainer.fit(corpus[:-1], corpus[1:], max_epoch=10, batch_size=5, time_size=10, max_grad=0.25, eval_interval=5)
    iters = 999 // 50
    assert trainer.current_epoch == 10
    assert trainer.time_idx == 10 * iters * 10  # one fit call: the data position runs on across its epochs
    assert trainer.eval_interval == 5
    assert len(trainer.ppl_list) == 10 * len(range(0, iters, 5))
    assert all(isinstance(p, float) for p in trainer.ppl_list)
    assert trainer.ppl_list[-1] < trainer.ppl_list[0] / 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| epoch 1 |  iter 1 / 19 | time ")
    assert lines[-1].startswith("| epoch 10 |  iter 16 / 19 | time ")
    assert lines[-1].endswith(f"| perplexity {trainer.ppl_list[-1]:.2f}")

    trainer.fit(corpus[:-1], corpus[1:], max_epoch=1, batch_size=5, time_size=10, eval_interval=5)
    assert trainer.current_epoch == 11 and trainer.time_idx == iters * 10  # time_idx starts again per fit call


def _trained(ppl_list, eval_interval=20):
    trainer = RnnlmTrainer(None, None)
    trainer.ppl_list, trainer.eval_interval = ppl_list, eval_interval
    return trainer


def test_plot_saves_a_png_without_display(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    trainer = _trained([900.0, 500.0, 300.0])
    assert trainer.plot(ylim=(0, 1000)) == "perplexity.png"
    assert (tmp_path / "perplexity.png").read_bytes().startswith(b"\x89PNG")
    assert str(tmp_path / "perplexity.png") in capsys.readouterr().out
    assert trainer.plot(path=tmp_path / "other.png") == tmp_path / "other.png"
    assert (tmp_path / "other.png").read_bytes().startswith(b"\x89PNG")


def test_plot_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'fastlstm\[plot\]'"):
        _trained([1.0]).plot()
