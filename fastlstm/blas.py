"""Matrix products into preallocated gradient buffers, through NumPy's BLAS."""

import numpy as np

from fastlstm.checks import c_order_view


def matmul_tn_into(a, b, out):
    """out[...] = a.T @ b without a temporary.

    BLAS writes only C-contiguous outputs; a gradient shaped like a tied, transposed
    weight is F-contiguous, so its transpose receives b.T @ a instead.
    """
    buf, transposed = c_order_view(out)
    if transposed:
        np.dot(b.T, a, out=buf)
    else:
        np.dot(a.T, b, out=buf)
