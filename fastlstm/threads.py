"""One thread setting for Numba's parallel loops, fastlstm's lanes (fastlstm/lanes.py) and the
BLAS libraries behind NumPy and SciPy."""

import functools
import os
from contextlib import contextmanager

import numba
import threadpoolctl

_ENV = "FASTLSTM_NUM_THREADS"


def set_num_threads(n):
    """Use `n` threads in Numba kernels, `n` lanes in the layers' products and recurrences, and
    `n` threads in every loaded BLAS for code outside the layers (inside, BLAS runs single-threaded
    in each lane), so none of them oversubscribes the cores."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"number of threads must be an int, got {n!r}")
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(f"number of threads must be in [1, {limit}], got {n}")
    numba.set_num_threads(n)
    threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    _blas_controllers.cache_clear()


def get_num_threads():
    """The thread count that Numba kernels and the lanes use now."""
    return numba.get_num_threads()


@functools.lru_cache(maxsize=None)
def _blas_controllers():
    """threadpoolctl's handles on the loaded BLAS libraries: setting their threads through them takes microseconds."""
    return tuple(c for c in threadpoolctl.ThreadpoolController().lib_controllers if c.user_api == "blas")


@contextmanager
def single_threaded_blas():
    """Run the block's BLAS calls on one thread: fastlstm's lanes split the work over the
    cores themselves (fastlstm/lanes.py)."""
    controllers = _blas_controllers()
    before = [c.get_num_threads() for c in controllers]
    for c in controllers:
        c.set_num_threads(1)
    try:
        yield
    finally:
        for c, n in zip(controllers, before):
            c.set_num_threads(n)


def blas_num_threads():
    """The thread counts of the loaded BLAS libraries, one per library."""
    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]


def apply_env():
    """Apply FASTLSTM_NUM_THREADS when it is set; the default is every core."""
    value = os.environ.get(_ENV)
    if value is None or value == "":
        return
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{_ENV} must be an integer, got {value!r}") from None
    set_num_threads(n)
