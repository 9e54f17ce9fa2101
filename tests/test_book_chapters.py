"""The book's chapters 4, 7 and 8, as book-style files in tests/book_chXX (the book's public API
after the import rewrite), run as the book runs them with the data narrowed: on fastlstm's
layers and on the plain-NumPy reference of the book's layers, from the same seed, their
losses and answers follow each other.

Paths: the book's files import each other through the folder above the chapters
(`from ch07.seq2seq import ...`, `from ch06.rnnlm import ...`), which their
`sys.path.append('..')` puts on the path when they run from their chapter folder:
fastlstm.reference.book_files.in_book_root gives them such a folder. One more path the book
itself relies on without saying so: chapter 8's train.py imports ch07.peeky_seq2seq, whose own
`from seq2seq import ...` needs the chapter 7 folder on the path; test_ch08_train gives it.
"""

import os
import pickle

import numpy as np
import pytest

from fastlstm.dataset import ptb, sequence
from fastlstm.optimizer import Adam
from fastlstm.reference import book_files
from fastlstm.trainer import Trainer
from fastlstm.util import eval_seq2seq

PTB_TOKENS = 600      # chapter 4: 590 contexts, five batches of 100 per epoch
TRAIN, TEST = 128, 8  # chapters 7 and 8: one batch of 128 per epoch, 8 test questions

pytestmark = pytest.mark.usefixtures("one_thread")  # both sides: these shapes train fastest so


@pytest.fixture
def book_dir(tmp_path, no_display):
    """cwd and paths as when running a script from its chapter folder, no display."""
    import matplotlib.pyplot as plt
    plt.switch_backend("Agg")
    with book_files.in_book_root(tmp_path) as run:
        yield run
    plt.close("all")


@pytest.fixture
def book_run(book_dir, monkeypatch):
    """book_dir, with the data sets narrowed for the scripts' full epochs."""
    real_ptb, real_sequence = ptb.load_data, sequence.load_data

    def short_ptb(data_type="train", data_dir=None):
        corpus, word_to_id, id_to_word = real_ptb(data_type, data_dir)
        return corpus[:PTB_TOKENS], word_to_id, id_to_word

    def short_sequence(file_name="addition.txt", seed=1984):
        (x_train, t_train), (x_test, t_test) = real_sequence(file_name, seed)
        return (x_train[:TRAIN], t_train[:TRAIN]), (x_test[:TEST], t_test[:TEST])

    monkeypatch.setattr(ptb, "load_data", short_ptb)
    monkeypatch.setattr(sequence, "load_data", short_sequence)
    return book_dir


def run_on_both(chapter, script, *paths):
    """{kit: the script's globals} of the script run on fastlstm's layers and on the reference's,
    each from np.random.seed(0)."""
    runs = {}
    for kit in ("fastlstm", "reference"):
        with book_files.layers(kit), book_files.on_path(*paths):
            np.random.seed(0)
            runs[kit] = book_files.run_script(chapter, script)
    return runs


def test_ch04_train_then_eval(book_run, capsys):
    runs = run_on_both("ch04", "train.py")
    fast, ref = (runs[k]["trainer"].loss_list for k in ("fastlstm", "reference"))
    assert len(fast) == 10 and fast[-1] < fast[0] - 0.1  # one reported loss an epoch; it learns
    np.testing.assert_allclose(fast, ref, rtol=1e-5)
    model = runs["fastlstm"]["model"]
    assert type(model.in_layers[0]).__module__ == "fastlstm.layers"
    assert type(runs["reference"]["model"].in_layers[0]).__module__ == "fastlstm.reference.numpy_layers"
    # the book's params: W_in once per context position (10), W_out once per sampled loss (6)
    assert len(model.params) == 16 and all(p is model.params[0] for p in model.params[:10])
    np.testing.assert_allclose(model.word_vecs, runs["reference"]["model"].word_vecs, rtol=1e-4, atol=1e-7)
    assert (book_run / "loss.png").read_bytes().startswith(b"\x89PNG")

    capsys.readouterr()
    book_files.run_script("ch04", "eval.py")
    out = capsys.readouterr().out
    assert out.count("[query] ") == 4 and out.count("[analogy] ") == 4
    with open(book_run / "cbow_params.pkl", "rb") as f:
        saved = pickle.load(f)
    assert saved["word_vecs"].dtype == np.float16 and saved["word_vecs"].shape == (len(saved["word_to_id"]), 100)


def test_ch04_skip_gram_follows_the_reference(book_run):
    corpus = ptb.load_data("train")[0]
    contexts = np.stack([corpus[:-2], corpus[2:]], axis=1)[:50]
    target = corpus[1:-1][:50]
    results = {}
    for kit in ("fastlstm", "reference"):
        with book_files.layers(kit):
            SkipGram = book_files.load("ch04", "skip_gram").SkipGram
            np.random.seed(3)
            model = SkipGram(int(corpus.max()) + 1, 8, 1, corpus)
            loss = model.forward(contexts, target)
            model.backward()
            results[kit] = loss, [g.copy() for g in model.grads]
    (fast_loss, fast_grads), (ref_loss, ref_grads) = results["fastlstm"], results["reference"]
    assert fast_loss == pytest.approx(ref_loss, rel=1e-6)
    assert len(fast_grads) == 1 + 2 * 6
    for fast, ref in zip(fast_grads, ref_grads):
        np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-8)


def seq2seq_runs_agree(runs, epochs):
    fast, ref = (runs[k]["trainer"].loss_list for k in ("fastlstm", "reference"))
    assert len(fast) == epochs and fast[-1] < fast[0]
    np.testing.assert_allclose(fast, ref, rtol=1e-5)
    assert runs["fastlstm"]["acc_list"] == runs["reference"]["acc_list"]
    assert type(runs["fastlstm"]["model"].encoder.lstm).__module__ == "fastlstm.time_layers"


def test_ch07_train_seq2seq(book_run, capsys):
    runs = run_on_both("ch07", "train_seq2seq.py")
    seq2seq_runs_agree(runs, 25)
    out = capsys.readouterr().out
    assert out.count("val acc ") == 2 * 25 and out.count("\nQ ") >= 2 * 25 * TEST


def test_ch08_train(book_run, capsys):
    runs = run_on_both("ch08", "train.py", "ch07")  # the path the book's train.py needs, see above
    seq2seq_runs_agree(runs, 10)
    assert (book_run / "AttentionSeq2seq.pkl").is_file()
    attention = runs["fastlstm"]["model"].decoder.attention
    assert [a.shape for a in attention.attention_weights] == [(1, 29)]  # a generation step's weights over the question


# ---------------------------------------------------------------- chapter 7's text generation


@pytest.mark.parametrize("name", ["RnnlmGen", "BetterRnnlmGen"])
def test_rnnlm_gen_on_fastlstm_models(book_dir, name):
    """The book-style rnnlm_gen.py (its ch06 models through the root) on fastlstm and on the
    reference, and fastlstm.models' own generator: the same words from the same seeds."""
    from fastlstm import models

    sizes = dict(vocab_size=50, wordvec_size=12, hidden_size=12)
    words = {}
    for kit in ("fastlstm", "reference"):
        with book_files.layers(kit):
            np.random.seed(0)
            model = getattr(book_files.load("ch07", "rnnlm_gen"), name)(**sizes)
            np.random.seed(1)
            words[kit] = model.generate(3, skip_ids=[4, 5], sample_size=40)
            state = model.get_state()
            model.set_state(state)
            assert model.get_state() == state
    np.random.seed(0)
    own = getattr(models, name)(**sizes)
    np.random.seed(1)
    words["fastlstm.models"] = own.generate(3, skip_ids=[4, 5], sample_size=40)
    assert words["fastlstm"] == words["reference"] == words["fastlstm.models"]
    ids = words["fastlstm"]
    assert len(ids) == 40 and ids[0] == 3 and not {4, 5} & set(ids) and len(set(ids)) > 10
    assert all(type(i) is int for i in ids)


# ---------------------------------------------------------------- weights in the book's format

def answers(model, questions, corrects, id_to_char):
    """(the generated answers, the number right by eval_seq2seq)."""
    guesses = [tuple(int(c) for c in model.generate(q[None], c[0], len(c) - 1)) for q, c in zip(questions, corrects)]
    right = sum(eval_seq2seq(model, q[None], c[None], id_to_char) for q, c in zip(questions, corrects))
    return guesses, right


@pytest.mark.parametrize("name", book_files.SEQ2SEQ)
def test_weights_saved_by_the_book_give_the_same_answers(book_dir, name):
    chapter, module, _, hidden, _ = book_files.SEQ2SEQ[name]
    _, (x_test, t_test) = book_files.seq2seq_data(name)
    char_to_id, id_to_char = sequence.get_vocab()
    V = len(char_to_id)
    questions, corrects = x_test[:40], t_test[:40]

    with book_files.layers("reference"):
        np.random.seed(0)
        book_model = getattr(book_files.load(chapter, module), name)(V, 16, hidden)
        for p in book_model.params:  # weights far from their initial values, varied answers
            p += np.random.standard_normal(p.shape).astype(p.dtype) * 0.3
        with open("book.pkl", "wb") as f:  # the book's BaseModel.save_params
            pickle.dump([p.astype(np.float16) for p in book_model.params], f)
        book_model.load_params("book.pkl")  # the float16 rounding, on both sides
        expected, expected_right = answers(book_model, questions, corrects, id_to_char)

    with book_files.layers("fastlstm"):
        model = getattr(book_files.load(chapter, module), name)(V, 16, hidden)
        assert type(model.encoder.lstm).__module__ == "fastlstm.time_layers"
        model.load_params("book.pkl")
        got, right = answers(model, questions, corrects, id_to_char)
        model.save_params()  # and back, in the book's format
    assert got == expected and right == expected_right
    assert len(set(expected)) > 5  # answers that depend on the question
    with open(f"{name}.pkl", "rb") as f:
        again = pickle.load(f)
    for a, p in zip(again, book_model.params):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, p.astype(np.float16))


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FASTLSTM_BOOK_CH08_WEIGHTS"),
                    reason="set FASTLSTM_BOOK_CH08_WEIGHTS to the book's ch08/AttentionSeq2seq.pkl")
def test_the_books_published_attention_weights(book_dir, monkeypatch, capsys):
    """The weights the book publishes for chapter 8 (ch08/AttentionSeq2seq.pkl of its repository,
    not shipped here), on fastlstm: the accuracy on the whole date test set."""
    monkeypatch.setattr(sequence, "char_to_id", {})  # the vocabulary of date.txt alone, as the book trained it
    monkeypatch.setattr(sequence, "id_to_char", {})
    (_, _), (x_test, t_test) = sequence.load_data("date.txt")
    x_test = x_test[:, ::-1]
    char_to_id, id_to_char = sequence.get_vocab()
    with book_files.layers("fastlstm"):
        model = book_files.load("ch08", "attention_seq2seq").AttentionSeq2seq(len(char_to_id), 16, 256)
        model.load_params(os.environ["FASTLSTM_BOOK_CH08_WEIGHTS"])
        right = sum(eval_seq2seq(model, x_test[[i]], t_test[[i]], id_to_char) for i in range(len(x_test)))
    accuracy = right / len(x_test)
    with capsys.disabled():
        print(f"\nthe book's chapter 8 weights on fastlstm: {right} / {len(x_test)} right, {accuracy:.2%}")
    assert accuracy > 0.99


def test_the_chapters_benchmark_says_where_the_book_files_are_missing(tmp_path, monkeypatch, capsys):
    from fastlstm import benchmark

    monkeypatch.setenv("FASTLSTM_BOOK_FILES", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="set FASTLSTM_BOOK_FILES to its tests/"):
        book_files.book_root(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(["chapters", "--cases", "ch07", "--repeat", "1"])
    assert exit_.value.code == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
