"""Where a layer's array work runs: on the CPU (NumPy arrays and the CPU kernels) or on the
GPU (numba.cuda device arrays and the CUDA kernels).

The modules cpu.py and cuda.py define the same functions (their `__all__`): the array work
that is left once a layer has checked its inputs, which it checks the same way on either
side. A time layer picks its backend once, at construction (`choose`), keeps it and calls
it, so its class is the same on either device and a subclass stays itself. The book's plain
layers (fastlstm.layers) stay on the CPU (`host`).
"""

from fastlstm import config, gpu
from fastlstm.backends import cpu, cuda


class Backend:
    """A backend module's functions as attributes. It pickles and copies as its name, so a
    copied layer holds the same backend."""

    def __init__(self, module):
        self.name = module.__name__.rpartition(".")[2]
        self._module = module
        # bound once: a layer makes several backend calls per call, and __getattr__ is slow
        self.__dict__.update((name, getattr(module, name)) for name in module.__all__)

    def __getattr__(self, attr):
        return getattr(self._module, attr)

    def __reduce__(self):
        return get, (self.name,)

    def __repr__(self):
        return f"<fastlstm backend {self.name!r}>"


CPU = Backend(cpu)
CUDA = Backend(cuda)


def get(name):
    """The backend called `name`: "cpu" or "cuda"."""
    return {"cpu": CPU, "cuda": CUDA}[name]


def wants_gpu(*arrays):
    """True when a time layer built from these arguments runs on the GPU: one of them is a
    device array, or fastlstm.config.GPU is set."""
    return bool(config.GPU) or any(gpu.is_device_array(a) for a in arrays)


def choose(*arrays):
    """The backend of a time layer built from these arguments: CUDA when `wants_gpu`, once
    gpu.require() has found numba-cuda and a GPU (else its error says what is missing); the CPU otherwise."""
    if wants_gpu(*arrays):
        gpu.require()
        return CUDA
    return CPU


def host(*arrays):
    """The CPU backend, whatever the arguments: the book's plain layers run on the CPU."""
    return CPU
