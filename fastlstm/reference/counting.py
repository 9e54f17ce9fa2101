"""The book's corpus helpers of chapters 2 to 4 as its loops compute them, element by
element, for tests and the PPMI benchmark only: the yardstick of fastlstm.word_counts."""

import numpy as np


def create_co_matrix(corpus, vocab_size, window_size=1):
    corpus_size = len(corpus)
    co_matrix = np.zeros((vocab_size, vocab_size), dtype=np.int32)
    for idx, word_id in enumerate(corpus):
        for i in range(1, window_size + 1):
            if idx - i >= 0:
                co_matrix[word_id, corpus[idx - i]] += 1
            if idx + i < corpus_size:
                co_matrix[word_id, corpus[idx + i]] += 1
    return co_matrix


def ppmi(C, eps=1e-8):
    M = np.zeros_like(C, dtype=np.float32)
    N = np.sum(C)
    S = np.sum(C, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(C.shape[0]):
            for j in range(C.shape[1]):
                pmi = np.log2(C[i, j] * N / (S[j] * S[i]) + eps)
                M[i, j] = max(0, pmi)
    return M


def create_contexts_target(corpus, window_size=1):
    target = corpus[window_size:-window_size]
    contexts = []
    for idx in range(window_size, len(corpus) - window_size):
        contexts.append([corpus[idx + t] for t in range(-window_size, window_size + 1) if t != 0])
    return np.array(contexts), np.array(target)


def convert_one_hot(corpus, vocab_size):
    one_hot = np.zeros(corpus.shape + (vocab_size,), dtype=np.int32)
    for index in np.ndindex(corpus.shape):
        one_hot[index + (corpus[index],)] = 1
    return one_hot
