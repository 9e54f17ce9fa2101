"""Row and column passes shared by the layers: the bias added to a product's rows, and the
bias gradients' column sums."""

from numba import njit, prange

# Columns per parallel task in the column-block kernels: a row's slice of 1 KiB in float32.
COLUMN_BLOCK = 256


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


@njit(parallel=True, cache=True)
def column_sums(a, out):
    """out[j] = sum_i a[i, j]: each parallel task owns a block of columns, so no two write one element.

    a (K, P); out (P,). The loops index slices from 0 so that they vectorise.
    """
    K, P = a.shape
    for k in prange((P + COLUMN_BLOCK - 1) // COLUMN_BLOCK):
        j0 = k * COLUMN_BLOCK
        j1 = min(j0 + COLUMN_BLOCK, P)
        acc = out[j0:j1]
        for j in range(j1 - j0):
            acc[j] = 0
        for i in range(K):
            row = a[i, j0:j1]
            for j in range(j1 - j0):
                acc[j] += row[j]
