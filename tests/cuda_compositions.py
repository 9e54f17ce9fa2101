"""The layers' compositions of kernels (LSTM over T steps, the affine map), once on the CPU
kernels and once on their CUDA twins, for the simulator tests (cudasim_cases.py) and the
real-GPU tests (test_gpu_real.py) to compare. The CPU side follows fastlstm.time_layers
and fastlstm.layers step for step; the GPU side is the same code with device arrays.
`train_steps` is the book's training step, for a model on either side.

Arrays are time-major as in TimeLSTM: xs_t (T, N, D), dhs_t (T, N, H); results are a dict
of NumPy arrays: hs (T+1, N, H) with h0 in hs[0], cs likewise, gates (T, N, 4H), and the
gradients dxs_t (T, N, D), dWx, dWh, db, dh0.
"""

import numpy as np

from fastlstm.blas import dots, tn_product
from fastlstm.kernels import linalg, lstm, softmax
from fastlstm.optimizer import SGD
from fastlstm.trainer import stateful_batch
from fastlstm.training_step import train_step


def lstm_cpu(xs_t, Wx, Wh, b, h0, c0, dhs_t):
    T, N, D = xs_t.shape
    H = Wh.shape[0]
    dtype = Wh.dtype
    gates = np.dot(xs_t.reshape(T * N, D), Wx).reshape(T, N, 4 * H)
    hs = np.empty((T + 1, N, H), dtype)
    cs = np.empty((T + 1, N, H), dtype)
    hs[0], cs[0] = h0, c0
    tanh_cs = np.empty((T, N, H), dtype)
    hA = np.empty((N, 4 * H), dtype)
    for t in range(T):
        np.dot(hs[t], Wh, out=hA)
        lstm.lstm_step_forward(gates[t], hA, b, cs[t], cs[t + 1], tanh_cs[t], hs[t + 1], 0)
    dA = np.empty_like(gates)
    dh = np.zeros((N, H), dtype)
    dc = np.zeros((N, H), dtype)
    db = np.zeros(b.shape, dtype)
    for t in range(T - 1, -1, -1):
        lstm.lstm_step_backward(gates[t], cs[t], tanh_cs[t], dhs_t[t][:, None], 0, dh, dc, dA[t], db, 0)
        np.dot(dA[t], Wh.T, out=dh)
    dA2 = dA.reshape(T * N, 4 * H)
    dWx, dWh = np.empty(Wx.shape, dtype), np.empty(Wh.shape, dtype)
    dots(tn_product(xs_t.reshape(T * N, D), dA2, dWx), tn_product(hs[:T].reshape(T * N, H), dA2, dWh))
    dxs_t = np.dot(dA2, Wx.T).reshape(T, N, D)
    return dict(hs=hs, cs=cs, gates=gates, dxs_t=dxs_t, dWx=dWx, dWh=dWh, db=db, dh0=dh)


def lstm_gpu(xs_t, Wx, Wh, b, h0, c0, dhs_t):
    """The same on device arrays; Wx and Wh are device arrays of any layout, the rest NumPy."""
    from numba import cuda

    from fastlstm.kernels import linalg_cuda as lc
    from fastlstm.kernels import lstm_cuda

    T, N, D = xs_t.shape
    H = Wh.shape[0]
    dtype = Wh.dtype
    d_gates = cuda.device_array((T, N, 4 * H), dtype)
    lc.matmul(cuda.to_device(xs_t).reshape(T * N, D), Wx, d_gates.reshape(T * N, 4 * H))
    state = np.empty((T + 1, N, H), dtype)
    state[0] = h0
    d_hs = cuda.to_device(state)
    state[0] = c0
    d_cs = cuda.to_device(state)
    d_tanh_cs = cuda.device_array((T, N, H), dtype)
    d_hA = cuda.device_array((N, 4 * H), dtype)
    d_b = cuda.to_device(b)
    for t in range(T):
        lc.matmul(d_hs[t], Wh, d_hA)
        lstm_cuda.lstm_step_forward(d_gates[t], d_hA, d_b, d_cs[t], d_cs[t + 1], d_tanh_cs[t], d_hs[t + 1])
    d_dhs = cuda.to_device(dhs_t)
    d_dA = cuda.device_array((T, N, 4 * H), dtype)
    d_dh = cuda.to_device(np.zeros((N, H), dtype))
    d_dc = cuda.to_device(np.zeros((N, H), dtype))
    WhT = lc.transpose_view(Wh)
    for t in range(T - 1, -1, -1):
        lstm_cuda.lstm_step_backward(d_gates[t], d_cs[t], d_tanh_cs[t], d_dhs[t], d_dh, d_dc, d_dA[t])
        lc.matmul(d_dA[t], WhT, d_dh)
    dA2 = d_dA.reshape(T * N, 4 * H)
    d_dWx, d_dWh, d_db = (cuda.device_array(s, dtype) for s in (Wx.shape, Wh.shape, b.shape))
    lc.matmul_tn_into(cuda.to_device(xs_t).reshape(T * N, D), dA2, d_dWx)
    lc.matmul_tn_into(d_hs[:T].reshape(T * N, H), dA2, d_dWh)
    lc.column_sums(dA2, d_db)
    d_dxs = cuda.device_array((T * N, D), dtype)
    lc.matmul(dA2, lc.transpose_view(Wx), d_dxs)
    return dict(hs=d_hs.copy_to_host(), cs=d_cs.copy_to_host(), gates=d_gates.copy_to_host(),
                dxs_t=d_dxs.copy_to_host().reshape(T, N, D), dWx=d_dWx.copy_to_host(),
                dWh=d_dWh.copy_to_host(), db=d_db.copy_to_host(), dh0=d_dh.copy_to_host())


def affine_cpu(x, W, b, dout):
    """Affine forward and backward as fastlstm.layers.Affine does them: out, dx, dW, db."""
    out = np.dot(x, W)
    out += b
    dW, db = np.empty(W.shape, W.dtype), np.empty(b.shape, W.dtype)
    dots(tn_product(x, dout, dW))
    linalg.column_sums(dout, db)
    return dict(out=out, dx=np.dot(dout, W.T), dW=dW, db=db)


def affine_gpu(x, W, b, dout, dW):
    """The same on the GPU. W (D, V) and dW device arrays of any layout; the rest NumPy."""
    from numba import cuda

    from fastlstm.kernels import linalg_cuda as lc

    M, V = dout.shape
    d_x, d_dout = cuda.to_device(x), cuda.to_device(dout)
    d_out = cuda.device_array((M, V), W.dtype)
    lc.matmul(d_x, W, d_out)
    lc.add_bias(d_out, cuda.to_device(b))
    d_dx = cuda.device_array(x.shape, W.dtype)
    lc.matmul(d_dout, lc.transpose_view(W), d_dx)
    lc.matmul_tn_into(d_x, d_dout, dW)
    d_db = cuda.device_array(b.shape, W.dtype)
    lc.column_sums(d_dout, d_db)
    return dict(out=d_out.copy_to_host(), dx=d_dx.copy_to_host(), dW=dW.copy_to_host(), db=d_db.copy_to_host())


def train_steps(model, corpus, steps, batch_size, time_size, lr=20.0, max_grad=0.25):
    """`steps` of train_step on stateful batches of corpus: forward, backward, the tied weights
    merged, clipping, SGD. Returns (loss, gradient norm) per step; dropout masks come from
    np.random, seeded here."""
    np.random.seed(1)
    optimizer = SGD(lr)
    log = []
    for i in range(steps):
        xs, ts = stateful_batch(corpus[:-1], corpus[1:], batch_size, time_size, i * time_size)
        log.append(train_step(model, optimizer, xs, ts, max_grad))
    return log


def softmax_cross_entropy_cpu(x, ts, scale):
    """(lse, loss, dx) per row of x (M, V): loss and gradient from the CPU kernels, the
    log-sum-exp (which the CUDA kernels keep for backward and the CPU's do not) from NumPy."""
    M, V = x.shape
    loss = np.empty(M)
    softmax.softmax_cross_entropy_forward(x, ts, loss, np.empty((1, V), x.dtype))
    dx = np.empty_like(x)
    softmax.softmax_cross_entropy_forward_backward(x, ts, np.empty(M), scale, dx)
    x64 = x.astype(np.float64)
    top = x64.max(axis=1)
    return top + np.log(np.exp(x64 - top[:, None]).sum(axis=1)), loss, dx
