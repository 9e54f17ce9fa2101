"""Work on one row (N * T = 1: text generation, one token at a time): a row vector times a
weight matrix read where it lies, for a block of the output columns, so that lanes can
split a product by the weight's columns; one LSTM step of one row, its products by such
blocks, then its elementwise pass.

At one row a product is bound by reading the weight once, and at small sizes a BLAS
call's dispatch costs as much as its multiply-adds. Every output element sums its
products in an order that the operands' shapes alone fix, each multiply-add rounded once
(vecmath's fma), so any block of columns gives the same bits as the whole product,
vectorised or not. The kernels raise nothing: the caller passes blocks that fit
(0 <= j0, j0 + m <= columns for an output block of m).
"""

import numpy as np
from numba import njit

from fastlstm.kernels.lstm import lstm_step_forward
from fastlstm.kernels.vecmath import STEP_OPTIONS, fma

# Output columns per block of the row-major product: their sums (8 KiB in float32) stay
# in the first-level cache while the weight's rows stream past.
COLUMN_BLOCK = 2048


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def row_times_rows(x, W, b, j0, out):
    """out[j] = sum over k of x[k] * W[k, j0 + j], a multiply-add at a time in order of k
    from 0 (packed_product's order), then + b[j0 + j] where b is not None: columns
    j0 .. j0 + m of x @ W (+ b), m = out.shape[0]. Eight rows of W per pass over a block of
    columns (then four, then one): each pass loads and stores the block's sums once, so more
    rows a pass leave more of the memory traffic to the weight itself; the order of k, and
    so the bits, are the same.

    x (K,) of any strides (a row of a transposed operand); W (K, n), out (m,), C-contiguous;
    b (n,) of any strides, or None.
    """
    K = x.shape[0]
    K4 = K - K % 4
    K8 = K - K % 8
    m = out.shape[0]
    for c0 in range(0, m, COLUMN_BLOCK):
        c1 = min(c0 + COLUMN_BLOCK, m)
        acc = out[c0:c1]
        w0 = j0 + c0
        w1 = j0 + c1
        for j in range(c1 - c0):
            acc[j] = 0
        for k in range(0, K8, 8):
            r0, r1, r2, r3 = W[k, w0:w1], W[k + 1, w0:w1], W[k + 2, w0:w1], W[k + 3, w0:w1]
            r4, r5, r6, r7 = W[k + 4, w0:w1], W[k + 5, w0:w1], W[k + 6, w0:w1], W[k + 7, w0:w1]
            x0, x1, x2, x3 = x[k], x[k + 1], x[k + 2], x[k + 3]
            x4, x5, x6, x7 = x[k + 4], x[k + 5], x[k + 6], x[k + 7]
            for j in range(c1 - c0):
                a = fma(x3, r3[j], fma(x2, r2[j], fma(x1, r1[j], fma(x0, r0[j], acc[j]))))
                acc[j] = fma(x7, r7[j], fma(x6, r6[j], fma(x5, r5[j], fma(x4, r4[j], a))))
        for k in range(K8, K4, 4):
            r0, r1, r2, r3 = W[k, w0:w1], W[k + 1, w0:w1], W[k + 2, w0:w1], W[k + 3, w0:w1]
            x0, x1, x2, x3 = x[k], x[k + 1], x[k + 2], x[k + 3]
            for j in range(c1 - c0):
                acc[j] = fma(x3, r3[j], fma(x2, r2[j], fma(x1, r1[j], fma(x0, r0[j], acc[j]))))
        for k in range(K4, K):
            r = W[k, w0:w1]
            xk = x[k]
            for j in range(c1 - c0):
                acc[j] = fma(xk, r[j], acc[j])
        if b is not None:
            bias = b[w0:w1]
            for j in range(c1 - c0):
                acc[j] = acc[j] + bias[j]


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def rows_times_rows(a, W, b, out):
    """out = a @ W (+ b where not None), row by row through row_times_rows: a product too
    small for a BLAS call's overhead to pay, on the caller's thread.

    a (M, K), any strides; W (K, n) C-contiguous; b (n,) or None; out (M, n), rows contiguous.
    """
    for i in range(a.shape[0]):
        row_times_rows(a[i], W, b, 0, out[i])


# Partial sums per dot product of the transposed product: interleaved, so that they run as
# SIMD vectors without 'reassoc', several vectors' worth so that their chains overlap.
PARTIALS = 32


@njit(cache=True, nogil=True, **STEP_OPTIONS)
def row_times_columns(x, E, b, j0, out, partials):
    """out[j] = x . E[j0 + j] + b[j0 + j], for j < m = out.shape[0]: columns j0 .. j0 + m of
    x @ E.T + b, with E (n, K) (a tied output weight, the transposed view of the
    embedding). Each dot product runs in P interleaved partial sums, added in a fixed
    order, then the tail in order, then the bias.

    x (K,), E, out: C-contiguous; b (n,) of any strides; partials (P,) scratch, P = PARTIALS, a power of
    two. P is read from its length so that LLVM does not unroll the loop over it into
    scalar code (Numba runs no SLP vectoriser) but vectorises it.
    """
    K = x.shape[0]
    P = partials.shape[0]
    KP = K - K % P
    for j in range(out.shape[0]):
        e = E[j0 + j]
        for i in range(P):
            partials[i] = 0
        for v in range(0, KP, P):
            xv, ev = x[v:v + P], e[v:v + P]
            for i in range(P):
                partials[i] = fma(xv[i], ev[i], partials[i])
        out[j] = _total(partials, x, e, KP) + b[j0 + j]


@njit(cache=True, nogil=True, inline="always")
def _total(s, x, e, KP):
    """The partial sums s added pairwise (halves folded onto each other), then the tail
    x[KP:] . e[KP:] in order."""
    n = s.shape[0]
    while n > 1:
        n //= 2
        for i in range(n):
            s[i] = s[i] + s[i + n]
    total = s[0]
    for v in range(KP, x.shape[0]):
        total = fma(x[v], e[v], total)
    return total


@njit(cache=True, nogil=True)
def lstm_row_products(xs, hs, Wx, Wh, gates, hA, c0, c1):
    """Columns c0 .. c1 - 1 of one LSTM step's products of one row (N = T = 1): of x @ Wx
    into gates, of h_0 @ Wh into hA. A band of the gates' columns, rather than a block of
    hidden units (four runs of each weight row, one per gate), reads each weight row's part
    in one run. Any cut of the columns gives the same bits; lstm_row_step follows once every
    column is made.

    xs (1, 1, D); hs (2, 1, H), h_0 given; Wx (D, 4H), Wh (H, 4H); gates (1, 1, 4H), hA
    (1, 4H). All C-contiguous.
    """
    row_times_rows(xs[0, 0], Wx, None, c0, gates[0, 0, c0:c1])
    row_times_rows(hs[0, 0], Wh, None, c0, hA[0, c0:c1])


@njit(cache=True, nogil=True)
def lstm_row_step(xs, b, hs, cs, inputs, gates, hA, tanh_cs):
    """The step's elementwise pass after lstm_row_products (kernels/lstm.py's
    lstm_step_forward, as the sequence path runs it, at T = N = 1), into the arrays of the
    sequence path (fastlstm/backends/cpu.py's lstm_forward), so that backward is the same;
    keeps x and h_0 side by side in inputs for backward.

    b (4H,); cs (2, 1, H), c_0 given; the new h and c written into hs[1] and cs[1]; inputs
    (1, 1, D + H); gates: the activated gates on return; tanh_cs (1, 1, H).
    """
    lstm_step_forward(gates[0], hA, b, cs[0], cs[1], tanh_cs[0], hs[1], 0)
    keep = inputs[0, 0]
    D = xs.shape[2]
    for d in range(D):
        keep[d] = xs[0, 0, d]
    for j in range(hs.shape[2]):
        keep[D + j] = hs[0, 0, j]
