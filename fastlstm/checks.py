"""Validation done in Python before any kernel runs: Numba does not check bounds, so
shapes, dtypes and token ids are refused here with messages that name the bad value."""

import numpy as np

from fastlstm.gpu import is_device_array

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def weights_dtype(**weights):
    """The one float dtype that all the named weight arrays (NumPy or device arrays) share."""
    dtype = None
    for name, w in weights.items():
        if not (isinstance(w, np.ndarray) or is_device_array(w)):
            raise TypeError(f"{name} must be a NumPy array, got {type(w).__name__}")
        if w.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float32 or float64, got {w.dtype}")
        if dtype is not None and w.dtype != dtype:
            listed = ", ".join(f"{name} {w.dtype}" for name, w in weights.items())
            raise TypeError(f"weights must share one dtype, got {listed}")
        dtype = w.dtype
    return dtype


def positive_int(value, name):
    """value as an int, refusing anything but a positive integer (bools too)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_ndim(w, ndim, name):
    """Refuse an array that does not have `ndim` dimensions."""
    if w.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {w.shape}")


def as_floats(x, ndim, dtype, name, device=False):
    """x as a C-contiguous array of `dtype` (the weights'), refusing other ranks and non-float
    data; ndim None takes any rank, dtype None keeps x's own, which must be float32 or float64.

    With device=True (the CUDA backend) a device array is returned as it is, and must then
    already be C-contiguous and of `dtype`: nothing casts or copies on the GPU.
    """
    device = device and is_device_array(x)
    if not device:
        x = np.asarray(x)
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if dtype is None:
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
        dtype = x.dtype
    elif x.dtype.kind != "f":
        raise TypeError(f"{name} must hold floats, got {x.dtype}")
    if not device:
        return np.ascontiguousarray(x, dtype=dtype)
    if x.dtype != dtype or not x.is_c_contiguous():
        raise TypeError(f"{name} is a device array of {x.dtype}, strides {x.strides}; "
                        f"this layer takes C-contiguous {np.dtype(dtype)}")
    return x


def as_token_ids(ids, vocab_size, name, ignore_label=None):
    """ids as a C-contiguous integer array (no copy when it already is one), refusing
    non-integers and ids outside [0, vocab_size) other than ignore_label."""
    ids = np.ascontiguousarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids, got {ids.dtype}")
    if ids.size == 0:
        return ids
    one = ids.size == 1  # one token (generation): its value, with no reductions to start
    if (ids.reshape(-1)[0] if one else ids.max()) < vocab_size:
        lo = ids.reshape(-1)[0] if one else ids.min()
        if lo >= 0 or (lo == ignore_label and not ((ids < 0) & (ids != ignore_label)).any()):
            return ids
    flat = ids.reshape(-1)
    bad = (flat >= vocab_size) | (flat < 0)
    if ignore_label is not None:
        bad &= flat != ignore_label
    first = flat[np.argmax(bad)]
    allowed = f"[0, {vocab_size})" + ("" if ignore_label is None else f" or {ignore_label}")
    raise IndexError(f"{name} holds token id {first}, outside {allowed}")


def check_shape(x, shape, name):
    """Refuse an array whose shape is not `shape`."""
    if x.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {x.shape}")


def c_order_view(grad):
    """(buffer, transposed): a C-contiguous view of a gradient array for BLAS to write into.

    A gradient shaped like a tied, transposed weight is F-contiguous; its transpose is
    C-contiguous and the kernel then writes the transposed product.
    """
    if grad.flags.c_contiguous:
        return grad, False
    if grad.flags.f_contiguous:
        return grad.T, True
    raise ValueError(f"gradient buffers must be contiguous, got strides {grad.strides}")


def converted_weights(saved, params, source, owner):
    """`saved`, weights read from `source` for the `params` of `owner` (a model's name), each converted to its param's
    dtype (None entries kept: a checkpoint's place for a view of an earlier param). Refuses
    (ValueError naming `source`) a wrong count, shape or dtype, and a value that is not finite
    once converted: the check sees what the model would hold, so 1e300 is refused for float32."""
    if len(saved) != len(params):
        raise ValueError(f"{source} holds {len(saved)} arrays, but {owner} has {len(params)} params")
    converted = []
    for i, (p, a) in enumerate(zip(params, saved)):
        if a is None:
            converted.append(None)
            continue
        if a.shape != p.shape:
            raise ValueError(f"{source}: array {i} has shape {a.shape}, expected {p.shape}")
        if a.dtype.kind != "f":
            raise ValueError(f"{source}: array {i} has dtype {a.dtype}, expected a float dtype")
        with np.errstate(over="ignore", invalid="ignore"):  # overflow shows as inf, refused below
            a = a.astype(p.dtype)
        if not np.isfinite(a).all():
            raise ValueError(f"{source}: array {i} holds NaN or inf, or values beyond {p.dtype}'s range")
        converted.append(a)
    return converted
