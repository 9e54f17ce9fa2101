"""The book's `common.trainer`: Trainer (shuffled mini-batches, chapters 4, 7 and 8),
RnnlmTrainer (stateful batches, chapters 5 and 6), and `remove_duplicate` (from fastlstm.util).

The stateful batch layout (truncated BPTT with the hidden state carried across batches)
cuts the token stream into batch_size rows `jump = data_size // batch_size` apart; each
batch is the next time_size tokens of every row, so row i of one batch continues row i
of the batch before::

    stream:  |----- row 0 -----|----- row 1 -----| ... |--- row N-1 ---|
    batch k:  [k*T, (k+1)*T)    jump + [k*T, ...)       (N-1)*jump + ...

Positions wrap around the end of the stream (`% data_size`), as in the book.
"""

import time

import numpy as np

from fastlstm import plotting
from fastlstm.checks import positive_int
from fastlstm.training_step import train_step
from fastlstm.util import remove_duplicate

__all__ = ["Trainer", "RnnlmTrainer", "remove_duplicate", "stateful_batch"]


def _progress(epoch, iters, max_iters, start_time, measure, value):
    """The book's progress line, every eval_interval iterations."""
    print('| epoch %d |  iter %d / %d | time %d[s] | %s %.2f'
          % (epoch, iters + 1, max_iters, time.time() - start_time, measure, value))


def _train_epochs(trainer, epochs, max_iters, max_grad, eval_interval, measure, values):
    """The book's loop of both trainers: train_step on each batch (x, t) of each epoch (an
    iterable of batches), and every eval_interval iterations the progress line of the mean loss
    since the last (as a perplexity when `measure` is 'perplexity'), appended to `values`."""
    start_time = time.time()
    total_loss, loss_count = 0.0, 0
    for batches in epochs:
        for iters, (batch_x, batch_t) in enumerate(batches):
            loss, _ = train_step(trainer.model, trainer.optimizer, batch_x, batch_t, max_grad)
            total_loss += loss
            loss_count += 1
            if (eval_interval is not None) and (iters % eval_interval) == 0:
                value = total_loss / loss_count
                if measure == 'perplexity':
                    value = np.exp(value)
                _progress(trainer.current_epoch + 1, iters, max_iters, start_time, measure, value)
                values.append(float(value))
                total_loss, loss_count = 0.0, 0
        trainer.current_epoch += 1


def _plot(values, eval_interval, ylabel, ylim, path):
    """values against iterations (x eval_interval), as the book plots them: in a window where
    there is a display, else saved to `path` (returned; None when shown)."""
    plt = plotting.pyplot()
    fig = plt.figure()
    x = np.arange(len(values))
    if ylim is not None:
        plt.ylim(*ylim)
    plt.plot(x, values, label='train')
    plt.xlabel('iterations (x' + str(eval_interval) + ')')
    plt.ylabel(ylabel)
    return plotting.show_or_save(plt, fig, path)


class Trainer:
    """The book's training loop over shuffled mini-batches (seq2seq, word2vec): each epoch
    permutes the samples with NumPy's global generator, as the book does, then runs
    `len(x) // batch_size` iterations of train_step; the mean loss every `eval_interval`
    iterations goes to loss_list."""

    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.loss_list = []
        self.eval_interval = None
        self.current_epoch = 0

    def fit(self, x, t, max_epoch=10, batch_size=32, max_grad=None, eval_interval=20):
        """Train on the samples x -> t (first axes of equal length) for max_epoch epochs,
        clipping the gradients to the norm max_grad when it is given.

        The shuffled order carries over from epoch to epoch (each epoch permutes the last
        one's order), and loss_list grows across calls, as in the book.
        """
        x, t = np.asarray(x), np.asarray(t)
        data_size = len(x)
        if len(t) != data_size:
            raise ValueError(f"x holds {data_size} samples but t holds {len(t)}")
        batch_size = positive_int(batch_size, "batch_size")
        max_iters = data_size // batch_size
        if max_iters < 1:
            raise ValueError(f"{data_size} samples do not fill one batch of {batch_size}")
        self.eval_interval = eval_interval

        def epochs():
            nonlocal x, t
            for _ in range(max_epoch):
                idx = np.random.permutation(np.arange(data_size))
                x, t = x[idx], t[idx]
                yield ((x[i * batch_size:(i + 1) * batch_size], t[i * batch_size:(i + 1) * batch_size])
                       for i in range(max_iters))

        _train_epochs(self, epochs(), max_iters, max_grad, eval_interval, 'loss', self.loss_list)

    def plot(self, ylim=None, path="loss.png"):
        """Plot loss_list against iterations (x eval_interval), as the book does: in a window where
        there is a display, else saved to `path` (returned; None when shown)."""
        return _plot(self.loss_list, self.eval_interval, 'loss', ylim, path)


def stateful_batch(x, t, batch_size, time_size, time_idx):
    """(batch_x, batch_t), int32 arrays (batch_size, time_size): element [i, k] is x and t at
    position `(i * jump + time_idx + k) % data_size`, the book's `get_batch` without its loops."""
    x, t = np.asarray(x), np.asarray(t)
    data_size = len(x)
    jump = data_size // batch_size
    pos = (np.arange(batch_size)[:, None] * jump + (time_idx + np.arange(time_size))[None, :]) % data_size
    return x[pos].astype(np.int32), t[pos].astype(np.int32)


class RnnlmTrainer:
    """The book's training loop for the RNN language models: stateful batches, optional
    gradient clipping, a perplexity line every `eval_interval` iterations."""

    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.time_idx = None
        self.ppl_list = None
        self.eval_interval = None
        self.current_epoch = 0

    def get_batch(self, x, t, batch_size, time_size):
        """The next stateful batch (see the module docstring); advances time_idx by time_size."""
        batch_x, batch_t = stateful_batch(x, t, batch_size, time_size, self.time_idx)
        self.time_idx += time_size
        return batch_x, batch_t

    def fit(self, xs, ts, max_epoch=10, batch_size=20, time_size=35, max_grad=None, eval_interval=20):
        """Train on the stream xs -> ts for max_epoch epochs of `len(xs) // (batch_size*time_size)` iterations,
        each one train_step (the gradients clipped to max_grad when it is given).

        time_idx and ppl_list start afresh at each call, as in the book (the book's BetterRnnlm
        script calls fit once per epoch, so its data position restarts every epoch).
        """
        data_size = len(xs)
        max_iters = data_size // (batch_size * time_size)
        self.time_idx = 0
        self.ppl_list = []
        self.eval_interval = eval_interval
        epochs = ((self.get_batch(xs, ts, batch_size, time_size) for _ in range(max_iters)) for _ in range(max_epoch))
        _train_epochs(self, epochs, max_iters, max_grad, eval_interval, 'perplexity', self.ppl_list)

    def plot(self, ylim=None, path="perplexity.png"):
        """Plot ppl_list against iterations (x eval_interval), as the book does: in a window where
        there is a display, else saved to `path` (returned; None when shown)."""
        return _plot(self.ppl_list, self.eval_interval, 'perplexity', ylim, path)
