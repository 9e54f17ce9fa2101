"""One thread setting governs Numba's kernels and every loaded BLAS together, and changes no
bit of a model's results."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastlstm
from fastlstm import blas
from fastlstm.models import BetterRnnlm, Rnnlm
from fastlstm.optimizer import SGD
from fastlstm.threads import blas_num_threads, single_threaded_blas
from fastlstm.time_layers import TimeGRU, TimeRNN
from fastlstm.trainer import remove_duplicate
from fastlstm.training_step import train_step
from fastlstm.util import clip_grads


def test_set_num_threads_sets_numba_and_blas():
    before = fastlstm.get_num_threads()
    try:
        fastlstm.set_num_threads(1)
        assert numba.get_num_threads() == 1
        assert blas_num_threads() and set(blas_num_threads()) == {1}
        top = numba.config.NUMBA_NUM_THREADS
        fastlstm.set_num_threads(top)
        assert numba.get_num_threads() == top
        assert set(blas_num_threads()) == {top}
    finally:
        fastlstm.set_num_threads(before)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads")
def test_a_training_step_runs_blas_on_one_thread_and_gives_its_threads_back():
    before = fastlstm.get_num_threads()
    seen = []
    model = Rnnlm(13, 4, 5)
    forward = model.forward
    model.forward = lambda *args: seen.append(blas_num_threads()) or forward(*args)
    try:
        fastlstm.set_num_threads(2)
        xs = np.zeros((2, 3), dtype=int)
        train_step(model, SGD(0.1), xs, xs, max_grad=1.0)
        assert set(seen[0]) == {1}
        assert set(blas_num_threads()) == {2}
        with single_threaded_blas():
            with single_threaded_blas():
                assert set(blas_num_threads()) == {1}
            assert set(blas_num_threads()) == {1}  # the inner block leaves the outer's setting
        assert set(blas_num_threads()) == {2}
    finally:
        fastlstm.set_num_threads(before)


def test_environment_variable_applies_at_import():
    code = ("import fastlstm, numba; from fastlstm.threads import blas_num_threads; "
            "print(numba.get_num_threads(), sorted(set(blas_num_threads())))")
    env = dict(os.environ, FASTLSTM_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "[1]"]


@pytest.mark.parametrize("bad,error", [(0, ValueError), (10**6, ValueError), (1.5, TypeError), ("2", TypeError)])
def test_bad_thread_counts(bad, error):
    with pytest.raises(error, match="number of threads"):
        fastlstm.set_num_threads(bad)


@pytest.mark.parametrize("value", ["many", "0", "100000"])
def test_a_bad_environment_value_is_ignored_with_a_warning(value):
    """A bad value never stops the import (nor `fastlstm --help`): one warning, and every core."""
    env = dict(os.environ, FASTLSTM_NUM_THREADS=value)
    code = "import fastlstm, numba; print(numba.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == numba.config.NUMBA_NUM_THREADS
    top = numba.config.NUMBA_NUM_THREADS
    assert (f"FASTLSTM_NUM_THREADS must be an integer in [1, {top}], got {value!r}; ignored, using {top} threads"
            in out.stderr) and "Traceback" not in out.stderr


def test_help_works_whatever_the_environment():
    env = dict(os.environ, FASTLSTM_NUM_THREADS="abc")
    out = subprocess.run([sys.executable, "-m", "fastlstm", "--help"], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout and "Traceback" not in out.stderr


@pytest.mark.parametrize("model", [BetterRnnlm, Rnnlm])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_gives_the_same_bits_on_one_thread_and_on_two(model, dtype):
    """Products cut at multiples of BLAS's row blocks (fastlstm.blas.row_quantum), the
    recurrence by units, the kernels in blocks fixed by size: the thread count changes no bit
    (on a BLAS without such a block, the even split rounds the products by blocks)."""
    runs = []
    before = fastlstm.get_num_threads()
    try:
        for n in (1, 2):
            fastlstm.set_num_threads(n)
            runs.append(_train_and_evaluate(model, dtype))
    finally:
        fastlstm.set_num_threads(before)
    (losses1, params1), (losses2, params2) = runs
    if blas.row_quantum(np.dtype(dtype)) is None:
        np.testing.assert_allclose(losses1, losses2, rtol=1e-4)
        return
    assert losses1 == losses2
    for p1, p2 in zip(params1, params2):
        np.testing.assert_array_equal(p1, p2)


def _train_and_evaluate(model, dtype):
    """Losses of 3 training steps and of an evaluation, and the weights at the end. The
    products are split over lanes (by the lanes' speeds; Rnnlm's smaller LSTM products
    evenly), BetterRnnlm's recurrences too."""
    np.random.seed(0)
    width = 300 if model is BetterRnnlm else 100
    net = model(vocab_size=1000, wordvec_size=width, hidden_size=width, dtype=dtype)
    xs, ts = np.random.default_rng(0).integers(0, 1000, size=(2, 20, 35))
    optimizer, losses = SGD(20.0), []
    for _ in range(3):
        losses.append(net.forward(xs, ts))
        net.backward()
        params, grads = remove_duplicate(net.params, net.grads)
        clip_grads(grads, 0.25)
        optimizer.update(params, grads)
    net.reset_state()
    losses.append(net.forward(xs[:10], ts[:10], train_flg=False))
    return losses, [p.copy() for p in net.params]


@pytest.mark.parametrize("model", ["variational", "awd"])
def test_regularised_training_gives_the_same_bits_on_one_thread_and_on_two(model):
    """Every regulariser on (locked, recurrent and embedding dropout, weight drop, AR, TAR)
    and ASGD averaging: the masks come from the counter-based generator, the recurrence is
    cut by units, the penalties sum in fixed blocks; the thread count changes no bit."""
    from fastlstm.models import AwdRnnlm, VariationalRnnlm
    from fastlstm.optimizer import ASGD
    from fastlstm.training_step import train_step

    def run():
        np.random.seed(0)
        if model == "variational":
            net = VariationalRnnlm(1000, 300, 300, weight_drop=0.3, alpha=2.0, beta=1.0)
        else:
            net = AwdRnnlm(1000, 100, 300)
        xs, ts = np.random.default_rng(0).integers(0, 1000, size=(2, 20, 35))
        optimizer, losses = ASGD(20.0, nonmono=1, weight_decay=1e-4), []
        for figure in (3.0, 2.0, 2.5, 2.6):  # 2.6: worse than the best before the last check: averaging starts
            optimizer.observe(figure)
        for _ in range(3):
            losses.append(train_step(net, optimizer, xs, ts, 0.25)[0])
        net.reset_state()
        losses.append(net.forward(xs[:10], ts[:10], train_flg=False))
        return losses, [p.copy() for p in net.params] + optimizer.ax

    runs = []
    before = fastlstm.get_num_threads()
    try:
        for n in (1, 2):
            fastlstm.set_num_threads(n)
            runs.append(run())
    finally:
        fastlstm.set_num_threads(before)
    (losses1, arrays1), (losses2, arrays2) = runs
    if blas.row_quantum(np.dtype(np.float32)) is None:
        np.testing.assert_allclose(losses1, losses2, rtol=1e-4)
        return
    assert losses1 == losses2
    for a1, a2 in zip(arrays1, arrays2):
        np.testing.assert_array_equal(a1, a2)


@pytest.mark.parametrize("options", [{}, dict(recurrent_dropout=0.3, weight_drop=0.4)])
@pytest.mark.parametrize("cls", [TimeRNN, TimeGRU])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rnn_and_gru_give_the_same_bits_on_one_thread_and_on_two(cls, dtype, options):
    """300 units: two lanes for the recurrence, and products large enough to split; with
    recurrent dropout and weight drop too."""
    rng = np.random.default_rng(1)
    N, T, D, H = 20, 35, 300, 300
    gates = 3 if cls is TimeGRU else 1
    weights = [(rng.standard_normal(s) / np.sqrt(H)).astype(dtype) for s in [(D, gates * H), (H, gates * H)]]
    weights += [] if cls is TimeGRU else [np.zeros(H, dtype)]
    xs, dhs = (rng.standard_normal((N, T, W)).astype(dtype) for W in (D, H))
    runs = []
    before = fastlstm.get_num_threads()
    try:
        for n in (1, 2):
            fastlstm.set_num_threads(n)
            layer = cls(*weights, **options)
            np.random.seed(0)
            runs.append([layer.forward(xs), layer.backward(dhs), layer.dh] + [g.copy() for g in layer.grads])
    finally:
        fastlstm.set_num_threads(before)
    exact = blas.row_quantum(np.dtype(dtype)) is not None
    for k, (one, two) in enumerate(zip(*runs)):
        if exact:
            np.testing.assert_array_equal(two, one, err_msg=f"result {k}")
        else:
            np.testing.assert_allclose(two, one, rtol=1e-4, err_msg=f"result {k}")
