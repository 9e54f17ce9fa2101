"""Products whose lanes run in compiled code (kernels/blas_calls.py, Lanes.run_products):
the same bits as the lanes' blocks in Python and as the whole product on one lane, in
float32 and float64, plain or transposed, with a bias, beside another product, cut by
rows or (short products) by columns; operands
BLAS cannot read as they lie go to the Python lanes, still right; a busy pool, a lane
count beyond the pool's slots and Python blocks between compiled ones change nothing; a
woken worker may run anywhere but on its caller's CPU."""

import os
import threading

import numpy as np
import pytest

from fastlstm import blas
from fastlstm.kernels import blas_calls
from fastlstm.lanes import Lanes
from fastlstm.threads import numpy_openblas

pytestmark = pytest.mark.skipif(blas._gemms() is None, reason="NumPy does not carry its own 64-bit-integer OpenBLAS")


def _operands(rng, dtype, M, K, N, a_order, b_order):
    a = np.asarray(rng.standard_normal((M, K)), dtype, order=a_order)
    b = np.asarray(rng.standard_normal((K, N)), dtype, order=b_order)
    return a, b, rng.standard_normal(N).astype(dtype)


def _in_python(monkeypatch):
    """Make every product take the Python lanes, for a reference."""
    monkeypatch.setattr(blas, "_compiled", lambda products: None)


def test_numpy_wheels_openblas_is_found():
    """This environment's NumPy carries its OpenBLAS; were it not found, every product would
    quietly take the slower Python lanes."""
    assert numpy_openblas() is not None
    assert set(blas._gemms()) == {np.dtype(np.float32), np.dtype(np.float64)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_order,b_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
@pytest.mark.parametrize("M,K,N", [(97, 33, 51), (613, 256, 1024), (40, 2, 3)])
def test_compiled_lanes_give_the_python_lanes_bits(monkeypatch, dtype, a_order, b_order, M, K, N):
    lanes = Lanes(threads=3, min_rows=1, min_work=1, learning=0.0, speeds=[1.0, 0.6, 1.7])
    a, b, bias = _operands(np.random.default_rng(M + K), dtype, M, K, N, a_order, b_order)
    assert blas._compiled([(a, b, np.empty((M, N), dtype), bias)]) is not None
    new = blas.dot(a, b, bias=bias, lanes=lanes)
    one = blas.dot(a, b, bias=bias, lanes=Lanes(threads=1))
    _in_python(monkeypatch)
    np.testing.assert_array_equal(new, blas.dot(a, b, bias=bias, lanes=lanes))
    np.testing.assert_array_equal(new, one)
    np.testing.assert_allclose(new, a.astype(np.float64) @ b + bias, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_products_split_together_give_their_bits(monkeypatch, dtype):
    """A weight gradient (transposed left operand) and an input gradient (transposed right
    one) as one split, as a backward runs them."""
    rng = np.random.default_rng(3)
    x, dout, W = (rng.standard_normal(shape).astype(dtype) for shape in [(300, 70), (300, 90), (70, 90)])
    lanes = Lanes(threads=2, min_rows=1, min_work=1)

    def gradients():
        dW, dx = np.zeros((70, 90), dtype), np.zeros((300, 70), dtype)
        blas.dots((x.T, dout, dW), (dout, W.T, dx), lanes=lanes)
        return dW, dx
    new = gradients()
    _in_python(monkeypatch)
    for got, want in zip(new, gradients()):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("b_order", ["C", "F"])
@pytest.mark.parametrize("M,K,N", [(2, 1000, 4099), (8, 650, 2600), (33, 700, 650), (32, 1300, 2600)])
def test_short_products_cut_by_columns_give_the_whole_products_bits(b_order, M, K, N):
    """A short product's lanes take bands of its columns (with the bias's), at even shares
    and following uneven speeds (the largest), and give the one-lane product's bits; a
    backward's pair mixes a band of rows with one of columns."""
    if blas.column_quantum(np.dtype(np.float32)) is None:
        pytest.skip("this BLAS gives other bits where a product is cut by its columns")
    a, b, bias = _operands(np.random.default_rng(M), np.float32, M, K, N, "C", b_order)
    one = blas.dot(a, b, bias=bias, lanes=Lanes(threads=1))
    uneven = (Lanes(threads=2, learning=0.0, speeds=[1.0, 0.6]), Lanes(threads=3, learning=0.0, speeds=[1.0, 1.7, 0.5]))
    for lanes in uneven:
        n = min(lanes.threads, M * K * N // lanes.min_work)
        bands = blas._bands([(a, b, one, bias)], [M * K * N], n, blas._compiled([(a, b, one, bias)]))
        assert bands[0][2] == blas_calls.L0
        np.testing.assert_array_equal(blas.dot(a, b, bias=bias, lanes=lanes), one)
    x = np.random.default_rng(1).standard_normal((M, 300)).astype(np.float32)
    wide = np.ones((300, 3000), np.float32)
    pair = [(x.T, a, np.empty((300, K), np.float32)), (x, wide, np.empty((M, 3000), np.float32))]
    blas.dots(*pair, lanes=uneven[0])
    for left, right, out in pair:
        np.testing.assert_array_equal(out, blas.dot(left, right, lanes=Lanes(threads=1)))


@pytest.mark.parametrize("case", ["strided columns", "reversed rows", "one column", "inner width one",
                                  "unaligned", "mixed dtypes", "output over an operand"])
def test_operands_blas_cannot_read_take_the_python_lanes(monkeypatch, case):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((64, 40)).astype(np.float32), rng.standard_normal((40, 30)).astype(np.float32)
    if case == "strided columns":
        a = rng.standard_normal((64, 80)).astype(np.float32)[:, ::2]
    elif case == "reversed rows":
        a = a[::-1]
    elif case == "one column":
        b = b[:, :1]
    elif case == "inner width one":
        a, b = a[:, :1], b[:1]
    elif case == "unaligned":
        raw = np.zeros(64 * 40 * 4 + 1, np.uint8)
        a = np.frombuffer(raw.data, np.float32, 64 * 40, offset=1).reshape(64, 40)
        a[...] = rng.standard_normal((64, 40))
    elif case == "mixed dtypes":
        b = b.astype(np.float64)
    out = np.empty((64, b.shape[1]), np.float32)
    if case == "output over an operand":
        b = np.ones((40, 40), np.float32)
        a, out = (both := rng.standard_normal((64, 80)).astype(np.float32))[:, :40], both[:, 40:]
    assert blas._compiled([(a, b, out, None)]) is None
    if case == "mixed dtypes":  # blas.dot takes one dtype: np.matmul decides what mixed ones mean
        return
    ran, real = [], Lanes.run
    monkeypatch.setattr(Lanes, "run", lambda self, *args, **kwargs: ran.append(1) or real(self, *args, **kwargs))
    want = a.astype(np.float64) @ b
    got = blas.dot(a, b, out=out, lanes=Lanes(threads=2, min_rows=1, min_work=1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert ran


def test_describe_refuses_shapes_that_do_not_fit():
    fields = np.zeros(blas_calls.FIELDS, np.int64)
    gemm = blas._gemms()[np.dtype(np.float32)]
    a, b = np.ones((8, 4), np.float32), np.ones((4, 6), np.float32)
    assert blas_calls.describe(fields, a, b, np.empty((8, 6), np.float32), None, gemm)
    assert not blas_calls.describe(fields, a, b, np.empty((8, 5), np.float32), None, gemm)
    assert not blas_calls.describe(fields, a, np.ones((5, 6), np.float32), np.empty((8, 6), np.float32), None, gemm)
    assert not blas_calls.describe(fields, a, b, np.empty((8, 6), np.float32), np.ones(5, np.float32), gemm)
    assert not blas_calls.describe(fields, a, b, np.empty((8, 12), np.float32)[:, ::2], None, gemm)


def test_a_busy_pool_or_too_many_lanes_run_every_block_on_the_caller(monkeypatch):
    rng = np.random.default_rng(5)
    a, b, bias = _operands(rng, np.float32, 200, 64, 48, "C", "C")
    want = blas.dot(a, b, bias=bias, lanes=Lanes(threads=1))
    lanes = Lanes(threads=2, min_rows=1, min_work=1)
    with lanes._pool.lock:  # another thread is using the workers
        np.testing.assert_array_equal(blas.dot(a, b, bias=bias, lanes=lanes), want)
    monkeypatch.setattr(lanes._pool, "seconds", np.zeros(1))  # slots for one lane
    monkeypatch.setattr(lanes, "_run_compiled", None)
    np.testing.assert_array_equal(blas.dot(a, b, bias=bias, lanes=lanes), want)


def test_python_blocks_and_compiled_blocks_share_the_workers():
    """A worker serving compiled blocks returns to Python for a Python block and back."""
    rng = np.random.default_rng(6)
    a, b, bias = _operands(rng, np.float64, 120, 30, 20, "C", "C")
    want = blas.dot(a, b, bias=bias, lanes=Lanes(threads=1))
    lanes = Lanes(threads=3, min_rows=1, min_work=1, idle_spins=1 << 20)  # the workers stay in compiled code
    seen = []
    for _ in range(5):
        np.testing.assert_array_equal(blas.dot(a, b, bias=bias, lanes=lanes), want)
        lanes.run(lambda k, i0, i1: seen.append((k, threading.current_thread().name)), 3, 3)
    assert {k for k, _ in seen} == {0, 1, 2}
    assert {name for k, name in seen if k} == {"fastlstm-lane1", "fastlstm-lane2"}


def test_compiled_blocks_learn_the_lanes_speeds():
    lanes = Lanes(threads=2, min_rows=1, min_work=1, min_learn_seconds=0.0)
    a, b, _ = _operands(np.random.default_rng(7), np.float32, 480, 256, 256, "C", "C")
    blas.dot(a, b, lanes=lanes)
    assert len(lanes.speeds) == 2 and lanes.speeds[1] != 1.0


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nowhere else to run")
def test_a_woken_worker_is_kept_off_the_callers_cpu():
    lanes = Lanes(threads=2, min_rows=1, min_work=1)
    a, b, _ = _operands(np.random.default_rng(8), np.float32, 64, 32, 32, "C", "C")
    blas.dot(a, b, lanes=lanes)
    worker = lanes._pool.workers(1, lanes)[0]
    allowed = os.sched_getaffinity(0)
    assert worker._barred_cpu in allowed
    assert os.sched_getaffinity(worker.native_id) == allowed - {worker._barred_cpu}
