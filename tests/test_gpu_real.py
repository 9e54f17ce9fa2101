"""Every CUDA kernel against its CPU twin on a real GPU, at the BetterRnnlm's sizes
(N=20, T=35, D=H=650, V=10000), and both book models built with config.GPU = True against
the same models on the CPU. Opt-in: `NUMBA_ENABLE_CUDASIM=0 pytest -m gpu` (the default run
is on the simulator; scripts/gpu_check.sh runs these).

Errors are compared relative to the largest reference value: GPU sums run in another
order than the CPU's, and the GPU compiler fuses multiply-adds.
"""

import numpy as np
import pytest

from cuda_compositions import affine_cpu, affine_gpu, lstm_cpu, lstm_gpu, softmax_cross_entropy_cpu, train_steps
from fastlstm import config, gpu

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.filterwarnings("ignore:Grid size"),  # the per-step kernels are small by nature
]

N, T, D, H, V = 20, 35, 650, 650, 10000
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module", autouse=True)
def real_gpu():
    if gpu.simulated():
        pytest.skip("numba.cuda is the simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1 unless it is set): "
                    "run NUMBA_ENABLE_CUDASIM=0 pytest -m gpu for the real GPU")
    gpu.require()


@pytest.fixture(params=[True, False], ids=["cublas", "tiled"])
def gemm(request, monkeypatch):
    """Run a test with cuBLAS (when CuPy is installed) and with the tiled GEMM kernel."""
    from fastlstm.kernels import linalg_cuda

    if request.param and linalg_cuda._cupy is None:
        pytest.skip("CuPy is not installed: pip install 'fastlstm[cublas]' to test the cuBLAS path")
    monkeypatch.setattr(linalg_cuda, "USE_CUBLAS", request.param)
    return request.param


def close(got, want, dtype, rel=None):
    rel = rel or (1e-4 if dtype == np.float32 else 1e-12)
    scale = max(float(np.max(np.abs(want))), 1e-30)
    err = float(np.max(np.abs(np.asarray(got, np.float64) - want))) / scale
    assert err <= rel, f"max error {err:.3g} of the largest value, allowed {rel:.3g}"


def rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_tied(dtype, gemm):
    """The output layer with the tied weight: W = embed_W.T as a view, its gradient F-ordered."""
    from numba import cuda

    from fastlstm.kernels.linalg_cuda import transpose_view

    rng = np.random.default_rng(0)
    embed_W = rand(rng, (V, D), dtype, 0.01)
    x, dout, b = rand(rng, (N * T, D), dtype), rand(rng, (N * T, V), dtype, 1e-3), rand(rng, V, dtype)
    want = affine_cpu(x, embed_W.T, b, dout)
    d_dW = transpose_view(cuda.device_array((V, D), dtype))
    got = affine_gpu(x, transpose_view(cuda.to_device(embed_W)), b, dout, d_dW)
    for name in want:
        close(got[name], want[name], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_sequence(dtype, gemm):
    from numba import cuda

    rng = np.random.default_rng(1)
    xs_t = rand(rng, (T, N, D), dtype)
    Wx, Wh = rand(rng, (D, 4 * H), dtype, D ** -0.5), rand(rng, (H, 4 * H), dtype, H ** -0.5)
    b = np.zeros(4 * H, dtype)
    h0, c0 = rand(rng, (N, H), dtype), rand(rng, (N, H), dtype)
    dhs_t = rand(rng, (T, N, H), dtype)
    want = lstm_cpu(xs_t, Wx, Wh, b, h0, c0, dhs_t)
    got = lstm_gpu(xs_t, cuda.to_device(Wx), cuda.to_device(Wh), b, h0, c0, dhs_t)
    for name in want:
        close(got[name], want[name], dtype, rel=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_swap_01(dtype):
    """The batch-major <-> time-major copy around TimeLSTM."""
    from numba import cuda

    from fastlstm.kernels.linalg_cuda import swap_01

    xs = rand(np.random.default_rng(6), (N, T, D), dtype)
    out = cuda.device_array((T, N, D), dtype)
    swap_01(cuda.to_device(xs), out)
    np.testing.assert_array_equal(out.copy_to_host(), xs.transpose(1, 0, 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy(dtype):
    from numba import cuda

    from fastlstm.kernels import softmax_cuda

    rng = np.random.default_rng(2)
    M = N * T
    x = rand(rng, (M, V), dtype, 3.0)
    ts = rng.integers(0, V, M).astype(np.intp)
    ts[::7] = -1
    scale = dtype(1.0 / np.count_nonzero(ts >= 0))
    lse, loss, dx = softmax_cross_entropy_cpu(x, ts, scale)

    d_x, d_ts = cuda.to_device(x), cuda.to_device(ts)
    d_lse, d_loss = cuda.device_array(M, dtype), cuda.device_array(M, np.float64)
    d_dx = cuda.device_array((M, V), dtype)
    softmax_cuda.softmax_cross_entropy_forward(d_x, d_ts, d_lse, d_loss)
    softmax_cuda.softmax_cross_entropy_backward(d_x, d_ts, d_lse, scale, d_dx)
    close(d_lse.copy_to_host(), lse, dtype)
    close(d_loss.copy_to_host(), loss, dtype)
    close(d_dx.copy_to_host(), dx, dtype)
    assert np.all(d_dx.copy_to_host()[ts < 0] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding(dtype):
    """Gather, and the scatter-add with PTB-like repetition (ids drawn from 50 words)."""
    from numba import cuda

    from fastlstm.kernels import embedding, embedding_cuda

    rng = np.random.default_rng(3)
    W = rand(rng, (V, D), dtype)
    ids = rng.integers(0, min(50, V), N * T).astype(np.intp)
    dout = rand(rng, (N * T, D), dtype)
    out, dW = np.empty((N * T, D), dtype), np.empty((V, D), dtype)
    embedding.embedding_forward(W, ids, out)
    embedding.embedding_backward(ids, dout, dW)

    d_ids, d_out, d_dW = cuda.to_device(ids), cuda.device_array((N * T, D), dtype), cuda.device_array((V, D), dtype)
    embedding_cuda.embedding_forward(cuda.to_device(W), d_ids, d_out)
    embedding_cuda.embedding_backward(d_ids, cuda.to_device(dout), d_dW)
    np.testing.assert_array_equal(d_out.copy_to_host(), out)
    close(d_dW.copy_to_host(), dW, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_masks_bit_identical(dtype):
    from numba import cuda

    from fastlstm.kernels import dropout, dropout_cuda

    rng = np.random.default_rng(4)
    K = N * T * H
    x, dout = rand(rng, K, dtype), rand(rng, K, dtype)
    seed = np.uint64(rng.integers(0, 2**63 - 1))
    mask, out, dx = np.empty(K, dtype), np.empty(K, dtype), np.empty(K, dtype)
    dropout.dropout_forward(x, seed, 0.5, 2.0, mask, out)
    dropout.dropout_backward(dout, mask, dx)

    d_mask, d_out, d_dx = (cuda.device_array(K, dtype) for _ in range(3))
    dropout_cuda.dropout_forward(cuda.to_device(x), seed, 0.5, 2.0, d_mask, d_out)
    dropout_cuda.dropout_backward(cuda.to_device(dout), d_mask, d_dx)
    np.testing.assert_array_equal(d_mask.copy_to_host(), mask)
    np.testing.assert_array_equal(d_out.copy_to_host(), out)
    np.testing.assert_array_equal(d_dx.copy_to_host(), dx)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_and_sgd(dtype):
    from numba import cuda

    from fastlstm.kernels import optim, optim_cuda

    rng = np.random.default_rng(5)
    g, p = rand(rng, V * D, dtype), rand(rng, V * D, dtype)
    np.testing.assert_allclose(optim_cuda.sum_squares(cuda.to_device(g)), optim.sum_squares(g), rtol=1e-12)
    d_g, d_p = cuda.to_device(g), cuda.to_device(p)
    optim_cuda.scale(d_g, 0.25)
    optim.scale(g, dtype(0.25))
    optim_cuda.sgd(d_p, d_g, 20.0)
    optim.sgd(p, g, dtype(20.0))
    close(d_g.copy_to_host(), g, dtype)
    close(d_p.copy_to_host(), p, dtype, rel=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("name", ["Rnnlm", "BetterRnnlm"])
def test_models_through_the_layers_match_the_cpu(name, monkeypatch):
    """Two training steps and an evaluation of each book model (float64, the BetterRnnlm at
    D=H=650) built with config.GPU = True, against the same model on the CPU: same weights,
    same dropout masks, so the same losses and weights up to rounding."""
    from fastlstm import models
    from fastlstm.util import eval_perplexity

    cls = getattr(models, name)
    hidden = 100 if name == "Rnnlm" else D
    built = []
    for on_gpu in (False, True):
        monkeypatch.setattr(config, "GPU", on_gpu)
        np.random.seed(0)
        built.append(cls(vocab_size=V, wordvec_size=hidden, hidden_size=hidden, dtype=np.float64))
    cpu_model, gpu_model = built
    assert all(gpu.is_device_array(p) for p in gpu_model.params)
    corpus = np.random.default_rng(7).integers(0, V, 3 * N * T)
    want, got = (train_steps(m, corpus, 2, N, T) for m in built)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    for p, w in zip(gpu_model.params, cpu_model.params):
        close(gpu.to_host(p), w, np.float64, rel=1e-9)
    want, got = (eval_perplexity(m, corpus, batch_size=10, time_size=T) for m in built)
    assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["TimeRNN", "TimeGRU", "TimeBiLSTM"])
def test_rnn_gru_and_bilstm_match_the_cpu(name, dtype, gemm, monkeypatch):
    """Two stateful calls of each layer built with config.GPU = True, at N=20, T=35, D=H=650,
    against the same layer on the CPU: outputs, input gradients, dh and every gradient."""
    from fastlstm import time_layers

    rng = np.random.default_rng(8)
    gates = {"TimeRNN": [1], "TimeGRU": [3], "TimeBiLSTM": [4, 4]}[name]
    weights = []
    for g in gates:
        weights += [rand(rng, (D, g * H), dtype, D ** -0.5), rand(rng, (H, g * H), dtype, H ** -0.5)]
        weights += [] if g == 3 else [rand(rng, g * H, dtype, 0.1)]
    cls = getattr(time_layers, name)
    built = []
    for on_gpu in (False, True):
        monkeypatch.setattr(config, "GPU", on_gpu)
        built.append(cls(*weights, stateful=True))
    cpu_layer, gpu_layer = built
    width = H * len(gates)
    for _ in range(2):  # the second call starts from the state the first left
        xs, dhs = rand(rng, (N, T, D), dtype), rand(rng, (N, T, width), dtype)
        close(gpu.to_host(gpu_layer.forward(xs)), cpu_layer.forward(xs), dtype)
        close(gpu.to_host(gpu_layer.backward(dhs)), cpu_layer.backward(dhs), dtype)
        if name != "TimeBiLSTM":
            close(gpu.to_host(gpu_layer.dh), cpu_layer.dh, dtype)
        for g, want in zip(gpu_layer.grads, cpu_layer.grads, strict=True):
            close(gpu.to_host(g), want, dtype)
