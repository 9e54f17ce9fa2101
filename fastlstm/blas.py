"""Matrix products through NumPy's BLAS, their rows split over lanes (fastlstm/lanes.py)."""

import numpy as np

from fastlstm import lanes
from fastlstm.checks import c_order_view
from fastlstm.kernels.linalg import add_to_rows

# A lane's share of a product: at least this many rows and this many multiply-adds, below
# which starting a thread costs more than the lane saves.
MIN_ROWS = 16
MIN_WORK = 1 << 21


def dot(a, b, out=None, bias=None):
    """a @ b (+ bias, a row added to every row) for 2-D a and b into `out` (C-contiguous, of
    their dtype; made when None).

    np.matmul hands a row block of a transposed operand to BLAS as it is, with its leading
    dimension; np.dot would copy it first (the block is neither C- nor F-contiguous). Each
    lane adds the bias to its own rows, so that the pass over the output runs on every core.
    """
    M, K = a.shape
    if out is None:
        out = np.empty((M, b.shape[1]), dtype=a.dtype)
    if bias is not None and bias.shape != (out.shape[1],):  # the kernel reads bias[:columns] unchecked
        raise ValueError(f"bias must have shape ({out.shape[1]},), got {bias.shape}")
    n = min(lanes.lane_count(M, MIN_ROWS), max(1, M * K * b.shape[1] // MIN_WORK))

    def lane(k, i0, i1):
        np.matmul(a[i0:i1], b, out=out[i0:i1])
        if bias is not None:
            add_to_rows(out[i0:i1], bias)

    lanes.run(lane, M, n)
    return out


def matmul_tn_into(a, b, out):
    """out[...] = a.T @ b without a temporary.

    BLAS writes only C-contiguous outputs; a gradient shaped like a tied, transposed
    weight is F-contiguous, so its transpose receives b.T @ a instead.
    """
    buf, transposed = c_order_view(out)
    if transposed:
        dot(b.T, a, out=buf)
    else:
        dot(a.T, b, out=buf)
