"""One training step of a book model: the sequence every training loop of fastlstm runs.

`RnnlmTrainer.fit`, `fastlstm train` (one process or a rank of a distributed run), `fastlstm
bench`, the asv suite and the warm-up all call `train_step`, so they train with the same calls
in the same order, and a change to the step is made once.
"""

import math

from fastlstm.optimizer import update_scaled
from fastlstm.threads import single_threaded_blas
from fastlstm.util import clip_rate, remove_duplicate

__all__ = ["train_step"]


def train_step(model, optimizer, xs, ts, max_grad=None, check_finite=False, reduce_gradients=None):
    """forward(xs, ts), backward, the tied weights merged (remove_duplicate), the gradients
    clipped to the norm max_grad by the book's rule (None: not clipped) and optimizer.update.

    Returns (loss, norm): the loss as a float and the gradient norm before clipping (None
    without clipping). The clipping's factor goes to `update_scaled`: SGD applies it in its
    update's pass, with the values of clip_grads then update. With check_finite, a loss
    that is NaN or inf or such a norm (checked before the update) raises FloatingPointError,
    and the weights stay as they were.

    reduce_gradients(grads, loss), when given, is called on the merged gradients before the
    norm: it makes them, in place, and the loss it returns those of a larger batch of which
    xs is a part (data parallelism: fastlstm.distributed averages them over the ranks), so that
    the norm, the clipping and the update are those of the larger batch; the loss is then
    checked once it is reduced, so that every part raises alike.
    """
    with single_threaded_blas():  # the lanes share the products; one switch of BLAS's threads, not one per product
        return _step(model, optimizer, xs, ts, max_grad, check_finite, reduce_gradients)


def _step(model, optimizer, xs, ts, max_grad, check_finite, reduce_gradients):
    loss = float(model.forward(xs, ts))
    if reduce_gradients is None:
        _check(check_finite, "loss", loss)
    model.backward()
    params, grads = remove_duplicate(model.params, model.grads)
    if reduce_gradients is not None:
        loss = float(reduce_gradients(grads, loss))
        _check(check_finite, "loss", loss)
    if max_grad is None:
        optimizer.update(params, grads)
        return loss, None
    norm, rate = clip_rate(grads, max_grad)
    _check(check_finite, "gradient norm", norm)
    update_scaled(optimizer, params, grads, rate)
    return loss, norm


def _check(check_finite, what, value):
    """FloatingPointError naming `what` when check_finite is set and value is NaN or inf."""
    if check_finite and not math.isfinite(value):
        raise FloatingPointError(f"{what} is {value}")
