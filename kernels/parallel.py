"""Kernels with parallel loops, compiled twice: on Numba's threads, and serial, on the caller's
thread alone.

Handing a loop to Numba's threads costs a wake-up of each (and on a machine whose cores also
run fastlstm's lanes, a thread that spins for the next loop); below some work it costs more
than the threads save. `Lanes.loop` picks the serial twin there (fastlstm/lanes.py). The twins
compute the same bits: a parallel loop's iterations do not depend on one another or on where
the loop is cut (tests/test_kernel_twins.py).
"""

import types

from numba import njit


# The cost of an item in a kernel with an exp, a random draw or a square root and a division per
# item (softmax, dropout's masks, Adam): their parallel builds pay from a quarter of the items the
# memory-bound kernels' need (scripts/parallel_threshold.py).
ARITHMETIC = 4


def parallel_kernel(*signatures, cost=1, **options):
    """njit(*signatures, parallel=True, cache=True, **options), and the same function compiled
    without `parallel` as the result's `serial`. The twin is a copy of the function with its
    own qualified name, so that Numba's cache keeps the two builds apart. `cost`, the
    result's `cost`, weighs an item's work against the memory-bound kernels' (1): a kernel
    with more arithmetic per item starts to pay on threads at fewer items."""
    def compile_both(fn):
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
        twin.__qualname__ = f"{fn.__qualname__}_serial"
        twin.__module__, twin.__doc__ = fn.__module__, fn.__doc__
        kernel = njit(*signatures, parallel=True, cache=True, **options)(fn)
        kernel.serial = njit(*signatures, cache=True, **options)(twin)
        kernel.cost = cost
        return kernel
    return compile_both
