"""exp, sigmoid and tanh that vectorise: float32 gets a polynomial exp that LLVM turns into
SIMD code (libm's expf is a scalar call); float64 keeps libm's exp.

The float32 exp is Cephes' expf (relative error about 1 ulp) with its argument clamped
to [-87, 88], which keeps sigmoid and tanh exact to float32 rounding; NaN stays NaN.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
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
    """The sum of a's elements (of their squares when `square`) in float64, in an order that
    a's length alone fixes: LANES interleaved partial sums (in `lanes`, a float64 scratch of
    LANES), added pairwise, then the tail. The partial sums run as SIMD vectors without
    'reassoc', since each lane is a sum of its own."""
    for j in range(LANES):
        lanes[j] = 0.0
    n = a.size
    body = n - n % LANES
    for v in range(0, body, LANES):
        for j in range(LANES):
            t = np.float64(a[v + j])
            lanes[j] += t * t if square else t
    width = LANES // 2
    while width >= 1:
        for j in range(width):
            lanes[j] += lanes[j + width]
        width //= 2
    total = lanes[0]
    for v in range(body, n):
        t = np.float64(a[v])
        total += t * t if square else t
    return total


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
