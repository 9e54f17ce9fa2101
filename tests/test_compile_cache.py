"""Kernels compile once: a second fresh process loads every one from Numba's cache."""

import re
import subprocess
import sys


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
