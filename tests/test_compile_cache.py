"""Kernels compile once: a second fresh process loads every one from Numba's cache."""

import os
import re
import subprocess
import sys

import pytest


def run_warmup():
    out = subprocess.run([sys.executable, "-m", "fastlstm.warmup", "--float64"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    m = re.search(r"warm-up ([\d.]+) s: (\d+) kernels loaded from the cache, (\d+) compiled", out)
    assert m, out
    return float(m.group(1)), int(m.group(2)), int(m.group(3))


def test_a_fresh_process_loads_every_kernel_from_the_cache():
    run_warmup()  # compiles whatever earlier tests did not
    seconds, hits, misses = run_warmup()
    assert misses == 0, f"{misses} kernels were compiled again instead of loaded from the cache"
    assert hits >= 20


@pytest.mark.slow
def test_first_calls_with_a_warm_cache_take_under_3_s():
    """A bound on a loaded machine's timing, so opt-in; asv tracks the figure (bench_compile.FirstCall)."""
    run_warmup()
    seconds, _, misses = run_warmup()
    assert misses == 0
    assert seconds < 3.0, f"first calls with a warm cache took {seconds:.2f} s"


def test_a_change_to_any_kernel_source_recompiles_every_kernel(tmp_path):
    # Numba checks only a kernel's own file; a kernel inlining vecmath's exp must still be
    # recompiled when vecmath.py changes: its cache stamp covers every kernel source.
    from numba.core import caching

    from fastlstm import kernels
    from fastlstm.kernels import lstm
    (tmp_path / "vecmath.py").write_text("ONE = 1\n")
    before = kernels.sources_digest(tmp_path)
    (tmp_path / "vecmath.py").write_text("ONE = 1.0\n")
    assert kernels.sources_digest(tmp_path) != before
    locator, found = next((c, found) for c in caching.CacheImpl._locator_classes
                          if (found := c.from_function(lstm.lstm_step_forward.py_func, lstm.__file__)) is not None)
    assert found.get_source_stamp()[1] == kernels.sources_digest()
    assert locator.from_function(test_a_fresh_process_loads_every_kernel_from_the_cache, __file__) is None


def test_after_warm_up_training_and_evaluation_compile_nothing():
    code = """
import numpy as np
from fastlstm import warmup
from fastlstm.models import BetterRnnlm, Rnnlm, SimpleRnnlm
from fastlstm.optimizer import SGD
from fastlstm.training_step import train_step
warmup.warm_up()
before = {name: len(d.signatures) for name, d in warmup.dispatchers().items()}
for model in (SimpleRnnlm(17, 4, 6), Rnnlm(17, 4, 6), BetterRnnlm(17, 6, 6)):
    xs = np.random.randint(0, 17, size=(3, 4))
    for _ in range(3):
        train_step(model, SGD(0.1), xs, xs, 0.25)
    model.forward(xs, xs, train_flg=False)
print(sorted(name for name, d in warmup.dispatchers().items() if len(d.signatures) != before[name]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


FRESH_OR_CACHED = """
import hashlib
import numpy as np
from fastlstm.kernels import one_row, optim, softmax
rng = np.random.default_rng(0)
digest = hashlib.sha256()
for dtype in (np.float32, np.float64):
    row, W, b = (rng.standard_normal(s).astype(dtype) for s in (37, (37, 301), 301))
    for j0, out in ((0, np.empty(301, dtype)), (11, np.empty(290, dtype))):
        one_row.row_times_rows(row, W, b, j0, out)
        digest.update(out.tobytes())
        one_row.row_times_columns(row, np.ascontiguousarray(W.T), b, j0, out, np.empty(one_row.PARTIALS, dtype))
        digest.update(out.tobytes())
    x = (rng.standard_normal((7, 1001)) * 3).astype(dtype)
    ts = rng.integers(-1, 1001, 7)
    ts[0] = 5
    loss, exps = np.zeros(7), np.empty((2, 1001), dtype)
    softmax.softmax_cross_entropy_forward(x, ts, loss, exps)
    loss2, dx = np.zeros(7), np.empty_like(x)
    softmax.softmax_cross_entropy_forward_backward(x, ts, loss2, dtype(1 / 7), dx)
    norm = optim.sum_squares(np.ascontiguousarray(x.ravel()))
    for a in (loss, loss2, dx, np.float64(norm)):
        digest.update(np.ascontiguousarray(a).tobytes())
print(digest.hexdigest())
"""


def test_kernels_loaded_from_the_cache_compute_the_bits_of_fresh_ones(tmp_path):
    """The first process compiles the kernels that sum (softmax's rows, the gradient norm, the
    one-row products) into
    an empty cache, the second loads them: their results agree to the bit."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", FRESH_OR_CACHED], env=env, capture_output=True, text=True,
                           timeout=600, check=True).stdout for _ in range(2)]
    assert any(tmp_path.rglob("softmax.*.nbc")), "the first run wrote no cache"
    assert runs[0] == runs[1]
