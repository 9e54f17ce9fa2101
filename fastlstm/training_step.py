"""One training step of a book model: the sequence every training loop of fastlstm runs.

`RnnlmTrainer.fit`, `fastlstm train`, `fastlstm bench`, the asv suite and the warm-up all
call `train_step`, so they train with the same calls in the same order, and a change to the
step is made once.
"""

import math

from fastlstm.optimizer import update_scaled
from fastlstm.threads import single_threaded_blas
from fastlstm.util import clip_rate, remove_duplicate

__all__ = ["train_step"]


def train_step(model, optimizer, xs, ts, max_grad=None, check_finite=False):
    """forward(xs, ts), backward, the tied weights merged (remove_duplicate), the gradients
    clipped to the norm max_grad by the book's rule (None: not clipped) and optimizer.update.

    Returns (loss, norm): the loss as a float and the gradient norm before clipping (None
    without clipping). The clipping's factor goes to `update_scaled`: SGD applies it in its
    update's pass, with the values of clip_grads then update. With check_finite, a loss
    that is NaN or inf (checked before backward) or such a norm (checked before the
    update) raises FloatingPointError, and the weights stay as they were.
    """
    with single_threaded_blas():  # the lanes share the products; one switch of BLAS's threads, not one per product
        return _step(model, optimizer, xs, ts, max_grad, check_finite)


def _step(model, optimizer, xs, ts, max_grad, check_finite):
    loss = model.forward(xs, ts)
    if check_finite and not math.isfinite(loss):
        raise FloatingPointError(f"loss is {float(loss)}")
    model.backward()
    params, grads = remove_duplicate(model.params, model.grads)
    if max_grad is None:
        optimizer.update(params, grads)
        return float(loss), None
    norm, rate = clip_rate(grads, max_grad)
    if check_finite and not math.isfinite(norm):
        raise FloatingPointError(f"gradient norm is {norm}")
    update_scaled(optimizer, params, grads, rate)
    return float(loss), norm
