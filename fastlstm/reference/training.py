"""The book's training step in plain NumPy (its Trainer's loop body, `remove_duplicate`,
`clip_grads`, `SGD` and `Adam`), for benchmarks only: with the reference layers it plays the
book's code in the chapters' speed comparisons (`python -m fastlstm.benchmark chapters`)."""

import numpy as np


def remove_duplicate(params, grads):
    """The book's: merge params that are one array (or one's transpose), summing their grads;
    after each merge the search starts again from the first pair."""
    params, grads = params[:], grads[:]
    merged = True
    while merged:
        merged = False
        for i in range(len(params) - 1):
            for j in range(i + 1, len(params)):
                a, b = params[i], params[j]
                if a is b:
                    grads[i] += grads[j]
                elif a.ndim == 2 and b.ndim == 2 and a.T.shape == b.shape and np.all(a.T == b):
                    grads[i] += grads[j].T
                else:
                    continue
                params.pop(j)
                grads.pop(j)
                merged = True
                break
            if merged:
                break
    return params, grads


def clip_grads(grads, max_norm):
    """The book's: scale every grad by max_norm / (norm + 1e-6) when that is below 1."""
    total_norm = 0
    for grad in grads:
        total_norm += np.sum(grad ** 2)
    rate = max_norm / (np.sqrt(total_norm) + 1e-6)
    if rate < 1:
        for grad in grads:
            grad *= rate


class SGD:
    """The book's SGD, in NumPy."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for i in range(len(params)):
            params[i] -= self.lr * grads[i]


class Adam:
    """The book's Adam, in NumPy."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m, self.v = None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g**2 - v)
            p -= lr_t * m / (np.sqrt(v) + 1e-7)


def train_step(model, optimizer, x, t, max_grad=None):
    """One iteration of the book's Trainer.fit: the loss as a float."""
    loss = model.forward(x, t)
    model.backward()
    params, grads = remove_duplicate(model.params, model.grads)
    if max_grad is not None:
        clip_grads(grads, max_grad)
    optimizer.update(params, grads)
    return float(loss)
