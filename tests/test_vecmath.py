"""The float32 exp, sigmoid and tanh the kernels inline, against float64 NumPy."""

import numpy as np
from numba import njit

from fastlstm.kernels.vecmath import KERNEL_OPTIONS, exp, sigmoid, tanh

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
