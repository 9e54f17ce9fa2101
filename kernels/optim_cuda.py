"""CUDA twin of kernels/optim.py: gradient clipping and the SGD step on flat device arrays.

The sum of squares reduces each block in shared memory (float64) and adds the block sums
into one float64 cell with an atomic add, so the norm of several gradients can be summed
on the device and read back once. The scalar of `scale` and `sgd` is cast to the array's
dtype, as the CPU kernels' signatures require.
"""

import functools

import numpy as np
from numba import cuda, float64

from fastlstm.kernels.linalg_cuda import launch, threads_per_block

# At most this many blocks for the sum of squares: each thread then strides over the
# array, which keeps the atomic adds few.
MAX_BLOCKS = 1024


@functools.cache
def _sum_squares_kernel(threads):
    """The block-reduction kernel for blocks of `threads` threads (the shared buffer's size)."""

    @cuda.jit
    def sum_squares(x, total):
        buf = cuda.shared.array(threads, float64)
        s = 0.0
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            v = float64(x[i])
            s += v * v
        add_block_sum(buf, s, total)

    return sum_squares


# Inlined into each kernel before typing: a call to a device function would ask the driver
# for the device, and the kernels must compile to PTX without one (tests/test_cuda_kernels.py).
@cuda.jit(device=True, inline="always")
def add_block_sum(buf, s, total):
    """total[0] += the sum of every thread's s over the block: buf, the block's shared float64
    array of one cell per thread (a power of two), sums them in a tree; one atomic add."""
    tid = cuda.threadIdx.x
    buf[tid] = s
    cuda.syncthreads()
    half = buf.shape[0] // 2
    while half > 0:
        if tid < half:
            buf[tid] += buf[tid + half]
        cuda.syncthreads()
        half //= 2
    if tid == 0:
        cuda.atomic.add(total, 0, buf[0])


def add_sum_squares(x, total):
    """total[0] += sum of x**2, on the device without waiting. x (n,); total (1,) float64."""
    n = x.shape[0]
    if n == 0:
        return
    threads = threads_per_block()
    blocks = min(MAX_BLOCKS, (n + threads - 1) // threads)
    _sum_squares_kernel(threads)[blocks, threads](x, total)


def sum_squares(x):
    """Sum of x**2 accumulated in float64, as a Python float. x (n,)."""
    total = cuda.to_device(np.zeros(1, dtype=np.float64))
    add_sum_squares(x, total)
    return float(total.copy_to_host()[0])


@cuda.jit
def _scale(x, s):
    i = cuda.grid(1)
    if i < x.shape[0]:
        x[i] *= s


def scale(x, s):
    """x *= s in place (gradient clipping). x (n,)."""
    launch(_scale, x.shape[0], x, x.dtype.type(s))


@cuda.jit
def _sgd(p, g, lr):
    i = cuda.grid(1)
    if i < p.shape[0]:
        p[i] -= lr * g[i]


def sgd(p, g, lr):
    """p -= lr * g in place (the book's SGD update). p (n,); g (n,)."""
    launch(_sgd, p.shape[0], p, g, p.dtype.type(lr))
