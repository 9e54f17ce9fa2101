"""The backend seam (fastlstm.backends) on both backends, the CUDA one on Numba's CUDA
simulator: the two offer the same functions; a time layer keeps its class, runs __init__
once and holds the backend that config.GPU asked for; a user's subclass keeps its type and
its overrides; layers and models survive copy.deepcopy and pickle and compute as before."""

import copy
import pickle

import numpy as np
import pytest

from cuda_sim import NOT_SIMULATED, quick_simulator, tiny_blocks  # noqa: F401  (fixtures)
from fastlstm import backends, config, gpu, time_layers
from fastlstm.backends import cpu, cuda
from fastlstm.models import BetterRnnlm, Rnnlm
from fastlstm.optimizer import SGD
from fastlstm.trainer import stateful_batch
from fastlstm.util import clip_grads, remove_duplicate

N, T, D, H, V = 2, 3, 4, 3, 9
LAYERS = ["TimeEmbedding", "TimeAffine", "TimeSoftmaxWithLoss", "TimeDropout", "TimeLSTM", "TimeRNN", "TimeGRU",
          "TimeBiLSTM"]
FLAG = [pytest.param(False, id="cpu"),
        pytest.param(True, id="cuda", marks=pytest.mark.skipif(not gpu.simulated(), reason=NOT_SIMULATED))]


@pytest.fixture
def flag(request, monkeypatch):
    """config.GPU for one test, as parametrized (FLAG); on, the simulator runs with tiny blocks."""
    if request.param:
        request.getfixturevalue("tiny_blocks")
    monkeypatch.setattr(config, "GPU", request.param)
    return request.param


def build(name):
    """A time layer of kind `name` with fixed float64 weights, and the arguments of its forward."""
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape)

    xs, ids = r(N, T, D), rng.integers(0, V, (N, T))
    return {
        "TimeEmbedding": lambda: (time_layers.TimeEmbedding(r(V, D)), (ids,)),
        "TimeAffine": lambda: (time_layers.TimeAffine(r(D, V), r(V)), (xs,)),
        "TimeSoftmaxWithLoss": lambda: (time_layers.TimeSoftmaxWithLoss(), (r(N, T, V), ids)),
        "TimeDropout": lambda: (time_layers.TimeDropout(0.4), (xs,)),
        "TimeLSTM": lambda: (time_layers.TimeLSTM(r(D, 4 * H), r(H, 4 * H), r(4 * H), stateful=True), (xs,)),
        "TimeRNN": lambda: (time_layers.TimeRNN(r(D, H), r(H, H), r(H), stateful=True), (xs,)),
        "TimeGRU": lambda: (time_layers.TimeGRU(r(D, 3 * H), r(H, 3 * H), stateful=True), (xs,)),
        "TimeBiLSTM": lambda: (time_layers.TimeBiLSTM(*(r(*s) for s in [(D, 4 * H), (H, 4 * H), (4 * H,)] * 2),
                                                      stateful=True), (xs,)),
    }[name]()


def step(layer, args):
    """Host copies of a forward's output, the backward's result and the grads after them."""
    np.random.seed(4)  # the dropout masks
    out = layer.forward(*args)
    if isinstance(layer, time_layers.TimeSoftmaxWithLoss):
        dx = layer.backward()
    else:
        dx = layer.backward(gpu.to_host(out) * 0.5)
    return [gpu.to_host(a) for a in [out, dx] + layer.grads if a is not None]


def test_both_backends_offer_the_same_functions():
    assert cpu.__all__ == cuda.__all__
    for module in (cpu, cuda):
        assert all(callable(getattr(module, name)) for name in module.__all__)
    assert backends.CPU.lstm_forward is cpu.lstm_forward and backends.CUDA.lstm_forward is cuda.lstm_forward


def test_a_backend_is_copied_and_pickled_as_itself():
    for backend in (backends.CPU, backends.CUDA):
        assert backends.get(backend.name) is backend
        assert copy.deepcopy(backend) is backend and pickle.loads(pickle.dumps(backend)) is backend


@pytest.mark.parametrize("flag", FLAG, indirect=True)
@pytest.mark.parametrize("name", LAYERS)
def test_a_layer_keeps_its_class_and_runs_init_once(flag, name, monkeypatch):
    cls = getattr(time_layers, name)
    original, calls = cls.__init__, []

    def counted(self, *args, **kwargs):
        calls.append(type(self))
        original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", counted)
    layer, _ = build(name)
    assert calls == [cls] and type(layer) is cls
    assert layer._backend is (backends.CUDA if flag else backends.CPU)
    assert all(gpu.is_device_array(a) == flag for a in layer.params + layer.grads)


class MyLSTM(time_layers.TimeLSTM):
    """A user's LSTM: counts its forward calls and doubles its outputs' gradients."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.forwards = 0

    def forward(self, xs):
        self.forwards += 1
        return super().forward(xs)

    def backward(self, dhs):
        return super().backward(gpu.to_host(dhs) * 2)


@pytest.mark.parametrize("flag", FLAG, indirect=True)
def test_a_subclass_keeps_its_type_and_its_overrides(flag):
    rng = np.random.default_rng(1)
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    mine, plain = MyLSTM(Wx, Wh, b), time_layers.TimeLSTM(Wx, Wh, b)
    assert type(mine) is MyLSTM and mine._backend is plain._backend is (backends.CUDA if flag else backends.CPU)
    xs, dhs = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, H))
    np.testing.assert_array_equal(gpu.to_host(mine.forward(xs)), gpu.to_host(plain.forward(xs)))
    assert mine.forwards == 1
    np.testing.assert_allclose(gpu.to_host(mine.backward(dhs)), gpu.to_host(plain.backward(2 * dhs)), rtol=1e-13)
    clone = copy.deepcopy(mine)
    assert type(clone) is MyLSTM and clone.forwards == 1


@pytest.mark.parametrize("flag", FLAG, indirect=True)
@pytest.mark.parametrize("name", LAYERS)
def test_a_layer_survives_deepcopy_and_pickle(flag, name):
    layer, args = build(name)
    step(layer, args)  # state, caches and masks to copy
    clones = [copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))]
    shallow = copy.copy(layer)
    assert all(a is b for a, b in zip(shallow.params + shallow.grads, layer.params + layer.grads))
    for clone in clones:
        assert type(clone) is type(layer) and clone._backend is layer._backend
        for a, b in zip(clone.params + clone.grads, layer.params + layer.grads):
            assert a is not b and gpu.is_device_array(a) == flag
            np.testing.assert_array_equal(gpu.to_host(a), gpu.to_host(b))
    want = step(layer, args)  # the LSTM starts from the state it carried over
    for clone in clones:
        for got, expected in zip(step(clone, args), want, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


def model_step(model, corpus):
    """A training step on the model, and the loss of the next batch after it."""
    xs, ts = stateful_batch(corpus[:-1], corpus[1:], 2, 3, 0)
    np.random.seed(6)
    model.forward(xs, ts)
    model.backward()
    params, grads = remove_duplicate(model.params, model.grads)
    clip_grads(grads, 0.25)
    SGD(1.0).update(params, grads)
    xs, ts = stateful_batch(corpus[:-1], corpus[1:], 2, 3, 3)
    return float(model.forward(xs, ts))


@pytest.mark.parametrize("flag", FLAG, indirect=True)
@pytest.mark.parametrize("cls", [Rnnlm, BetterRnnlm])
def test_a_model_survives_deepcopy_and_pickle(flag, cls, request):
    if flag:
        request.getfixturevalue("quick_simulator")
    np.random.seed(0)
    model = cls(vocab_size=V, wordvec_size=4, hidden_size=4, dtype=np.float64)
    corpus = np.random.default_rng(2).integers(0, V, 20)
    model_step(model, corpus)  # states and caches to copy
    clones = [copy.deepcopy(model), pickle.loads(pickle.dumps(model))]
    for clone in clones:
        assert type(clone) is cls
        layer_params = [p for layer in clone.layers for p in layer.params]
        layer_grads = [g for layer in clone.layers for g in layer.grads]
        # the model's lists still hold its layers' arrays, so that an update reaches the layers
        assert all(a is b for a, b in zip(clone.params + clone.grads, layer_params + layer_grads, strict=True))
        assert not any(a is b for a, b in zip(clone.params, model.params))
        assert all(gpu.is_device_array(p) == flag for p in clone.params)
        if cls is BetterRnnlm:  # the output weight is still a view of the embedding's
            W, W_T = clone.params[0], clone.params[-2]
            assert gpu.address(W) == gpu.address(W_T) and W_T.strides == W.strides[::-1]
    want = model_step(model, corpus)
    for clone in clones:
        assert model_step(clone, corpus) == pytest.approx(want, rel=1e-12)
        for got, expected in zip(clone.params, model.params):
            np.testing.assert_allclose(gpu.to_host(got), gpu.to_host(expected), rtol=1e-12, atol=1e-15)
