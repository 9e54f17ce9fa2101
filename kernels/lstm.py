"""LSTM forward and backward over all T steps, gate order f, g, i, o as in the book.

The input projection of all steps is one product and the weight gradients are single
products over all steps; per step there is only `h @ Wh` (forward) or `dA @ Wh.T`
(backward) plus one fused pass over the gates.
"""

import numpy as np
from numba import njit, prange

from fastlstm.kernels.linalg import column_sums, matmul_tn


@njit(inline="always")
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@njit(parallel=True, cache=True)
def lstm_forward(xs, Wx, Wh, b, h0, c0, hs, cs, gates):
    """Run the LSTM over T steps; save the activated gates and cell states for backward.

    xs (N, T, D) C-contiguous; Wx (D, 4H), Wh (H, 4H), b (4H,) any layout;
    h0, c0 (N, H) initial state. Out: hs (N, T, H) hidden states, cs (N, T, H) cell
    states, gates (N, T, 4H) activated f, g, i, o. All C-contiguous.
    """
    N, T, D = xs.shape
    H = Wh.shape[0]
    np.dot(xs.reshape(N * T, D), Wx, gates.reshape(N * T, 4 * H))
    h = h0.copy()
    hA = np.empty((N, 4 * H), dtype=hs.dtype)
    for t in range(T):
        np.dot(h, Wh, hA)
        for n in prange(N):
            for j in range(H):
                f = _sigmoid(gates[n, t, j] + hA[n, j] + b[j])
                g = np.tanh(gates[n, t, H + j] + hA[n, H + j] + b[H + j])
                i = _sigmoid(gates[n, t, 2 * H + j] + hA[n, 2 * H + j] + b[2 * H + j])
                o = _sigmoid(gates[n, t, 3 * H + j] + hA[n, 3 * H + j] + b[3 * H + j])
                c_prev = c0[n, j] if t == 0 else cs[n, t - 1, j]
                c = f * c_prev + g * i
                hn = o * np.tanh(c)
                gates[n, t, j] = f
                gates[n, t, H + j] = g
                gates[n, t, 2 * H + j] = i
                gates[n, t, 3 * H + j] = o
                cs[n, t, j] = c
                hs[n, t, j] = hn
                h[n, j] = hn


@njit(parallel=True, cache=True)
def lstm_backward(xs, Wx, Wh, h0, c0, hs, cs, gates, dhs,
                  dxs, dWx, dWx_transposed, dWh, dWh_transposed, db, dh0):
    """Backpropagate through T steps (truncated: no gradient enters from after step T).

    xs, hs, cs, gates as saved by lstm_forward; dhs (N, T, H) upstream gradient.
    Out: dxs (N, T, D); dWx (D, 4H) and dWh (H, 4H), each or its transpose as the
    `_transposed` flags say (see matmul_tn); db (4H,); dh0 (N, H) gradient w.r.t. h0.
    """
    N, T, D = xs.shape
    H = Wh.shape[0]
    dA = np.empty((N, T, 4 * H), dtype=hs.dtype)
    dA_t = np.empty((N, 4 * H), dtype=hs.dtype)
    dc = np.zeros((N, H), dtype=hs.dtype)
    dh0[:] = 0
    for t in range(T - 1, -1, -1):
        for n in prange(N):
            for j in range(H):
                f = gates[n, t, j]
                g = gates[n, t, H + j]
                i = gates[n, t, 2 * H + j]
                o = gates[n, t, 3 * H + j]
                c_prev = c0[n, j] if t == 0 else cs[n, t - 1, j]
                tc = np.tanh(cs[n, t, j])
                dh = dhs[n, t, j] + dh0[n, j]
                ds = dc[n, j] + dh * o * (1 - tc * tc)
                dc[n, j] = ds * f
                df = ds * c_prev * f * (1 - f)
                dg = ds * i * (1 - g * g)
                di = ds * g * i * (1 - i)
                do = dh * tc * o * (1 - o)
                dA_t[n, j] = df
                dA_t[n, H + j] = dg
                dA_t[n, 2 * H + j] = di
                dA_t[n, 3 * H + j] = do
                dA[n, t, j] = df
                dA[n, t, H + j] = dg
                dA[n, t, 2 * H + j] = di
                dA[n, t, 3 * H + j] = do
        np.dot(dA_t, Wh.T, dh0)
    M = N * T
    dA2 = dA.reshape(M, 4 * H)
    h_prev = np.empty((N, T, H), dtype=hs.dtype)
    for n in prange(N):
        h_prev[n, 0, :] = h0[n, :]
        h_prev[n, 1:, :] = hs[n, :T - 1, :]
    matmul_tn(xs.reshape(M, D), dA2, dWx, dWx_transposed)
    matmul_tn(h_prev.reshape(M, H), dA2, dWh, dWh_transposed)
    column_sums(dA2, db)
    np.dot(dA2, Wx.T, dxs.reshape(M, D))
