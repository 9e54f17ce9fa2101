"""`python -m fastlstm.profiling`: the parts of a step, their FLOPs, each part alone, and
the layer modules left as they were."""

from types import SimpleNamespace

import numpy as np
import pytest

from fastlstm import benchmark, blas, layers, profiling, time_layers
from fastlstm.kernels import optim
from fastlstm.kernels.embedding import embedding_backward
from fastlstm.kernels.optim import sgd
from fastlstm.recurrence import forward_steps

SIZES = dict(vocab_size=50, wordvec_size=12, hidden_size=12)


@pytest.mark.parametrize("model,step,products", [("rnnlm", "train", 6), ("better", "eval", 3)])
def test_profile_names_every_product_and_recurrence(model, step, products):
    total, tokens, parts = profiling.profile_step(model, step, rounds=2, sizes=SIZES)
    assert tokens == {"train": 700, "eval": 350}[step]
    labels = [p["part"] for p in parts]
    # a backward's weight and input gradients are one part, "products A and B, split together"
    product_calls = [p["calls"] * (p["part"].count(" and ") + 1) for p in parts if p["part"].startswith("product")]
    assert sum(product_calls) == products
    assert any(label.startswith("LSTM recurrence forward") for label in labels)
    assert any(label.startswith("LSTM recurrence backward") for label in labels) == (step == "train")
    assert labels[-1].startswith("the rest") and parts[-1]["alone"] is None
    assert all(0 < p["seconds"] < total and p["alone"] > 0 for p in parts[:-1])  # per step, not per round
    assert sum(p["seconds"] for p in parts) == pytest.approx(total)
    # the FLOPs behind each part's GFLOP/s add up to the step's products, counted as the bench counts them
    counted = [p["gflops"] * p["seconds"] * 1e9 for p in parts if p["part"].startswith(("product", "LSTM"))]
    assert sum(counted) == pytest.approx(benchmark.model_flop_per_token(model, step, SIZES) * tokens, rel=1e-9)
    assert all((p["blas"] is not None) == p["part"].startswith(("product", "LSTM")) for p in parts)
    assert all(p["blas"] > 0 for p in parts if p["blas"] is not None)
    assert layers.dot is blas.dot and time_layers.dot is blas.dot and time_layers.forward_steps is forward_steps
    assert optim.sgd is sgd and layers.embedding_backward is embedding_backward  # restored


@pytest.mark.parametrize("model,step,kernels", [
    ("better", "train", {"dropout forward kernel (mask and product)", "dropout backward kernel",
                         "embedding forward kernel (gather)", "embedding backward kernel (scatter-add)",
                         "gradient clipping: sum of squares kernel"}),  # (no scaling: tiny grads stay under 0.25)
    ("better", "eval", {"embedding forward kernel (gather)"})])
def test_profile_times_every_other_kernel_of_the_step(model, step, kernels):
    total, tokens, parts = profiling.profile_step(model, step, rounds=2, sizes=SIZES)
    labels = {p["part"] for p in parts}
    assert kernels <= labels
    sgd_calls = [p["calls"] for p in parts if p["part"].startswith("SGD kernel")]
    if step == "train":
        assert sgd_calls == [9]  # the update of 8 params (the tied weight once), and the tied weight's merge
    else:  # no dropout, no clipping, no update
        assert sgd_calls == [] and not any(label.startswith(("dropout", "gradient clipping")) for label in labels)


def test_alone_and_in_blas_time_the_calls_made_again(monkeypatch):
    """Medians over the repeats of the calls made one after another; a product's BLAS time
    counts as often as the part makes it."""
    now = [0.0]
    monkeypatch.setattr(profiling, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    durations = iter([0.5, 0.25, 4.0, 0.25, 0.5, 0.25, 0.125])  # exact in binary

    def call(*args, **kwargs):
        now[0] += next(durations)
        return args, kwargs
    calls = [(call, (1,), {"k": 2}), (call, (), {})]
    assert profiling._alone(calls, repeat=3) == 0.75  # the repeats take 0.75, 4.25 and 0.75
    assert profiling._in_blas([(3, call, (), {})], repeat=1) == 3 * 0.125


def test_recurrence_flops_count_the_per_step_products():
    gates = type("A", (), {"shape": (35, 20, 2600)})()
    assert profiling._steps_flops(gates) == 2 * 35 * 20 * 650 * 2600


def test_format_shows_each_part_and_the_bound_of_the_parts_alone():
    total, tokens, parts = profiling.profile_step("rnnlm", "train", rounds=1, sizes=SIZES)
    text = profiling.format_profile("rnnlm", "train", total, tokens, parts, peak=100.0)
    lines = text.splitlines()
    assert lines[0].startswith("rnnlm train:") and "tokens/s" in lines[0]
    assert len(lines) == 3 + len(parts)
    alone = sum(min(p["alone"], p["blas"] or p["alone"]) for p in parts[:-1])
    assert f"add up to {alone * 1e3:.1f} ms" in lines[-1] and "of the limit" in lines[-1]
    limit = 100.0e9 / benchmark.model_flop_per_token("rnnlm", "train")
    assert lines[-1].endswith(f"the step itself: {tokens / total / limit:.0%}")
    assert lines[1].split()[-2:] == ["BLAS", "ms"]


@pytest.mark.parametrize("order", ["C", "F"])
def test_blas_column_times_the_same_products(order):
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((7, 5)), rng.standard_normal((7, 3)), rng.standard_normal((3, 4))
    out, dx = np.zeros((5, 3), order=order), np.zeros((7, 4))
    calls = profiling._products_in_blas(blas.tn_product(a, b, out), (b, c, dx))
    for times, fn, args, kwargs in calls:
        fn(*args, **kwargs)
    assert [call[0] for call in calls] == [1, 1]
    np.testing.assert_allclose(out, a.T @ b, rtol=1e-12)
    np.testing.assert_allclose(dx, b @ c, rtol=1e-12)
    [(times, fn, args, kwargs)] = profiling._dot_in_blas(a.T, b)
    np.testing.assert_allclose(fn(*args, **kwargs), a.T @ b, rtol=1e-12)


def test_blas_column_of_a_recurrence_is_its_step_product_times_the_steps():
    T, N, H = 4, 3, 5
    gates, dA = np.zeros((T, N, 4 * H)), np.zeros((T, N, 4 * H))
    hs, Wh = np.zeros((T + 1, N, H)), np.zeros((H, 4 * H))
    [(times, fn, args, kwargs)] = profiling._forward_steps_in_blas(
        gates, hs, hs, hs[1:], None, hs[:T], Wh, np.zeros(4 * H), 1, None)
    assert (times, fn(*args, **kwargs).shape) == (T, (N, 4 * H))
    [(times, fn, args, kwargs)] = profiling._backward_steps_in_blas(
        gates, hs, hs[1:], hs[1:], Wh, dA, np.zeros((N, H)), 1)
    assert (times, fn(*args, **kwargs).shape) == (T, (N, H))
