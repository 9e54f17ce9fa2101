"""CUDA twins of the layers' matrix-product steps (np.dot, a.T @ b (fastlstm.blas.tn_product),
the bias add) and of kernels/linalg.py's column sums, and the launch settings that every
`*_cuda` module shares.

Arrays are numba.cuda device arrays (or any object with `__cuda_array_interface__`), 2-D,
of one float dtype, with any strides: a transposed operand is a zero-copy view made by
`transpose_view` (numba's own `DeviceNDArray.T` copies, which would silently untie a tied
weight).

Matrix products go to cuBLAS when CuPy is installed (`pip install 'fastlstm[cublas]'`),
else to the tiled shared-memory kernel here. Why CuPy: it is the one maintained library
that hands cuBLAS to numba device arrays without copies (`cupy.asarray` wraps them through
`__cuda_array_interface__`, and `cupy.dot` calls cublasGemmEx with the transpose flags
that fit the operands' strides). nvmath-python's matmul takes only NumPy, CuPy and
PyTorch operands, so it would need CuPy or PyTorch as well; pyculib, Numba's old cuBLAS
binding, is unmaintained. CuPy with its CUDA libraries is several hundred MB, so it stays
optional and is detected at import; under the simulator it is never used (simulated
arrays have no device memory).

THREADS_PER_BLOCK (1-D kernels, and the per-row reductions; a power of two) and TILE (the
GEMM tile edge) are read at every launch, so tests can shrink them to make tiny inputs
span many blocks.
"""

import functools

from numba import cuda, from_dtype
from numba.cuda.core import config as _cuda_config

THREADS_PER_BLOCK = 256
TILE = 16
# cuBLAS through CuPy when it is installed; tests set this to False to run the tiled kernel.
USE_CUBLAS = True


def _find_cupy():
    """The cupy module when it is installed and arrays live on a real GPU, else None."""
    if _cuda_config.ENABLE_CUDASIM:
        return None
    try:
        import cupy
    except ImportError:
        return None
    return cupy


_cupy = _find_cupy()


def cublas_available():
    """True when matmul goes to cuBLAS (CuPy found and USE_CUBLAS set)."""
    return _cupy is not None and USE_CUBLAS


def threads_per_block():
    """THREADS_PER_BLOCK, checked to be a power of two (the tree reductions halve it)."""
    t = THREADS_PER_BLOCK
    if t < 1 or t & (t - 1):
        raise ValueError(f"THREADS_PER_BLOCK must be a power of two, got {t}")
    return t


def launch(kernel, n, *args):
    """Run a 1-D kernel with one thread per element over n elements (nothing when n == 0)."""
    if n == 0:
        return
    t = threads_per_block()
    kernel[(n + t - 1) // t, t](*args)


def transpose_view(a):
    """a.T without copying: a (P, Q) device array -> (Q, P) view of the same memory."""
    if hasattr(a, "gpu_data"):  # numba's DeviceNDArray
        return type(a)(shape=a.shape[::-1], strides=a.strides[::-1], dtype=a.dtype,
                       stream=a.stream, gpu_data=a.gpu_data)
    return a.T  # a simulated array or a CuPy array: .T is already a view


@functools.cache
def _gemm_kernel(tile, dtype):
    """The tiled GEMM for one tile edge and dtype (the shared tiles need both at compile time)."""
    nbtype = from_dtype(dtype)

    @cuda.jit
    def gemm(a, b, out):
        # a (M, K), b (K, P), out (M, P) = a @ b; any strides. Block (tile, tile) computes
        # one tile of out. Loads and the store follow each array's memory order, so that
        # consecutive threads touch consecutive addresses whichever way it lies.
        sa = cuda.shared.array((tile, tile), nbtype)
        sb = cuda.shared.array((tile, tile), nbtype)
        M, K = a.shape
        P = b.shape[1]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        r0 = cuda.blockIdx.y * tile
        c0 = cuda.blockIdx.x * tile
        a_rows = a.strides[0] >= a.strides[1]
        b_rows = b.strides[0] >= b.strides[1]
        # the element (i, j) of this block's tile that this thread sums
        if out.strides[0] >= out.strides[1]:
            i, j = ty, tx
        else:
            i, j = tx, ty
        acc = nbtype(0)
        for k0 in range(0, K, tile):
            if a_rows:
                p, q = ty, tx
            else:
                p, q = tx, ty
            sa[p, q] = a[r0 + p, k0 + q] if r0 + p < M and k0 + q < K else nbtype(0)
            if b_rows:
                p, q = ty, tx
            else:
                p, q = tx, ty
            sb[p, q] = b[k0 + p, c0 + q] if k0 + p < K and c0 + q < P else nbtype(0)
            cuda.syncthreads()
            for kk in range(tile):
                acc += sa[i, kk] * sb[kk, j]
            cuda.syncthreads()
        if r0 + i < M and c0 + j < P:
            out[r0 + i, c0 + j] = acc

    return gemm


def _is_c_contiguous(a):
    return a.strides[-1] == a.dtype.itemsize and a.strides[0] == a.shape[1] * a.dtype.itemsize


def matmul(a, b, out):
    """out = a @ b. a (M, K), b (K, P), out (M, P): device arrays of one dtype, any strides."""
    M, P = out.shape
    if M == 0 or P == 0:
        return
    if cublas_available():
        if _is_c_contiguous(out):
            _cupy.dot(_cupy.asarray(a), _cupy.asarray(b), out=_cupy.asarray(out))
            return
        out_t = transpose_view(out)
        if _is_c_contiguous(out_t):  # an F-ordered out: out.T = b.T @ a.T
            _cupy.dot(_cupy.asarray(transpose_view(b)), _cupy.asarray(transpose_view(a)), out=_cupy.asarray(out_t))
            return
    tile = TILE
    _gemm_kernel(tile, out.dtype)[((P + tile - 1) // tile, (M + tile - 1) // tile), (tile, tile)](a, b, out)


def matmul_tn_into(a, b, out):
    """out = a.T @ b (the host does this with fastlstm.blas.tn_product and dots).

    a (K, P), b (K, Q); out (P, Q) any layout."""
    matmul(transpose_view(a), b, out)


@cuda.jit
def _column_sums(a, out):
    # a (K, P); out (P,). One thread per column, summed in float64 in row order: no races.
    j = cuda.grid(1)
    if j < out.shape[0]:
        s = 0.0
        for i in range(a.shape[0]):
            s += a[i, j]
        out[j] = s


def column_sums(a, out):
    """out[j] = sum_i a[i, j]. a (K, P); out (P,)."""
    launch(_column_sums, out.shape[0], a, out)


@cuda.jit
def _add_bias(out, b):
    k = cuda.grid(1)
    M, V = out.shape
    if k < M * V:
        m = k // V
        v = k - m * V
        out[m, v] += b[v]


def add_bias(out, b):
    """out += b on every row (the affine layer's bias). out (M, V); b (V,)."""
    launch(_add_bias, out.shape[0] * out.shape[1], out, b)


@cuda.jit
def _zero(a):
    k = cuda.grid(1)
    P, Q = a.shape
    if k < P * Q:
        a[k // Q, k % Q] = 0


def zero(a):
    """a[...] = 0 (device arrays start uninitialised). a (P, Q) any layout."""
    launch(_zero, a.shape[0] * a.shape[1], a)


@cuda.jit
def _swap_01(a, out):
    k = cuda.grid(1)
    P, Q, R = a.shape
    if k < P * Q * R:
        p = k // (Q * R)
        q = (k // R) % Q
        r = k % R
        out[q, p, r] = a[p, q, r]


def swap_01(a, out):
    """out = a.transpose(1, 0, 2) as a copy (numba device arrays cannot transpose 3-D): the
    batch-major (N, T, D) <-> time-major (T, N, D) change of TimeLSTM. a (P, Q, R); out (Q, P, R)."""
    launch(_swap_01, a.shape[0] * a.shape[1] * a.shape[2], a, out)


@cuda.jit
def _time_copy(a, out, reverse, add):
    k = cuda.grid(1)
    N, T, W = a.shape
    if k < N * T * W:
        n = k // (T * W)
        t = (k // W) % T
        w = k % W
        value = a[n, T - 1 - t if reverse else t, w]
        if add:
            out[n, t, w] += value
        else:
            out[n, t, w] = value


def time_copy(a, out, reverse=False, add=False):
    """out[:, t] = a[:, T - 1 - t] where `reverse`, else a[:, t]; added to out where `add`.
    a, out (N, T, W), any strides: a bidirectional layer's halves of (N, T, 2W) arrays."""
    launch(_time_copy, a.shape[0] * a.shape[1] * a.shape[2], a, out, reverse, add)
