"""The kernels with parallel loops and their serial twins (kernels/parallel.py) compute the same
bits, at sizes that cut the loops' vector bodies and blocks unevenly; and the layers pick the
serial twin below Lanes.min_parallel_items and on one thread."""

import numpy as np
import pytest

import fastlstm
from fastlstm import lanes, warmup
from fastlstm.kernels import dropout, embedding, linalg, optim, regularisers, softmax, word_counts


def _arrays(rng, dtype, n):
    """Builders of each kernel's arguments, on about n elements: {kernel: (args...)}, fresh arrays per call."""
    f = dtype.type
    D, V = 13, 37
    rows = max(1, n // D)

    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    ids = rng.integers(0, V, rows)
    x = r(rows, V)
    ts = rng.integers(-1, V, rows)  # -1: an ignored row
    counts = rng.integers(0, 5, (V, V)).astype(np.int32)
    return {
        dropout.dropout_forward: (r(n), np.uint64(9), 0.3, f(1 / 0.7), np.empty(n, dtype), np.empty(n, dtype)),
        dropout.dropout_backward: (r(n), r(n), np.empty(n, dtype)),
        dropout.dropout_mask: (np.uint64(9), 0.3, f(1 / 0.7), np.empty(n, dtype)),
        dropout.locked_apply: (r(rows, 3, D), r(rows, D), np.empty((rows, 3, D), dtype)),
        dropout.multiply_into: (r(n), r(n)),
        embedding.embedding_forward: (r(V, D), ids, np.empty((rows, D), dtype)),
        embedding.embedding_backward: (ids, r(rows, D), np.empty((V, D), dtype)),
        embedding.embedding_forward_scaled: (r(V, D), ids, r(V), np.empty((rows, D), dtype)),
        embedding.scale_rows: (r(V, D), np.unique(ids), r(V)),
        linalg.column_sums: (r(rows, 300), np.empty(300, dtype)),
        optim.sum_squares: (r(n),),
        optim.scale: (r(n), f(0.3)),
        optim.sgd: (r(n), r(n), f(0.1)),
        optim.sgd_scaled: (r(n), r(n), f(0.1), f(0.7)),
        optim.asgd: (r(n), r(n), f(0.1), f(0.7), f(1e-3), r(n), f(0.25)),
        optim.adam: (r(n), r(n), r(n), np.abs(r(n)), f(0.1), f(0.001), f(1e-7), 0.01),
        regularisers.temporal_sum_squares: (r(rows, 5, D),),
        regularisers.add_scaled: (r(n), r(n), f(0.5)),
        regularisers.add_temporal_gradient: (r(rows, 5, D), r(rows, 5, D), f(0.5)),
        softmax.softmax_cross_entropy_forward: (x, ts, np.empty(rows), np.empty((2, V), dtype)),
        softmax.softmax_cross_entropy_forward_backward: (x, ts, np.empty(rows), f(1 / rows), np.empty_like(x)),
        word_counts.ppmi_rows: (counts, counts.sum(), counts.sum(axis=0), 1e-8, 0, V, np.empty((V, V), np.float32)),
    }


def test_every_parallel_kernel_is_tested_here():
    twins = {name for name, d in warmup.dispatchers().items() if name.endswith(".serial")}
    covered = _arrays(np.random.default_rng(0), np.dtype(np.float32), 8)
    assert len(twins) == len(covered)
    assert all(hasattr(kernel, "serial") for kernel in covered)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 1000, 70001])
def test_the_serial_twin_computes_the_bits_of_the_parallel_build(dtype, n):
    dtype = np.dtype(dtype)
    fastlstm.set_num_threads(2)
    try:
        for kernel, args in _arrays(np.random.default_rng(n), dtype, n).items():
            outs = []
            for build in (kernel, kernel.serial):
                copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
                result = build(*copies)
                outs.append([result] + [a for a in copies if isinstance(a, np.ndarray)])
            for a, b in zip(*outs):
                np.testing.assert_array_equal(a, b, err_msg=kernel.py_func.__name__, strict=True)
    finally:
        fastlstm.set_num_threads(1)


def test_small_calls_and_one_thread_take_the_serial_twin():
    own = lanes.Lanes(min_parallel_items=100)
    fastlstm.set_num_threads(2)
    try:
        assert own.loop(optim.sgd, 99) is optim.sgd.serial
        assert own.loop(optim.sgd, 100) is optim.sgd
        assert own.loop(optim.adam, 24) is optim.adam.serial  # an Adam item costs ARITHMETIC sgd items
        assert own.loop(optim.adam, 25) is optim.adam
        fastlstm.set_num_threads(1)
        assert own.loop(optim.sgd, 10 ** 9) is optim.sgd.serial
    finally:
        fastlstm.set_num_threads(1)
