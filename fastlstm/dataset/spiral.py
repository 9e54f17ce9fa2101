"""The book's spiral data set of chapter 1, a drop-in for its ``dataset/spiral.py``."""

import numpy as np

__all__ = ["load_data"]


def load_data(seed=1984):
    """(x (300, 2) float64, t (300, 3) int32 one-hot): three spiral arms of 100 points each.

    Seeds NumPy's global generator with `seed`, then draws each point's angle noise in the
    book's order (arm by arm), so the points are the book's.
    """
    np.random.seed(seed)
    N = 100  # points per class
    DIM = 2
    CLS_NUM = 3

    x = np.zeros((N * CLS_NUM, DIM))
    t = np.zeros((N * CLS_NUM, CLS_NUM), dtype=np.int32)
    rate = np.arange(N) / N
    for j in range(CLS_NUM):
        radius = 1.0 * rate
        theta = j * 4.0 + 4.0 * rate + np.random.randn(N) * 0.2
        x[N * j:N * (j + 1), 0] = radius * np.sin(theta)
        x[N * j:N * (j + 1), 1] = radius * np.cos(theta)
        t[N * j:N * (j + 1), j] = 1
    return x, t
