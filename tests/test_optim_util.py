"""Optimizers, gradient clipping, eval_perplexity and remove_duplicate against transcriptions of the book's code."""

import pickle
import subprocess
import sys

import numba
import numpy as np
import pytest

from fastlstm import gpu
from fastlstm import optimizer as opt
from fastlstm import util
from fastlstm.kernels import optim as k
from fastlstm.reference.training import SGD as BookSGD, Adam as BookAdam, clip_grads as book_clip_grads
from fastlstm.reference.training import remove_duplicate as book_remove_duplicate

# ---------------------------------------------------------------- the book's code, transcribed
# (its SGD, Adam, clip_grads and remove_duplicate: fastlstm.reference.training's)


class BookMomentum:
    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.v[i] = self.momentum * self.v[i] - self.lr * grads[i]
            params[i] += self.v[i]


class BookNesterov:
    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.v[i] *= self.momentum
            self.v[i] -= self.lr * grads[i]
            params[i] += self.momentum * self.momentum * self.v[i]
            params[i] -= (1 + self.momentum) * self.lr * grads[i]


class BookAdaGrad:
    def __init__(self, lr=0.01):
        self.lr, self.h = lr, None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.h[i] += grads[i] * grads[i]
            params[i] -= self.lr * grads[i] / (np.sqrt(self.h[i]) + 1e-7)


class BookRMSprop:
    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate, self.h = lr, decay_rate, None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.h[i] *= self.decay_rate
            self.h[i] += (1 - self.decay_rate) * grads[i] * grads[i]
            params[i] -= self.lr * grads[i] / (np.sqrt(self.h[i]) + 1e-7)


def book_batches(corpus, batch_size, time_size):
    corpus_size = len(corpus)
    max_iters = (corpus_size - 1) // (batch_size * time_size)
    jump = (corpus_size - 1) // batch_size
    for iters in range(max_iters):
        xs = np.zeros((batch_size, time_size), dtype=np.int32)
        ts = np.zeros((batch_size, time_size), dtype=np.int32)
        time_offset = iters * time_size
        offsets = [time_offset + (i * jump) for i in range(batch_size)]
        for t in range(time_size):
            for i, offset in enumerate(offsets):
                xs[i, t] = corpus[(offset + t) % corpus_size]
                ts[i, t] = corpus[(offset + t + 1) % corpus_size]
        yield xs, ts


# ---------------------------------------------------------------- helpers

PAIRS = [
    (opt.SGD, BookSGD, dict(lr=0.5)),
    (opt.Momentum, BookMomentum, dict(lr=0.1, momentum=0.8)),
    (opt.Nesterov, BookNesterov, dict(lr=0.1, momentum=0.8)),
    (opt.AdaGrad, BookAdaGrad, dict(lr=0.1)),
    (opt.RMSprop, BookRMSprop, dict(lr=0.01, decay_rate=0.9)),
    (opt.Adam, BookAdam, dict(lr=0.01, beta1=0.8, beta2=0.99)),
]
IDS = [p[0].__name__ for p in PAIRS]


def make_params(rng, dtype=np.float64):
    """A C-ordered, an F-ordered, a 1-D and a non-contiguous param (a strided view of a larger array)."""
    big = rng.standard_normal((6, 10)).astype(dtype)
    return [
        rng.standard_normal((4, 5)).astype(dtype),
        np.asfortranarray(rng.standard_normal((3, 7)).astype(dtype)),
        rng.standard_normal(9).astype(dtype),
        big[::2, 1::3],
    ]


def make_grads(rng, params):
    """Grads in the params' layouts (np.empty_like keeps C/F order; a strided view stays strided)."""
    grads = []
    for p in params:
        contiguous = p.flags.c_contiguous or p.flags.f_contiguous
        g = np.empty_like(p) if contiguous else np.empty((p.shape[0], 2 * p.shape[1]))[:, ::2]
        g[...] = rng.standard_normal(p.shape)
        grads.append(g.astype(p.dtype, copy=False))
    return grads


def clone(arrays):
    return [a.copy(order="K") for a in arrays]


# ---------------------------------------------------------------- optimizers


@pytest.mark.parametrize("ours, book, hyper", PAIRS, ids=IDS)
def test_optimizer_matches_book_in_place(ours, book, hyper):
    rng = np.random.default_rng(0)
    params = make_params(rng)
    ref = clone(params)
    originals = list(params)
    o, b = ours(**hyper), book(**hyper)
    for _ in range(4):
        grads = make_grads(rng, params)
        o.update(params, grads)
        b.update(ref, clone(grads))
    assert o.iter == 4
    for p, orig, r in zip(params, originals, ref):
        assert p is orig
        np.testing.assert_array_equal(p, r)


def test_sgd_float32_rounds_like_book():
    rng = np.random.default_rng(1)
    params = make_params(rng, np.float32)
    ref = clone(params)
    grads = make_grads(rng, params)
    opt.SGD(lr=0.37).update(params, grads)
    BookSGD(lr=0.37).update(ref, grads)
    for p, r in zip(params, ref):
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p, r)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hyper", [{}, dict(lr=0.01, beta1=0.8, beta2=0.99), dict(beta1=np.float64(0.8))])
def test_adam_kernel_rounds_like_book(dtype, hyper):
    """The compiled Adam step gives the book's NumPy expressions' bits in float32 too (where
    NumPy 2 computes part of them in float64), for contiguous params of every layout and a
    large one that spans the kernel's threads; the strided one takes the expressions."""
    rng = np.random.default_rng(7)
    params = make_params(rng, dtype) + [rng.standard_normal(300_001).astype(dtype)]
    ref = clone(params)
    o, b = opt.Adam(**hyper), BookAdam(**hyper)
    for _ in range(5):
        grads = make_grads(rng, params)
        o.update(params, grads)
        b.update(ref, clone(grads))
    for p, r in zip(params, ref):
        assert p.dtype == dtype
        np.testing.assert_array_equal(p, r)
    for mine, book in zip(o.m + o.v, b.m + b.v):
        np.testing.assert_array_equal(mine, book)


def test_sgd_mixed_layouts_fall_back():
    rng = np.random.default_rng(2)
    p = rng.standard_normal((5, 6))
    g = np.asfortranarray(rng.standard_normal((5, 6)))
    expected = p - 0.1 * g
    opt.SGD(0.1).update([p], [g])
    np.testing.assert_array_equal(p, expected)


def test_flat_views_never_copy():
    c = np.zeros((4, 5))
    f = np.asfortranarray(np.zeros((4, 5)))
    for a in (c, f, c.T, f.T):
        (flat,) = util._flat_views(a)
        assert flat.ndim == 1 and flat.flags.c_contiguous and np.shares_memory(flat, a)
    assert util._flat_views(c, f) is None
    assert util._flat_views(c[:, ::2]) is None


@pytest.mark.parametrize("ours, book, hyper", PAIRS, ids=IDS)
def test_state_dict_resumes_exactly(ours, book, hyper):
    rng = np.random.default_rng(3)
    params = make_params(rng)
    steps = [make_grads(rng, params) for _ in range(6)]
    a = ours(**hyper)
    for grads in steps[:3]:
        a.update(params, grads)
    state = pickle.loads(pickle.dumps(a.state_dict()))
    resumed = clone(params)
    a.update(params, steps[3])  # must not leak into the saved state
    for grads in steps[4:]:
        a.update(params, grads)

    b = ours(**{name: 123.0 for name in hyper})
    b.load_state_dict(state)
    assert b.iter == 3 and all(getattr(b, name) == value for name, value in hyper.items())
    for grads in steps[3:]:
        b.update(resumed, grads)
    for p, r in zip(params, resumed):
        np.testing.assert_array_equal(p, r)


def test_state_dict_before_first_update_and_lr_change():
    a = opt.Adam(lr=0.01)
    d = a.state_dict()
    assert d == {"type": "Adam", "iter": 0, "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "m": None, "v": None}
    a.lr /= 4.0
    assert a.state_dict()["lr"] == 0.0025
    assert opt.SGD(20.0).state_dict() == {"type": "SGD", "iter": 0, "lr": 20.0}


def test_load_state_dict_refusals():
    rng = np.random.default_rng(4)
    params = make_params(rng)
    a = opt.Adam()
    a.update(params, make_grads(rng, params))
    good = a.state_dict()
    with pytest.raises(ValueError, match="of 'Adam', not 'SGD'"):
        opt.SGD().load_state_dict(good)
    with pytest.raises(TypeError, match="expects a dict"):
        opt.Adam().load_state_dict([1])
    with pytest.raises(ValueError, match=r"missing \['beta2'\]"):
        opt.Adam().load_state_dict({k_: v for k_, v in good.items() if k_ != "beta2"})
    with pytest.raises(ValueError, match="'iter'"):
        opt.Adam().load_state_dict({**good, "iter": -1})
    with pytest.raises(ValueError, match="lr must be finite"):
        opt.Adam().load_state_dict({**good, "lr": float("nan")})
    with pytest.raises(ValueError, match="others None"):
        opt.Adam().load_state_dict({**good, "m": None})
    with pytest.raises(ValueError, match="differs in shapes"):
        opt.Adam().load_state_dict({**good, "m": good["m"][:2]})
    with pytest.raises(TypeError, match="list of numpy arrays"):
        opt.Adam().load_state_dict({**good, "m": [1.0] * 4})
    b = opt.Adam()
    b.load_state_dict(good)
    with pytest.raises(ValueError, match=r"Adam.m\[0\] is float64 \(4, 5\), but params\[0\] is float64 \(5, 4\)"):
        other = [np.zeros((5, 4))] + params[1:]
        b.update(other, [np.zeros_like(p) for p in other])
    assert b.iter == 1  # a refused update does not count


@pytest.mark.parametrize("cls", [p[0] for p in PAIRS], ids=IDS)
def test_update_validation(cls):
    o = cls()
    p, g = np.zeros((2, 3)), np.zeros((2, 3))
    with pytest.raises(ValueError, match="params holds 2 arrays but grads holds 1"):
        o.update([p, p], [g])
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(3, 2\) but params\[1\] has shape \(2, 3\)"):
        o.update([p, p], [g, g.T])
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype float32 but params\[0\] has dtype float64"):
        o.update([p], [g.astype(np.float32)])
    with pytest.raises(TypeError, match=r"params\[0\] has dtype float16"):
        o.update([p.astype(np.float16)], [g.astype(np.float16)])
    with pytest.raises(TypeError, match=r"params\[0\] must be a numpy.ndarray, got list"):
        o.update([[1.0]], [g])
    with pytest.raises(TypeError, match="params must be a list"):
        o.update(p, g)
    p.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        o.update([p], [g])
    with pytest.raises(TypeError, match="lr must be a real number"):
        cls(lr="0.1")


# ---------------------------------------------------------------- kernels


@pytest.fixture
def threads():
    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_squares(threads, n_threads, dtype):
    if n_threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"Numba has only {numba.config.NUMBA_NUM_THREADS} thread(s) here")
    rng = np.random.default_rng(5)
    for n in (1, 3, 17, 1_000_003):
        x = rng.standard_normal(n).astype(dtype)
        numba.set_num_threads(n_threads)
        got = k.sum_squares(x)
        numba.set_num_threads(1)
        assert k.sum_squares(x) == got  # blocks do not depend on the thread count
        assert isinstance(got, float)
        np.testing.assert_allclose(got, np.sum(x.astype(np.float64) ** 2), rtol=1e-12)
    assert k.sum_squares(np.zeros(0, dtype)) == 0.0
    assert np.isnan(k.sum_squares(np.array([1.0, np.nan, 2.0], dtype)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale_and_sgd_kernels(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(1001).astype(dtype)
    g = rng.standard_normal(1001).astype(dtype)
    expected = x * dtype(0.3)
    k.scale(x, dtype(0.3))
    np.testing.assert_array_equal(x, expected)
    expected = x - dtype(0.7) * g
    k.sgd(x, g, dtype(0.7))
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_scaled_kernel_rounds_like_scale_then_sgd(dtype):
    rng = np.random.default_rng(9)
    p, g = rng.standard_normal((2, 1001)).astype(dtype)
    want_p, want_g = p.copy(), g.copy()
    k.scale(want_g, dtype(0.3))
    k.sgd(want_p, want_g, dtype(20.0))
    g_before = g.copy()
    k.sgd_scaled(p, g, dtype(20.0), dtype(0.3))
    np.testing.assert_array_equal(p, want_p)
    np.testing.assert_array_equal(g, g_before)


def test_kernel_cache_loads_in_fresh_process():
    code = ("from fastlstm.kernels import optim as k\n"
            "fs = (k.sum_squares, k.scale, k.sgd, k.sgd_scaled)\n"
            "print(sum(sum(f.stats.cache_hits.values()) for f in fs), sum(sum(f.stats.cache_misses.values()) for f in fs))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["8", "0"]


# ---------------------------------------------------------------- clip_grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grads_scales_above_max_norm(dtype):
    rng = np.random.default_rng(7)
    grads = make_grads(rng, make_params(rng, dtype))
    ref = clone(grads)
    originals = list(grads)
    expected_norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    norm = util.clip_grads(grads, 0.25)
    book_clip_grads(ref, 0.25)
    assert isinstance(norm, float)
    np.testing.assert_allclose(norm, expected_norm, rtol=1e-12)
    total = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    np.testing.assert_allclose(total, 0.25, rtol=1e-5)
    for g, o, r in zip(grads, originals, ref):
        assert g is o and g.dtype == dtype
        np.testing.assert_allclose(g, r, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_clip_grads_leaves_small_grads_alone():
    rng = np.random.default_rng(8)
    grads = make_grads(rng, make_params(rng))
    before = clone(grads)
    norm = util.clip_grads(grads, 1000.0)
    assert norm < 1000.0
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)


def test_clip_grads_nan_and_errors():
    g = np.array([1.0, np.nan])
    assert np.isnan(util.clip_grads([g], 0.25))
    assert g[0] == 1.0
    with pytest.raises(ValueError, match="max_norm must be finite and >= 0"):
        util.clip_grads([g], -1.0)
    with pytest.raises(TypeError, match="max_norm must be a real number"):
        util.clip_grads([g], None)
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype int64"):
        util.clip_grads([np.zeros(3, np.int64)], 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_rate_is_clip_grads_factor(dtype):
    rng = np.random.default_rng(10)
    grads = make_grads(rng, make_params(rng, dtype))
    norm, rate = util.clip_rate(grads, 0.25)
    expected_norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    np.testing.assert_allclose(norm, expected_norm, rtol=1e-12)
    assert rate == 0.25 / (norm + 1e-6) < 1
    assert util.clip_rate(grads, 1000.0)[1] == 1.0
    nan_norm, nan_rate = util.clip_rate([np.array([1.0, np.nan])], 0.25)
    assert np.isnan(nan_norm) and nan_rate == 1.0
    with pytest.raises(ValueError, match="max_norm must be finite and >= 0"):
        util.clip_rate(grads, -1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_and_update_with_sgd_gives_clip_then_update_bits_and_keeps_grads(dtype):
    """In every layout of make_params: the kernel for contiguous ones, NumPy for the strided one."""
    rng = np.random.default_rng(11)
    params = make_params(rng, dtype)
    grads = make_grads(rng, params)
    want_params, want_grads = clone(params), clone(grads)
    want_norm = util.clip_grads(want_grads, 0.25)
    opt.SGD(20.0).update(want_params, want_grads)
    grads_before = clone(grads)
    norm = opt.clip_and_update(opt.SGD(20.0), params, grads, 0.25)
    assert norm == want_norm
    for p, want in zip(params, want_params):
        np.testing.assert_array_equal(p, want)
    for g, before in zip(grads, grads_before):
        np.testing.assert_array_equal(g, before)


def test_clip_and_update_with_other_optimizers_clips_the_grads_first():
    rng = np.random.default_rng(12)
    params = make_params(rng)
    grads = make_grads(rng, params)
    want_params, want_grads = clone(params), clone(grads)
    util.clip_grads(want_grads, 0.25)
    opt.Momentum(0.1).update(want_params, want_grads)
    opt.clip_and_update(opt.Momentum(0.1), params, grads, 0.25)
    for got, want in zip(params + grads, want_params + want_grads):
        np.testing.assert_array_equal(got, want)


def test_sgd_update_refuses_a_bad_scale():
    p, g = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="scale must be finite"):
        opt.SGD(1.0).update([p], [g], scale=np.nan)
    with pytest.raises(TypeError, match="scale must be a real number"):
        opt.SGD(1.0).update([p], [g], scale="0.5")
    assert (p == 0).all()


# ---------------------------------------------------------------- eval_perplexity


class RecordingModel:
    """Records the batches it is given and returns losses 1.0, 2.0, 3.0, ..."""

    def __init__(self):
        self.batches, self.train_flgs = [], []

    def forward(self, xs, ts, train_flg=True):
        self.batches.append((xs.copy(), ts.copy()))
        self.train_flgs.append(train_flg)
        return float(len(self.batches))


class TwoArgModel(RecordingModel):
    def forward(self, xs, ts):
        return super().forward(xs, ts)


@pytest.mark.parametrize("n, batch_size, time_size", [(1000, 10, 35), (352, 10, 35), (97, 3, 5), (50, 1, 7)])
def test_eval_perplexity_protocol(capsys, monkeypatch, n, batch_size, time_size):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # a terminal: the book's running count
    corpus = np.random.default_rng(9).integers(0, 10000, n)
    model = RecordingModel()
    ppl = util.eval_perplexity(model, corpus, batch_size, time_size)
    expected = list(book_batches(corpus, batch_size, time_size))
    assert len(model.batches) == len(expected) >= 1
    for (xs, ts), (bx, bt) in zip(model.batches, expected):
        assert xs.dtype == ts.dtype == np.int32
        np.testing.assert_array_equal(xs, bx)
        np.testing.assert_array_equal(ts, bt)
    assert model.train_flgs == [False] * len(expected)
    m = len(expected)
    np.testing.assert_allclose(ppl, np.exp(sum(range(1, m + 1)) / m))
    out = capsys.readouterr().out
    assert out == "evaluating perplexity ...\n" + "".join("\r%d / %d" % (i, m) for i in range(m)) + "\n"


def test_eval_perplexity_prints_no_running_count_into_a_file(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    util.eval_perplexity(RecordingModel(), np.arange(1000), 10, 35)
    assert capsys.readouterr().out == "evaluating perplexity ...\n"


def test_eval_perplexity_falls_back_without_train_flg(capsys):
    model = TwoArgModel()
    ppl = util.eval_perplexity(model, list(range(1, 200)), 2, 5)
    assert len(model.batches) == 19 and model.train_flgs == [True] * 19
    np.testing.assert_allclose(ppl, np.exp(10.0))


def test_eval_perplexity_refuses_short_corpus():
    with pytest.raises(ValueError, match="too short.*at least 351 tokens"):
        util.eval_perplexity(RecordingModel(), np.arange(350), 10, 35)
    with pytest.raises(ValueError, match="integer word ids"):
        util.eval_perplexity(RecordingModel(), np.zeros(1000), 10, 35)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        util.eval_perplexity(RecordingModel(), np.arange(1000), 0, 35)


# ---------------------------------------------------------------- remove_duplicate


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])  # F: the models' grad of embed_W.T (zeros_like keeps its layout)
def test_remove_duplicate_tied_view(order, dtype):
    rng = np.random.default_rng(10)
    embed_W = rng.standard_normal((50, 8)).astype(dtype)
    Wx, b = rng.standard_normal((8, 32)).astype(dtype), rng.standard_normal(50).astype(dtype)
    params = [embed_W, Wx, embed_W.T, b]
    grads = [np.asarray(rng.standard_normal(p.shape), dtype=dtype, order=order) for p in params]
    expected = grads[0] + grads[2].T
    g0 = grads[0]
    new_params, new_grads = util.remove_duplicate(params, grads)
    assert len(params) == 4 and len(grads) == 4  # the inputs are not changed
    assert [id(p) for p in new_params] == [id(embed_W), id(Wx), id(b)]
    assert new_grads[0] is g0 and new_grads[1] is grads[1] and new_grads[2] is grads[3]
    np.testing.assert_array_equal(new_grads[0], expected)


def test_remove_duplicate_of_a_grad_listed_twice_doubles_it():
    W = np.arange(6.0).reshape(2, 3)
    g = np.ones((2, 3))
    new_params, new_grads = util.remove_duplicate([W, W], [g, g])
    assert len(new_params) == 1 and new_params[0] is W and new_grads[0] is g
    np.testing.assert_array_equal(g, 2.0)


def test_remove_duplicate_same_object():
    rng = np.random.default_rng(11)
    W, b = rng.standard_normal((4, 4)), rng.standard_normal(4)
    grads = [rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal((4, 4))]
    expected = grads[0] + grads[2]
    new_params, new_grads = util.remove_duplicate([W, b, W], grads)
    assert len(new_params) == 2 and new_params[0] is W and new_params[1] is b
    np.testing.assert_array_equal(new_grads[0], expected)


def test_remove_duplicate_keeps_untied_transposed_shapes():
    """Rnnlm: embed W (V, H) and affine W (H, V) have transposed shapes but are separate weights."""
    rng = np.random.default_rng(12)
    params = [rng.standard_normal((30, 6)), rng.standard_normal((6, 24)), rng.standard_normal((6, 30))]
    grads = [rng.standard_normal(p.shape) for p in params]
    before = clone(grads)
    new_params, new_grads = util.remove_duplicate(params, grads)
    assert len(new_params) == 3
    for g, b in zip(new_grads, before):
        np.testing.assert_array_equal(g, b)


def test_remove_duplicate_equal_separate_arrays_merge_like_book():
    rng = np.random.default_rng(13)
    W = rng.standard_normal((7, 3))
    params = [W, W.T.copy()]
    grads = [rng.standard_normal((7, 3)), rng.standard_normal((3, 7))]
    expected = grads[0] + grads[1].T
    new_params, new_grads = util.remove_duplicate(params, grads)
    assert len(new_params) == 1
    np.testing.assert_array_equal(new_grads[0], expected)


def test_remove_duplicate_tied_pair_is_recognised_without_comparing_values():
    """The book's value test fails on NaN (NaN != NaN); the structural test still sees the tie."""
    W = np.ones((1000, 650), dtype=np.float32)
    W[-1, -1] = np.nan
    grads = [np.ones((1000, 650), np.float32), np.ones((650, 1000), np.float32)]
    new_params, new_grads = util.remove_duplicate([W, W.T], grads)
    assert len(new_params) == 1 and new_grads[0][0, 0] == 2.0
    # a separate copy holding NaN is compared by value, as in the book, and is not merged
    params = [W, W.T.copy()]
    assert len(util.remove_duplicate(params, [np.zeros_like(p) for p in params])[0]) == 2
    assert len(book_remove_duplicate(params, [np.zeros_like(p) for p in params])[0]) == 2


def test_remove_duplicate_matches_book_on_mixed_lists():
    rng = np.random.default_rng(14)
    E = rng.standard_normal((12, 5))
    S = rng.standard_normal((5, 5))
    S = S + S.T  # symmetric: equals its own transpose, so the book merges S with S.T and with copies
    A = rng.standard_normal((5, 12))
    b = rng.standard_normal(12)
    params = [E, A, S, E.T, b, S.T, S.copy(), A, E.T.copy(), np.asfortranarray(E)]
    grads = [rng.standard_normal(p.shape) for p in params]
    ours_p, ours_g = util.remove_duplicate(params, clone(grads))
    book_p, book_g = book_remove_duplicate(params, clone(grads))
    assert [id(p) for p in ours_p] == [id(p) for p in book_p]
    for g, r in zip(ours_g, book_g):
        np.testing.assert_array_equal(g, r)


# ---------------------------------------------------------------- device transfer


def test_to_cpu_and_to_gpu(monkeypatch):
    a = np.arange(3.0)
    assert util.to_cpu(a) is a
    np.testing.assert_array_equal(util.to_cpu([1, 2]), [1, 2])

    class DeviceArray:
        def copy_to_host(self):
            return a

    assert util.to_cpu(DeviceArray()) is a
    monkeypatch.setattr(gpu, "_numba_cuda_installed", lambda: False)  # the tests run on the simulator otherwise
    with pytest.raises(RuntimeError, match="numba-cuda"):
        util.to_gpu(a)
