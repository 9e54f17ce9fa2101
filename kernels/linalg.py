"""Matrix-product helpers shared by the kernels: BLAS through np.dot, race-free column sums."""

import numpy as np
from numba import njit, prange


@njit(cache=True)
def matmul_tn(a, b, out, out_transposed):
    """out = a.T @ b, written into a C-contiguous buffer.

    a (K, P), b (K, Q); out (P, Q), or (Q, P) holding the transpose when `out_transposed`:
    a gradient buffer shaped like a transposed (tied) weight is F-contiguous, and BLAS
    writes only C-contiguous outputs, so the caller passes its transpose instead.
    """
    if out_transposed:
        np.dot(b.T, a, out)
    else:
        np.dot(a.T, b, out)


COLUMN_BLOCK = 64


@njit(parallel=True, cache=True)
def column_sums(a, out):
    """out[j] = sum_i a[i, j]: each parallel task owns a block of columns, so no two write one element.

    a (K, P); out (P,)
    """
    K, P = a.shape
    for k in prange((P + COLUMN_BLOCK - 1) // COLUMN_BLOCK):
        j0 = k * COLUMN_BLOCK
        j1 = min(j0 + COLUMN_BLOCK, P)
        for j in range(j0, j1):
            out[j] = 0
        for i in range(K):
            for j in range(j0, j1):
                out[j] += a[i, j]
