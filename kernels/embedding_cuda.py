"""CUDA twin of kernels/embedding.py: embedding gather, and its scatter-add backward with
atomic adds, so a word that repeats in the batch adds into its row from many threads
without races (the order of the adds, and so the last bits of a float sum, may vary); and
their forms with a scale per word (embedding dropout)."""

from numba import cuda

from fastlstm.kernels.linalg_cuda import launch, zero


@cuda.jit
def _forward(W, ids, out):
    k = cuda.grid(1)
    M, D = out.shape
    if k < M * D:
        m = k // D
        d = k - m * D
        out[m, d] = W[ids[m], d]


def embedding_forward(W, ids, out):
    """out[m] = W[ids[m]]. W (V, D) any layout; ids (M,) in [0, V), checked by the caller; out (M, D)."""
    M, D = out.shape
    launch(_forward, M * D, W, ids, out)


@cuda.jit
def _scatter_add(ids, dout, dW):
    k = cuda.grid(1)
    M, D = dout.shape
    if k < M * D:
        m = k // D
        d = k - m * D
        cuda.atomic.add(dW, (ids[m], d), dout[m, d])


def embedding_backward(ids, dout, dW):
    """dW = 0, then dW[ids[m]] += dout[m] for every m. ids (M,) in [0, V); dout (M, D); dW (V, D) any layout."""
    D = dW.shape[1]
    zero(dW)
    launch(_scatter_add, dout.shape[0] * D, ids, dout, dW)


@cuda.jit
def _forward_scaled(W, ids, scale, out):
    k = cuda.grid(1)
    M, D = out.shape
    if k < M * D:
        m = k // D
        d = k - m * D
        r = ids[m]
        out[m, d] = W[r, d] * scale[r]


def embedding_forward_scaled(W, ids, scale, out):
    """out[m] = W[ids[m]] * scale[ids[m]]. W (V, D) any layout; ids (M,) in [0, V); scale (V,); out (M, D)."""
    M, D = out.shape
    launch(_forward_scaled, M * D, W, ids, scale, out)


@cuda.jit
def _scale_rows(dW, scale):
    k = cuda.grid(1)
    V, D = dW.shape
    if k < V * D:
        v = k // D
        dW[v, k - v * D] *= scale[v]


def scale_rows(dW, scale):
    """dW[v] *= scale[v] for every row v (the gradient of W * scale[:, None]). dW (V, D) any layout; scale (V,)."""
    launch(_scale_rows, dW.shape[0] * dW.shape[1], dW, scale)
