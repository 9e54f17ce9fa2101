"""Device selection for the CUDA kernels: is a GPU usable, and moving arrays to and from it.

numba.cuda is imported on first use only, so `import fastlstm` works without numba-cuda.
Setting NUMBA_ENABLE_CUDASIM=1 before numba.cuda is first imported runs everything on
Numba's CUDA simulator (slow, for tests).
"""

import functools
import importlib.util
import sys

import numpy as np

INSTALL_HINT = "pip install 'fastlstm[cuda]'"


@functools.cache
def _numba_cuda_installed():
    return importlib.util.find_spec("numba_cuda") is not None


def _cuda():
    """numba.cuda from numba-cuda, or None when numba-cuda is not installed."""
    if not _numba_cuda_installed():
        return None
    from numba import cuda
    return cuda


def simulated():
    """True when numba.cuda is Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    if not _numba_cuda_installed():
        return False
    from numba.cuda.core import config
    return bool(config.ENABLE_CUDASIM)


def available():
    """True when the CUDA kernels can run: numba-cuda installed and a GPU present, or the simulator on."""
    cuda = _cuda()
    return cuda is not None and cuda.is_available()


def require():
    """numba.cuda, or a RuntimeError that says what is missing and how to get it."""
    cuda = _cuda()
    if cuda is None:
        raise RuntimeError(f"the CUDA kernels need numba-cuda, which is not installed: {INSTALL_HINT}")
    if not cuda.is_available():
        error = cuda.cuda_error()
        reason = " ".join(str(error).split()) if error else "no CUDA device detected"
        raise RuntimeError(
            f"numba-cuda found no usable CUDA GPU ({reason}); "
            "check the NVIDIA driver with nvidia-smi, or set NUMBA_ENABLE_CUDASIM=1 before importing "
            "numba to run on Numba's CUDA simulator")
    return cuda


def is_device_array(x):
    """True for an array in GPU memory: a numba.cuda device array (also a simulated one), or any
    object with __cuda_array_interface__ (a CuPy array)."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    sim = sys.modules.get("numba.cuda.simulator.cudadrv.devicearray")
    return sim is not None and isinstance(x, sim.FakeCUDAArray)


def to_device(x):
    """x copied to the GPU, keeping its dtype and a C or F order; a device array is returned as is."""
    if is_device_array(x):
        return x
    cuda = require()
    x = np.asarray(x)
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        x = np.ascontiguousarray(x)
    return cuda.to_device(x)


def to_host(x):
    """x copied to a NumPy array; a NumPy array (or anything array-like) is returned via np.asarray."""
    if not is_device_array(x):
        return np.asarray(x)
    if not hasattr(x, "copy_to_host"):  # a foreign device array, e.g. CuPy's
        x = require().as_cuda_array(x)
    return x.copy_to_host()


def transpose(x):
    """x.T of a 2-D device array as a view of the same memory (numba's own .T copies, which
    would untie a tied weight)."""
    from fastlstm.kernels.linalg_cuda import transpose_view
    return transpose_view(x)
