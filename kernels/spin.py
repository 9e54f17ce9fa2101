"""A barrier for the recurrence's lanes that spins instead of sleeping, inside compiled code.

The lanes meet once per time step, well under a millisecond apart. A thread that sleeps on a
lock there costs a wake-up and the GIL on the way back in.
Here each lane publishes how many steps it has finished in its own slot of an int64 array
(`progress`), with release order, and waits, with acquire order, until every lane has
published as many. The wait gives up after `spins` rounds and reports it, so that the
caller can sleep a moment and come back: a lane that lost its core for a while does not
keep the other one spinning for long.
"""

import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# progress[ABORT] (after the lanes' slots) is set when a lane failed: the others stop waiting.
ABORT = -1


def _slot_pointer(context, builder, array_type, array, index):
    return cgutils.get_item_pointer(context, builder, array_type, context.make_array(array_type)(context, builder, array),
                                    [index], wraparound=False)


@intrinsic
def _load_acquire(typingctx, progress, i):
    """progress[i], read with acquire order: what the lane wrote before publishing it is visible."""
    if not (isinstance(progress, types.Array) and progress.dtype == types.int64 and progress.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        pointer = _slot_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(pointer, "acquire", 8)

    return types.int64(progress, i), codegen


@intrinsic
def _store_release(typingctx, progress, i, value):
    """progress[i] = value with release order: everything this lane wrote before is visible first."""
    if not (isinstance(progress, types.Array) and progress.dtype == types.int64 and progress.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        pointer = _slot_pointer(context, builder, signature.args[0], args[0], args[1])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, pointer, "release", 8)
        return context.get_dummy_value()

    return types.void(progress, i, value), codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@intrinsic
def _pause(typingctx):
    """The CPU's spin-wait hint (x86's `pause`), which frees the core's resources for the
    other hardware thread and saves power; nothing elsewhere."""
    def codegen(context, builder, signature, args):
        if _X86:
            builder.call(cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                        "llvm.x86.sse2.pause"), [])
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True, nogil=True, inline="always")
def publish(progress, lane, steps):
    """Lane `lane` has finished `steps` steps."""
    _store_release(progress, lane, steps)


@njit(cache=True, nogil=True, inline="always")
def wait_all(progress, steps, spins):
    """1 once every lane has published `steps`; 0 after `spins` rounds without; -1 when a lane
    failed (progress[ABORT] set)."""
    return wait_first(progress, progress.shape[0] - 1, steps, spins)


@njit(cache=True, nogil=True, inline="always")
def wait_first(progress, lanes, steps, spins):
    """wait_all for the first `lanes` slots of `progress` (a pool's, with a slot for each
    lane it may have)."""
    last = progress.shape[0] - 1
    for _ in range(spins):
        if _load_acquire(progress, last) != 0:
            return -1
        done = True
        for k in range(lanes):
            if _load_acquire(progress, k) < steps:
                done = False
                break
        if done:
            return 1
        _pause()
    return 0
