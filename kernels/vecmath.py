"""exp, sigmoid and tanh that vectorise: float32 gets a polynomial exp that LLVM turns into
SIMD code (libm's expf is a scalar call); float64 keeps libm's exp.

The float32 exp is Cephes' expf (relative error about 1 ulp) with its argument clamped
to [-87, 88], which keeps sigmoid and tanh exact to float32 rounding; NaN stays NaN.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# Fast-math flags for kernels that call these: no 'nnan'/'ninf', so NaN and inf still propagate;
# no 'reassoc': with it a sum's order was LLVM's choice, and a kernel freshly compiled summed
# otherwise than the same kernel loaded from Numba's cache (interleaved_sum fixes the order).
FASTMATH = {"nsz", "arcp", "contract", "afn"}

# njit options for kernels that call these. Numba's default error model checks every
# division for zero and raises, a branch that keeps a loop with sigmoid or tanh scalar;
# NumPy's model lets it vectorise (here the denominators are never below 1).
KERNEL_OPTIONS = {"fastmath": FASTMATH, "error_model": "numpy"}

# The options of a recurrent cell's step kernels (kernels/lstm.py, rnn.py, gru.py):
# KERNEL_OPTIONS less 'contract', so that every operation rounds as written. With it LLVM
# fused a product into a sum one way in the vectorised loop and another in its remainder: a
# lane's block of units then rounded unlike the same units in the whole step (1 ulp in
# float32). What it would save is lost in a recurrence's noise (docs/experiments.md).
STEP_OPTIONS = dict(KERNEL_OPTIONS, fastmath=FASTMATH - {"contract"})


LANES = 16  # partial sums of interleaved_sum, a SIMD vector's worth or two


@njit(cache=True, **KERNEL_OPTIONS)
def interleaved_sum(a, lanes, square):
    """The sum of a's elements (of their squares when `square`, each fused into its sum) in
    float64, in an order that a's length alone fixes: LANES interleaved partial sums (in
    `lanes`, a float64 scratch of LANES, C-contiguous like a), added pairwise, then the tail."""
    n = a.size
    body = n - n % LANES
    _lane_sums(a, body // LANES, lanes, square)
    width = LANES // 2
    while width >= 1:
        for j in range(width):
            lanes[j] += lanes[j + width]
        width //= 2
    total = lanes[0]
    for v in range(body, n):
        t = np.float64(a[v])
        total = fma(t, t, total) if square else total + t
    return total


class _LaneOperands:
    """The LLVM values of a lane intrinsic's array a, its block count and its scratch lanes:
    loads and stores of LANES elements at a time, each as aligned as one element."""

    def __init__(self, context, builder, signature, args):
        self.builder, self.blocks = builder, args[1]
        (a_ty, _, lanes_ty), (a, _, lanes) = signature.args[:3], args[:3]
        self.a, self.lanes = (context.make_array(t)(context, builder, x) for t, x in ((a_ty, a), (lanes_ty, lanes)))
        self.a_vector, self.lanes_vector = (ir.VectorType(context.get_value_type(t.dtype), LANES) for t in (a_ty, lanes_ty))
        self.a_align, self.lanes_align = a_ty.dtype.bitwidth // 8, lanes_ty.dtype.bitwidth // 8

    def index(self, value):
        return ir.Constant(self.blocks.type, value)

    def load_block(self, block):
        """a[block * LANES:(block + 1) * LANES] as a vector."""
        start = self.builder.gep(self.a.data, [self.builder.mul(block, self.index(LANES))])
        return self.builder.load(self.builder.bitcast(start, self.a_vector.as_pointer()), align=self.a_align)

    def store_lanes(self, vector):
        self.builder.store(vector, self.builder.bitcast(self.lanes.data, self.lanes_vector.as_pointer()),
                           align=self.lanes_align)


def _lane_arrays(a, lanes):
    """Whether a (of floats) and lanes are C-contiguous 1-D arrays, as the lane intrinsics take them."""
    return all(isinstance(x, types.Array) and x.ndim == 1 and x.layout == "C" for x in (a, lanes)) and \
        isinstance(a.dtype, types.Float)


@intrinsic
def _lane_sums(typingctx, a, blocks, lanes, square):
    """lanes[j] = sum over b < blocks of a[b * LANES + j] (of its square, fused, when
    `square`), in float64 from 0, b in order: LANES sums of their own, run as one vector.
    Numba runs no SLP vectoriser, and a loop over a scratch's LANES elements runs scalar."""
    if not _lane_arrays(a, lanes) or lanes.dtype != types.float64:
        return None

    def codegen(context, builder, signature, args):
        ops = _LaneOperands(context, builder, signature, args)
        wide = ops.lanes_vector
        fused = cgutils.get_or_insert_function(builder.module, ir.FunctionType(wide, [wide] * 3), f"llvm.fma.v{LANES}f64")
        total = cgutils.alloca_once_value(builder, ir.Constant(wide, [0.0] * LANES))
        square = context.cast(builder, args[3], signature.args[3], types.boolean)
        with builder.if_else(square) as branches:
            for squares, branch in zip((True, False), branches):
                with branch, cgutils.for_range(builder, ops.blocks) as loop:
                    v = ops.load_block(loop.index)
                    v = builder.fpext(v, wide) if ops.a_vector != wide else v
                    acc = builder.load(total)
                    builder.store(builder.call(fused, [v, v, acc]) if squares else builder.fadd(acc, v), total)
        ops.store_lanes(builder.load(total))
        return context.get_dummy_value()

    return types.void(a, blocks, lanes, square), codegen


@intrinsic
def lane_maxima(typingctx, a, blocks, lanes):
    """lanes[j] = the max over b < blocks of a[b * LANES + j] (blocks >= 1), b in order, as
    `x if x > m else m` takes it (a NaN after the first block is passed over): LANES maxima
    run as one vector (see _lane_sums)."""
    if not _lane_arrays(a, lanes) or lanes.dtype != a.dtype:
        return None

    def codegen(context, builder, signature, args):
        ops = _LaneOperands(context, builder, signature, args)
        best = cgutils.alloca_once_value(builder, ops.load_block(ops.index(0)))
        with cgutils.for_range(builder, builder.sub(ops.blocks, ops.index(1))) as loop:
            v, m = ops.load_block(builder.add(loop.index, ops.index(1))), builder.load(best)
            builder.store(builder.select(builder.fcmp_ordered(">", v, m), v, m), best)
        ops.store_lanes(builder.load(best))
        return context.get_dummy_value()

    return types.void(a, blocks, lanes), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's fma), in the vectorised loop and its remainder alike:
    'contract' lets LLVM fuse one way in the one and another in the other."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


@intrinsic
def _pow2_float32(typingctx, j):
    """2 ** (j - 128) as a float32, for an int32 j in [1, 255), built from its exponent bits
    in int32 arithmetic: Numba's own int32 arithmetic widens to int64, whose conversions
    AVX2 has no vector instruction for (they keep exp scalar)."""
    def codegen(context, builder, signature, args):
        one, shift = ir.Constant(ir.IntType(32), 1), ir.Constant(ir.IntType(32), 23)
        return builder.bitcast(builder.shl(builder.sub(args[0], one), shift), ir.FloatType())
    return types.float32(types.int32), codegen


def _exp32(x):
    x = np.float32(-87.0) if x < np.float32(-87.0) else x
    x = np.float32(88.0) if x > np.float32(88.0) else x
    # j = round(x / ln 2) + 128: with x clamped the sum is positive, where truncation is floor
    j = np.int32(x * np.float32(1.44269504) + np.float32(128.5))
    n = np.float32(j) - np.float32(128.0)
    r = x - n * np.float32(0.693359375) + n * np.float32(2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * (r * r) + r + np.float32(1.0)
    return p * _pow2_float32(j)


def exp(x):
    """e**x; in float32 a vectorisable polynomial."""
    return math.exp(x)


def sigmoid(x):
    """1 / (1 + e**-x)."""
    return 1.0 / (1.0 + math.exp(-x))


def tanh(x):
    """Hyperbolic tangent; in float32 from the vectorisable exp."""
    return math.tanh(x)


def _is_float32(x):
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(exp, inline="always")
def _exp_impl(x):
    if _is_float32(x):
        return _exp32
    return lambda x: math.exp(x)


@overload(sigmoid, inline="always")
def _sigmoid_impl(x):
    if _is_float32(x):
        return lambda x: np.float32(1.0) / (np.float32(1.0) + exp(-x))
    return lambda x: 1.0 / (1.0 + math.exp(-x))


@overload(tanh, inline="always")
def _tanh_impl(x):
    if _is_float32(x):
        return lambda x: np.float32(1.0) - np.float32(2.0) / (exp(x + x) + np.float32(1.0))
    return lambda x: math.tanh(x)


def one_like(x):
    """1 in the type of x, so float32 arithmetic is not promoted to float64 by a literal."""
    return 1.0


@overload(one_like, inline="always")
def _one_like_impl(x):
    if _is_float32(x):
        return lambda x: np.float32(1.0)
    return lambda x: 1.0
