"""Affine map x @ W + b and its backward, with W read where it lies (a tied W is a transposed view)."""

import numpy as np
from numba import njit, prange

from fastlstm.kernels.linalg import column_sums, matmul_tn


@njit(parallel=True, cache=True)
def affine_forward(x, W, b, out):
    """out = x @ W + b.

    x (M, D) C-contiguous; W (D, V) any layout; b (V,); out (M, V) C-contiguous.
    """
    np.dot(x, W, out)
    M = out.shape[0]
    for m in prange(M):
        out[m, :] += b


@njit(cache=True)
def affine_backward(x, W, dout, dx, dW, dW_transposed, db):
    """Gradients of out = x @ W + b.

    x (M, D), dout (M, V) C-contiguous; W (D, V) any layout. Out: dx (M, D);
    dW (D, V) or its transpose (V, D) when `dW_transposed` (see matmul_tn); db (V,).
    """
    np.dot(dout, W.T, dx)
    matmul_tn(x, dout, dW, dW_transposed)
    column_sums(dout, db)
