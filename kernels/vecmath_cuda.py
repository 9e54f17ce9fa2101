"""CUDA twin of kernels/vecmath.py's sigmoid, for the cells' CUDA step kernels
(lstm_cuda.py, gru_cuda.py); tanh and exp are math's on the GPU.

The CPU's vectorised exp is a Numba overload, which numba-cuda cannot type without a live
GPU context, so the device function is written here again, per dtype: its constant 1
must have the arguments' dtype, or a float64 literal would promote float32 arithmetic.
"""

import functools
import math

from numba import cuda, from_dtype


@functools.cache
def sigmoid(dtype):
    """A device function x -> 1 / (1 + e**-x) in `dtype`'s arithmetic."""
    one = from_dtype(dtype)(1)

    @cuda.jit(device=True, inline=True)
    def device_sigmoid(x):
        return one / (one + math.exp(-x))

    return device_sigmoid
