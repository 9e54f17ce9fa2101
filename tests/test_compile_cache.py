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
