"""Device selection for the CUDA kernels: is a GPU usable, and moving arrays to and from it,
also when an object that holds device arrays is pickled or copied.

numba.cuda is imported on first use only, so `import fastlstm` works without numba-cuda.
Setting NUMBA_ENABLE_CUDASIM=1 before numba.cuda is first imported runs everything on
Numba's CUDA simulator (slow, for tests).
"""

import functools
import importlib.util
import sys
import weakref

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
    if type(x) is np.ndarray:  # the common case, asked many times a step
        return False
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


def address(a):
    """The address of a's first element: device memory for a GPU array, host memory for the rest
    (a simulated device array lends its NumPy array's interface)."""
    if hasattr(a, "__cuda_array_interface__"):
        return a.__cuda_array_interface__["data"][0]
    return a.__array_interface__["data"][0]


class _HostCopy:
    """Stands for a device array in a pickle or a deep copy: written as a host copy (made
    then), read back as a new device array."""

    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        return to_device, (to_host(self.array),)


class _Transposed:
    """Stands for a transposed view (a tied `W.T`) as the transpose of what stands for the
    array it views, so that the copy is a view of the copied array: tied weights stay tied."""

    def __init__(self, view, base):
        self.view = view  # kept alive: the registry's key is its id
        self.base = base

    def __reduce__(self):
        return (transpose if is_device_array(self.view) else np.transpose), (self.base,)


# key -> stand-in: one stand-in for one array (or, on the GPU, for one piece of device memory
# seen one way), so that an array that several objects of one pickle reach (a model's params
# and its layers' params) comes back as one. A stand-in holds its array, so the key stays
# that array's while the entry lives.
_stand_ins = weakref.WeakValueDictionary()


def _is_transpose_of(view, base):
    return (base.ndim == 2 and view.shape == base.shape[::-1] and view.strides == base.strides[::-1]
            and address(view) == address(base))


def _registered(key, make, *args):
    """The stand-in under `key`, made by make(*args) when there is none."""
    stand_in = _stand_ins.get(key)
    if stand_in is None:
        stand_in = _stand_ins[key] = make(*args)
    return stand_in


def _stand_in(a):
    """What stands for the array a in a pickle or a deep copy: a itself for a host array that
    is not a transposed view of another."""
    if not is_device_array(a):
        if isinstance(a.base, np.ndarray) and _is_transpose_of(a, a.base):
            return _registered(("transposed", id(a)), _Transposed, a, a.base)
        return a
    if a.ndim == 2 and not a.is_c_contiguous() and a.is_f_contiguous():
        return _registered(("transposed", id(a)), _Transposed, a, _stand_in(transpose(a)))
    return _registered(("device", address(a), a.shape, a.strides, a.dtype.str), _HostCopy, a)


def picklable(state):
    """`state` with its arrays (through dicts, lists and tuples) replaced by what stands for
    them (`_stand_in`); `state` itself when nothing was replaced. Device arrays go through the
    host, neither numba's nor the simulator's pickling or deep-copying by themselves; views
    that tie weights stay views."""
    if is_device_array(state) or isinstance(state, np.ndarray):
        return _stand_in(state)
    if isinstance(state, (list, tuple, dict)):
        items = list(state.items() if isinstance(state, dict) else enumerate(state))
        replaced = {k: picklable(v) for k, v in items}
        if all(replaced[k] is v for k, v in items):
            return state
        return replaced if isinstance(state, dict) else type(state)(replaced.values())
    return state


class HostPickled:
    """Pickled and deep-copied through `picklable`: the copy holds new device arrays of the same
    values, and tied weights stay tied. A shallow copy shares every array, as it shares all."""

    def __getstate__(self):
        return picklable(self.__dict__)

    def __copy__(self):
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone
