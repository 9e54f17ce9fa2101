"""Matrix products through NumPy's BLAS, their rows split over lanes (fastlstm/lanes.py)."""

import functools

import numpy as np

from fastlstm import lanes
from fastlstm.checks import c_order_view
from fastlstm.kernels.linalg import add_to_rows
from fastlstm.threads import single_threaded_blas

# A lane's share of a product: at least this many rows and this many multiply-adds, below
# which starting a thread costs more than the lane saves.
MIN_ROWS = 16
MIN_WORK = 1 << 21
# Row counts tried, smallest first, as the quantum of a product's cuts (row_quantum).
QUANTA = (8, 12, 16, 24, 32, 48, 64, 96)
# A product's lanes follow their speeds only when an even share of it is at least
# 4 x FOLLOW_WORK multiply-adds, so that every block, however SPEED_BOUNDS let the speeds cut
# it, keeps FOLLOW_WORK or more: BLAS may compute smaller products another way, whose bits
# differ from the whole product's (OpenBLAS's AVX-512 kernels take a direct path below 7.3
# million), and that would make results depend on timing. Smaller products are split
# evenly, still at multiples of the quantum. BetterRnnlm's products are all far above it.
FOLLOW_WORK = 1 << 23


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
    work = M * K * b.shape[1]
    n = min(lanes.lane_count(M, MIN_ROWS), max(1, work // MIN_WORK))
    quantum = row_quantum(out.dtype) if n > 1 else None

    def lane(k, i0, i1):
        np.matmul(a[i0:i1], b, out=out[i0:i1])
        if bias is not None:
            add_to_rows(out[i0:i1], bias)

    lanes.run(lane, M, n, quantum=quantum, follow=work // n >= 4 * FOLLOW_WORK, learn=True)
    return out


@functools.lru_cache(maxsize=None)
def row_quantum(dtype):
    """The fewest rows q (of QUANTA) such that single-threaded BLAS gives every row of a
    product the same bits whether the product is cut at multiples of q or not, or None.

    BLAS kernels work on blocks of a few rows and round a short last block another way
    (OpenBLAS's float32 kernel here: 12 rows; float64: 8); cut at multiples of such a
    block, a product's blocks are the whole product's rows to the bit, so the lanes can
    split it by their speeds without the results depending on timing. Found by trying
    each candidate, plain and with a transposed left operand, on a product whose blocks
    take FOLLOW_WORK multiply-adds or more, as the lanes' do when they follow their speeds;
    None leaves the lanes' even split."""
    rng = np.random.default_rng(0)
    K, N = 512, 2048  # a block of 8 rows: FOLLOW_WORK
    b = rng.standard_normal((K, N)).astype(dtype)
    with single_threaded_blas():
        for q in QUANTA:
            M = 4 * q + q // 2 + 1
            for a in (rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, M)).astype(dtype).T):
                whole = np.matmul(a, b)
                if not all(np.array_equal(np.matmul(a[:cut], b), whole[:cut])
                           and np.array_equal(np.matmul(a[cut:], b), whole[cut:]) for cut in range(q, M, q)):
                    break
            else:
                return q
    return None


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
