"""The time layers on the CUDA backend against the same layers on the CPU, their choice of
backend, and the two book models trained on the GPU against the same models on the CPU, on
Numba's CUDA simulator with tiny blocks (cuda_sim.py). Shapes are tiny and odd; float64
compares tightly.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from cuda_sim import DTYPES, NOT_SIMULATED, host, quick_simulator, rand, tiny_blocks, tol  # noqa: F401  (fixtures)
from fastlstm import gpu

if not gpu.simulated():
    pytest.skip(NOT_SIMULATED, allow_module_level=True)

from numba import cuda  # noqa: E402  (numba-cuda may be missing: imported after the skip)

from cuda_compositions import train_steps  # noqa: E402
from fastlstm import backends, config, time_layers  # noqa: E402
from fastlstm.models import AwdRnnlm, BetterRnnlm, Rnnlm, VariationalRnnlm  # noqa: E402
from fastlstm.optimizer import SGD, Adam  # noqa: E402
from fastlstm.util import clip_grads, eval_perplexity, remove_duplicate  # noqa: E402

pytestmark = pytest.mark.usefixtures("tiny_blocks")

N, T, D, H, V = 2, 2, 5, 3, 7
TIME_LAYERS = (time_layers.TimeEmbedding, time_layers.TimeAffine, time_layers.TimeSoftmaxWithLoss,
               time_layers.TimeDropout, time_layers.TimeLSTM)


def same(got, want, dtype):
    np.testing.assert_allclose(host(got), want, **tol(dtype))


def on_gpu(cls, *args, **kwargs):
    """cls(*args, **kwargs) built with config.GPU = True: the layer on the CUDA backend."""
    saved, config.GPU = config.GPU, True
    try:
        layer = cls(*args, **kwargs)
    finally:
        config.GPU = saved
    assert type(layer) is cls and layer._backend is backends.CUDA
    return layer


@pytest.fixture
def gpu_flag(monkeypatch):
    """config.GPU = True for one test."""
    monkeypatch.setattr(config, "GPU", True)


# --- selection ------------------------------------------------------------------------------

def test_time_layers_select_the_gpu_by_weights_or_config(monkeypatch):
    rng = np.random.default_rng(0)
    W, b = rand(rng, (D, V), np.float64), rand(rng, V, np.float64)
    Wx, Wh, bl = rand(rng, (D, 4 * H), np.float64), rand(rng, (H, 4 * H), np.float64), np.zeros(4 * H)
    cpu_layers = [time_layers.TimeEmbedding(W), time_layers.TimeAffine(W, b), time_layers.TimeSoftmaxWithLoss(),
                  time_layers.TimeDropout(0.3), time_layers.TimeLSTM(Wx, Wh, bl, stateful=True)]
    assert not backends.wants_gpu(W, 0.5)
    assert tuple(type(layer) for layer in cpu_layers) == TIME_LAYERS
    assert all(layer._backend is backends.CPU for layer in cpu_layers)
    assert cpu_layers[0].params[0] is W

    d_W = cuda.to_device(W)
    assert backends.wants_gpu(W, d_W)
    by_weights = [time_layers.TimeEmbedding(W=d_W), time_layers.TimeAffine(d_W, b),
                  time_layers.TimeLSTM(cuda.to_device(Wx), Wh, bl, stateful=True)]
    assert [type(layer) for layer in by_weights] == [time_layers.TimeEmbedding, time_layers.TimeAffine,
                                                     time_layers.TimeLSTM]
    assert all(layer._backend is backends.CUDA for layer in by_weights)
    assert by_weights[0].params[0] is d_W and by_weights[1].params[0] is d_W  # device arrays: the very arrays
    assert gpu.is_device_array(by_weights[1].params[1]) and by_weights[2].stateful

    monkeypatch.setattr(config, "GPU", True)
    layers = [time_layers.TimeEmbedding(W), time_layers.TimeAffine(W, b), time_layers.TimeSoftmaxWithLoss(),
              time_layers.TimeDropout(0.3), time_layers.TimeLSTM(Wx, Wh, bl, stateful=True)]
    assert tuple(type(layer) for layer in layers) == TIME_LAYERS
    assert all(layer._backend is backends.CUDA for layer in layers)
    assert layers[3].dropout_ratio == 0.3 and layers[4].stateful and layers[2].ignore_label == -1
    for layer in layers:
        assert all(gpu.is_device_array(a) for a in layer.params + layer.grads)
    # host weights are copied once: the same host array is the same device array
    assert layers[1].params[0] is layers[0].params[0]
    np.testing.assert_array_equal(host(layers[1].params[1]), b)


def test_tied_host_weights_stay_tied(gpu_flag):
    """The book's `TimeAffine(embed_W.T, b)` after `TimeEmbedding(embed_W)`, in either order:
    the affine weight is a transposed view of the embedding's device memory."""
    rng = np.random.default_rng(1)
    for affine_first in (False, True):
        W = rand(rng, (V, D), np.float32)
        if affine_first:
            affine = time_layers.TimeAffine(W.T, np.zeros(V, np.float32))
            embed = time_layers.TimeEmbedding(W)
        else:
            embed = time_layers.TimeEmbedding(W)
            affine = time_layers.TimeAffine(W.T, np.zeros(V, np.float32))
        E, A = embed.params[0], affine.params[0]
        assert A.shape == (D, V) and gpu.address(A) == gpu.address(E) and A.strides == E.strides[::-1]
        assert affine.grads[0].strides == embed.grads[0].strides[::-1]  # grads laid out like their params
        np.testing.assert_array_equal(host(A), W.T)


def test_host_weights_are_copied_only_for_the_gpu():
    W = np.ones((V, D))
    layer = on_gpu(time_layers.TimeEmbedding, W)  # asked for with config.GPU: copies
    assert gpu.is_device_array(layer.params[0])
    cpu_layer = time_layers.TimeEmbedding(W)
    assert cpu_layer._backend is backends.CPU and cpu_layer.params[0] is W


# --- layers against their CPU twins -------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding(dtype):
    rng = np.random.default_rng(2)
    W = rand(rng, (V, D), dtype)
    ids = rng.integers(0, 3, (N, T)).astype(np.int32)  # repeated ids: the scatter-add adds them up
    dout = rand(rng, (N, T, D), dtype)
    cpu, gpu_layer = time_layers.TimeEmbedding(W), on_gpu(time_layers.TimeEmbedding, W)
    want = cpu.forward(ids)
    got = gpu_layer.forward(cuda.to_device(ids))
    np.testing.assert_array_equal(host(got), want)
    assert got.dtype == dtype
    assert cpu.backward(dout) is None and gpu_layer.backward(cuda.to_device(dout)) is None
    same(gpu_layer.grads[0], cpu.grads[0], dtype)
    np.testing.assert_array_equal(host(gpu_layer.infer(ids)), cpu.infer(ids))
    assert gpu_layer.idx is None
    for bad in (np.array([[0, V]]), cuda.to_device(np.array([[-1, 0]]))):
        with pytest.raises(IndexError, match="token ids holds token id"):
            gpu_layer.forward(bad)
    with pytest.raises(ValueError, match="2-D"):
        gpu_layer.forward(np.zeros(3, np.int64))
    with pytest.raises(RuntimeError, match="before forward"):
        on_gpu(time_layers.TimeEmbedding, W).backward(dout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tied", [False, True])
def test_affine(dtype, tied):
    rng = np.random.default_rng(3)
    W = rand(rng, (V, D), dtype).T if tied else rand(rng, (D, V), dtype)
    b = rand(rng, V, dtype)
    x, dout = rand(rng, (N, T, D), dtype), rand(rng, (N, T, V), dtype)
    cpu, gpu_layer = time_layers.TimeAffine(W, b), on_gpu(time_layers.TimeAffine, W, b)
    assert gpu_layer.params[0].is_f_contiguous() == tied
    same(gpu_layer.forward(x), cpu.forward(x), dtype)
    same(gpu_layer.backward(cuda.to_device(dout)), cpu.backward(dout), dtype)
    for g, want in zip(gpu_layer.grads, cpu.grads):
        same(g, want, dtype)
    same(gpu_layer.infer(cuda.to_device(x)), cpu.infer(x), dtype)
    with pytest.raises(ValueError, match="width"):
        gpu_layer.forward(np.zeros((N, T, D + 1), dtype))
    with pytest.raises(TypeError, match="device array"):
        gpu_layer.forward(cuda.to_device(x.astype(np.float16)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_with_loss(dtype):
    rng = np.random.default_rng(4)
    x = rand(rng, (N, T, V), dtype, 3.0)
    ts = rng.integers(0, V, (N, T))
    ts[0, 1] = ts[1, 0] = -1  # ignore_label
    cpu, gpu_layer = time_layers.TimeSoftmaxWithLoss(), on_gpu(time_layers.TimeSoftmaxWithLoss)
    want = cpu.forward(x, ts)
    got = gpu_layer.forward(cuda.to_device(x), cuda.to_device(ts))
    np.testing.assert_allclose(got, want, **tol(dtype))
    same(gpu_layer.backward(2.0), cpu.backward(2.0), dtype)
    np.testing.assert_allclose(gpu_layer.infer(x, ts), cpu.infer(x, ts), **tol(dtype))
    onehot = np.eye(V)[np.maximum(ts, 0)]
    np.testing.assert_allclose(gpu_layer.forward(x, onehot), cpu.forward(x, onehot), **tol(dtype))
    with pytest.raises(ValueError, match="every target equals ignore_label"):
        gpu_layer.forward(x, np.full((N, T), -1))
    with pytest.raises(IndexError, match="targets holds token id"):
        gpu_layer.forward(x, np.full((N, T), V))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_masks_match_the_cpu(dtype):
    rng = np.random.default_rng(5)
    x, dout = rand(rng, (N, T, H), dtype), rand(rng, (N, T, H), dtype)
    cpu, gpu_layer = time_layers.TimeDropout(0.4), on_gpu(time_layers.TimeDropout, 0.4)
    np.random.seed(7)
    want = cpu.forward(x)
    np.random.seed(7)
    got = gpu_layer.forward(cuda.to_device(x))
    np.testing.assert_array_equal(host(got), want)
    np.testing.assert_array_equal(host(gpu_layer.mask), cpu.mask)
    np.testing.assert_array_equal(host(gpu_layer.backward(dout)), cpu.backward(dout))
    d_x = cuda.to_device(x)
    gpu_layer.train_flg = False
    assert gpu_layer.forward(d_x) is d_x and gpu_layer.mask is None and gpu_layer.backward(d_x) is d_x
    assert gpu_layer.infer(d_x) is d_x


@pytest.mark.parametrize("dtype,stateful", [(np.float32, True), (np.float64, True), (np.float64, False)])
def test_lstm(dtype, stateful):
    """Two calls in a row (the state carries over when stateful), then set_state and reset_state."""
    rng = np.random.default_rng(6)
    Wx, Wh, b = rand(rng, (D, 4 * H), dtype, 0.5), rand(rng, (H, 4 * H), dtype, 0.5), rand(rng, 4 * H, dtype)
    cpu, gpu_layer = time_layers.TimeLSTM(Wx, Wh, b, stateful), on_gpu(time_layers.TimeLSTM, Wx, Wh, b, stateful)
    for _ in range(2):
        xs, dhs = rand(rng, (N, T, D), dtype), rand(rng, (N, T, H), dtype)
        same(gpu_layer.forward(xs), cpu.forward(xs), dtype)
        same(gpu_layer.h, cpu.h, dtype)
        same(gpu_layer.c, cpu.c, dtype)
        same(gpu_layer.backward(cuda.to_device(dhs)), cpu.backward(dhs), dtype)
        same(gpu_layer.dh, cpu.dh, dtype)
        for g, want in zip(gpu_layer.grads, cpu.grads):
            same(g, want, dtype)
    h0, c0 = rand(rng, (N, H), dtype), rand(rng, (N, H), dtype)
    cpu.set_state(h0, c0)
    gpu_layer.set_state(cuda.to_device(h0), c0)  # device or host states
    xs = rand(rng, (N, T, D), dtype)
    same(gpu_layer.infer(xs), cpu.infer(xs), dtype)
    same(gpu_layer.h, cpu.h, dtype)
    cpu.reset_state()
    gpu_layer.reset_state()
    assert gpu_layer.h is None and gpu_layer.c is None
    same(gpu_layer.forward(xs), cpu.forward(xs), dtype)
    if stateful:
        gpu_layer.set_state(np.zeros((N + 1, H), dtype), None)
        with pytest.raises(ValueError, match="call reset_state"):
            gpu_layer.forward(xs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", [time_layers.TimeLSTM, time_layers.TimeRNN, time_layers.TimeGRU])
def test_recurrent_layers_draw_the_cpus_masks(cls, dtype):
    """Recurrent dropout and weight drop in each cell: the masks bit-identical to the CPU's
    for the same seed, the results as the CPU's, none drawn without train_flg."""
    rng = np.random.default_rng(12)
    gates = {time_layers.TimeLSTM: 4, time_layers.TimeRNN: 1, time_layers.TimeGRU: 3}[cls]
    weights = [rand(rng, (D, gates * H), dtype, 0.5), rand(rng, (H, gates * H), dtype, 0.5)]
    weights += [] if cls is time_layers.TimeGRU else [rand(rng, gates * H, dtype)]
    options = dict(stateful=True, recurrent_dropout=0.4, weight_drop=0.3)
    cpu, gpu_layer = cls(*weights, **options), on_gpu(cls, *weights, **options)
    for _ in range(2):
        xs, dhs = rand(rng, (N, T, D), dtype), rand(rng, (N, T, H), dtype)
        np.random.seed(3)
        want = cpu.forward(xs)
        np.random.seed(3)
        same(gpu_layer.forward(xs), want, dtype)
        assert 0 < np.count_nonzero(cpu.h_mask) < cpu.h_mask.size
        np.testing.assert_array_equal(host(gpu_layer.h_mask), cpu.h_mask)
        np.testing.assert_array_equal(host(gpu_layer.weight_mask), cpu.weight_mask)
        same(gpu_layer.backward(cuda.to_device(dhs)), cpu.backward(dhs), dtype)
        same(gpu_layer.dh, cpu.dh, dtype)
        for g, w in zip(gpu_layer.grads, cpu.grads, strict=True):
            same(g, w, dtype)
    gpu_layer.train_flg = False
    gpu_layer.forward(xs)
    assert gpu_layer.h_mask is None and gpu_layer.weight_mask is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_and_locked_dropout_draw_the_cpus_masks(dtype):
    """Embedding dropout and locked dropout: the masks bit-identical to the CPU's for the same
    seed, the results as the CPU's."""
    rng = np.random.default_rng(12)
    W = rand(rng, (V, D), dtype)
    ids = rng.integers(0, 4, (N, T))
    cpu, gpu_layer = time_layers.TimeEmbedding(W, dropout=0.5), on_gpu(time_layers.TimeEmbedding, W, dropout=0.5)
    np.random.seed(4)
    want = cpu.forward(ids)
    np.random.seed(4)
    np.testing.assert_array_equal(host(gpu_layer.forward(ids)), want)
    np.testing.assert_array_equal(host(gpu_layer.word_mask), cpu.word_mask)
    dout = rand(rng, (N, T, D), dtype)
    cpu.backward(dout)
    gpu_layer.backward(cuda.to_device(dout))
    same(gpu_layer.grads[0], cpu.grads[0], dtype)

    cpu, gpu_layer = time_layers.TimeDropout(0.4, locked=True), on_gpu(time_layers.TimeDropout, 0.4, locked=True)
    x = rand(rng, (N, T, H), dtype)
    np.random.seed(5)
    want = cpu.forward(x)
    np.random.seed(5)
    np.testing.assert_array_equal(host(gpu_layer.forward(cuda.to_device(x))), want)
    np.testing.assert_array_equal(host(gpu_layer.mask), cpu.mask)
    np.testing.assert_array_equal(host(gpu_layer.backward(x)), cpu.backward(x))


def test_lstm_refuses_bad_weights(gpu_flag):
    with pytest.raises(ValueError, match=r"Wh must have shape \(H, 4H\)"):
        time_layers.TimeLSTM(np.zeros((D, 4 * H)), np.zeros((H, 3 * H)), np.zeros(4 * H))
    with pytest.raises(TypeError, match="share one dtype"):
        time_layers.TimeLSTM(np.zeros((D, 4 * H)), np.zeros((H, 4 * H), np.float32), np.zeros(4 * H))


@pytest.mark.parametrize("cls,dtype", [(time_layers.TimeRNN, np.float32), (time_layers.TimeRNN, np.float64),
                                       (time_layers.TimeGRU, np.float32), (time_layers.TimeGRU, np.float64)])
def test_rnn_and_gru(cls, dtype):
    """Two stateful calls in a row, then set_state with a device array, infer and reset_state."""
    rng = np.random.default_rng(7)
    gates = 1 if cls is time_layers.TimeRNN else 3
    weights = [rand(rng, (D, gates * H), dtype, 0.5), rand(rng, (H, gates * H), dtype, 0.5)]
    weights += [rand(rng, H, dtype)] if gates == 1 else []
    cpu, gpu_layer = cls(*weights, stateful=True), on_gpu(cls, *weights, True)
    for _ in range(2):
        xs, dhs = rand(rng, (N, T, D), dtype), rand(rng, (N, T, H), dtype)
        same(gpu_layer.forward(xs), cpu.forward(xs), dtype)
        same(gpu_layer.h, cpu.h, dtype)
        same(gpu_layer.backward(cuda.to_device(dhs)), cpu.backward(dhs), dtype)
        same(gpu_layer.dh, cpu.dh, dtype)
        for g, want in zip(gpu_layer.grads, cpu.grads, strict=True):
            same(g, want, dtype)
    h0 = rand(rng, (N, H), dtype)
    cpu.set_state(h0)
    gpu_layer.set_state(cuda.to_device(h0))
    same(gpu_layer.infer(xs), cpu.infer(xs), dtype)
    same(gpu_layer.h, cpu.h, dtype)
    cpu.reset_state()
    gpu_layer.reset_state()
    assert gpu_layer.h is None
    same(gpu_layer.forward(xs), cpu.forward(xs), dtype)


def test_bilstm():
    rng = np.random.default_rng(8)
    weights = [rand(rng, shape, np.float64, 0.5) for shape in [(D, 4 * H), (H, 4 * H), (4 * H,)] * 2]
    cpu, gpu_layer = time_layers.TimeBiLSTM(*weights), on_gpu(time_layers.TimeBiLSTM, *weights)
    assert gpu_layer.forward_lstm._backend is gpu_layer.backward_lstm._backend is backends.CUDA
    xs, dhs = rand(rng, (N, T, D), np.float64), rand(rng, (N, T, 2 * H), np.float64)
    same(gpu_layer.forward(xs), cpu.forward(xs), np.float64)
    same(gpu_layer.backward(cuda.to_device(dhs)), cpu.backward(dhs), np.float64)
    for g, want in zip(gpu_layer.grads, cpu.grads, strict=True):
        same(g, want, np.float64)
    same(gpu_layer.infer(xs), cpu.infer(xs), np.float64)


# --- clipping, weight tying and the optimizers on device arrays --------------------------------

def test_util_and_sgd_on_device_arrays():
    rng = np.random.default_rng(8)
    E = rand(rng, (V, D), np.float64)
    b = rand(rng, V, np.float64)
    params = [E, E.T, b, b]
    grads = [rand(rng, p.shape, np.float64) for p in params]
    grads[1] = np.asfortranarray(grads[1])  # laid out like its param, as zeros_like makes it
    d_E = cuda.to_device(E)
    d_b = cuda.to_device(b)
    d_params = [d_E, gpu.transpose(d_E), d_b, d_b]
    d_grads = [cuda.to_device(grads[0]), gpu.transpose(cuda.to_device(np.ascontiguousarray(grads[1].T))),
               cuda.to_device(grads[2]), cuda.to_device(grads[3])]
    want_p, want_g = remove_duplicate(params, grads)
    got_p, got_g = remove_duplicate(d_params, d_grads)
    assert len(got_p) == len(want_p) == 2 and got_p[0] is d_E and got_p[1] is d_b
    for g, want in zip(got_g, want_g):
        same(g, want, np.float64)
    assert clip_grads(got_g, 0.25) == pytest.approx(clip_grads(want_g, 0.25), rel=1e-12)
    SGD(20.0).update(got_p, got_g)
    SGD(20.0).update(want_p, want_g)
    same(d_E, E, np.float64)
    same(d_b, b, np.float64)
    with pytest.raises(TypeError, match="mixes NumPy arrays and GPU device arrays"):
        clip_grads([grads[0], d_grads[0]], 1.0)
    with pytest.raises(NotImplementedError, match="SGD"):
        Adam().update(got_p, got_g)


# --- the book's models, trained on the GPU and on the CPU ---------------------------------------

def build(cls, gpu_on, monkeypatch, **sizes):
    monkeypatch.setattr(config, "GPU", gpu_on)
    np.random.seed(0)
    return cls(**sizes)


# Tiny: the simulator runs every GPU thread as a Python thread.
MODELS = [(Rnnlm, dict(vocab_size=20, wordvec_size=4, hidden_size=4, dtype=np.float64)),
          (BetterRnnlm, dict(vocab_size=20, wordvec_size=4, hidden_size=4, dtype=np.float64)),
          (VariationalRnnlm, dict(vocab_size=20, wordvec_size=4, hidden_size=4, weight_drop=0.3, alpha=2.0, beta=1.0,
                                  dtype=np.float64)),
          (AwdRnnlm, dict(vocab_size=20, wordvec_size=4, hidden_size=5, dtype=np.float64))]


@pytest.mark.parametrize("cls,sizes", MODELS, ids=["Rnnlm", "BetterRnnlm", "VariationalRnnlm", "AwdRnnlm"])
def test_models_train_and_evaluate_as_on_the_cpu(cls, sizes, monkeypatch, tmp_path, quick_simulator):
    corpus = np.random.default_rng(9).integers(0, sizes["vocab_size"], 14)  # 2 batches to evaluate
    cpu_model = build(cls, False, monkeypatch, **sizes)
    gpu_model = build(cls, True, monkeypatch, **sizes)
    assert all(gpu.is_device_array(p) for p in gpu_model.params)
    monkeypatch.setattr(config, "GPU", False)  # the models were built; training needs no switch
    want, got = (train_steps(m, corpus, 3, batch_size=2, time_size=3) for m in (cpu_model, gpu_model))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    for p, w in zip(gpu_model.params, cpu_model.params):
        np.testing.assert_allclose(host(p), w, rtol=1e-9, atol=1e-12)
    ppl = [eval_perplexity(m, corpus, batch_size=2, time_size=3) for m in (cpu_model, gpu_model)]
    assert ppl[1] == pytest.approx(ppl[0], rel=1e-10)

    # saved from the GPU, loaded on the CPU, and the other way round: the book's float16 pickles
    gpu_model.save_params(tmp_path / "gpu.pkl")
    cpu_model.save_params(tmp_path / "cpu.pkl")
    cpu_loaded, gpu_loaded = build(cls, False, monkeypatch, **sizes), build(cls, True, monkeypatch, **sizes)
    cpu_loaded.load_params(tmp_path / "gpu.pkl")
    gpu_loaded.load_params(tmp_path / "cpu.pkl")
    for c, g, c2, g2 in zip(cpu_model.params, gpu_model.params, cpu_loaded.params, gpu_loaded.params):
        np.testing.assert_array_equal(c2, host(g).astype(np.float16))
        np.testing.assert_array_equal(host(g2), c.astype(np.float16))
    if cls is not Rnnlm:  # still tied after loading
        assert gpu.address(gpu_loaded.params[0]) == gpu.address(gpu_loaded.params[-2])


def test_the_books_own_model_file_runs_tied_on_the_gpu(monkeypatch, quick_simulator):
    """tests/book_ch06/better_rnnlm.py, with config.GPU as the book's script sets it: weight
    tying survives the copy to the GPU, and training follows the CPU run (float32)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "book_ch06"))
    monkeypatch.delitem(sys.modules, "better_rnnlm", raising=False)
    from better_rnnlm import BetterRnnlm as BookBetterRnnlm

    sizes = dict(vocab_size=20, wordvec_size=4, hidden_size=4)
    corpus = np.random.default_rng(10).integers(0, 20, 20)
    cpu_model = build(BookBetterRnnlm, False, monkeypatch, **sizes)
    gpu_model = build(BookBetterRnnlm, True, monkeypatch, **sizes)
    assert len(remove_duplicate(gpu_model.params, gpu_model.grads)[0]) == len(gpu_model.params) - 1
    want, got = (train_steps(m, corpus, 2, batch_size=2, time_size=3) for m in (cpu_model, gpu_model))
    np.testing.assert_allclose(got, want, rtol=2e-5)
