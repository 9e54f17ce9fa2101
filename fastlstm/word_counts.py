"""The book's corpus helpers of chapters 2 to 4 (`common.util`): word ids from text, the
co-occurrence matrix and its PPMI (compiled kernels: the book's loops over every pair of
words are the slowest part of chapter 2), contexts and targets for word2vec, one-hot codes.
"""

import numpy as np

from fastlstm.checks import as_token_ids, positive_int
from fastlstm.kernels import word_counts as _k

# PPMI rows are computed in this many blocks when progress is printed (verbose)
_PROGRESS_STEPS = 100


def preprocess(text):
    """(corpus, word_to_id, id_to_word) of text: lower-cased, '.' split off as a word, words
    split at single spaces, ids in order of first appearance, as in the book."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    words = text.lower().replace('.', ' .').split(' ')
    word_to_id, id_to_word = {}, {}
    for word in words:
        if word not in word_to_id:
            new_id = len(word_to_id)
            word_to_id[word] = new_id
            id_to_word[new_id] = word
    corpus = np.array([word_to_id[w] for w in words])
    return corpus, word_to_id, id_to_word


def _corpus(corpus):
    """corpus as a 1-D array."""
    corpus = np.asarray(corpus)
    if corpus.ndim != 1:
        raise ValueError(f"corpus must be a 1-D sequence of word ids, got shape {corpus.shape}")
    return corpus


def create_co_matrix(corpus, vocab_size, window_size=1):
    """The co-occurrence matrix (vocab_size, vocab_size), int32: C[w, v] counts the times word v
    stands within window_size words of an occurrence of word w."""
    vocab_size = positive_int(vocab_size, "vocab_size")
    corpus = as_token_ids(_corpus(corpus), vocab_size, "corpus")
    co_matrix = np.zeros((vocab_size, vocab_size), dtype=np.int32)
    _k.co_occurrence_add(corpus, positive_int(window_size, "window_size"), co_matrix)
    return co_matrix


def ppmi(C, verbose=False, eps=1e-8):
    """Positive PMI of the co-occurrence matrix C (V, V), float32:
    max(0, log2(C[i, j] * N / (S[i] * S[j]) + eps)), N the sum of C and S its column sums.

    Integer counts are multiplied as integers and divided in float64, as the book's loop
    does; float counts are summed and multiplied in float64. With verbose, progress is
    printed in steps of a percent.
    """
    C = np.asarray(C)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"C must be a square co-occurrence matrix, got shape {C.shape}")
    if C.dtype.kind not in "iuf":
        raise TypeError(f"C must hold counts (integers or floats), got {C.dtype}")
    if C.dtype.kind == "f":
        if not np.isfinite(C).all():
            raise ValueError("C holds NaN or inf")
        total, S = np.sum(C, dtype=np.float64), np.sum(C, axis=0, dtype=np.float64)
    else:
        total, S = np.sum(C), np.sum(C, axis=0)
    if C.size and C.min() < 0:
        raise ValueError("C holds negative counts")
    V = C.shape[0]
    M = np.empty((V, V), dtype=np.float32)
    steps = _PROGRESS_STEPS if verbose else 1
    rows = -(-V // steps) if V else 0
    for row0 in range(0, V, max(rows, 1)):
        row1 = min(V, row0 + rows)
        _k.ppmi_rows(C, total, S, float(eps), row0, row1, M)
        if verbose:
            print('%.1f%% done' % (100 * row1 / V))
    return M


def create_contexts_target(corpus, window_size=1):
    """(contexts (n - 2w, 2w), target (n - 2w,)) of corpus (n,), w = window_size: each target
    word with the w words before and the w after it, in corpus order."""
    corpus = _corpus(corpus)
    w = positive_int(window_size, "window_size")
    n = len(corpus)
    if n <= 2 * w:
        raise ValueError(f"a corpus of {n} words has no target with {w} context words on each side")
    offsets = [o for o in range(-w, w + 1) if o != 0]
    contexts = np.stack([corpus[w + o:n - w + o] for o in offsets], axis=1)
    return contexts, corpus[w:n - w].copy()


def convert_one_hot(corpus, vocab_size):
    """One-hot codes, int32: word ids (N,) give (N, vocab_size), ids (N, C) give (N, C, vocab_size)."""
    vocab_size = positive_int(vocab_size, "vocab_size")
    corpus = np.asarray(corpus)
    if corpus.ndim not in (1, 2):
        raise ValueError(f"corpus must be 1-D or 2-D word ids, got shape {corpus.shape}")
    ids = as_token_ids(corpus, vocab_size, "corpus")
    one_hot = np.zeros(ids.shape + (vocab_size,), dtype=np.int32)
    np.put_along_axis(one_hot, ids[..., None], 1, axis=-1)
    return one_hot
