"""Products of a few rows (a recurrence step: N about 20) with a right operand packed once.

BLAS packs its right operand on every call. At 20 rows that packing costs about as much
as the multiply-adds, and a recurrence multiplies by the same Wh 35 times in a row. Here
`pack` lays the operand out once, in panels of PANEL_VECTORS SIMD vectors' worth
of columns, and `packed_product` sweeps each panel with tiles of up to TILE_ROWS rows
whose 2 x TILE_ROWS accumulators stay in registers (10 of the 16 AVX2 registers; the
panel's two vectors and a broadcast take 3 more); docs/performance.md compares it with
OpenBLAS.

Numba has no SIMD types, and its loops keep such accumulators in memory, so the tile is written in LLVM IR with vector types. Every output element
sums its products in order of k, whatever the tile or panel it falls in, so a block of
columns gives the same bits as the whole product.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# A SIMD vector's bytes: AVX2's. LLVM splits a wider vector type on narrower hardware.
VECTOR_BYTES = 32
# Vectors per panel: a panel is 16 float32 or 8 float64 columns.
PANEL_VECTORS = 2
TILE_ROWS = 5


def panel_width(dtype):
    """Columns per panel for arrays of `dtype`."""
    return PANEL_VECTORS * VECTOR_BYTES // np.dtype(dtype).itemsize


def packed_shape(rows, columns, dtype):
    """Shape of the packed form of a rows x columns operand: (panels, rows, panel width)."""
    width = panel_width(dtype)
    return (-(-columns // width), rows, width)


def pack(b, p, starts=None, width=None, mask=None):
    """Lay B (K, n) out in p: p[q, k, w] = B[k, q * W + w], 0 past its last column, with
    W = p.shape[2] and p of packed_shape(K, n). B is b itself (any layout), or with `starts`
    the blocks b[:, s:s + width] for s in starts, side by side: a lane's f, g, i, o columns
    of Wh, packed without copying them out first. With `mask` (shaped as b, any layout,
    of its dtype), B is b * mask, multiplied as it is packed (weight drop on Wh, with no
    masked copy of Wh)."""
    K = b.shape[0]
    if starts is None:
        starts, width = [0], b.shape[1]
    starts = np.asarray(starts, dtype=np.intp)
    if starts.ndim != 1 or starts.size == 0 or starts.min() < 0 or starts.max() + width > b.shape[1]:
        raise ValueError(f"column blocks at {starts.tolist()} of width {width} do not fit b's {b.shape[1]} columns")
    if p.shape != packed_shape(K, starts.size * width, p.dtype) or p.dtype != b.dtype:
        raise ValueError(f"p must be {b.dtype} of shape {packed_shape(K, starts.size * width, p.dtype)}, "
                         f"got {p.dtype} {p.shape}")
    if mask is not None and (mask.shape != b.shape or mask.dtype != b.dtype):
        raise ValueError(f"mask must be {b.dtype} of shape {b.shape}, got {mask.dtype} {mask.shape}")
    if b.strides[1] == b.itemsize or starts.size > 1:
        _pack_rows(b, _NO_MASK[b.dtype] if mask is None else mask, starts, width, p)
        return
    if b.strides[0] == b.itemsize and starts[0] == 0 and width == b.shape[1]:  # B's columns contiguous: b.T's rows
        _pack_columns(b.T, _NO_MASK[b.dtype] if mask is None else mask.T, p)
        return
    # Columns apart in memory: NumPy's strided copy reads each one in order.
    W = p.shape[2]
    full = width // W

    def panels(a):  # a's columns in full panels, and the rest
        a = a[:, starts[0]:starts[0] + width]
        return a[:, :full * W].reshape(K, full, W).transpose(1, 0, 2), a[:, full * W:]

    b_full, b_rest = panels(b)
    if mask is None:
        p[:full] = b_full
        rest = b_rest
    else:
        m_full, m_rest = panels(mask)
        np.multiply(b_full, m_full, out=p[:full])
        rest = b_rest * m_rest
    if full < p.shape[0]:
        p[full, :, :width - full * W] = rest
        p[full, :, width - full * W:] = 0


# The mask argument of _pack_rows when there is none: no rows (one compiled form serves both).
_NO_MASK = {np.dtype(t): np.zeros((0, 0), dtype=t) for t in (np.float32, np.float64)}


# Rows of B staged per block in _pack_rows: each panel then receives PACK_ROWS rows in one
# contiguous run, instead of one row scattered over every panel.
PACK_ROWS = 16


@njit(cache=True, nogil=True)
def _pack_rows(b, mask, starts, width, p):
    """pack PACK_ROWS rows of B at a time, staged with their zero padding, so that each
    panel receives its share of a block in one run (a row at a time scatters one short write
    over every panel; a panel at a time reads a few columns of each of K rows). B is b, or
    b * mask where mask has rows."""
    panels, K, W = p.shape
    masked = mask.shape[0] != 0
    rows = np.zeros((PACK_ROWS, panels * W), dtype=p.dtype)
    for k0 in range(0, K, PACK_ROWS):
        n_rows = min(PACK_ROWS, K - k0)
        for r in range(n_rows):
            for g in range(starts.size):
                source = b[k0 + r, starts[g]:starts[g] + width]
                staged = rows[r, g * width:(g + 1) * width]
                if masked:
                    scale = mask[k0 + r, starts[g]:starts[g] + width]
                    for j in range(width):
                        staged[j] = source[j] * scale[j]
                else:
                    for j in range(width):
                        staged[j] = source[j]
        for q in range(panels):
            block = p[q, k0:k0 + n_rows]
            for r in range(n_rows):
                source = rows[r, q * W:(q + 1) * W]
                target = block[r]
                for w in range(W):
                    target[w] = source[w]


@njit(cache=True, nogil=True)
def _pack_columns(a, mask, p):
    """pack B = a.T, a's rows contiguous (B's columns): each panel's W rows of a are read
    side by side, PACK_COLUMNS elements of each at a time, into a block of the panel that
    stays in the L1 cache (NumPy's strided copy of the transpose reads a column of a for
    each element it writes). B is a.T, or (a * mask).T where mask has rows."""
    panels, K, W = p.shape
    n = a.shape[0]
    masked = mask.shape[0] != 0
    for q in range(panels):
        for k0 in range(0, K, PACK_COLUMNS):
            k1 = min(K, k0 + PACK_COLUMNS)
            block = p[q, k0:k1]
            for w in range(W):
                r = q * W + w
                if r >= n:
                    for k in range(k1 - k0):
                        block[k, w] = 0
                    continue
                source = a[r, k0:k1]
                if masked:
                    scale = mask[r, k0:k1]
                    for k in range(k1 - k0):
                        block[k, w] = source[k] * scale[k]
                else:
                    for k in range(k1 - k0):
                        block[k, w] = source[k]


# Elements of each row of a that _pack_columns reads at a time: the panel's block they fill,
# PACK_COLUMNS x W elements, stays in the L1 cache.
PACK_COLUMNS = 64


def _make_tile(rows):
    """The tile intrinsic for `rows` rows: c[c_row0 + r, c_col0 + w] = sum over k of
    a[row0 + r, k] * p[panel, k, w], for r < rows and w < the panel width. (One function
    over 60 lines: the LLVM IR of a tile reads best as one piece, which closes over `rows`.)"""

    @intrinsic
    def tile(typingctx, a, row0, p, panel, c, c_row0, c_col0):
        if not (isinstance(a, types.Array) and a.layout in ("C", "A") and a.dtype in (types.float32, types.float64)
                and p.dtype == a.dtype and c.dtype == a.dtype and p.layout == "C" and c.layout == "C"):
            return None
        sig = types.void(a, row0, p, panel, c, c_row0, c_col0)

        def codegen(context, builder, signature, args):
            a_ty, _, p_ty, _, c_ty, _, _ = signature.args
            a_arr = context.make_array(a_ty)(context, builder, args[0])
            p_arr = context.make_array(p_ty)(context, builder, args[2])
            c_arr = context.make_array(c_ty)(context, builder, args[4])
            row0, panel, c_row0, c_col0 = (context.cast(builder, args[i], signature.args[i], types.intp)
                                           for i in (1, 3, 5, 6))
            intp = context.get_value_type(types.intp)

            def const(value):
                return ir.Constant(intp, value)

            itemsize = a_ty.dtype.bitwidth // 8
            width = VECTOR_BYTES // itemsize
            scalar = context.get_value_type(a_ty.dtype)
            vector = ir.VectorType(scalar, width)
            fmuladd = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector, [vector] * 3),
                f"llvm.fmuladd.v{width}f{a_ty.dtype.bitwidth}")

            K = builder.extract_value(a_arr.shape, 1)
            a_stride = builder.sdiv(builder.extract_value(a_arr.strides, 0), const(itemsize))
            c_stride = builder.sdiv(builder.extract_value(c_arr.strides, 0), const(itemsize))
            panel_columns = PANEL_VECTORS * width
            a_rows = [builder.gep(a_arr.data, [builder.mul(builder.add(row0, const(r)), a_stride)])
                      for r in range(rows)]
            p_panel = builder.gep(p_arr.data, [builder.mul(panel, builder.mul(K, const(panel_columns)))])
            accumulators = [[cgutils.alloca_once_value(builder, ir.Constant(vector, None))
                             for _ in range(PANEL_VECTORS)] for _ in range(rows)]
            undefined = ir.Constant(vector, ir.Undefined)
            broadcast = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)

            with cgutils.for_range(builder, K) as loop:
                k = loop.index
                p_row = builder.gep(p_panel, [builder.mul(k, const(panel_columns))])
                bs = [builder.load(builder.bitcast(builder.gep(p_row, [const(v * width)]), vector.as_pointer()),
                                   align=itemsize) for v in range(PANEL_VECTORS)]
                for r in range(rows):
                    x = builder.load(builder.gep(a_rows[r], [k]))
                    xs = builder.shuffle_vector(builder.insert_element(undefined, x, ir.Constant(ir.IntType(32), 0)),
                                                undefined, broadcast)
                    for v in range(PANEL_VECTORS):
                        acc = accumulators[r][v]
                        builder.store(builder.call(fmuladd, [xs, bs[v], builder.load(acc)]), acc)

            for r in range(rows):
                c_row = builder.gep(c_arr.data, [builder.add(builder.mul(builder.add(c_row0, const(r)), c_stride),
                                                             c_col0)])
                for v in range(PANEL_VECTORS):
                    target = builder.bitcast(builder.gep(c_row, [const(v * width)]), vector.as_pointer())
                    builder.store(builder.load(accumulators[r][v]), target, align=itemsize)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile1, _tile2, _tile3, _tile4, _tile5 = (_make_tile(rows) for rows in range(1, TILE_ROWS + 1))


@njit(cache=True, nogil=True, inline="always")
def _tile(rows, a, row0, p, panel, c, c_row0, c_col0):
    if rows == 5:
        _tile5(a, row0, p, panel, c, c_row0, c_col0)
    elif rows == 4:
        _tile4(a, row0, p, panel, c, c_row0, c_col0)
    elif rows == 3:
        _tile3(a, row0, p, panel, c, c_row0, c_col0)
    elif rows == 2:
        _tile2(a, row0, p, panel, c, c_row0, c_col0)
    else:
        _tile1(a, row0, p, panel, c, c_row0, c_col0)


@njit(cache=True, nogil=True)
def packed_product(a, p, c, edge):
    """c = a @ b, for the b (K, n) that `pack` packed into p, with n = c.shape[1].

    a (M, K), c (M, n), edge (TILE_ROWS, W) scratch for the last panel when n is not a
    multiple of W: all C-contiguous but a, whose rows may lie any distance apart (a column
    block of a wider array), of one dtype. The caller checks the shapes (p of
    packed_shape(K, n), edge of (TILE_ROWS, p.shape[2])) and that a's rows are contiguous.
    """
    M = a.shape[0]
    n = c.shape[1]
    W = p.shape[2]
    for q in range(p.shape[0]):
        j0 = q * W
        for r0 in range(0, M, TILE_ROWS):
            rows = min(TILE_ROWS, M - r0)
            if j0 + W <= n:
                _tile(rows, a, r0, p, q, c, r0, j0)
            else:
                _tile(rows, a, r0, p, q, edge, 0, 0)
                for r in range(rows):
                    for w in range(n - j0):
                        c[r0 + r, j0 + w] = edge[r, w]
