"""Arrays a layer keeps from call to call, so that evaluation allocates nothing after its first step."""

import numpy as np


def fresh(name, shape, dtype):
    """A new array on every call: the training path, whose arrays backward still needs."""
    return np.empty(shape, dtype=dtype)


class Workspace:
    """Named arrays reused while their shape and dtype stay the same; `alloc(shape, dtype=...)`
    makes them (the backend's `empty`: np.empty, or a device allocator)."""

    def __init__(self, alloc=np.empty):
        self._alloc = alloc
        self._arrays = {}

    def __getstate__(self):
        """A pickle or a copy starts with no arrays: they are scratch, remade on first use."""
        return {"_alloc": self._alloc, "_arrays": {}}

    def empty(self, name, shape, dtype):
        """The array kept under `name`, made anew only when the shape or dtype changes."""
        a = self._arrays.get(name)
        if a is None or a.shape != tuple(shape) or a.dtype != dtype:
            a = self._arrays[name] = self._alloc(shape, dtype=dtype)
        return a
