"""Products too small for a BLAS call to pay (fastlstm.blas.SMALL_WORK, ONE_ROW_WORK) run in
compiled code on the caller's thread (kernels/one_row.py): the same values as np.matmul
within float rounding, rows independent of how many others share the call. Neither they nor
the products that NumPy's OpenBLAS keeps on the calling thread (blas.ONE_THREAD_WORK) change
BLAS's threads."""

import numpy as np
import pytest

from fastlstm import blas
from fastlstm.kernels.one_row import PARTIALS, row_times_columns, rows_times_rows
from fastlstm.lanes import Lanes
from fastlstm.threads import numpy_openblas

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 1, 1), (1, 5, 7), (3, 17, 33), (4, 16, 16), (7, 3, 65)]


def assert_rounding(got, a, b, bias=None):
    """got is a @ b (+ bias) within 2 gamma_K |a||b| (+ a bias's own rounding)."""
    exact = a.astype(np.float64) @ b.astype(np.float64) + (0 if bias is None else bias.astype(np.float64))
    u = np.finfo(got.dtype).eps / 2
    K = a.shape[1]
    bound = 2 * (K + 1) * u * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
                               + (0 if bias is None else np.abs(bias)))
    assert np.all(np.abs(got - exact) <= bound + np.finfo(got.dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, K, n", SHAPES)
@pytest.mark.parametrize("transposed_left", [False, True])
def test_compiled_products_are_matmul_within_rounding(dtype, M, K, n, transposed_left):
    rng = np.random.default_rng(M * 100 + K * 10 + n)
    a = rng.standard_normal((K, M)).astype(dtype).T if transposed_left else rng.standard_normal((M, K)).astype(dtype)
    W = rng.standard_normal((K, n)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    out = np.empty((M, n), dtype)
    rows_times_rows(a, W, b, out)
    assert_rounding(out, a, W, b)
    rows_times_rows(a, W, None, out)
    assert_rounding(out, a, W)
    E = np.ascontiguousarray(W.T)
    for i in range(M):
        row_times_columns(a[i], E, b, 0, out[i], np.empty(PARTIALS, dtype))
    assert_rounding(out, a, E.T, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_rows_bits_do_not_depend_on_the_other_rows(dtype):
    rng = np.random.default_rng(1)
    a, W = (rng.standard_normal(s).astype(dtype) for s in ((9, 37), (37, 21)))
    whole, part = np.empty((9, 21), dtype), np.empty((4, 21), dtype)
    rows_times_rows(a, W, None, whole)
    rows_times_rows(a[3:7], W, None, part)
    np.testing.assert_array_equal(part, whole[3:7])


class _NoBlas:
    def __enter__(self):
        raise AssertionError("a small product changed BLAS's threads")

    def __exit__(self, *exc):
        return False


def _product_calls(monkeypatch):
    """The list that every product of BLAS called through blas._product is appended to."""
    calls, product = [], blas._product
    monkeypatch.setattr(blas, "_product", lambda a, b, out, bias: calls.append(a.shape) or product(a, b, out, bias))
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_products_leave_blas_alone_and_large_ones_use_it(monkeypatch, dtype):
    rng = np.random.default_rng(2)
    lanes = Lanes(threads=1)
    calls = _product_calls(monkeypatch)
    monkeypatch.setattr(blas, "single_threaded_blas", _NoBlas)
    compiled = [(1, blas.ONE_ROW_WORK // 2, 2), (blas.SMALL_ROWS, 8, blas.SMALL_WORK // 64)]
    for M, K, n in compiled:
        a, b = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, n)).astype(dtype)
        bias = rng.standard_normal(n).astype(dtype)
        assert_rounding(blas.dot(a, b, bias=bias, lanes=lanes), a, b, bias)
    assert calls == []  # all in the row loops
    a = rng.standard_normal((blas.SMALL_ROWS + 1, 16)).astype(dtype)  # one row more: BLAS
    b = rng.standard_normal((8, 16)).astype(dtype).T  # a transposed right operand: BLAS
    if numpy_openblas() is not None:  # NumPy's own OpenBLAS: without a switch of its threads
        assert_rounding(blas.dot(a, b, lanes=lanes), a, b)
        out = np.empty((a.shape[1], b.shape[1]), dtype)
        blas.dots(blas.tn_product(a, a @ b, out), lanes=lanes)
        assert_rounding(out, a.T, a @ b)
        assert len(calls) == 2
    K = blas.ONE_THREAD_WORK // 4 + 1  # past the bound on a thread of its own: BLAS on one thread
    a, b = rng.standard_normal((2, K)).astype(dtype), rng.standard_normal((K, 2)).astype(dtype)
    with pytest.raises(AssertionError, match="changed BLAS"):
        blas.dot(a, b, lanes=lanes)
    a, b = rng.standard_normal((1, blas.ONE_ROW_WORK)).astype(dtype), rng.standard_normal((blas.ONE_ROW_WORK, 2)).astype(dtype)
    with pytest.raises(AssertionError, match="changed BLAS"):  # one row (a gemv for OpenBLAS): BLAS on one thread
        blas.dot(a, b, lanes=lanes)
