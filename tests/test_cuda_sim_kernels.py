"""Every CUDA kernel against its CPU twin, on Numba's CUDA simulator, kernel by kernel and
in the layers' compositions (cuda_compositions.py), with tiny blocks (cuda_sim.py).
"""

import numpy as np
import pytest

from cuda_sim import DTYPES, NOT_SIMULATED, host, rand, tiny_blocks, tol  # noqa: F401  (tiny_blocks: a fixture)
from fastlstm import gpu

if not gpu.simulated():
    pytest.skip(NOT_SIMULATED, allow_module_level=True)

from numba import cuda  # noqa: E402  (numba-cuda may be missing: imported after the skip)

from cuda_compositions import affine_cpu, affine_gpu, lstm_cpu, lstm_gpu, softmax_cross_entropy_cpu  # noqa: E402
from fastlstm.blas import dots, tn_product  # noqa: E402
from fastlstm.kernels import dropout, embedding, gru, linalg, lstm, optim, regularisers, rnn  # noqa: E402
from fastlstm.kernels import (dropout_cuda, embedding_cuda, gru_cuda, linalg_cuda, lstm_cuda, optim_cuda,  # noqa: E402
                              regularisers_cuda, rnn_cuda, softmax_cuda)

pytestmark = pytest.mark.usefixtures("tiny_blocks")


def dev(x):
    return cuda.to_device(x)


def dev_empty(shape, dtype):
    return cuda.device_array(shape, dtype=dtype)


def dev_f_order(shape, dtype):
    """A device buffer of `shape` that is F-contiguous: the transposed view of a C buffer."""
    return linalg_cuda.transpose_view(cuda.device_array(shape[::-1], dtype=dtype))


# --- device helpers ---------------------------------------------------------------------

def test_gpu_helpers():
    assert gpu.available() and gpu.simulated()
    assert gpu.require() is cuda
    x = np.arange(6.0).reshape(2, 3)
    d = gpu.to_device(x)
    assert gpu.is_device_array(d) and not gpu.is_device_array(x)
    assert gpu.to_device(d) is d
    np.testing.assert_array_equal(gpu.to_host(d), x)
    t = gpu.transpose(d)
    assert t.shape == (3, 2)
    t[2, 1] = -1.0  # a view: writes through to d
    assert gpu.to_host(d)[1, 2] == -1.0


# --- matrix products ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("out_f", [False, True])
def test_matmul_layouts(dtype, ta, tb, out_f):
    """Every layout of a, b and out (C, or F as a transposed view) on a product whose
    every dimension spans partial 4-wide tiles."""
    check_matmul(dtype, 5, 6, 7, ta, tb, out_f)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,P", [(1, 1, 1), (1, 13, 3), (13, 17, 1), (5, 0, 3)])
def test_matmul_shapes(dtype, M, K, P):
    check_matmul(dtype, M, K, P, False, True, False)


def check_matmul(dtype, M, K, P, ta, tb, out_f):
    rng = np.random.default_rng(M * 100 + K * 10 + P)
    a = rand(rng, (M, K), dtype)
    b = rand(rng, (K, P), dtype)
    da = linalg_cuda.transpose_view(dev(np.ascontiguousarray(a.T))) if ta else dev(a)
    db = linalg_cuda.transpose_view(dev(np.ascontiguousarray(b.T))) if tb else dev(b)
    out = dev_f_order((M, P), dtype) if out_f else dev_empty((M, P), dtype)
    linalg_cuda.matmul(da, db, out)
    np.testing.assert_allclose(host(out), np.dot(a, b), **tol(dtype))


def test_matmul_strided_rows():
    """A row slice of a 3-D array (h of one time step) as the left operand."""
    rng = np.random.default_rng(0)
    hs = rand(rng, (3, 5, 7), np.float64)
    w = rand(rng, (7, 9), np.float64)
    out = dev_empty((3, 9), np.float64)
    linalg_cuda.matmul(dev(hs)[:, 2, :], dev(w), out)
    np.testing.assert_allclose(host(out), hs[:, 2, :] @ w, **tol(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_f", [False, True])
def test_matmul_tn_into(dtype, out_f):
    rng = np.random.default_rng(1)
    a = rand(rng, (13, 3), dtype)
    b = rand(rng, (13, 17), dtype)
    want = np.empty((3, 17), dtype, order="F" if out_f else "C")
    dots(tn_product(a, b, want))
    out = dev_f_order((3, 17), dtype) if out_f else dev_empty((3, 17), dtype)
    linalg_cuda.matmul_tn_into(dev(a), dev(b), out)
    np.testing.assert_allclose(host(out), want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K,P", [(1, 1), (13, 17), (3, 1)])
def test_column_sums(dtype, K, P):
    a = rand(np.random.default_rng(2), (K, P), dtype)
    want = np.empty(P, dtype)
    linalg.column_sums(a, want)
    out = dev_empty(P, dtype)
    linalg_cuda.column_sums(dev(a), out)
    np.testing.assert_allclose(host(out), want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tied", [False, True])
def test_affine(dtype, tied):
    """The affine layer's products, bias add and column sums; `tied`: W is the transposed
    view of a (V, D) weight and its gradient buffer F-ordered, as in the tied BetterRnnlm."""
    rng = np.random.default_rng(3)
    M, D, V = 5, 3, 7
    x = rand(rng, (M, D), dtype)
    W = rand(rng, (V, D), dtype).T if tied else rand(rng, (D, V), dtype)
    b = rand(rng, V, dtype)
    dout = rand(rng, (M, V), dtype)
    want = affine_cpu(x, W, b, dout)
    if tied:
        got = affine_gpu(x, linalg_cuda.transpose_view(dev(W.T)), b, dout, dev_f_order((D, V), dtype))
    else:
        got = affine_gpu(x, dev(W), b, dout, dev_empty((D, V), dtype))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], **tol(dtype), err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_and_swap_01(dtype):
    a = rand(np.random.default_rng(4), (3, 5, 2), dtype)
    out = dev_empty((5, 3, 2), dtype)
    linalg_cuda.swap_01(dev(a), out)
    np.testing.assert_array_equal(host(out), a.transpose(1, 0, 2))
    f = dev_f_order((3, 5), dtype)
    linalg_cuda.zero(f)
    np.testing.assert_array_equal(host(f), np.zeros((3, 5)))


# --- LSTM ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,H", [(1, 1), (3, 5), (2, 13)])
def test_lstm_steps(dtype, N, H):
    rng = np.random.default_rng(N * 100 + H)
    a = rand(rng, (N, 4 * H), dtype)
    hA = rand(rng, (N, 4 * H), dtype)
    b = rand(rng, 4 * H, dtype)
    c_prev = rand(rng, (N, H), dtype)
    gates = a.copy()
    c, tanh_c, h = (np.empty((N, H), dtype) for _ in range(3))
    lstm.lstm_step_forward(gates, hA, b, c_prev, c, tanh_c, h, 0)
    d_gates = dev(a)
    d_c, d_tanh_c, d_h = (dev_empty((N, H), dtype) for _ in range(3))
    lstm_cuda.lstm_step_forward(d_gates, dev(hA), dev(b), dev(c_prev), d_c, d_tanh_c, d_h)
    for got, want in [(d_gates, gates), (d_c, c), (d_tanh_c, tanh_c), (d_h, h)]:
        np.testing.assert_allclose(host(got), want, **tol(dtype))

    dh_out, dh_next, dc = (rand(rng, (N, H), dtype) for _ in range(3))
    d_dc = dev(dc)
    dA = np.empty((N, 4 * H), dtype)
    db = rand(rng, 4 * H, dtype)
    db_before = db.copy()
    lstm.lstm_step_backward(gates, c_prev, tanh_c, dh_out[:, None], 0, dh_next, dc, dA, db, 0)
    np.testing.assert_allclose(db, db_before + dA.sum(axis=0), **tol(dtype))
    d_dA = dev_empty((N, 4 * H), dtype)
    lstm_cuda.lstm_step_backward(dev(gates), dev(c_prev), dev(tanh_c), dev(dh_out), dev(dh_next), d_dc, d_dA)
    np.testing.assert_allclose(host(d_dc), dc, **tol(dtype))
    np.testing.assert_allclose(host(d_dA), dA, **tol(dtype))


@pytest.mark.parametrize("dtype,T,N,D,H,transposed", [
    (np.float32, 3, 2, 5, 3, False),
    (np.float64, 3, 2, 5, 3, True),
    (np.float32, 1, 1, 1, 1, True),
])
def test_lstm_sequence(dtype, T, N, D, H, transposed):
    """TimeLSTM's forward and backward over T steps on the step kernels and products;
    `transposed`: Wx and Wh are transposed views (F-ordered), as a kernel may be handed."""
    rng = np.random.default_rng(T * 1000 + N * 100 + D * 10 + H)
    xs_t = rand(rng, (T, N, D), dtype)
    Wx = rand(rng, (D, 4 * H), dtype, 0.5)
    Wh = rand(rng, (H, 4 * H), dtype, 0.5)
    b = rand(rng, 4 * H, dtype)
    h0, c0 = rand(rng, (N, H), dtype), rand(rng, (N, H), dtype)
    dhs_t = rand(rng, (T, N, H), dtype)
    want = lstm_cpu(xs_t, Wx, Wh, b, h0, c0, dhs_t)
    if transposed:
        d_Wx = linalg_cuda.transpose_view(dev(np.ascontiguousarray(Wx.T)))
        d_Wh = linalg_cuda.transpose_view(dev(np.ascontiguousarray(Wh.T)))
    else:
        d_Wx, d_Wh = dev(Wx), dev(Wh)
    got = lstm_gpu(xs_t, d_Wx, d_Wh, b, h0, c0, dhs_t)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], **tol(dtype), err_msg=name)


# --- RNN and GRU ------------------------------------------------------------------------------

def same(got, want, dtype):
    np.testing.assert_allclose(host(got), want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,H", [(1, 1), (3, 5), (2, 13)])
def test_rnn_steps(dtype, N, H):
    rng = np.random.default_rng(N * 100 + H + 1)
    a, hA, dh_out, dh_next = (rand(rng, (N, H), dtype) for _ in range(4))
    b = rand(rng, H, dtype)
    h = np.empty((N, H), dtype)
    rnn.rnn_step_forward(a, hA, b, h, 0)
    d_h = dev_empty((N, H), dtype)
    rnn_cuda.rnn_step_forward(dev(a), dev(hA), dev(b), d_h)
    same(d_h, h, dtype)

    dA, db = np.empty((N, H), dtype), np.zeros(H, dtype)
    rnn.rnn_step_backward(h, dh_out[:, None], 0, dh_next, dA, db, 0)
    np.testing.assert_allclose(db, dA.sum(axis=0), **tol(dtype))
    d_dA = dev_empty((N, H), dtype)
    rnn_cuda.rnn_step_backward(dev(h), dev(dh_out), dev(dh_next), d_dA)
    same(d_dA, dA, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,H", [(1, 1), (3, 5), (2, 13)])
def test_gru_steps(dtype, N, H):
    """The two forward phases and the two backward phases, each against its CPU twin."""
    rng = np.random.default_rng(N * 100 + H + 2)
    a = rand(rng, (N, 3 * H), dtype)
    hA_zr = rand(rng, (N, 2 * H), dtype)
    h_prev, hA_h, dh_out, dh_next, direct, drh = (rand(rng, (N, H), dtype) for _ in range(6))
    gates, rh, h = a.copy(), np.empty((N, H), dtype), np.empty((N, H), dtype)
    d_gates, d_rh, d_h = dev(a), dev_empty((N, H), dtype), dev_empty((N, H), dtype)
    gru.gru_step_gates(gates, hA_zr, h_prev, rh, 0)
    gru_cuda.gru_step_gates(d_gates, dev(hA_zr), dev(h_prev), d_rh)
    same(d_rh, rh, dtype)
    gru.gru_step_hidden(gates, hA_h, h_prev, h, 0)
    gru_cuda.gru_step_hidden(d_gates, dev(hA_h), dev(h_prev), d_h)
    for got, want in [(d_gates, gates), (d_h, h)]:
        same(got, want, dtype)

    dA = np.full((N, 3 * H), np.nan, dtype)
    d_dA, d_direct = dev(dA), dev(direct)
    gru.gru_step_backward_hidden(gates, h_prev, dh_out[:, None], 0, dh_next, direct, dA, 0)
    gru_cuda.gru_step_backward_hidden(dev(gates), dev(h_prev), dev(dh_out), dev(dh_next), d_direct, d_dA)
    gru.gru_step_backward_gates(gates, h_prev, drh, direct, dA, 0)
    gru_cuda.gru_step_backward_gates(dev(gates), dev(h_prev), dev(drh), d_direct, d_dA)
    assert not np.isnan(dA).any()
    for got, want in [(d_dA, dA), (d_direct, direct)]:
        same(got, want, dtype)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("add", [False, True])
def test_time_copy_into_halves(reverse, add):
    rng = np.random.default_rng(11)
    a, out = rand(rng, (2, 5, 3), np.float64), rand(rng, (2, 5, 6), np.float64)
    d_out = dev(out)
    linalg_cuda.time_copy(dev(a), d_out[:, :, 3:], reverse, add)
    want = out.copy()
    source = a[:, ::-1] if reverse else a
    want[:, :, 3:] = want[:, :, 3:] + source if add else source
    np.testing.assert_array_equal(host(d_out), want)


# --- softmax cross-entropy ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,V", [(1, 1), (3, 13), (13, 17), (2, 40)])
def test_softmax_cross_entropy(dtype, M, V):
    """Per-row lse and loss, then the gradient; every other row is ignored (-1) where M > 1."""
    rng = np.random.default_rng(M * 100 + V)
    x = rand(rng, (M, V), dtype, 3.0)
    ts = rng.integers(0, V, M).astype(np.intp)
    ts[1::2] = -1
    scale = dtype(1.0 / max(1, np.count_nonzero(ts >= 0)))
    lse, loss, dx = softmax_cross_entropy_cpu(x, ts, scale)

    d_x, d_ts = dev(x), dev(ts)
    d_lse, d_loss, d_dx = dev_empty(M, dtype), dev_empty(M, np.float64), dev_empty((M, V), dtype)
    softmax_cuda.softmax_cross_entropy_forward(d_x, d_ts, d_lse, d_loss)
    softmax_cuda.softmax_cross_entropy_backward(d_x, d_ts, d_lse, scale, d_dx)
    np.testing.assert_allclose(host(d_lse), lse, **tol(dtype))
    np.testing.assert_allclose(host(d_loss), loss, **tol(dtype))
    np.testing.assert_allclose(host(d_dx), dx, **tol(dtype))
    assert np.all(host(d_loss)[ts < 0] == 0) and np.all(host(d_dx)[ts < 0] == 0)


def test_softmax_needs_power_of_two_blocks(monkeypatch):
    monkeypatch.setattr(linalg_cuda, "THREADS_PER_BLOCK", 6)
    x = dev(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="power of two"):
        softmax_cuda.softmax_cross_entropy_forward(x, dev(np.zeros(2, np.intp)), dev_empty(2, np.float64),
                                                   dev_empty(2, np.float64))


# --- embedding -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("V,D,M", [(1, 1, 1), (17, 3, 13), (5, 3, 40)])
@pytest.mark.parametrize("f_order", [False, True])
def test_embedding(dtype, V, D, M, f_order):
    """Gather, and a scatter-add where ids repeat many times (ids drawn from 3 rows at most)."""
    rng = np.random.default_rng(V * 100 + D * 10 + M)
    W = rand(rng, (V, D), dtype)
    ids = rng.integers(0, min(V, 3), M).astype(np.intp)
    dout = rand(rng, (M, D), dtype)
    out = np.empty((M, D), dtype)
    embedding.embedding_forward(W, ids, out)
    dW = np.empty((V, D), dtype)
    embedding.embedding_backward(ids, dout, dW)

    d_out = dev_empty((M, D), dtype)
    embedding_cuda.embedding_forward(dev(W), dev(ids), d_out)
    np.testing.assert_array_equal(host(d_out), out)
    d_dW = dev_f_order((V, D), dtype) if f_order else dev(np.full((V, D), np.nan, dtype))
    embedding_cuda.embedding_backward(dev(ids), dev(dout), d_dW)
    np.testing.assert_allclose(host(d_dW), dW, **tol(dtype))


# --- dropout ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", [1, 3, 17, 61])
@pytest.mark.parametrize("ratio,scale", [(0.5, 2.0), (0.3, 1.0), (0.0, 1.0)])
def test_dropout_bit_identical(dtype, K, ratio, scale):
    rng = np.random.default_rng(K)
    x = rand(rng, K, dtype)
    dout = rand(rng, K, dtype)
    seed = np.uint64(rng.integers(0, 2**63 - 1))
    mask, out, dx = np.empty(K, dtype), np.empty(K, dtype), np.empty(K, dtype)
    dropout.dropout_forward(x, seed, ratio, scale, mask, out)
    dropout.dropout_backward(dout, mask, dx)

    d_mask, d_out, d_dx = dev_empty(K, dtype), dev_empty(K, dtype), dev_empty(K, dtype)
    dropout_cuda.dropout_forward(dev(x), seed, ratio, scale, d_mask, d_out)
    dropout_cuda.dropout_backward(dev(dout), d_mask, d_dx)
    np.testing.assert_array_equal(host(d_mask), mask)
    np.testing.assert_array_equal(host(d_out), out)
    np.testing.assert_array_equal(host(d_dx), dx)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,T,D", [(1, 1, 1), (3, 4, 5), (2, 7, 13)])
def test_masks_bit_identical(dtype, N, T, D):
    """A mask drawn alone (the regularisers'), the locked mask applied over the steps, and a
    mask multiplied in (2-D, any layout on the device)."""
    rng = np.random.default_rng(N * T * D)
    seed = np.uint64(rng.integers(0, 2**63 - 1))
    mask = np.empty(N * D, dtype)
    dropout.dropout_mask(seed, 0.3, 1 / 0.7, mask)
    d_mask = dev_empty(N * D, dtype)
    dropout_cuda.dropout_mask(seed, 0.3, 1 / 0.7, d_mask)
    np.testing.assert_array_equal(host(d_mask), mask)
    forward_mask, out = np.empty(N * D, dtype), np.empty(N * D, dtype)  # the same draws as dropout_forward's
    dropout.dropout_forward(np.ones(N * D, dtype), seed, 0.3, 1 / 0.7, forward_mask, out)
    np.testing.assert_array_equal(forward_mask, mask)

    x = rand(rng, (N, T, D), dtype)
    out = np.empty_like(x)
    dropout.locked_apply(x, mask.reshape(N, D), out)
    np.testing.assert_array_equal(out, x * mask.reshape(N, 1, D))
    d_out = dev_empty((N, T, D), dtype)
    dropout_cuda.locked_apply(dev(x), d_mask.reshape(N, D), d_out)
    np.testing.assert_array_equal(host(d_out), out)

    a, b = rand(rng, (N, D), dtype), rand(rng, (N, D), dtype)
    flat = a.copy().reshape(-1)
    dropout.multiply_into(flat, b.reshape(-1))
    np.testing.assert_array_equal(flat, (a * b).reshape(-1))
    d_f = dev_f_order((N, D), dtype)
    dropout_cuda.multiply(dev(a), dev(b), d_f)
    np.testing.assert_array_equal(host(d_f), a * b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("f_order", [False, True])
def test_embedding_scaled(dtype, f_order):
    """Embedding dropout: rows gathered times their word's scale; the scatter-add's rows times theirs."""
    rng = np.random.default_rng(3)
    V, D, M = 9, 4, 23
    W, dout = rand(rng, (V, D), dtype), rand(rng, (M, D), dtype)
    ids = rng.integers(0, 5, M).astype(np.intp)
    scale = np.where(rng.random(V) > 0.4, 1 / 0.6, 0).astype(dtype)
    out = np.empty((M, D), dtype)
    embedding.embedding_forward_scaled(W, ids, scale, out)
    np.testing.assert_array_equal(out, (W * scale[:, None])[ids])
    dW = np.empty((V, D), dtype)
    embedding.embedding_backward(ids, dout, dW)
    embedding.scale_rows(dW, np.unique(ids), scale)
    want = np.zeros((V, D))
    np.add.at(want, ids, dout.astype(np.float64))
    np.testing.assert_allclose(dW, want * scale[:, None], **tol(dtype))

    d_out = dev_empty((M, D), dtype)
    embedding_cuda.embedding_forward_scaled(dev(W), dev(ids), dev(scale), d_out)
    np.testing.assert_array_equal(host(d_out), out)
    d_dW = dev_f_order((V, D), dtype) if f_order else dev(np.full((V, D), np.nan, dtype))
    embedding_cuda.embedding_backward(dev(ids), dev(dout), d_dW)
    embedding_cuda.scale_rows(d_dW, dev(scale))
    np.testing.assert_allclose(host(d_dW), dW, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,T,H", [(1, 1, 1), (2, 3, 5), (3, 9, 4)])
def test_ar_and_tar_kernels(dtype, N, T, H):
    rng = np.random.default_rng(N + T + H)
    h, dh = rand(rng, (N, T, H), dtype), rand(rng, (N, T, H), dtype)
    diff = np.diff(h.astype(np.float64), axis=1)
    np.testing.assert_allclose(regularisers.temporal_sum_squares(h), np.sum(diff ** 2), rtol=1e-12)
    np.testing.assert_allclose(regularisers_cuda.temporal_sum_squares(dev(h)), np.sum(diff ** 2), rtol=1e-12)
    coef = dtype(0.7)
    want = dh.copy()
    want[:, 1:] += coef * np.diff(h, axis=1)
    want[:, :-1] -= coef * np.diff(h, axis=1)
    got = dh.copy()
    regularisers.add_temporal_gradient(got, h, coef)
    np.testing.assert_allclose(got, want, **tol(dtype))
    d_got = dev(dh)
    regularisers_cuda.add_temporal_gradient(d_got, dev(h), coef)
    np.testing.assert_array_equal(host(d_got), got)
    flat = dh.reshape(-1).copy()
    regularisers.add_scaled(flat, h.reshape(-1), coef)
    np.testing.assert_array_equal(flat, dh.reshape(-1) + coef * h.reshape(-1))
    d_flat = dev(dh.reshape(-1))
    regularisers_cuda.add_scaled(d_flat, dev(h.reshape(-1)), coef)
    np.testing.assert_array_equal(host(d_flat), flat)


# --- optimizer and clipping ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 3, 17, 100])
def test_optim(dtype, n, monkeypatch):
    monkeypatch.setattr(optim_cuda, "MAX_BLOCKS", 4)  # 100 elements: threads stride over the array
    rng = np.random.default_rng(n)
    g = rand(rng, n, dtype)
    p = rand(rng, n, dtype)
    np.testing.assert_allclose(optim_cuda.sum_squares(dev(g)), optim.sum_squares(g), rtol=1e-12)

    total = dev(np.zeros(1))
    optim_cuda.add_sum_squares(dev(g), total)
    optim_cuda.add_sum_squares(dev(p), total)
    np.testing.assert_allclose(host(total)[0], optim.sum_squares(g) + optim.sum_squares(p), rtol=1e-12)

    d_g, d_p = dev(g), dev(p)
    optim_cuda.scale(d_g, 0.3)
    optim.scale(g, dtype(0.3))
    np.testing.assert_allclose(host(d_g), g, **tol(dtype))
    optim_cuda.sgd(d_p, d_g, 20.0)
    optim.sgd(p, g, dtype(20.0))
    np.testing.assert_allclose(host(d_p), p, **tol(dtype))
