"""Compiled kernels of fastlstm: plain functions on arrays, with no layer or model logic.

Dimension letters used throughout: N batch, T time steps, D input width, H hidden width,
V vocabulary size, M = N*T rows. Every kernel writes into preallocated outputs; the
callers in `fastlstm` validate shapes, dtypes and token ids before calling in, since
Numba does not check bounds.
"""

import hashlib
from pathlib import Path

from numba.core import caching

HERE = Path(__file__).resolve().parent


def sources_digest(directory=HERE):
    """sha256 of the names and contents of the kernel sources in `directory`."""
    digest = hashlib.sha256()
    for path in sorted(Path(directory).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _covering_all_sources(locator, digest):
    """A subclass of Numba cache locator `locator` for the kernels here, whose freshness
    stamp also covers every other kernel source."""
    class Locator(locator):
        @classmethod
        def from_function(cls, py_func, py_file):
            if Path(py_file).resolve().parent != HERE:
                return None
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            return super().get_source_stamp(), digest
    return Locator


# Numba's cache checks only the file a kernel is defined in: a kernel that inlines
# vecmath's exp kept running the old exp from the cache after vecmath.py changed. These
# locators (Numba's own, in its order) make a change to any kernel source recompile them all.
caching.CacheImpl._locator_classes[:0] = [
    _covering_all_sources(locator, sources_digest())
    for locator in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)]
