"""The book's `common.functions`: small NumPy helpers used outside the hot paths."""

import numpy as np


def sigmoid(x):
    """Logistic function."""
    return 1 / (1 + np.exp(-x))


def relu(x):
    """max(0, x)."""
    return np.maximum(0, x)


def softmax(x):
    """Softmax over the last axis of a 1-D or 2-D array, shifted by the max for stability."""
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    """Mean cross-entropy of probabilities y against label ids or one-hot t, as the book computes it."""
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size
