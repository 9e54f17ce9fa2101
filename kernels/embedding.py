"""Embedding gather and its race-free scatter-add backward, and their forms with a scale per
word (embedding dropout: a word's row times 0 or 1 / (1 - ratio) for a whole call)."""

from numba import prange

from fastlstm.kernels.parallel import parallel_kernel

from fastlstm.kernels.linalg import COLUMN_BLOCK


@parallel_kernel()
def embedding_forward(W, ids, out):
    """out[m] = W[ids[m]].

    W (V, D) any layout; ids (M,) in [0, V), checked by the caller; out (M, D).
    """
    M, D = out.shape
    for m in prange(M):
        r = ids[m]
        for d in range(D):
            out[m, d] = W[r, d]


@parallel_kernel()
def embedding_backward(ids, dout, dW):
    """dW = 0, then dW[ids[m]] += dout[m] for every m.

    ids (M,) in [0, V); dout (M, D); dW (V, D). A word that repeats adds into one row
    many times: each parallel task owns a block of columns, so no two threads ever write
    the same element, and the sums come out in the same order whatever the thread count.
    """
    V, D = dW.shape
    M = ids.shape[0]
    for v in prange(V):
        for d in range(D):
            dW[v, d] = 0
    for k in prange((D + COLUMN_BLOCK - 1) // COLUMN_BLOCK):
        d0 = k * COLUMN_BLOCK
        d1 = min(d0 + COLUMN_BLOCK, D)
        for m in range(M):
            row = dW[ids[m], d0:d1]
            src = dout[m, d0:d1]
            for d in range(d1 - d0):
                row[d] += src[d]


@parallel_kernel()
def embedding_forward_scaled(W, ids, scale, out):
    """out[m] = W[ids[m]] * scale[ids[m]]: the rows of W * scale[:, None], read where they lie.

    W (V, D) any layout; ids (M,) in [0, V), checked by the caller; scale (V,); out (M, D).
    """
    M, D = out.shape
    for m in prange(M):
        r = ids[m]
        s = scale[r]
        for d in range(D):
            out[m, d] = W[r, d] * s


@parallel_kernel()
def scale_rows(dW, rows, scale):
    """dW[r] *= scale[r] for each r in rows (distinct): after embedding_backward, the gradient
    of W through W * scale[:, None]; the rows no id reached hold zeros and stay so.

    dW (V, D); rows (R,) distinct, in [0, V); scale (V,).
    """
    D = dW.shape[1]
    for i in prange(rows.shape[0]):
        r = rows[i]
        s = scale[r]
        for d in range(D):
            dW[r, d] *= s
