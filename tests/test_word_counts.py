"""The book's helpers of chapters 2 to 4 in fastlstm.util against the book's loops
(fastlstm.reference.counting): the same values, dtypes and printed output."""

import numpy as np
import pytest

from fastlstm import util
from fastlstm.reference import counting as book

TEXT = 'You say goodbye and I say hello.'


def test_preprocess_is_the_books():
    corpus, word_to_id, id_to_word = util.preprocess(TEXT)
    np.testing.assert_array_equal(corpus, [0, 1, 2, 3, 4, 1, 5, 6])
    assert word_to_id == {'you': 0, 'say': 1, 'goodbye': 2, 'and': 3, 'i': 4, 'hello': 5, '.': 6}
    assert id_to_word == {i: w for w, i in word_to_id.items()}
    assert util.preprocess('a  b.')[1] == {'a': 0, '': 1, 'b': 2, '.': 3}  # split at single spaces, as the book
    with pytest.raises(TypeError, match="text must be a str"):
        util.preprocess(b'bytes')


def random_corpus(seed, n=500, V=40):
    rng = np.random.default_rng(seed)
    return rng.zipf(1.5, size=n).clip(max=V) - 1, V  # a skewed vocabulary, some ids never used


@pytest.mark.parametrize("window_size", [1, 2, 5])
def test_co_matrix_is_the_books(window_size):
    corpus, V = random_corpus(window_size)
    got = util.create_co_matrix(corpus, V, window_size)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, book.create_co_matrix(corpus, V, window_size))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_ppmi_is_the_books(dtype):
    corpus, V = random_corpus(7)
    C = util.create_co_matrix(corpus, V, 2).astype(dtype)
    assert (C.sum(axis=0) == 0).any()  # unused words: 0 / 0, which the book's max turns into 0
    got = util.ppmi(C)
    expected = book.ppmi(C.astype(np.float64) if dtype == np.float32 else C)  # float counts: in float64
    assert got.dtype == np.float32 and got.shape == (V, V)
    np.testing.assert_array_equal(got, expected)
    assert got.max() > 0 and (got >= 0).all()


def test_ppmi_of_the_books_example_and_progress(capsys):
    corpus, word_to_id, _ = util.preprocess(TEXT)
    C = util.create_co_matrix(corpus, len(word_to_id))
    np.testing.assert_array_equal(util.ppmi(C, verbose=True), book.ppmi(C))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and lines[-1] == "100.0% done"  # a step per row here: 7 rows


def test_ppmi_refuses_what_is_not_a_count_matrix():
    with pytest.raises(ValueError, match="square co-occurrence matrix, got shape \\(2, 3\\)"):
        util.ppmi(np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="negative counts"):
        util.ppmi(np.array([[1, -1], [0, 2]]))
    with pytest.raises(TypeError, match="must hold counts"):
        util.ppmi(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="NaN or inf"):
        util.ppmi(np.array([[1.0, np.nan], [0.0, 2.0]]))


def test_co_matrix_refuses_ids_outside_the_vocabulary():
    with pytest.raises(IndexError, match="corpus holds token id 5, outside \\[0, 5\\)"):
        util.create_co_matrix(np.array([0, 5, 1]), 5)
    with pytest.raises(ValueError, match="window_size must be a positive integer"):
        util.create_co_matrix(np.array([0, 1]), 5, window_size=0)


@pytest.mark.parametrize("window_size", [1, 2, 5])
def test_contexts_target_are_the_books(window_size):
    corpus, _ = random_corpus(window_size, n=40)
    contexts, target = util.create_contexts_target(corpus, window_size)
    book_contexts, book_target = book.create_contexts_target(corpus, window_size)
    assert contexts.dtype == book_contexts.dtype and target.dtype == book_target.dtype
    np.testing.assert_array_equal(contexts, book_contexts)
    np.testing.assert_array_equal(target, book_target)
    assert not np.shares_memory(target, corpus)
    with pytest.raises(ValueError, match="a corpus of 10 words has no target with 5 context words"):
        util.create_contexts_target(np.arange(10), 5)


@pytest.mark.parametrize("shape", [(6,), (4, 3)])
def test_one_hot_is_the_books(shape):
    ids = np.random.default_rng(0).integers(0, 5, size=shape)
    got = util.convert_one_hot(ids, 5)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, book.convert_one_hot(ids, 5))
    with pytest.raises(IndexError, match="outside \\[0, 4\\)"):
        util.convert_one_hot(ids + 4, 4)
    with pytest.raises(ValueError, match="1-D or 2-D word ids"):
        util.convert_one_hot(ids.reshape(1, 1, -1), 5)


def book_cos_similarity(x, y, eps=1e-8):
    nx = x / (np.sqrt(np.sum(x ** 2)) + eps)
    ny = y / (np.sqrt(np.sum(y ** 2)) + eps)
    return np.dot(nx, ny)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_most_similar_is_the_books(dtype, capsys):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(60)]
    word_to_id = {w: i for i, w in enumerate(words)}
    id_to_word = dict(enumerate(words))
    W = rng.standard_normal((60, 8)).astype(dtype)
    book_sims = np.array([book_cos_similarity(W[i], W[3]) for i in range(60)])
    order = [i for i in (-book_sims).argsort() if i != 3][:4]
    found = util.most_similar("w3", word_to_id, id_to_word, W, top=4)
    assert found == [(words[i], book_sims[i]) for i in order]  # the book's values, bit for bit
    out = capsys.readouterr().out
    assert out.startswith("\n[query] w3\n") and f" {words[order[0]]}: {book_sims[order[0]]}" in out
    assert util.cos_similarity(W[1], W[2]) == book_cos_similarity(W[1], W[2])

    assert util.most_similar("nope", word_to_id, id_to_word, W) is None
    assert capsys.readouterr().out == "nope is not found\n"


def test_analogy_and_normalize(capsys):
    rng = np.random.default_rng(2)
    words = ["man", "king", "woman", "queen", "car", "tree"]
    word_to_id = {w: i for i, w in enumerate(words)}
    W = rng.standard_normal((6, 5))
    W[3] = W[1] - W[0] + W[2] + 0.01 * rng.standard_normal(5)  # queen = king - man + woman, nearly
    found = util.analogy("man", "king", "woman", word_to_id, dict(enumerate(words)), W, top=2, answer="queen")
    assert [w for w, _ in found][0] == "queen" and len(found) == 2
    assert {w for w, _ in found}.isdisjoint({"man", "king", "woman"})
    out = capsys.readouterr().out
    assert "[analogy] man:king = woman:?" in out and "==>queen:" in out

    x = rng.standard_normal((3, 4))
    same = util.normalize(x)
    assert same is x
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0)
    v = rng.standard_normal(4)
    np.testing.assert_allclose(np.linalg.norm(util.normalize(v)), 1.0)
    with pytest.raises(TypeError, match="float array"):
        util.normalize(np.arange(4))
