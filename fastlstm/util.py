"""The book's `common.util` helpers for training: gradient clipping, perplexity, weight tying, device transfer.

`remove_duplicate` lives in the book's `common.trainer`; it is here, beside the other
helpers on params and grads, for the trainer to import.
"""

import functools
import inspect
import sys

import numpy as np

from fastlstm.kernels import optim as _k

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_arrays(name, arrays):
    """Refuse anything but a list or tuple of writeable float32/float64 ndarrays."""
    if not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{name} must be a list of numpy arrays, got {type(arrays).__name__}")
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}[{i}] must be a numpy.ndarray, got {type(a).__name__}")
        if a.dtype not in _FLOATS:
            raise TypeError(f"{name}[{i}] has dtype {a.dtype}; only float32 and float64 are supported")
        if not a.flags.writeable:
            raise ValueError(f"{name}[{i}] is read-only; it must be updated in place")


def _check_params_grads(params, grads):
    """Refuse params/grads lists that differ in length, or any pair that differs in shape or dtype."""
    _check_arrays("params", params)
    _check_arrays("grads", grads)
    if len(params) != len(grads):
        raise ValueError(f"params holds {len(params)} arrays but grads holds {len(grads)}")
    for i, (p, g) in enumerate(zip(params, grads)):
        if p.shape != g.shape:
            raise ValueError(f"grads[{i}] has shape {g.shape} but params[{i}] has shape {p.shape}")
        if p.dtype != g.dtype:
            raise TypeError(f"grads[{i}] has dtype {g.dtype} but params[{i}] has dtype {p.dtype}")


def _flat_views(*arrays):
    """1-D views (never copies) of arrays that are all C- or all F-contiguous, in memory order; else None.

    Equal memory order makes element k of every view the same logical element.
    """
    if all(a.flags.c_contiguous for a in arrays):
        return tuple(a.reshape(-1, order="C") for a in arrays)
    if all(a.flags.f_contiguous for a in arrays):
        return tuple(a.reshape(-1, order="F") for a in arrays)
    return None


def clip_grads(grads, max_norm):
    """Scale all grads in place by max_norm / (norm + 1e-6) when that is below 1 (the book's rule).

    The norm is the square root of the sum of squares over all grads. Returns the norm
    before clipping, as a float (NaN or inf when a gradient holds one; then nothing is scaled).
    """
    _check_arrays("grads", grads)
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.integer, np.floating)):
        raise TypeError(f"max_norm must be a real number, got {max_norm!r}")
    if not (np.isfinite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm must be finite and >= 0, got {max_norm}")
    total = 0.0
    for g in grads:
        flat = _flat_views(g)
        if flat is None:
            total += float(np.sum(np.square(g, dtype=np.float64)))
        else:
            total += _k.sum_squares(flat[0])
    total_norm = float(np.sqrt(total))
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for g in grads:
            flat = _flat_views(g)
            if flat is None:
                g *= rate
            else:
                _k.scale(flat[0], g.dtype.type(rate))
    return total_norm


def _accepts_train_flg(function):
    """Whether `function` takes a train_flg keyword."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature to read: pass it, as the book's first try does
        return True
    return any(p.name == "train_flg" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def eval_perplexity(model, corpus, batch_size=10, time_size=35):
    """Perplexity of `model` on `corpus` with the book's protocol: batch_size streams
    `jump` tokens apart, time_size steps per batch, exp of the mean batch loss.

    Calls `model.forward(xs, ts, train_flg=False)`, or `model.forward(xs, ts)` for a model
    whose forward takes no train_flg (the book's Rnnlm). The book tells the two apart by
    catching TypeError, which would also swallow a real TypeError raised inside forward
    and silently evaluate in training mode; the signature tells them apart instead.
    """
    for name, value in (("batch_size", batch_size), ("time_size", time_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    corpus = np.asarray(corpus)
    if corpus.ndim != 1 or not np.issubdtype(corpus.dtype, np.integer):
        raise ValueError(f"corpus must be a 1-D sequence of integer word ids, got shape {corpus.shape} "
                         f"and dtype {corpus.dtype}")
    corpus_size = len(corpus)
    max_iters = (corpus_size - 1) // (batch_size * time_size)
    if max_iters < 1:
        raise ValueError(f"corpus of {corpus_size} tokens is too short for one batch of {batch_size} x {time_size}; "
                         f"it needs at least {batch_size * time_size + 1} tokens")
    jump = (corpus_size - 1) // batch_size

    forward = model.forward
    if _accepts_train_flg(forward):
        forward = functools.partial(forward, train_flg=False)
    print('evaluating perplexity ...')
    # position of xs[i, t] in the first batch; later batches shift it by time_size each
    base = np.arange(batch_size)[:, None] * jump + np.arange(time_size)[None, :]
    total_loss = 0
    for iters in range(max_iters):
        pos = base + iters * time_size
        xs = corpus[pos % corpus_size].astype(np.int32)
        ts = corpus[(pos + 1) % corpus_size].astype(np.int32)
        total_loss += forward(xs, ts)

        sys.stdout.write('\r%d / %d' % (iters, max_iters))
        sys.stdout.flush()

    print('')
    return np.exp(total_loss / max_iters)


def _tied(a, b):
    """True when b is exactly a.T laid over the same memory (the weight-tied embed_W / embed_W.T)."""
    return (a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and b.shape == a.shape[::-1] and b.strides == a.strides[::-1])


def _equal_transposed(a, b):
    """The book's test `np.all(a.T == b)`, after a cheap first-column check that rejects most pairs."""
    if a.size and np.any(a[:, 0] != b[0, :]):
        return False
    return bool(np.all(a.T == b))


def remove_duplicate(params, grads):
    """Merge shared weights, as the book does: new lists without the duplicates, their grads summed in.

    A param that is the same object as an earlier one adds its grad to that one's; a
    2-D param equal to the transpose of an earlier one (weight tying: embed_W and
    embed_W.T) adds its transposed grad. A transposed view of the same memory is
    recognised from its data pointer, shape and strides, without comparing values;
    only separate arrays of transposed shapes are compared by value, as in the book.
    """
    _check_params_grads(params, grads)
    params, grads = list(params), list(grads)
    # The book rescans from the start after each merge; pairs already found unequal stay
    # unequal (merging changes grads, not params), so resuming at the same (i, j) is the same.
    i = 0
    while i < len(params):
        j = i + 1
        while j < len(params):
            a, b = params[i], params[j]
            if a is b:
                grads[i] += grads[j]
            elif a.ndim == 2 and b.ndim == 2 and b.shape == a.shape[::-1] and (_tied(a, b) or _equal_transposed(a, b)):
                grads[i] += grads[j].T
            else:
                j += 1
                continue
            params.pop(j)
            grads.pop(j)
        i += 1
    return params, grads


def to_cpu(x):
    """A NumPy array of x: device arrays (anything with `copy_to_host`) are copied to the host."""
    if hasattr(x, "copy_to_host"):
        return x.copy_to_host()
    return np.asarray(x)


def to_gpu(x):
    """A CUDA device array of x. The one place where host arrays move to the GPU; not implemented yet."""
    raise RuntimeError("the CUDA path needs numba-cuda (pip install 'fastlstm[cuda]') and a CUDA GPU, "
                       "and is not implemented yet; keep config.GPU = False")
