"""fastlstm.dataset.sequence and .spiral return the book's arrays: against transcriptions of
the book's loaders reading the verified copies in ../shared/data/sequence; the packaged
files are those copies, and a non-editable install carries them (pyproject's package data)."""

import hashlib
import tomllib
from pathlib import Path

import numpy as np
import pytest

from fastlstm.dataset import sequence, spiral

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "sequence"


class BookSequence:
    """The book's dataset/sequence.py, reading a given folder: its vocabulary is its own state."""

    def __init__(self, folder):
        self.folder, self.char_to_id, self.id_to_char = folder, {}, {}

    def _update_vocab(self, txt):
        for char in txt:
            if char not in self.char_to_id:
                self.id_to_char[len(self.char_to_id)] = char
                self.char_to_id[char] = len(self.char_to_id)

    def load_data(self, file_name, seed=1984):
        questions, answers = [], []
        for line in open(self.folder / file_name, 'r'):
            idx = line.find('_')
            questions.append(line[:idx])
            answers.append(line[idx:-1])
        for q, a in zip(questions, answers):
            self._update_vocab(q)
            self._update_vocab(a)
        x = np.zeros((len(questions), len(questions[0])), dtype=int)
        t = np.zeros((len(questions), len(answers[0])), dtype=int)
        for i, sentence in enumerate(questions):
            x[i] = [self.char_to_id[c] for c in sentence]
        for i, sentence in enumerate(answers):
            t[i] = [self.char_to_id[c] for c in sentence]
        indices = np.arange(len(x))
        if seed is not None:
            np.random.seed(seed)
        np.random.shuffle(indices)
        x, t = x[indices], t[indices]
        split_at = len(x) - len(x) // 10
        return (x[:split_at], t[:split_at]), (x[split_at:], t[split_at:])


@pytest.fixture
def fresh_vocab(monkeypatch):
    """sequence's vocabulary as at import: empty."""
    monkeypatch.setattr(sequence, "char_to_id", {})
    monkeypatch.setattr(sequence, "id_to_char", {})


def assert_same(got, expected):
    for (x, t), (bx, bt) in zip(got, expected):
        for a, b in ((x, bx), (t, bt)):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("order", [("addition.txt", "date.txt"), ("date.txt", "addition.txt")])
def test_the_books_arrays_and_vocabulary(fresh_vocab, order):
    book = BookSequence(SHARED)
    for file_name in order:
        got = sequence.load_data(file_name)
        after_ours = np.random.rand()
        assert_same(got, book.load_data(file_name))
        assert np.random.rand() == after_ours  # the generator is left where the book's loader leaves it
        char_to_id, id_to_char = sequence.get_vocab()
        assert char_to_id == book.char_to_id and id_to_char == book.id_to_char
        assert char_to_id is sequence.char_to_id  # the module's own state, as in the book
    assert len(sequence.get_vocab()[0]) == 60  # date.txt's 59 characters and addition.txt's '+'


def test_the_books_printed_example(fresh_vocab):
    (x_train, t_train), (x_test, t_test) = sequence.load_data('addition.txt', seed=1984)
    char_to_id, id_to_char = sequence.get_vocab()
    assert x_train.shape == (45000, 7) and t_train.shape == (45000, 5)
    assert x_test.shape == (5000, 7) and t_test.shape == (5000, 5)
    np.testing.assert_array_equal(x_train[0], [3, 0, 2, 0, 0, 11, 5])
    np.testing.assert_array_equal(t_train[0], [6, 0, 11, 7, 5])
    assert ''.join(id_to_char[c] for c in x_train[0]) == '71+118 '
    assert ''.join(id_to_char[c] for c in t_train[0]) == '_189 '


def test_other_seeds_and_no_seed(fresh_vocab):
    book = BookSequence(SHARED)
    assert_same(sequence.load_data('addition.txt', seed=7), book.load_data('addition.txt', seed=7))
    np.random.seed(3)
    ours = sequence.load_data('addition.txt', seed=None)
    np.random.seed(3)
    assert_same(ours, book.load_data('addition.txt', seed=None))


def test_packaged_files_are_the_verified_copies():
    sums = dict(line.split()[::-1] for line in (SHARED / "SHA256SUMS").read_text().splitlines())
    for name in sequence.FILES:
        assert hashlib.sha256((sequence.DATA_DIR / name).read_bytes()).hexdigest() == sums[name]
    assert (sequence.DATA_DIR / "SHA256SUMS").read_text() == (SHARED / "SHA256SUMS").read_text()
    assert "MIT" in (sequence.DATA_DIR / "LICENSE").read_text()


def test_an_install_carries_the_data_files():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "fastlstm.dataset" in config["packages"]
    listed = set(config["package-data"]["fastlstm.dataset"])
    shipped = {f"data/{p.name}" for p in sequence.DATA_DIR.iterdir() if p.is_file()}
    assert shipped == listed == {"data/addition.txt", "data/date.txt", "data/LICENSE", "data/SHA256SUMS"}


def test_own_files_and_bad_ones(fresh_vocab, tmp_path):
    own = tmp_path / "own.txt"
    own.write_text("ab_c\nba_d\n" * 10)
    (x, t), (x_test, t_test) = sequence.load_data(own)
    assert x.shape == (18, 2) and t.shape == (18, 2) and x_test.shape == (2, 2)
    assert sequence.get_vocab()[0] == {'a': 0, 'b': 1, '_': 2, 'c': 3, 'd': 4}

    with pytest.raises(FileNotFoundError, match="ships addition.txt, date.txt"):
        sequence.load_data("subtraction.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("ab_c\nabc_d\n")
    with pytest.raises(ValueError, match="line 2: questions and answers must be padded to one width"):
        sequence.load_data(bad)
    bad.write_text("ab_c\nabcd\n")
    with pytest.raises(ValueError, match="line 2: no '_'"):
        sequence.load_data(bad)


def test_a_damaged_packaged_file_is_refused(monkeypatch, tmp_path):
    for name in ("addition.txt", "SHA256SUMS"):
        (tmp_path / name).write_bytes((sequence.DATA_DIR / name).read_bytes())
    (tmp_path / "addition.txt").write_bytes((tmp_path / "addition.txt").read_bytes().replace(b"16+75", b"16+76", 1))
    monkeypatch.setattr(sequence, "DATA_DIR", tmp_path)
    monkeypatch.setattr(sequence, "_verified", set())
    with pytest.raises(ValueError, match="not the book's .*: reinstall fastlstm"):
        sequence.load_data("addition.txt")


def book_spiral(seed=1984):
    np.random.seed(seed)
    N, DIM, CLS_NUM = 100, 2, 3
    x = np.zeros((N * CLS_NUM, DIM))
    t = np.zeros((N * CLS_NUM, CLS_NUM), dtype=np.int32)
    for j in range(CLS_NUM):
        for i in range(N):
            rate = i / N
            radius = 1.0 * rate
            theta = j * 4.0 + 4.0 * rate + np.random.randn() * 0.2
            ix = N * j + i
            x[ix] = np.array([radius * np.sin(theta), radius * np.cos(theta)]).flatten()
            t[ix, j] = 1
    return x, t


@pytest.mark.parametrize("seed", [1984, 0])
def test_spiral_is_the_books(seed):
    x, t = spiral.load_data(seed)
    bx, bt = book_spiral(seed)
    assert x.dtype == bx.dtype and t.dtype == bt.dtype
    np.testing.assert_array_equal(x, bx)
    np.testing.assert_array_equal(t, bt)
