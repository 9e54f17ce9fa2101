"""BLAS's gemm called from compiled code, so that a lane's worker runs its block of a
product without returning to Python: a worker that needs Python's lock to start its block
waits for the caller to let go of it, and on a virtual machine that wait costs tens of
microseconds, more than a small product's block.

A product is described once as a row of int64 fields (`describe`): gemm's address in
NumPy's own BLAS, the operands' addresses, leading dimensions and transposition flags
(the flags and dimensions that np.matmul passes the same library, so a block's bits are
np.matmul's), and where a bias row is to be added. A block of it adds its first and last
rows and columns: a lane takes a band of the output's rows, or of its columns. A worker's
`board` holds the blocks posted to it; `serve` waits for them, runs them and publishes
their end in the lanes' `progress` (kernels/spin.py), with the seconds they took, as the
workers of fastlstm/lanes.py do for blocks in Python.
"""

from llvmlite import ir
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from fastlstm.kernels.linalg import add_to_rows
from fastlstm.kernels.spin import _load_acquire, _pause, _store_release

# A product's fields, then a block's: rows J0 to J1, columns L0 to L1.
GEMM, DOUBLE, TRANS_A, TRANS_B, N, K, LDA, LDB, LDC, A, B, C, BIAS, A_ROW, C_ROW, B_COLUMN, J0, J1, L0, L1 = range(20)
FIELDS = J0  # the fields `describe` fills
BLOCK_FIELDS = L1 + 1
# CBLAS's constants
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
# A worker's board: blocks posted so far, blocks taken, what the last post holds (a
# Python task, or `count` product blocks at BLOCKS), its sequence number, clock_gettime's
# address; then up to MAX_PRODUCTS blocks of BLOCK_FIELDS.
POSTED, TAKEN, KIND, COUNT, SEQ, CLOCK, BLOCKS = range(7)
PYTHON_TASK, PRODUCTS = 0, 1
MAX_PRODUCTS = 4
BOARD_SIZE = BLOCKS + MAX_PRODUCTS * BLOCK_FIELDS
# serve's results
IDLE, PYTHON = 0, 1
CLOCK_MONOTONIC = 1  # Linux's (NumPy's OpenBLAS is found on Linux only); time.perf_counter reads it


@intrinsic
def _gemm(typingctx, address, order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """cblas_?gemm of a 64-bit-integer build at `address`, its scalars of alpha's type
    (float32: sgemm, float64: dgemm), the matrices given as int64 addresses."""
    integers = (address, order, ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
    if any(x != types.int64 for x in integers) or alpha not in (types.float32, types.float64) or beta != alpha:
        return None

    def codegen(context, builder, signature, args):
        integer, real = ir.IntType(64), context.get_value_type(signature.args[7])
        enum, pointer = ir.IntType(32), ir.IntType(8).as_pointer()
        kinds = [enum] * 3 + [integer] * 3 + [real, pointer, integer, pointer, integer, real, pointer, integer]
        function = builder.inttoptr(args[0], ir.FunctionType(ir.VoidType(), kinds).as_pointer())
        values = []
        for kind, value in zip(kinds, args[1:]):
            if kind is pointer:
                values.append(builder.inttoptr(value, pointer))
            elif kind is enum:
                values.append(builder.trunc(value, enum))
            else:
                values.append(value)
        builder.call(function, values)
        return context.get_dummy_value()

    return types.void(address, order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), codegen


@intrinsic
def _pointer(typingctx, address, like):
    """The int64 `address` as a pointer to `like`'s type (float32 or float64)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return types.CPointer(like)(address, like), codegen


@intrinsic
def _now(typingctx, address):
    """Nanoseconds of CLOCK_MONOTONIC, by clock_gettime at `address`."""
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        spec = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))
        kinds = [ir.IntType(32), spec.type]
        function = builder.inttoptr(args[0], ir.FunctionType(ir.IntType(32), kinds).as_pointer())
        builder.call(function, [ir.Constant(ir.IntType(32), CLOCK_MONOTONIC), spec])
        zero = ir.Constant(ir.IntType(32), 0)
        seconds = builder.load(builder.gep(spec, [zero, zero]))
        nanoseconds = builder.load(builder.gep(spec, [zero, ir.Constant(ir.IntType(32), 1)]))
        return builder.add(builder.mul(seconds, ir.Constant(i64, 1_000_000_000)), nanoseconds)

    return types.int64(address), codegen


@njit(cache=True, nogil=True)
def _unit_rows(x):
    """(flag, leading dimension) of a 2-D x of two columns or more for a row-major gemm, or
    (0, 0) where BLAS cannot read it as it lies: rows contiguous (NO_TRANS), or columns
    contiguous (TRANS), in that order of preference, as np.matmul tries them; strides whole
    multiples of the item, each line at least as long as the other side (a single row's
    stride is never read)."""
    rows, columns = x.shape
    row_stride, column_stride = x.strides
    size = x.itemsize
    if column_stride == size and row_stride % size == 0 and (row_stride >= columns * size or rows == 1):
        return NO_TRANS, max(row_stride // size, columns)
    if row_stride == size and column_stride % size == 0 and column_stride >= rows * size:
        return TRANS, column_stride // size
    return 0, 0


@njit(cache=True, nogil=True)
def _overlap(x, y):
    """Whether the bytes that 2-D x and y span (strides not negative) meet: np.matmul
    copies an operand that its output overlaps, BLAS would read what it has written."""
    x0, y0 = x.ctypes.data, y.ctypes.data
    x1 = x0 + (x.shape[0] - 1) * x.strides[0] + (x.shape[1] - 1) * x.strides[1] + x.itemsize
    y1 = y0 + (y.shape[0] - 1) * y.strides[0] + (y.shape[1] - 1) * y.strides[1] + y.itemsize
    return x0 < y1 and y0 < x1


@njit(cache=True, nogil=True)
def describe(fields, a, b, out, bias, gemm):
    """Fill `fields` (FIELDS int64) with out = a @ b (+ bias) for the gemm at address `gemm`,
    a (M, K), b (K, N), out (M, N) and bias (N,) or None of its float dtype. False, with
    nothing to run, where BLAS cannot take them as they lie: a shape that does not fit, an
    empty, one-column or inner-width-one product, an operand BLAS cannot read without a
    copy, memory not aligned to the item, or an output that overlaps an operand."""
    M, Ka = a.shape
    Kb, Nb = b.shape
    size = out.itemsize
    if Ka != Kb or out.shape[0] != M or out.shape[1] != Nb or M == 0 or Ka < 2 or Nb < 2:
        return False
    if out.strides[1] != size or out.strides[0] < Nb * size or out.strides[0] % size != 0:
        return False
    ta, lda = _unit_rows(a)
    tb, ldb = _unit_rows(b)
    if ta == 0 or tb == 0:
        return False
    if (a.ctypes.data | b.ctypes.data | out.ctypes.data) % size != 0 or _overlap(out, a) or _overlap(out, b):
        return False
    fields[GEMM], fields[DOUBLE] = gemm, size == 8
    fields[TRANS_A], fields[TRANS_B], fields[N], fields[K] = ta, tb, Nb, Ka
    fields[LDA], fields[LDB], fields[LDC] = lda, ldb, out.strides[0] // size
    fields[A], fields[B], fields[C] = a.ctypes.data, b.ctypes.data, out.ctypes.data
    fields[BIAS] = 0
    if bias is not None:
        if bias.shape[0] != Nb or bias.strides[0] != size or bias.ctypes.data % size != 0:
            return False
        fields[BIAS] = bias.ctypes.data
    fields[A_ROW], fields[C_ROW], fields[B_COLUMN] = a.strides[0], out.strides[0], b.strides[1]
    return True


@njit(cache=True, nogil=True)
def _run_block(f):
    """Rows f[J0] to f[J1], columns f[L0] to f[L1], of the product that `f` (BLOCK_FIELDS)
    describes."""
    if f[J1] > f[J0] and f[L1] > f[L0]:
        if f[DOUBLE]:
            _gemm_block(f, 1.0, 0.0)
        else:
            _gemm_block(f, types.float32(1.0), types.float32(0.0))


@njit(cache=True, nogil=True, inline="always")
def _gemm_block(f, one, zero):
    """_run_block at the float type of `one` and `zero`: the scalars' type picks gemm's
    signature, so each type has its own call."""
    m, n, size = f[J1] - f[J0], f[L1] - f[L0], 8 if f[DOUBLE] else 4
    a, b = f[A] + f[J0] * f[A_ROW], f[B] + f[L0] * f[B_COLUMN]
    c = f[C] + f[J0] * f[C_ROW] + f[L0] * size
    _gemm(f[GEMM], ROW_MAJOR, f[TRANS_A], f[TRANS_B], m, n, f[K], one, a, f[LDA], b, f[LDB], zero, c, f[LDC])
    if f[BIAS]:
        add_to_rows(carray(_pointer(c, zero), (m, f[LDC]))[:, :n], carray(_pointer(f[BIAS] + f[L0] * size, zero), (n,)))


@njit(cache=True, nogil=True)
def run_blocks(blocks, count, clock):
    """The first `count` product blocks of `blocks` (rows of BLOCK_FIELDS), in order;
    returns the seconds they took."""
    start = _now(clock)
    for p in range(count):
        _run_block(blocks[p])
    return (_now(clock) - start) * 1e-9


@njit(cache=True, nogil=True)
def post(board, blocks, count, seq, clock):
    """Hand a worker's `board` the first `count` blocks of `blocks`, as task number `seq`."""
    board[KIND], board[COUNT], board[SEQ], board[CLOCK] = PRODUCTS, count, seq, clock
    board[BLOCKS:BLOCKS + count * BLOCK_FIELDS] = blocks[:count].ravel()
    _store_release(board, POSTED, board[POSTED] + 1)


@njit(cache=True, nogil=True)
def serve(board, progress, seconds, lane, spins):
    """A worker's loop: run each product task posted to `board` as it comes, setting
    seconds[lane] and then progress[lane] to its sequence number; return PYTHON when a
    Python task was posted (marked taken), IDLE after `spins` rounds with nothing posted."""
    while True:
        posted = False
        for _ in range(spins):
            if _load_acquire(board, POSTED) > board[TAKEN]:
                posted = True
                break
            _pause()
        if not posted:
            return IDLE
        board[TAKEN] += 1
        if board[KIND] == PYTHON_TASK:
            return PYTHON
        count = board[COUNT]
        blocks = board[BLOCKS:BLOCKS + count * BLOCK_FIELDS].reshape((count, BLOCK_FIELDS))
        seconds[lane] = run_blocks(blocks, count, board[CLOCK])
        _store_release(progress, lane, board[SEQ])
