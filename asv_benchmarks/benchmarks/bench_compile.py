"""First-call cost of the float32 kernels in a fresh process (`python -m fastlstm.warmup`:
one training and one evaluation step of tiny models): with Numba's cache warm (loading)
and cold (compiling everything, NUMBA_CACHE_DIR set to a fresh temporary folder)."""

import os
import re
import subprocess
import sys
import tempfile

WARMUP_LINE = re.compile(r"warm-up ([\d.]+) s: (\d+) kernels loaded from the cache, (\d+) compiled")


def first_call(**env):
    """(seconds, kernels loaded, kernels compiled) as a fresh `python -m fastlstm.warmup` reports them."""
    out = subprocess.run([sys.executable, "-m", "fastlstm.warmup"], env={**os.environ, **env},
                         capture_output=True, text=True, check=True).stdout
    match = WARMUP_LINE.search(out)
    if match is None:
        raise RuntimeError(f"unexpected output of python -m fastlstm.warmup: {out!r}")
    return float(match[1]), int(match[2]), int(match[3])


class FirstCall:
    """Seconds of the first training and evaluation calls of a fresh process."""

    timeout = 600
    unit = "seconds"

    def setup(self):
        first_call()  # fill the default cache, so that the warm case only loads

    def track_warm_cache(self):
        seconds, _, compiled = first_call()
        if compiled:
            raise RuntimeError(f"{compiled} kernels were compiled again instead of loaded from the cache")
        return seconds

    def track_cold_cache(self):
        with tempfile.TemporaryDirectory(prefix="fastlstm-numba-cache-") as cache:
            return first_call(NUMBA_CACHE_DIR=cache)[0]
