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


def test_plot_saves_a_png_without_display(tmp_path, monkeypatch, capsys, no_display):
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


# ---------------------------------------------------------------- Trainer (shuffled mini-batches)

class Tagger:
    """A tiny sequence model for Trainer: embedding, affine, softmax loss over (N, T) ids; it
    records the batches it is given."""

    def __init__(self, layers, V=7, D=4):
        rn = np.random.randn
        self.layers = [layers.TimeEmbedding((rn(V, D) / 10).astype("f")),
                       layers.TimeAffine((rn(D, V) / 10).astype("f"), np.zeros(V, "f"))]
        self.loss_layer = layers.TimeSoftmaxWithLoss()
        self.params = [p for layer in self.layers for p in layer.params]
        self.grads = [g for layer in self.layers for g in layer.grads]
        self.batches = []

    def forward(self, xs, ts):
        self.batches.append(np.array(xs))
        for layer in self.layers:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)


def book_fit(model, optimizer, x, t, max_epoch, batch_size, max_grad, eval_interval):
    """The book's Trainer.fit loop, on the book's training step: (loss_list)."""
    from fastlstm.reference.training import train_step as book_step
    loss_list, data_size = [], len(x)
    max_iters = data_size // batch_size
    total_loss, loss_count = 0, 0
    for epoch in range(max_epoch):
        idx = np.random.permutation(np.arange(data_size))
        x, t = x[idx], t[idx]
        for iters in range(max_iters):
            batch_x = x[iters * batch_size:(iters + 1) * batch_size]
            batch_t = t[iters * batch_size:(iters + 1) * batch_size]
            total_loss += book_step(model, optimizer, batch_x, batch_t, max_grad)
            loss_count += 1
            if (eval_interval is not None) and (iters % eval_interval) == 0:
                loss_list.append(float(total_loss / loss_count))
                total_loss, loss_count = 0, 0
    return loss_list


def sequences(n=53, T=5, V=7):
    rng = np.random.default_rng(n)
    x = rng.integers(0, V, size=(n, T))
    return x, (x + 1) % V  # learnable: the next id


def test_trainer_follows_the_book_loop(capsys):
    from fastlstm import time_layers
    from fastlstm.optimizer import Adam
    from fastlstm.reference import numpy_layers, training
    from fastlstm.trainer import Trainer

    x, t = sequences()
    np.random.seed(5)
    model = Tagger(time_layers)
    trainer = Trainer(model, Adam(0.05))
    trainer.fit(x, t, max_epoch=3, batch_size=10, max_grad=1.0, eval_interval=2)
    np.random.seed(5)
    book_model = Tagger(numpy_layers)
    book_losses = book_fit(book_model, training.Adam(0.05), x, t, 3, 10, 1.0, 2)

    assert len(model.batches) == 3 * 5  # 53 // 10 iterations an epoch, the 3 left over unused
    for ours, book in zip(model.batches, book_model.batches):
        np.testing.assert_array_equal(ours, book)  # each epoch permutes the last one's order
    assert len({tuple(b.ravel()) for b in model.batches[:5]} & {tuple(b.ravel()) for b in model.batches[5:10]}) == 0
    np.testing.assert_allclose(trainer.loss_list, book_losses, rtol=1e-6)
    assert len(trainer.loss_list) == 3 * 3 and trainer.loss_list[-1] < trainer.loss_list[0]
    assert trainer.current_epoch == 3 and trainer.eval_interval == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| epoch 1 |  iter 1 / 5 | time ")
    assert lines[-1].startswith("| epoch 3 |  iter 5 / 5 | time ")
    assert lines[-1].endswith(f"| loss {trainer.loss_list[-1]:.2f}")

    trainer.fit(x, t, max_epoch=1, batch_size=10, eval_interval=None)
    assert trainer.current_epoch == 4 and len(trainer.loss_list) == 9  # the list grows across calls


def test_trainer_refuses_what_cannot_train():
    from fastlstm.trainer import Trainer

    x, t = sequences()
    trainer = Trainer(None, None)
    with pytest.raises(ValueError, match="x holds 53 samples but t holds 52"):
        trainer.fit(x, t[:-1])
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        trainer.fit(x, t, batch_size=0)
    with pytest.raises(ValueError, match="53 samples do not fill one batch of 64"):
        trainer.fit(x, t, batch_size=64)


def test_trainer_plot_saves_a_png_without_display(tmp_path, monkeypatch, capsys, no_display):
    from fastlstm.trainer import Trainer

    monkeypatch.chdir(tmp_path)
    trainer = Trainer(None, None)
    trainer.loss_list, trainer.eval_interval = [2.5, 1.0, 0.5], 20
    assert trainer.plot() == "loss.png"
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG")
    assert str(tmp_path / "loss.png") in capsys.readouterr().out


def test_trainer_plot_on_a_window_backend_without_display_saves_a_png(tmp_path, monkeypatch, no_display):
    """A window backend (what matplotlib picks on a desktop) on Linux with no display to open a
    window on: the curve is saved, never shown."""
    import matplotlib.pyplot as plt
    from fastlstm.trainer import Trainer

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(plt, "get_backend", lambda: "TkAgg")
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: pytest.fail("plt.show() without a display"))
    trainer = Trainer(None, None)
    trainer.loss_list, trainer.eval_interval = [2.5, 1.0], 1
    assert trainer.plot(path=tmp_path / "curve.png") == tmp_path / "curve.png"
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
