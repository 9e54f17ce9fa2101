"""The book's `common.util`: gradient clipping, perplexity, weight tying, device transfer and
the seq2seq check (here), the corpus helpers of chapters 2 to 4 (fastlstm.word_counts) and the
word-vector queries (fastlstm.similarity).

`remove_duplicate` lives in the book's `common.trainer`; it is here, beside the other
helpers on params and grads, for the trainer to import. clip_grads and remove_duplicate
also take lists of CUDA device arrays (the params and grads of a model on the GPU), and
run there on the kernels of kernels/optim_cuda.py.
"""

import functools
import inspect
import os
import sys

import numpy as np

from fastlstm import gpu
from fastlstm.kernels import optim as _k
from fastlstm.lanes import loop
from fastlstm.similarity import analogy, cos_similarity, most_similar, normalize  # noqa: F401 (the book's util)
from fastlstm.word_counts import (convert_one_hot, create_co_matrix, create_contexts_target, ppmi,  # noqa: F401
                                  preprocess)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_arrays(name, arrays):
    """Refuse anything but a list or tuple of writeable float32/float64 ndarrays, or of numba
    device arrays (all of them on one side)."""
    if not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{name} must be a list of numpy arrays, got {type(arrays).__name__}")
    on_device = None
    for i, a in enumerate(arrays):
        device = gpu.is_device_array(a)
        if not (device or isinstance(a, np.ndarray)):
            raise TypeError(f"{name}[{i}] must be a numpy.ndarray, got {type(a).__name__}")
        if on_device is not None and device != on_device:
            raise TypeError(f"{name} mixes NumPy arrays and GPU device arrays ({name}[{i}]); keep a model on one side")
        on_device = device
        if a.dtype not in _FLOATS:
            raise TypeError(f"{name}[{i}] has dtype {a.dtype}; only float32 and float64 are supported")
        if not device and not a.flags.writeable:
            raise ValueError(f"{name}[{i}] is read-only; it must be updated in place")


def _check_params_grads(params, grads):
    """Refuse params/grads lists that differ in length, or any pair that differs in shape or dtype."""
    _check_arrays("params", params)
    _check_arrays("grads", grads)
    if len(params) != len(grads):
        raise ValueError(f"params holds {len(params)} arrays but grads holds {len(grads)}")
    for i, (p, g) in enumerate(zip(params, grads)):
        if gpu.is_device_array(p) != gpu.is_device_array(g):
            raise TypeError(f"params[{i}] and grads[{i}] must both be NumPy arrays or both GPU device arrays")
        if p.shape != g.shape:
            raise ValueError(f"grads[{i}] has shape {g.shape} but params[{i}] has shape {p.shape}")
        if p.dtype != g.dtype:
            raise TypeError(f"grads[{i}] has dtype {g.dtype} but params[{i}] has dtype {p.dtype}")


def _contiguous(a, order):
    """Whether a (NumPy or device array) is contiguous in `order`, "C" or "F"."""
    if gpu.is_device_array(a):
        return a.is_c_contiguous() if order == "C" else a.is_f_contiguous()
    return a.flags.c_contiguous if order == "C" else a.flags.f_contiguous


def _flat_views(*arrays):
    """1-D views (never copies) of arrays that are all C- or all F-contiguous, in memory order; else None.

    Equal memory order makes element k of every view the same logical element.
    """
    for order in "CF":
        if all(_contiguous(a, order) for a in arrays):
            return tuple(a.reshape(a.size, order=order) for a in arrays)
    return None


def _device_flat_views(*arrays):
    """_flat_views of device arrays, which have no fallback: refuses arrays that are not contiguous alike."""
    flat = _flat_views(*arrays)
    if flat is None:
        raise ValueError("device arrays must be contiguous in the same order (C, or F for a transposed view), "
                         f"got strides {[a.strides for a in arrays]}")
    return flat


def _add_into(dst, src):
    """dst += src in place, on the host or on the GPU, through the SGD kernel where it can
    (dst -= -1 * src, exact): the tied weight's merge, on every core."""
    if gpu.is_device_array(dst):
        from fastlstm.kernels import optim_cuda
        optim_cuda.sgd(*_device_flat_views(dst, src), -1.0)
        return
    flat = _flat_views(dst, src) if dst.dtype == src.dtype and not np.may_share_memory(dst, src) else None
    if flat is None:  # NumPy's own add, which also handles overlapping arrays
        dst += src
    else:
        loop(_k.sgd, dst.size)(flat[0], flat[1], dst.dtype.type(-1))


def _sum_squares(grads):
    """Sum of squares over all grads in float64, with one read-back from the GPU for device grads."""
    if grads and gpu.is_device_array(grads[0]):
        from fastlstm.kernels import optim_cuda
        total = gpu.to_device(np.zeros(1))
        for g in grads:
            optim_cuda.add_sum_squares(*_device_flat_views(g), total)
        return float(gpu.to_host(total)[0])
    total = 0.0
    for g in grads:
        flat = _flat_views(g)
        if flat is None:
            total += float(np.sum(np.square(g, dtype=np.float64)))
        else:
            total += loop(_k.sum_squares, g.size)(flat[0])
    return total


def scale_grads(grads, rate):
    """Every grad *= rate in place."""
    for g in grads:
        if gpu.is_device_array(g):
            from fastlstm.kernels import optim_cuda
            optim_cuda.scale(*_device_flat_views(g), rate)
            continue
        flat = _flat_views(g)
        if flat is None:
            g *= rate
        else:
            loop(_k.scale, g.size)(flat[0], g.dtype.type(rate))


def clip_rate(grads, max_norm):
    """(norm, rate): the norm of all grads as clip_grads computes it, and the factor the book's
    rule scales them by, max_norm / (norm + 1e-6) where that is below 1, else 1 (also when
    the norm is NaN). For an update that applies the factor itself (`SGD.update(..., scale=rate)`)."""
    _check_arrays("grads", grads)
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.integer, np.floating)):
        raise TypeError(f"max_norm must be a real number, got {max_norm!r}")
    if not (np.isfinite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm must be finite and >= 0, got {max_norm}")
    total_norm = float(np.sqrt(_sum_squares(grads)))
    rate = max_norm / (total_norm + 1e-6)
    return total_norm, (rate if rate < 1 else 1.0)


def clip_grads(grads, max_norm):
    """Scale all grads in place by max_norm / (norm + 1e-6) when that is below 1 (the book's rule).

    The norm is the square root of the sum of squares over all grads. Returns the norm
    before clipping, as a float (NaN or inf when a gradient holds one; then nothing is scaled).
    """
    total_norm, rate = clip_rate(grads, max_norm)
    if rate < 1:
        scale_grads(grads, rate)
    return total_norm


def evaluation_forward(model):
    """model.forward(xs, ts) as eval_perplexity calls it: with train_flg=False where forward
    takes that keyword (fastlstm's models then take their evaluation path), as it is where not
    (the book's Rnnlm)."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
        takes = any(p.name == "train_flg" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    except (TypeError, ValueError):  # no signature to read: pass it, as the book's first try does
        takes = True
    return functools.partial(model.forward, train_flg=False) if takes else model.forward


def eval_perplexity(model, corpus, batch_size=10, time_size=35):
    """Perplexity of `model` on `corpus` with the book's protocol: batch_size streams
    `jump` tokens apart, time_size steps per batch, exp of the mean batch loss.

    Calls `model.forward(xs, ts, train_flg=False)`, or `model.forward(xs, ts)` for a model
    whose forward takes no train_flg (the book's Rnnlm). The book tells the two apart by
    catching TypeError, which would also swallow a real TypeError raised inside forward
    and silently evaluate in training mode; the signature tells them apart instead.
    """
    total_loss, max_iters = eval_loss(model, corpus, batch_size, time_size)
    return np.exp(total_loss / max_iters)


def eval_loss(model, corpus, batch_size=10, time_size=35, rows=slice(None)):
    """(total, batches): the sum over the batches of eval_perplexity's protocol of the mean
    loss of their `rows` (a slice of the batch_size streams; all by default), and how many
    batches there are. A data-parallel evaluation gives each rank its rows of every batch
    (fastlstm.distributed)."""
    for name, value in (("batch_size", batch_size), ("time_size", time_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    corpus = to_cpu(corpus)
    if corpus.ndim != 1 or not np.issubdtype(corpus.dtype, np.integer):
        raise ValueError(f"corpus must be a 1-D sequence of integer word ids, got shape {corpus.shape} "
                         f"and dtype {corpus.dtype}")
    corpus_size = len(corpus)
    max_iters = (corpus_size - 1) // (batch_size * time_size)
    if max_iters < 1:
        raise ValueError(f"corpus of {corpus_size} tokens is too short for one batch of {batch_size} x {time_size}; "
                         f"it needs at least {batch_size * time_size + 1} tokens")
    jump = (corpus_size - 1) // batch_size

    forward = evaluation_forward(model)
    print('evaluating perplexity ...')
    # position of xs[i, t] in the first batch; later batches shift it by time_size each
    base = (np.arange(batch_size)[:, None] * jump + np.arange(time_size)[None, :])[rows]
    total_loss = 0
    counter = sys.stdout.isatty()  # the book's running count, which would flood a log file
    for iters in range(max_iters):
        pos = base + iters * time_size
        xs = corpus[pos % corpus_size].astype(np.int32)
        ts = corpus[(pos + 1) % corpus_size].astype(np.int32)
        total_loss += forward(xs, ts)
        if counter:
            sys.stdout.write('\r%d / %d' % (iters, max_iters))
            sys.stdout.flush()

    if counter:
        print('')
    return total_loss, max_iters


def _tied(a, b):
    """True when b is exactly a.T laid over the same memory (the weight-tied embed_W / embed_W.T)."""
    return (a.dtype == b.dtype and gpu.is_device_array(a) == gpu.is_device_array(b)
            and gpu.address(a) == gpu.address(b)
            and b.shape == a.shape[::-1] and b.strides == a.strides[::-1])


def _equal_transposed(a, b):
    """The book's test `np.all(a.T == b)`, after a cheap check that rejects most pairs: the first
    column on the host, one element each on the GPU (where the full test reads both back)."""
    if gpu.is_device_array(a) or gpu.is_device_array(b):
        if a.size and a[0, 0] != b[0, 0]:
            return False
        a, b = to_cpu(a), to_cpu(b)
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
    Device arrays merge on the GPU.
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
                _add_into(grads[i], grads[j])
            elif a.ndim == 2 and b.ndim == 2 and b.shape == a.shape[::-1] and (_tied(a, b) or _equal_transposed(a, b)):
                _add_into(grads[i], gpu.transpose(grads[j]) if gpu.is_device_array(grads[j]) else grads[j].T)
            else:
                j += 1
                continue
            params.pop(j)
            grads.pop(j)
        i += 1
    return params, grads


def to_cpu(x):
    """A NumPy array of x: a device array (anything with `copy_to_host`, or a CuPy array) is copied to the host."""
    if hasattr(x, "copy_to_host"):
        return x.copy_to_host()
    return gpu.to_host(x)


def to_gpu(x):
    """A numba.cuda device array of x (a device array is returned as it is); without numba-cuda
    or a GPU, a RuntimeError that says what is missing."""
    return gpu.to_device(x)


def eval_seq2seq(model, question, correct, id_to_char, verbos=False, is_reverse=False):
    """1 if model.generate answers question (1, T) exactly as correct (1, 1 + S) does after its
    first character (the start symbol that generation is seeded with), else 0.

    With `verbos` (the book's spelling), prints the question (reversed back when the model
    reads it reversed, `is_reverse`), the right answer and the guess, marked.
    """
    correct = np.asarray(correct).flatten()
    if correct.size < 2:
        raise ValueError(f"correct must hold the start symbol and at least one character, got {correct.size}")
    start_id = correct[0]
    correct = correct[1:]
    guess = model.generate(question, start_id, len(correct))

    question = ''.join([id_to_char[int(c)] for c in np.asarray(question).flatten()])
    correct = ''.join([id_to_char[int(c)] for c in correct])
    guess = ''.join([id_to_char[int(c)] for c in guess])

    if verbos:
        if is_reverse:
            question = question[::-1]
        print('Q', question)
        print('T', correct)
        if os.name == 'nt':
            mark = 'O' if correct == guess else 'X'
        else:
            mark = '\033[92m' + '\u2611' + '\033[0m' if correct == guess else '\033[91m' + '\u2612' + '\033[0m'
        print(mark + ' ' + guess)
        print('---')

    return 1 if guess == correct else 0
