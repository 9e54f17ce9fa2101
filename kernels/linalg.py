"""Reductions shared by the layers' backward passes."""

from numba import njit, prange

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
