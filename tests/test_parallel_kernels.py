"""Kernels under parallel threads: scatter-adds and reductions without races, dropout
masks independent of the thread count, with odd sizes. Every call here runs the kernels'
parallel builds, which the layers otherwise keep for calls of Lanes.min_parallel_items and more."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from fastlstm import lanes
from fastlstm.kernels.linalg import column_sums
from fastlstm.time_layers import TimeDropout, TimeEmbedding

THREADS = sorted({1, 2, numba.config.NUMBA_NUM_THREADS})


@pytest.fixture(autouse=True)
def parallel_builds(monkeypatch):
    monkeypatch.setattr(lanes.default(), "min_parallel_items", 0)


@pytest.fixture(params=THREADS, ids=lambda n: f"{n}threads")
def threads(request):
    before = numba.get_num_threads()
    numba.set_num_threads(request.param)
    yield request.param
    numba.set_num_threads(before)


@pytest.mark.parametrize("D", [1, 13, 650])
def test_embedding_scatter_add_with_a_word_repeated_hundreds_of_times(threads, D):
    rng = np.random.default_rng(D)
    V, N, T = 50, 20, 35
    ids = rng.integers(0, V, size=(N, T))
    ids[:, ::2] = 7  # word 7 fills half the batch: 360 of 700 positions
    dout = rng.standard_normal((N, T, D))
    layer = TimeEmbedding(np.zeros((V, D)))
    layer.forward(ids)
    layer.grads[0][...] = np.nan  # backward must overwrite, not accumulate into stale values
    layer.backward(dout)
    expected = np.zeros((V, D))
    np.add.at(expected, ids.reshape(-1), dout.reshape(-1, D))
    np.testing.assert_allclose(layer.grads[0], expected, rtol=1e-12, atol=1e-12)


def test_scatter_add_with_more_threads_than_cores():
    """Races show up more readily with many threads: run with 3, 5 and 8 in a fresh process."""
    code = """
import numba, numpy as np
from fastlstm import lanes
from fastlstm.time_layers import TimeEmbedding
lanes.default().min_parallel_items = 0
rng = np.random.default_rng(0)
ids = rng.integers(0, 20, size=(20, 35)); ids[:, ::3] = 4
dout = rng.standard_normal((20, 35, 650))
expected = np.zeros((20, 650)); np.add.at(expected, ids.reshape(-1), dout.reshape(-1, 650))
for n in (3, 5, 8):
    numba.set_num_threads(n)
    layer = TimeEmbedding(np.zeros((20, 650)))
    layer.forward(ids); layer.backward(dout)
    assert np.allclose(layer.grads[0], expected, rtol=1e-12, atol=1e-12), n
print("ok")
"""
    env = dict(os.environ, NUMBA_NUM_THREADS="8")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


@pytest.mark.parametrize("K,P", [(1, 1), (700, 3), (35, 2600), (1, 10001)])
def test_column_sums(threads, K, P):
    a = np.random.default_rng(K + P).standard_normal((K, P))
    out = np.full(P, np.nan)
    column_sums(a, out)
    np.testing.assert_allclose(out, a.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_embedding_backward_is_identical_for_every_thread_count():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, size=(20, 35))
    dout = rng.standard_normal((20, 35, 33)).astype(np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for n in THREADS:
            numba.set_num_threads(n)
            layer = TimeEmbedding(np.zeros((5, 33), np.float32))
            layer.forward(ids)
            layer.backward(dout)
            results.append(layer.grads[0].copy())
    finally:
        numba.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 0.9])
def test_dropout_statistics(ratio):
    np.random.seed(1)
    layer = TimeDropout(ratio)
    xs = np.ones((20, 35, 650), np.float32)
    out = layer.forward(xs)
    kept = out != 0
    n = kept.size
    # the kept fraction is binomial: 6 standard deviations leave no room for flakiness
    assert abs(kept.mean() - (1 - ratio)) <= 6 * np.sqrt(ratio * (1 - ratio) / n) + 1e-12
    np.testing.assert_allclose(out[kept], 1 / (1 - ratio), rtol=1e-6)
    assert out.dtype == np.float32
    # neighbouring entries are independent: the mask shows no correlation along any axis
    m = kept.astype(np.float64) - kept.mean()
    if ratio > 0:
        for axis in range(3):
            lag = np.mean(m * np.roll(m, 1, axis=axis)) / np.mean(m * m)
            assert abs(lag) < 6 / np.sqrt(n)


def test_dropout_backward_reuses_the_forward_mask():
    np.random.seed(2)
    layer = TimeDropout(0.5)
    xs = np.random.standard_normal((3, 5, 7))
    out = layer.forward(xs)
    dout = np.random.standard_normal((3, 5, 7))
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx, dout * layer.mask)
    np.testing.assert_array_equal(out, xs * layer.mask)
    assert np.array_equal(dx == 0, out == 0)
    first_mask = layer.mask.copy()
    layer.forward(xs)
    assert not np.array_equal(layer.mask, first_mask)  # a new mask per forward


def test_dropout_follows_numpy_seed_and_not_thread_count():
    masks = []
    before = numba.get_num_threads()
    try:
        for n in THREADS:
            numba.set_num_threads(n)
            np.random.seed(3)
            layer = TimeDropout(0.5)
            layer.forward(np.ones((4, 6, 9)))
            masks.append(layer.mask)
    finally:
        numba.set_num_threads(before)
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])


def test_dropout_in_eval_mode_is_identity():
    layer = TimeDropout(0.5)
    layer.train_flg = False
    xs = np.ones((2, 3, 4))
    assert layer.forward(xs) is xs
    dout = np.full((2, 3, 4), 2.0)
    assert layer.backward(dout) is dout
