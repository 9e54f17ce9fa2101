"""One thread setting for Numba's parallel loops, fastlstm's lanes (fastlstm/lanes.py) and the
BLAS libraries behind NumPy and SciPy; and the threading layer of Numba's parallel loops."""

import ctypes
import functools
import importlib.metadata
import itertools
import os
import threading
import warnings

import numba
import numpy
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
    _blas_switches.cache_clear()


def get_num_threads():
    """The thread count that Numba kernels and the lanes use now."""
    return numba.get_num_threads()


@functools.lru_cache(maxsize=None)
def _blas_switches():
    """(get, set) of the thread count of each loaded BLAS library: OpenBLAS's own two C
    functions where it runs its own threads (single_threaded_blas switches twice around each
    layer call that reaches BLAS, some of them tens of microseconds long, and threadpoolctl's
    wrappers around the same calls take several times longer), threadpoolctl's methods for
    any other library or threading layer."""
    return tuple(_openblas_switch(c) or (c.get_num_threads, c.set_num_threads)
                 for c in threadpoolctl.ThreadpoolController().lib_controllers if c.user_api == "blas")


def _openblas_switch(controller):
    """(get, set) of OpenBLAS's thread count as its C functions, or None where `controller`
    is not an OpenBLAS on its own threads (an OpenMP build takes OpenMP's per-thread limit,
    which threadpoolctl sets) or its symbols are not found."""
    if controller.internal_api != "openblas" or controller.threading_layer != "pthreads":
        return None
    lib = ctypes.CDLL(controller.filepath)
    get, put = openblas_symbol(lib, "openblas_get_num_threads"), openblas_symbol(lib, "openblas_set_num_threads")
    if get is None or put is None:
        return None
    return get[0], put[0]


def openblas_symbol(lib, name):
    """(function, ilp64) of OpenBLAS's `name` in `lib` (a ctypes.CDLL) under any of the
    names that builds give it (a prefix, and a suffix for the 64-bit-integer builds), or
    None."""
    for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
        function = getattr(lib, f"{prefix}{name}{suffix}", None)
        if function is not None:
            return function, suffix != ""
    return None


@functools.lru_cache(maxsize=None)
def numpy_openblas():
    """ctypes.CDLL of the OpenBLAS that NumPy's own wheel carries (in its `numpy.libs`
    folder, loaded with NumPy), or None (another BLAS, or one outside NumPy); looked up
    once, since threadpoolctl's scan of the loaded libraries takes milliseconds."""
    libs = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__))), "numpy.libs")
    for c in threadpoolctl.ThreadpoolController().lib_controllers:
        if c.user_api == "blas" and c.internal_api == "openblas" and os.path.dirname(os.path.realpath(c.filepath)) == libs:
            return ctypes.CDLL(c.filepath)
    return None


class single_threaded_blas:
    """Run the block's BLAS calls on one thread: fastlstm's lanes split the work over the
    cores themselves (fastlstm/lanes.py). A block inside another on the same thread, or
    where every BLAS runs on one thread already, changes nothing: a step enters one for
    each product, and each change of BLAS's threads costs microseconds. (A class: a
    generator-based context manager costs more than the smallest products.)"""

    _inside = threading.local()  # .depth: blocks open on this thread
    __slots__ = ("_changed",)

    def __enter__(self):
        depth = getattr(self._inside, "depth", 0)
        self._inside.depth = depth + 1
        self._changed = ()
        if depth == 0:
            try:
                self._changed = [(put, n) for get, put in _blas_switches() if (n := get()) != 1]
                for put, _ in self._changed:
                    put(1)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return self

    def __exit__(self, *exc):
        try:
            for put, n in self._changed:
                put(n)
        finally:
            self._inside.depth -= 1


def blas_num_threads():
    """The thread counts of the loaded BLAS libraries, one per library."""
    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]


def env_problem():
    """What is wrong with FASTLSTM_NUM_THREADS (None when it is unset or a valid thread count)."""
    value = os.environ.get(_ENV, "").strip()
    if value == "":
        return None
    limit = numba.config.NUMBA_NUM_THREADS
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or not 1 <= n <= limit:
        return f"{_ENV} must be an integer in [1, {limit}], got {value!r}"
    return None


def apply_env():
    """Apply FASTLSTM_NUM_THREADS when it is set; the default is every core. A bad value is
    ignored with a warning, so that importing fastlstm (and `fastlstm --help`) always works."""
    problem = env_problem()
    if problem is not None:
        warnings.warn(f"{problem}; ignored, using {get_num_threads()} threads", RuntimeWarning, stacklevel=3)
    elif os.environ.get(_ENV, "").strip():
        set_num_threads(int(os.environ[_ENV]))


def use_fork_safe_threading_layer():
    """Let Numba run its parallel loops on TBB, which a forked child (multiprocessing's default on
    Linux) can use too, where GNU OpenMP's child is killed at its first parallel loop.

    Numba takes the first threading layer it can load, TBB before OpenMP; but the `tbb` wheel
    puts libtbb in the environment's lib folder, where Numba's extension does not look. Loading
    it here first, before any parallel kernel, makes Numba find it (NUMBA_THREADING_LAYER, when
    set, still decides among the layers it finds). Without the wheel Numba chooses as it would.
    Call before any kernel is compiled or loaded.
    """
    try:
        files = importlib.metadata.files("tbb") or []
    except importlib.metadata.PackageNotFoundError:
        return
    for file in files:
        if file.name in ("libtbb.so.12", "libtbb.12.dylib"):
            try:
                ctypes.CDLL(str(file.locate()), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                return  # Numba then falls back to another layer, as without the wheel
            return
