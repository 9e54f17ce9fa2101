"""Matrix products through NumPy's BLAS, their rows or columns split over lanes (fastlstm/lanes.py)."""

import ctypes
import functools

import numpy as np

from fastlstm import lanes as _lanes
from fastlstm.checks import c_order_view
from fastlstm.kernels import blas_calls
from fastlstm.kernels.linalg import add_to_rows
from fastlstm.kernels.one_row import rows_times_rows
from fastlstm.threads import numpy_openblas, openblas_symbol, single_threaded_blas

# Row counts tried, smallest first, as the quantum of a product's cuts (row_quantum).
QUANTA = (8, 12, 16, 24, 32, 48, 64, 96)
# Right operands (K x N) on which row_quantum tries them: a wide one, whose blocks of 8 rows
# take FOLLOW_WORK, and narrow ones, which BLAS blocks otherwise.
PROBES = ((512, 2048), (513, 300), (700, 300))
# Column counts tried as the quantum of a short product's cuts by columns (column_quantum),
# the products it tries them on, and the fewest multiply-adds of a band of columns: smaller
# products may take BLAS's paths for small ones, whose bits differ.
COLUMN_QUANTA = (16, 32, 64)
COLUMN_PROBES = 16
COLUMN_WORK = 1 << 21
# Products of fewer rows than this a lane are cut by their columns where they are wider
# than long (_bands).
COLUMN_ROWS = 64
# A product's lanes follow their speeds only when an even share of it is at least
# 4 x FOLLOW_WORK multiply-adds, so that every block, however the lanes' speed bounds let
# the speeds cut it, keeps FOLLOW_WORK or more: BLAS may compute smaller products another
# way (OpenBLAS's AVX-512 kernels take a direct path for small ones), whose bits differ
# from the whole product's, and that would make results depend on timing. Smaller
# products are split evenly, still at multiples of the quantum. row_quantum checks its
# quanta on blocks of this size.
FOLLOW_WORK = 1 << 23
# A product on one lane runs in the compiled row loops of kernels/one_row.py, with no BLAS
# call, up to these multiply-adds where the right operand's rows lie contiguous: one row
# (text generation) up to ONE_ROW_WORK, up to SMALL_ROWS rows up to SMALL_WORK. The loops
# read the right operand once for every row, so that more rows run faster in BLAS.
# scripts/small_products.py measures where BLAS starts to pay.
ONE_ROW_WORK, SMALL_ROWS, SMALL_WORK = 1 << 16, 8, 1 << 14
# OpenBLAS runs a product (gemm) of at most 65536 x GEMM_MULTITHREAD_THRESHOLD multiply-adds
# (4 unless built otherwise: its interface/gemm.c) on the calling thread whatever its thread
# count, so that on NumPy's own OpenBLAS a one-lane product up to this size needs no switch
# of BLAS's threads, which costs as much as such a product.
ONE_THREAD_WORK = 1 << 18


def dot(a, b, out=None, bias=None, lanes=None):
    """a @ b (+ bias, a row added to every row) for 2-D a and b into `out` (C-contiguous, of
    their dtype; made when None), on `lanes` (fastlstm.lanes.default() when None).

    np.matmul hands a row block of a transposed operand to BLAS as it is, with its leading
    dimension; np.dot would copy it first (the block is neither C- nor F-contiguous). Each
    lane adds the bias to its own rows, so that the pass over the output runs on every core.
    """
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    if bias is not None and bias.shape != (out.shape[1],):  # the kernel reads bias[:columns] unchecked
        raise ValueError(f"bias must have shape ({out.shape[1]},), got {bias.shape}")
    lanes = _lanes.default() if lanes is None else lanes
    work = a.shape[0] * a.shape[1] * b.shape[1]
    # A small product straight on this thread, with none of the split's bookkeeping, which
    # would cost as much as the product.
    if _work_lanes(work, lanes) > 1 or not _without_switch(a, b, out, bias, work):
        _split_over_lanes([(a, b, out, bias)], lanes)
    return out


def dots(*products, lanes=None):
    """out = a @ b for each (a, b, out) of `products`, independent products run as one split
    over `lanes` (fastlstm.lanes.default() when None): each lane takes the same share of
    every product (of its rows or of its columns: _bands). A backward's weight and input
    gradients go together, so that where one core is slower for the moment the lanes wait
    for it once for the pair instead of once per product."""
    _split_over_lanes([(a, b, out, None) for a, b, out in products], _lanes.default() if lanes is None else lanes)


def _split_over_lanes(products, lanes):
    """Run [(a, b, out, bias or None), ...] (as `dot` takes them) on the lanes, every product
    cut into bands at the same shares: the lanes split the longest band's extent (at
    multiples of its quantum, by their speeds where every product's blocks are large
    enough), and each other product's is cut at the nearest multiple of its quantum to the
    same fractions (`_bands` picks each product's rows or columns)."""
    works = [a.shape[0] * a.shape[1] * b.shape[1] for a, b, _, _ in products]
    n = _work_lanes(sum(works), lanes)
    if n > 1:  # the thread count's look-up takes a lock: only where there is work to share
        n = lanes.count(n, 1)  # no more than the threads
        fields = _compiled(products)
        bands = _bands(products, works, n, fields)
        n = min(n, *(lanes.count(extent, lanes.min_rows) for extent, _, _ in bands))
    if n <= 1:  # on this thread, as the one lane would
        large = [product for product, work in zip(products, works) if not _without_switch(*product, work)]
        if large:
            with single_threaded_blas():
                for product in large:
                    _product(*product)
        return
    lead, quantum, _ = max(bands, key=lambda band: band[0])

    def cut(i, extent, q):
        """The row or column of a band of `extent` at the lead's i."""
        if i == 0:
            return 0
        if i == lead:
            return extent
        if extent == lead and q == quantum:
            return i
        q = q if q and extent >= n * q else 1
        return min(extent, round(i * extent / lead / q) * q)

    # cuts at multiples of a quantum alone may follow the speeds (without one, results would depend on timing)
    follow = all(work // n >= 4 * FOLLOW_WORK for work in works) and all(q for _, q, _ in bands)
    if fields is not None:
        spans = lanes.blocks(lead, n, quantum, follow)
        blocks = np.zeros((n, len(products), blas_calls.BLOCK_FIELDS), dtype=np.int64)
        blocks[:, :, :blas_calls.FIELDS] = fields
        for p, ((extent, q, first), (_, _, out, _)) in enumerate(zip(bands, products)):
            blocks[:, p, blas_calls.J1], blocks[:, p, blas_calls.L1] = out.shape
            for k, (i0, i1) in enumerate(spans):
                blocks[k, p, first], blocks[k, p, first + 1] = cut(i0, extent, q), cut(i1, extent, q)
        lanes.run_products(blocks, len(products), spans)
        return

    def lane(k, i0, i1):  # bands of rows alone: a Python lane's product is a row block's np.matmul
        for (a, b, out, bias), (M, q, _) in zip(products, bands):
            j0, j1 = cut(i0, M, q), cut(i1, M, q)
            _product(a[j0:j1], b, out[j0:j1], bias)

    lanes.run(lane, lead, n, quantum=quantum, follow=follow, learn=True)


def _work_lanes(work, lanes):
    """Lanes that `work` multiply-adds would fill at `lanes.min_work` each, before the
    thread count and the rows limit them: below 2, a product stays on the caller's thread."""
    return work // lanes.min_work


def _bands(products, works, lanes, fields):
    """(extent, quantum, first field) of each product's bands, cut into at most `lanes`:
    of its output's columns (L0, column_quantum) where the lanes run compiled blocks
    (`fields`, or None), each band is COLUMN_WORK or more, and the output has two rows or
    more (BLAS may take one row as a gemv), fewer rows than columns, and either fewer than
    COLUMN_ROWS a lane or a transposed right operand; else of its rows (J0, row_quantum).
    Each lane then packs a band of the right operand instead of all of it, which pays most
    where it is transposed, and no lane of a short product waits for a row quantum's
    uneven cut (scripts/split_axis.py measures both)."""
    bands = []
    for p, ((a, b, out, _), work) in enumerate(zip(products, works)):
        M, N = out.shape
        wide = fields is not None and 1 < M < N and work // lanes >= COLUMN_WORK and \
            (M < COLUMN_ROWS * lanes or fields[p, blas_calls.TRANS_B] == blas_calls.TRANS)
        q = column_quantum(out.dtype) if wide else None
        bands.append((N, q, blas_calls.L0) if q else (M, row_quantum(out.dtype), blas_calls.J0))
    return bands


def _compiled(products):
    """The products' fields for compiled lanes (kernels/blas_calls.describe), one row each,
    or None where some product is not one they take, or there is no gemm to call."""
    gemms = _gemms()
    if gemms is None or len(products) > blas_calls.MAX_PRODUCTS:
        return None
    fields = np.empty((len(products), blas_calls.FIELDS), dtype=np.int64)
    for row, (a, b, out, bias) in zip(fields, products):
        gemm = gemms.get(out.dtype)
        if gemm is None or a.dtype != out.dtype or b.dtype != out.dtype or (bias is not None and bias.dtype != out.dtype):
            return None
        if not blas_calls.describe(row, a, b, out, bias, gemm):
            return None
    return fields


@functools.lru_cache(maxsize=None)
def _gemms():
    """{dtype: address} of sgemm and dgemm in NumPy's own OpenBLAS (a 64-bit-integer build,
    as NumPy's wheels carry), or None where there is no such library, or no clock for the
    lanes to time their blocks by: then the lanes run products in Python."""
    lib = numpy_openblas()
    if lib is None or _lanes.clock_address() is None:
        return None
    gemms = {}
    for dtype, name in ((np.dtype(np.float32), "cblas_sgemm"), (np.dtype(np.float64), "cblas_dgemm")):
        found = openblas_symbol(lib, name)
        if found is None or not found[1]:
            return None
        gemms[dtype] = ctypes.cast(found[0], ctypes.c_void_p).value
    return gemms


def _without_switch(a, b, out, bias, work):
    """Whether out = a @ b (+ bias) was small enough to need no switch of BLAS's threads, and
    so computed: in compiled row loops (SMALL_WORK, ONE_ROW_WORK), or by a BLAS call that
    NumPy's own OpenBLAS keeps on this thread (ONE_THREAD_WORK; at least two rows and columns,
    which np.matmul hands to gemm, and never an operand times its own transpose, which it
    hands to syrk: the layers have none)."""
    M, N = out.shape
    if b.flags.c_contiguous and work <= (ONE_ROW_WORK if M == 1 else SMALL_WORK if M <= SMALL_ROWS else 0):
        rows_times_rows(a, b, bias, out)
    elif work <= ONE_THREAD_WORK and M > 1 and N > 1 and numpy_openblas() is not None:
        _product(a, b, out, bias)
    else:
        return False
    return True


def _product(a, b, out, bias):
    """out = a @ b (+ bias), the work of a lane's block."""
    if a.shape[1] == 1:  # an outer product: np.matmul's own loop takes several times longer
        np.multiply(a, b, out=out)
    else:
        np.matmul(a, b, out=out)
    if bias is not None:
        add_to_rows(out, bias)


@functools.lru_cache(maxsize=None)
def row_quantum(dtype):
    """The fewest rows q (of QUANTA) such that single-threaded BLAS gives every row of a
    product the same bits whether the product is cut at multiples of q or not, or None.

    BLAS kernels work on blocks of a few rows and round a short last block another way
    (OpenBLAS's float32 kernel here: 12 rows; float64: 8); cut at multiples of such a
    block, a product's blocks are the whole product's rows to the bit, so the lanes can
    split it by their speeds without the results depending on timing. Found by trying
    each candidate, plain and with a transposed left operand, on a product whose blocks
    take FOLLOW_WORK multiply-adds or more, as the lanes' do when they follow their speeds,
    and on narrow products (OpenBLAS's AVX-512 dgemm rounds the rows of a narrow product
    by blocks of 24, of a wide one by blocks of 8); None leaves the lanes' even split."""
    rng = np.random.default_rng(0)
    with single_threaded_blas():
        for q in QUANTA:
            if all(_cuts_keep_bits(rng, dtype, q, K, N) for K, N in PROBES):
                return q
    return None


@functools.lru_cache(maxsize=None)
def column_quantum(dtype):
    """The fewest columns q (of COLUMN_QUANTA) such that single-threaded BLAS gives every
    column of a product of two rows or more the same bits whether the product is cut at
    multiples of q or not, where every block takes about COLUMN_WORK multiply-adds or
    more; or None (no product is cut by its columns). Tried as row_quantum tries rows, on
    COLUMN_PROBES short products of plain and transposed right operands, of shapes drawn
    at random (with a fixed seed): where a BLAS rounds a band of columns otherwise, it
    does so at some shapes and not others (OpenBLAS's float64 gemm here: a third of them)."""
    with single_threaded_blas():
        for q in COLUMN_QUANTA:
            rng = np.random.default_rng(0)
            if all(_column_cuts_keep_bits(rng, dtype, q) for _ in range(COLUMN_PROBES)):
                return q
    return None


def _column_cuts_keep_bits(rng, dtype, q):
    """Whether a product of a random shape (M, K, N from `rng`), cut at each multiple of q
    columns that leaves half of COLUMN_WORK or more on either side (a band cut at the
    quantum may fall short of COLUMN_WORK), gives the whole product's bits."""
    M, K = int(rng.integers(2, 128)), int(rng.integers(16, 2048))
    least = -(-COLUMN_WORK // 2 // (M * K))
    N = 2 * least + int(rng.integers(1, 8 * q))
    a = rng.standard_normal((M, K)).astype(dtype)
    right = rng.standard_normal((K, N)).astype(dtype)
    for b in (right, np.ascontiguousarray(right.T).T):
        whole = np.matmul(a, b)
        for cut in range(-(-least // q) * q, N - least + 1, q):
            if not (np.array_equal(np.matmul(a, b[:, :cut]), whole[:, :cut])
                    and np.array_equal(np.matmul(a, b[:, cut:]), whole[:, cut:])):
                return False
    return True


def _cuts_keep_bits(rng, dtype, q, K, N):
    """Whether a product of K x N on the right, cut at multiples of q rows, gives the whole
    product's bits, with a plain and with a transposed left operand."""
    M = 4 * q + q // 2 + 1
    b = rng.standard_normal((K, N)).astype(dtype)
    for a in (rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, M)).astype(dtype).T):
        whole = np.matmul(a, b)
        if not all(np.array_equal(np.matmul(a[:cut], b), whole[:cut])
                   and np.array_equal(np.matmul(a[cut:], b), whole[cut:]) for cut in range(q, M, q)):
            return False
    return True


def tn_product(a, b, out):
    """(lhs, rhs, buf) such that buf[...] = lhs @ rhs is out[...] = a.T @ b, with buf
    C-contiguous (for `dots`).

    BLAS writes only C-contiguous outputs; a gradient shaped like a tied, transposed
    weight is F-contiguous, so its transpose receives b.T @ a instead.
    """
    buf, transposed = c_order_view(out)
    return (b.T, a, buf) if transposed else (a.T, b, buf)
