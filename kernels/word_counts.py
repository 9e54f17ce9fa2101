"""Kernels of the count-based word vectors (the book's chapter 2): the co-occurrence
counts of a corpus and its positive pointwise mutual information (PPMI)."""

import numpy as np
from numba import njit, prange

from fastlstm.kernels.parallel import parallel_kernel


@njit(cache=True)
def co_occurrence_add(corpus, window_size, C):
    """C[w, corpus[idx +- i]] += 1 for every position idx of word w and every i in
    [1, window_size] that stays inside the corpus.

    corpus (n,) in [0, V), checked by the caller; C (V, V). Serial: counts are integers,
    and a word's row is written by every one of its positions.
    """
    n = corpus.shape[0]
    for idx in range(n):
        w = corpus[idx]
        for i in range(1, window_size + 1):
            if idx - i >= 0:
                C[w, corpus[idx - i]] += 1
            if idx + i < n:
                C[w, corpus[idx + i]] += 1


@parallel_kernel(error_model="numpy")  # NumPy's division by zero: inf or NaN, never an exception
def ppmi_rows(C, total, S, eps, row0, row1, M):
    """M[i, j] = max(0, log2(C[i, j] * total / (S[j] * S[i]) + eps)) for rows i in [row0, row1).

    C (V, V) counts, integer or float; total the sum of C and S (V,) its column sums, of
    the same kind; M (V, V) float32. The products are taken in C's kind and divided in
    float64, as NumPy does in the book's loop; a NaN (0 / 0) gives 0 as the book's max does.
    """
    V = C.shape[1]
    for i in prange(row0, row1):
        for j in range(V):
            pmi = np.log2((C[i, j] * total) / (S[j] * S[i]) + eps)
            M[i, j] = pmi if pmi > 0 else 0.0
