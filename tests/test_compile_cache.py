"""Kernels compile once: a second fresh process loads every one from Numba's cache."""

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
