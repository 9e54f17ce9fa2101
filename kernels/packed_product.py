"""Products of a few rows (a recurrence step: N about 20) with a right operand packed once.

BLAS packs its right operand on every call. At 20 rows that packing costs about as much
as the multiply-adds, and a recurrence multiplies by the same Wh 35 times in a row. Here
`pack` lays the operand out once, in panels of PANEL_VECTORS SIMD vectors' worth of
columns, and `packed_product` sweeps each panel with tiles of up to TILE.rows rows whose
accumulators stay in registers. The vector width and the tile's rows follow the CPU that
Numba compiles for (`host_tile`); docs/performance.md compares the kernel with OpenBLAS.

Numba has no SIMD types, and its loops keep such accumulators in memory, so the tile is
written in LLVM IR with vector types. Every output element sums its products in order of
k (llvm.fmuladd: fused where the CPU has FMA), whatever the tile, panel or vector width it
falls in, so a block of columns gives the same bits as the whole product, and every width
the same bits.
"""

import functools
from collections import namedtuple
from types import FunctionType

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.registry import cpu_target
from numba.extending import intrinsic

# Vectors per panel: with 32-byte vectors a panel is 16 float32 or 8 float64 columns.
PANEL_VECTORS = 2
# The most rows a tile takes, whatever the registers: LLVM unrolls the k loop by two and
# keeps several broadcasts live, and beyond this its code for 32 registers moves
# accumulators to and from the stack (docs/performance.md).
MAX_TILE_ROWS = 11

Tile = namedtuple("Tile", ["vector_bytes", "rows"])
Tile.__doc__ = """A tile of the product: `rows` rows times PANEL_VECTORS vectors of `vector_bytes` bytes."""


def tile_for(triple, features):
    """The tile for code LLVM generates for `triple` (e.g. "x86_64-unknown-linux-gnu") with
    `features` (the "+avx2,-avx512f,..." string Numba hands LLVM; empty: the architecture's
    baseline).

    The vector is the widest the features enable: 64 bytes with AVX-512, 32 with AVX (AVX2,
    FMA), 16 otherwise (SSE2, NEON, and a safe guess elsewhere: LLVM splits a vector the
    hardware lacks, so a width is a matter of speed, never of results). The rows are as
    many as the registers hold, up to MAX_TILE_ROWS: PANEL_VECTORS accumulators per row,
    plus the panel's PANEL_VECTORS vectors of the current k and one broadcast of a's
    element. x86-64 has 16 vector registers, 32 with AVX-512; AArch64 has 32."""
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    arch = triple.split("-", 1)[0]
    if arch == "x86_64" and "avx512f" in enabled:
        vector_bytes, registers = 64, 32
    elif arch == "x86_64" and "avx" in enabled:
        vector_bytes, registers = 32, 16
    elif arch in ("aarch64", "arm64"):
        vector_bytes, registers = 16, 32
    else:
        vector_bytes, registers = 16, 16
    return Tile(vector_bytes, min((registers - PANEL_VECTORS - 1) // PANEL_VECTORS, MAX_TILE_ROWS))


def host_tile():
    """The tile for the CPU Numba compiles for: the host's, or NUMBA_CPU_NAME's and
    NUMBA_CPU_FEATURES' where they are set (NUMBA_CPU_NAME=generic: the baseline). Numba's
    cache keys its entries on the same triple, CPU and features, so a cached kernel always
    has the tile this process chose."""
    triple, _, features = cpu_target.target_context.codegen().magic_tuple()
    return tile_for(triple, features)


TILE = host_tile()
# Rows of the host tile: the rows of packed_product's `edge` scratch.
TILE_ROWS = TILE.rows


def panel_width(dtype, tile=TILE):
    """Columns per panel for arrays of `dtype`, with `tile`'s vectors."""
    return PANEL_VECTORS * tile.vector_bytes // np.dtype(dtype).itemsize


def packed_shape(rows, columns, dtype, tile=TILE):
    """Shape of the packed form of a rows x columns operand: (panels, rows, panel width)."""
    width = panel_width(dtype, tile)
    return (-(-columns // width), rows, width)


def pack(b, p, starts=None, width=None, mask=None, tile=TILE):
    """Lay B (K, n) out in p: p[q, k, w] = B[k, q * W + w], 0 past its last column, with
    W = p.shape[2] and p of packed_shape(K, n, tile=tile). B is b itself (any layout), or with `starts`
    the blocks b[:, s:s + width] for s in starts, side by side: a lane's f, g, i, o columns
    of Wh, packed without copying them out first. With `mask` (shaped as b, any layout,
    of its dtype), B is b * mask, multiplied as it is packed (weight drop on Wh, with no
    masked copy of Wh)."""
    K = b.shape[0]
    if starts is None:
        starts, width = [0], b.shape[1]
    if len(starts) == 0 or min(starts) < 0 or max(starts) + width > b.shape[1]:
        raise ValueError(f"column blocks at {list(starts)} of width {width} do not fit b's {b.shape[1]} columns")
    starts = np.asarray(starts, dtype=np.intp)
    shape = packed_shape(K, starts.size * width, p.dtype, tile)
    if p.shape != shape or p.dtype != b.dtype:
        raise ValueError(f"p must be {b.dtype} of shape {shape}, got {p.dtype} {p.shape}")
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


def _make_tile(tile):
    """The tile intrinsic of `tile`: c[c_row0 + r, c_col0 + w] = sum over k of
    a[row0 + r, k] * p[panel, k, w], for r < rows (1 .. tile.rows, a switch over one
    straight-line body per count) and w < the panel width."""

    @intrinsic
    def tile_product(typingctx, a, row0, rows, p, panel, c, c_row0, c_col0):
        if not (isinstance(a, types.Array) and a.layout in ("C", "A") and a.dtype in (types.float32, types.float64)
                and p.dtype == a.dtype and c.dtype == a.dtype and p.layout == "C" and c.layout == "C"):
            return None
        sig = types.void(a, row0, rows, p, panel, c, c_row0, c_col0)

        def codegen(context, builder, signature, args):
            a_ty, _, _, p_ty, _, c_ty, _, _ = signature.args
            row0, rows, panel, c_row0, c_col0 = (context.cast(builder, args[i], signature.args[i], types.intp)
                                                 for i in (1, 2, 4, 6, 7))
            operands = _TileOperands(context, builder, a_ty.dtype, tile,
                                     *(context.make_array(t)(context, builder, args[i])
                                       for t, i in ((a_ty, 0), (p_ty, 3), (c_ty, 5))))
            done = builder.append_basic_block("tile_done")
            switch = builder.switch(rows, done)
            for count in range(1, tile.rows + 1):
                block = builder.append_basic_block(f"tile_rows{count}")
                switch.add_case(ir.Constant(rows.type, count), block)
                builder.position_at_end(block)
                operands.emit(count, row0, panel, c_row0, c_col0)
                builder.branch(done)
            builder.position_at_end(done)
            return context.get_dummy_value()

        return sig, codegen

    return tile_product


class _TileOperands:
    """The LLVM IR of a tile's product over a (M, K), the packed p and c, for one count of rows."""

    def __init__(self, context, builder, dtype, tile, a, p, c):
        self.builder, self.a, self.p, self.c = builder, a, p, c
        self.intp = context.get_value_type(types.intp)
        self.itemsize = dtype.bitwidth // 8
        self.width = tile.vector_bytes // self.itemsize
        self.vector = ir.VectorType(context.get_value_type(dtype), self.width)
        self.fmuladd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.vector, [self.vector] * 3),
            f"llvm.fmuladd.v{self.width}f{dtype.bitwidth}")

    def const(self, value):
        return ir.Constant(self.intp, value)

    def emit(self, rows, row0, panel, c_row0, c_col0):
        """c's rows c_row0 .. + rows - 1, columns c_col0 .. + panel width - 1: a's rows row0 ..
        times panel `panel` of p, k from 0 up, the accumulators in registers."""
        builder, const, width, vector = self.builder, self.const, self.width, self.vector
        K = builder.extract_value(self.a.shape, 1)
        a_stride = builder.sdiv(builder.extract_value(self.a.strides, 0), const(self.itemsize))
        c_stride = builder.sdiv(builder.extract_value(self.c.strides, 0), const(self.itemsize))
        panel_columns = PANEL_VECTORS * width
        a_rows = [builder.gep(self.a.data, [builder.mul(builder.add(row0, const(r)), a_stride)]) for r in range(rows)]
        p_panel = builder.gep(self.p.data, [builder.mul(panel, builder.mul(K, const(panel_columns)))])
        accumulators = [[cgutils.alloca_once_value(builder, ir.Constant(vector, None))
                         for _ in range(PANEL_VECTORS)] for _ in range(rows)]
        undefined = ir.Constant(vector, ir.Undefined)
        broadcast = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)

        with cgutils.for_range(builder, K) as loop:
            k = loop.index
            p_row = builder.gep(p_panel, [builder.mul(k, const(panel_columns))])
            bs = [builder.load(builder.bitcast(builder.gep(p_row, [const(v * width)]), vector.as_pointer()),
                               align=self.itemsize) for v in range(PANEL_VECTORS)]
            for r in range(rows):
                x = builder.load(builder.gep(a_rows[r], [k]))
                xs = builder.shuffle_vector(builder.insert_element(undefined, x, ir.Constant(ir.IntType(32), 0)),
                                            undefined, broadcast)
                for v in range(PANEL_VECTORS):
                    acc = accumulators[r][v]
                    builder.store(builder.call(self.fmuladd, [xs, bs[v], builder.load(acc)]), acc)

        for r in range(rows):
            c_row = builder.gep(self.c.data, [builder.add(builder.mul(builder.add(c_row0, const(r)), c_stride), c_col0)])
            for v in range(PANEL_VECTORS):
                target = builder.bitcast(builder.gep(c_row, [const(v * width)]), vector.as_pointer())
                builder.store(builder.load(accumulators[r][v]), target, align=self.itemsize)


def _packed_product(a, p, c, edge):
    """c = a @ b, for the b (K, n) that `pack` packed into p, with n = c.shape[1].

    a (M, K), c (M, n), edge (rows of the tile, W) scratch for the last panel when n is not
    a multiple of W: all C-contiguous but a, whose rows may lie any distance apart (a column
    block of a wider array), of one dtype. The caller checks the shapes (p of
    packed_shape(K, n), edge of (TILE_ROWS, p.shape[2]), both for this kernel's tile) and
    that a's rows are contiguous.
    """
    M = a.shape[0]
    n = c.shape[1]
    W = p.shape[2]
    tiles = -(-M // ROWS)  # noqa: F821 (bound by product_kernel)
    for q in range(p.shape[0]):
        j0 = q * W
        r0 = 0
        for t in range(tiles):
            # The fewest tiles, their rows as even as can be (they add up to M): 20 rows in
            # tiles of up to 6 go as 5, 5, 5, 5, not 6, 6, 6, 2.
            rows = (M + t) // tiles
            if j0 + W <= n:
                _tile(a, r0, rows, p, q, c, r0, j0)  # noqa: F821
            else:
                _tile(a, r0, rows, p, q, edge, 0, 0)  # noqa: F821
                for r in range(rows):
                    for w in range(n - j0):
                        c[r0 + r, j0 + w] = edge[r, w]
            r0 += rows


@functools.cache
def product_kernel(tile):
    """packed_product for `tile` (any width the host can run: tests build each), compiled
    under a name of its own, `packed_product_{vector bits}x{rows}`, under which Numba's
    cache keeps it."""
    name = f"packed_product_{tile.vector_bytes * 8}x{tile.rows}"
    function = FunctionType(_packed_product.__code__,
                            {**globals(), "_tile": _make_tile(tile), "ROWS": tile.rows}, name)
    function.__qualname__, function.__doc__ = name, _packed_product.__doc__
    return njit(cache=True, nogil=True)(function)


packed_product = product_kernel(TILE)
