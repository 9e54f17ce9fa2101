"""Kernels of the optimizer step and of gradient clipping, on flat (1-D, contiguous) arrays.

Each kernel is compiled for float32 and float64; the scalar argument has the array's
dtype, so a float32 update rounds exactly as the book's NumPy expression does.
Callers pass 1-D views of contiguous parameters and gradients of equal size and dtype.
"""

import numpy as np
from numba import prange

from fastlstm.kernels.parallel import ARITHMETIC, parallel_kernel

from fastlstm.kernels.vecmath import LANES, interleaved_sum

# Elements per block of the sum of squares: blocks are fixed by the size alone, so the
# result does not depend on the number of threads.
_BLOCK = 1 << 14


@parallel_kernel(["float64(float32[::1])", "float64(float64[::1])"])
def sum_squares(x):
    """Sum of x**2 accumulated in float64: per-block partial sums in parallel, added serially;
    each block's sum in interleaved_sum's fixed order. NaN and inf propagate."""
    # x: (n,)
    n = x.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    partial = np.empty(n_blocks, dtype=np.float64)
    for b in prange(n_blocks):
        partial[b] = interleaved_sum(x[b * _BLOCK:min(n, (b + 1) * _BLOCK)], np.empty(LANES), True)
    total = 0.0
    for b in range(n_blocks):
        total += partial[b]
    return total


@parallel_kernel(["void(float32[::1], float32)", "void(float64[::1], float64)"])
def scale(x, s):
    """x *= s in place (gradient clipping)."""
    # x: (n,)
    for i in prange(x.shape[0]):
        x[i] *= s


@parallel_kernel(["void(float32[::1], float32[::1], float32)", "void(float64[::1], float64[::1], float64)"])
def sgd(p, g, lr):
    """p -= lr * g in place (the book's SGD update)."""
    # p: (n,)  g: (n,)
    for i in prange(p.shape[0]):
        p[i] -= lr * g[i]


@parallel_kernel(["void(float32[::1], float32[::1], float32, float32)", "void(float64[::1], float64[::1], float64, float64)"])
def sgd_scaled(p, g, lr, s):
    """p -= lr * (g * s) in place, g unchanged: gradient clipping's scaling and the SGD update
    in one pass, rounding as `scale` then `sgd` do."""
    # p: (n,)  g: (n,)
    for i in prange(p.shape[0]):
        p[i] -= lr * (g[i] * s)


@parallel_kernel(["void(float32[::1], float32[::1], float32, float32, float32, float32[::1], float32)",
       "void(float64[::1], float64[::1], float64, float64, float64, float64[::1], float64)"])
def asgd(p, g, lr, s, decay, ax, mu):
    """p -= lr * (g * s + decay * p) in place (SGD with clipping's factor s and weight decay),
    then, where ax has elements, the running average ax += (p - ax) * mu, or ax = p for mu = 1
    (the first averaged step), in the same pass."""
    # p: (n,)  g: (n,)  ax: (n,) or (0,)
    averaging = ax.shape[0] != 0
    for i in prange(p.shape[0]):
        p[i] -= lr * (g[i] * s + decay * p[i])
        if averaging:
            ax[i] = p[i] if mu == 1 else ax[i] + (p[i] - ax[i]) * mu


@parallel_kernel(["void(float32[::1], float32[::1], float32[::1], float32[::1], float32, float32, float32, float64)",
       "void(float64[::1], float64[::1], float64[::1], float64[::1], float64, float64, float64, float64)"],
                 error_model="numpy", cost=ARITHMETIC)  # no zero check on the division (sqrt(v) + eps > 0): it
                                                        # would keep the loop scalar
def adam(p, g, m, v, one_minus_beta1, one_minus_beta2, eps, lr_t):
    """The book's Adam step in one pass: m += (1 - beta1) * (g - m); v += (1 - beta2) * (g**2 - v);
    p -= lr_t * m / (sqrt(v) + eps).

    Rounds as NumPy 2 evaluates the book's expressions: m, v and sqrt(v) + eps in the arrays'
    dtype, lr_t * m / (...) and the subtraction from p in float64 (lr_t is a float64 scalar),
    then p rounded back to its dtype.
    """
    # p, g, m, v: (n,)
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = m[i] + one_minus_beta1 * (gi - m[i])
        vi = v[i] + one_minus_beta2 * (gi * gi - v[i])
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - (lr_t * mi) / (np.sqrt(vi) + eps)
