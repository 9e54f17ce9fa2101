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


def _cover_all_sources():
    """Numba's cache checks only the file a kernel is defined in: a kernel that inlines
    vecmath's exp kept running the old exp from the cache after vecmath.py changed. Ahead
    of Numba's cache locators go the same ones, in the same order, for the kernels here,
    so that a change to any kernel source recompiles them all. Where a Numba names its
    locator list otherwise, its caches stay as they are (tests/test_compile_cache.py fails)."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    locators = getattr(impl, "_locator_classes", None)
    if locators is not None:
        digest = sources_digest()
        locators[:0] = [_covering_all_sources(locator, digest) for locator in list(locators)]


_cover_all_sources()
