"""The float32 exp, sigmoid and tanh the kernels inline, against float64 NumPy; the lanes'
sums and maxima, against scalar loops in the same order."""

import numpy as np
import pytest
from numba import njit

from fastlstm.kernels.softmax import _row_max
from fastlstm.kernels.vecmath import KERNEL_OPTIONS, LANES, _lane_sums, exp, fma, lane_maxima, sigmoid, tanh

EPS32 = float(np.finfo(np.float32).eps)


@njit(**KERNEL_OPTIONS)  # not cached: a cache here would miss changes to vecmath.py
def _apply(x, out):
    for i in range(x.size):
        out[0, i] = exp(x[i])
        out[1, i] = sigmoid(x[i])
        out[2, i] = tanh(x[i])


def _float32_functions(x):
    out = np.empty((3, x.size), np.float32)
    _apply(x.astype(np.float32), out)
    return out


def test_float32_exp_sigmoid_tanh_within_rounding():
    x = np.concatenate([np.linspace(-87, 88, 1_000_003), np.linspace(-1e-3, 1e-3, 1001)]).astype(np.float32)
    e, s, t = _float32_functions(x)
    x64 = x.astype(np.float64)
    assert np.max(np.abs(e - np.exp(x64)) / np.exp(x64)) <= 2 * EPS32
    assert np.max(np.abs(s - 1 / (1 + np.exp(-x64)))) <= 2 * EPS32
    assert np.max(np.abs(t - np.tanh(x64))) <= 2 * EPS32


def test_float32_exp_clamps_its_argument_and_keeps_nan():
    e, s, t = _float32_functions(np.array([-1e4, -np.inf, 1e4, np.inf, np.nan], np.float32))
    np.testing.assert_array_equal(e[:4], np.exp(np.array([-87, -87, 88, 88], np.float32)))
    assert np.all(np.isfinite(e[:4])) and np.isnan(e[4])
    np.testing.assert_allclose(s[:4], [0, 0, 1, 1], rtol=0, atol=EPS32)
    np.testing.assert_allclose(t[:4], [-1, -1, 1, 1], rtol=0, atol=EPS32)
    assert np.isnan(s[4]) and np.isnan(t[4])


@njit(**KERNEL_OPTIONS)  # not cached, as _apply
def _lanes(a, blocks, square, vector):
    """The LANES sums of the first `blocks` blocks of a (of squares when `square`): by the
    intrinsic (`vector`: intrinsics run in compiled code alone), or one element at a time."""
    lanes = np.zeros(LANES)
    if vector:
        _lane_sums(a, blocks, lanes, square)
    else:
        for v in range(blocks * LANES):
            t = np.float64(a[v])
            lanes[v % LANES] = fma(t, t, lanes[v % LANES]) if square else lanes[v % LANES] + t
    return lanes


@njit(**KERNEL_OPTIONS)
def _maxima(a, blocks, vector):
    """The LANES maxima of the first `blocks` blocks of a, as _lanes takes its sums."""
    lanes = a[:LANES].copy()
    if vector:
        lane_maxima(a, blocks, lanes)
    else:
        for v in range(LANES, blocks * LANES):
            lanes[v % LANES] = a[v] if a[v] > lanes[v % LANES] else lanes[v % LANES]
    return lanes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [16, 17, 33, 160, 10007])
def test_lane_sums_and_maxima_are_the_scalar_loops_to_the_bit(dtype, n):
    """The lanes run as SIMD vectors (kernels/vecmath.py's intrinsics); each lane sums and
    compares in the order the scalar loop does, so the bits are the same."""
    a = (np.random.default_rng(n).standard_normal(n) * 1e3).astype(dtype)
    blocks = n // LANES
    for square in (False, True):
        np.testing.assert_array_equal(_lanes(a, blocks, square, True), _lanes(a, blocks, square, False))
    if n > 100:
        a[n // 2] = np.nan  # after the first block: passed over, as `>` passes it
    np.testing.assert_array_equal(_maxima(a, blocks, True), _maxima(a, blocks, False))
    assert _row_max(a, np.empty(LANES, dtype)) == np.nanmax(a)
