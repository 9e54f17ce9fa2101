"""The book's chapter 5 (tests/book_ch05) runs unchanged after the two import
substitutions, and from the same seed its perplexities follow the same scripts run on the
plain-NumPy reference of the book's layers, the book's NumPy code.

The scripts train on the first 1000 words of PTB for 100 epochs; the loader is narrowed
to a few batches' worth of words, so that every line of each script still runs.
"""


import numpy as np
import pytest

from fastlstm import time_layers
from fastlstm.dataset import ptb
from fastlstm.reference import book_files, numpy_layers

TOKENS = 4 * 10 * 5 + 1  # four iterations an epoch of batch 10, time 5


def assert_follows(fast, reference):
    """Each epoch's perplexity (printed to 2 decimals) within 0.1% of the reference's for the
    first 60 epochs, and within 3% to the end: the float32 rounding of the two (fused
    kernels, other summation orders) drifts apart as training memorises the short corpus."""
    assert len(fast) == len(reference) == 100
    np.testing.assert_allclose(fast[:60], reference[:60], rtol=1e-3)
    np.testing.assert_allclose(fast, reference, rtol=3e-2)
    assert fast[-1] < fast[0] / 4  # it learns the short corpus


@pytest.fixture
def book_dir(tmp_path, monkeypatch, no_display):
    """cwd and import path as when running `python script.py` from the chapter folder, with a short corpus."""
    real_load_data = ptb.load_data

    def short_load_data(data_type="train", data_dir=None):
        corpus, word_to_id, id_to_word = real_load_data(data_type, data_dir)
        return corpus[:TOKENS], word_to_id, id_to_word

    monkeypatch.setattr(ptb, "load_data", short_load_data)
    with book_files.in_book_root(tmp_path) as run:
        yield run


def perplexities(script, capsys, kit="fastlstm"):
    """The perplexities that `script` prints, run from seed 0 on fastlstm's layers or (kit
    "reference") on the plain-NumPy reference's, which the model file's
    `from fastlstm.time_layers import *` then finds in place of fastlstm's."""
    with book_files.layers(kit):
        np.random.seed(0)
        script_globals = book_files.run_script("ch05", script)
    layers = numpy_layers if kit == "reference" else time_layers
    assert type(script_globals["model"].rnn_layer).__module__ == layers.__name__
    out = capsys.readouterr().out
    return [float(line.split("perplexity ")[1]) for line in out.splitlines() if line.startswith("| epoch")]


@pytest.mark.filterwarnings("ignore:FigureCanvasAgg is non-interactive:UserWarning")  # the script's plt.show()
def test_custom_loop_follows_the_books_numpy_code(book_dir, capsys):
    fast = perplexities("train_custom_loop.py", capsys)
    assert_follows(fast, perplexities("train_custom_loop.py", capsys, kit="reference"))


def test_trainer_script_follows_the_books_numpy_code(book_dir, capsys):
    fast = perplexities("train.py", capsys)
    assert (book_dir / "perplexity.png").is_file()  # trainer.plot() without a display
    assert_follows(fast, perplexities("train.py", capsys, kit="reference"))  # a line an epoch


def test_the_model_file_holds_the_layers_arrays(book_dir):
    with book_files.layers("fastlstm"):
        SimpleRnnlm = book_files.load("ch05", "simple_rnnlm").SimpleRnnlm

    np.random.seed(0)
    model = SimpleRnnlm(vocab_size=30, wordvec_size=8, hidden_size=6)
    assert isinstance(model.rnn_layer, time_layers.TimeRNN) and model.rnn_layer.stateful
    assert all(p is q for p, q in zip(model.params, [p for layer in model.layers for p in layer.params], strict=True))
    xs = np.random.randint(0, 30, size=(2, 5))
    model.forward(xs, xs)
    model.backward()
    assert model.rnn_layer.h.shape == (2, 6)
    model.reset_state()
    assert model.rnn_layer.h is None
