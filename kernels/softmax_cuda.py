"""CUDA twin of kernels/softmax.py: fused softmax cross-entropy on device arrays.

Forward runs one block per row: the block's threads stride over the V logits and combine
the row max, then the sum of exps, by tree reductions in shared memory (float64, as the
CPU kernel sums in float64). Backward is one thread per logit. No probability matrix is
ever stored.
"""

import functools
import math

from numba import cuda, float64, from_dtype

from fastlstm.kernels.linalg_cuda import launch, threads_per_block


@cuda.jit(device=True, inline=True)
def _tree_reduce(buf, tid, threads, take_max):
    """Combine buf[0:threads] into buf[0] (max or sum); threads is a power of two."""
    half = threads // 2
    while half > 0:
        if tid < half:
            if take_max:
                if buf[tid + half] > buf[tid]:
                    buf[tid] = buf[tid + half]
            else:
                buf[tid] += buf[tid + half]
        cuda.syncthreads()
        half //= 2


@functools.cache
def _forward_kernel(threads, dtype):
    """The forward kernel for blocks of `threads` threads (the shared buffer's size) and one
    dtype: the row max keeps x's dtype, so float32 logits get float32 exps, as on the CPU."""
    nbtype = from_dtype(dtype)
    lowest = nbtype(-math.inf)

    @cuda.jit
    def forward(x, ts, row_lse, row_loss):
        m = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        V = x.shape[1]
        buf = cuda.shared.array(threads, float64)
        mx = lowest
        for v in range(tid, V, threads):
            if x[m, v] > mx:
                mx = x[m, v]
        buf[tid] = mx
        cuda.syncthreads()
        _tree_reduce(buf, tid, threads, True)
        mx = nbtype(buf[0])
        cuda.syncthreads()
        s = 0.0
        for v in range(tid, V, threads):
            s += math.exp(x[m, v] - mx)
        buf[tid] = s
        cuda.syncthreads()
        _tree_reduce(buf, tid, threads, False)
        if tid == 0:
            lse = mx + math.log(buf[0])
            row_lse[m] = lse
            t = ts[m]
            row_loss[m] = lse - x[m, t] if t >= 0 else 0.0

    return forward


def softmax_cross_entropy_forward(x, ts, row_lse, row_loss):
    """Per-row log-sum-exp and loss -log softmax(x)[t]; rows with t < 0 (ignored) lose 0.

    x (M, V) logits; ts (M,) targets in [0, V) or -1. Out: row_lse (M,) in x's dtype,
    row_loss (M,) float64.
    """
    M = x.shape[0]
    if M == 0:
        return
    threads = threads_per_block()
    _forward_kernel(threads, x.dtype)[M, threads](x, ts, row_lse, row_loss)


@cuda.jit
def _backward(x, ts, row_lse, scale, dx):
    k = cuda.grid(1)
    M, V = x.shape
    if k >= M * V:
        return
    m = k // V
    v = k - m * V
    t = ts[m]
    if t < 0:
        dx[m, v] = 0
        return
    d = math.exp(x[m, v] - row_lse[m]) * scale
    if v == t:
        d -= scale
    dx[m, v] = d


def softmax_cross_entropy_backward(x, ts, row_lse, scale, dx):
    """dx = (softmax(x) - onehot(t)) * scale per row, and 0 for ignored rows.

    x (M, V); ts (M,); row_lse (M,) from forward; scale = dout / count, a scalar of x's
    dtype; dx (M, V).
    """
    M, V = x.shape
    launch(_backward, M * V, x, ts, row_lse, x.dtype.type(scale), dx)
