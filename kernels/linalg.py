"""Row and column passes shared by the layers: the bias added to a product's rows, and the
bias gradients' column sums."""

import numpy as np
from numba import njit, prange

from fastlstm.kernels.parallel import parallel_kernel

# Columns per parallel task in the column-block loops (the embedding's scatter-add, column_sums
# adding up its row blocks' sums): a row's slice of 1 KiB in float32.
COLUMN_BLOCK = 256
# Rows per parallel task of column_sums.
SUM_ROWS = 32


@njit(cache=True, nogil=True)
def add_to_rows(a, b):
    """a[i, :] += b for every row i, serially and without the GIL: each product lane
    (fastlstm/blas.py) adds the bias to its own rows. NumPy's broadcast add takes a 32 KiB
    buffer for it, two at a time with two lanes, which evaluation's no-allocation check saw.

    a (K, P), rows contiguous; b (P,).
    """
    K, P = a.shape
    for i in range(K):
        row = a[i]
        for j in range(P):
            row[j] += b[j]


@parallel_kernel()
def column_sums(a, out):
    """out[j] = sum_i a[i, j]: each parallel task sums a block of SUM_ROWS rows, reading
    them in order (blocks of columns would read every row in short strided pieces), then each task adds up the blocks' sums for a
    block of columns. The blocks depend on the shape alone, so the result does not depend
    on the number of threads.

    a (K, P); out (P,). The loops index slices from 0 so that they vectorise.
    """
    K, P = a.shape
    n_blocks = max(1, (K + SUM_ROWS - 1) // SUM_ROWS)
    sums = np.empty((n_blocks, P), dtype=out.dtype)
    for k in prange(n_blocks):
        acc = sums[k]
        for j in range(P):
            acc[j] = 0
        for i in range(k * SUM_ROWS, min(K, (k + 1) * SUM_ROWS)):
            row = a[i]
            for j in range(P):
                acc[j] += row[j]
    for c in prange((P + COLUMN_BLOCK - 1) // COLUMN_BLOCK):
        j0 = c * COLUMN_BLOCK
        j1 = min(j0 + COLUMN_BLOCK, P)
        total = out[j0:j1]
        for j in range(j1 - j0):
            total[j] = sums[0, j0 + j]
        for k in range(1, n_blocks):
            part = sums[k, j0:j1]
            for j in range(j1 - j0):
                total[j] += part[j]
