"""The book's `common.optimizer`: update(params, grads) changes every param array in place.

The formulas are the book's, expression for expression, so results match it to the last
bit in float64. SGD runs on a compiled kernel (the step of every PTB training iteration),
also on GPU device arrays (a model built with config.GPU); Adam (the step of chapters 4, 7
and 8) on a compiled kernel that rounds as NumPy does the book's expressions, in float32
too; the others are in-place NumPy. All but SGD refuse device arrays. Every optimizer adds `iter` (updates done so far) and
`state_dict()` / `load_state_dict(d)`, so that a training run resumes exactly.
"""

import numbers

import numpy as np

from fastlstm import gpu
from fastlstm.kernels import optim as _k
from fastlstm.lanes import loop
from fastlstm.util import _check_params_grads, _device_flat_views, _flat_views, clip_rate, scale_grads


def _real(name, value):
    """value if it is a finite real number, else a TypeError or ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class _Optimizer:
    """Hyperparameters, the update count and the per-param state lists, with their checks."""

    _hyper = ("lr",)  # hyperparameters, saved by state_dict
    _slots = ()       # per-param state lists, zeros_like(param) on the first update (as in the book)

    def __init__(self, **hyper):
        for name, value in hyper.items():
            setattr(self, name, _real(name, value))
        self.iter = 0
        for name in self._slots:
            setattr(self, name, None)

    def _begin(self, params, grads):
        """Check the arguments and the state against them, create the state on first use, count the update."""
        _check_params_grads(params, grads)
        if self._slots and any(gpu.is_device_array(p) for p in params):
            raise NotImplementedError(f"{type(self).__name__} runs on NumPy arrays only; a model on the GPU "
                                      "trains with SGD (the book's chapter 6 optimizer)")
        for name in self._slots:
            state = getattr(self, name)
            if state is None:
                setattr(self, name, [np.zeros_like(p) for p in params])
                continue
            if len(state) != len(params):
                raise ValueError(f"{type(self).__name__}.{name} holds state for {len(state)} params, "
                                 f"but update got {len(params)}; use one optimizer per params list")
            for i, (s, p) in enumerate(zip(state, params)):
                if s.shape != p.shape or s.dtype != p.dtype:
                    raise ValueError(f"{type(self).__name__}.{name}[{i}] is {s.dtype} {s.shape}, "
                                     f"but params[{i}] is {p.dtype} {p.shape}")
        self.iter += 1

    def state_dict(self):
        """Copies of the type name, hyperparameters, `iter` and per-param state lists (None before the first update)."""
        d = {"type": type(self).__name__, "iter": self.iter}
        for name in self._hyper:
            d[name] = getattr(self, name)
        for name in self._slots:
            state = getattr(self, name)
            d[name] = None if state is None else [s.copy(order="K") for s in state]
        return d

    def load_state_dict(self, d):
        """Restore what state_dict returned (arrays copied); refuses another optimizer's dict or bad values."""
        cls = type(self).__name__
        if not isinstance(d, dict):
            raise TypeError(f"{cls}.load_state_dict expects a dict, got {type(d).__name__}")
        expected = {"type", "iter", *self._hyper, *self._slots}
        if d.get("type") != cls:
            raise ValueError(f"state dict is of {d.get('type')!r}, not {cls!r}")
        if set(d) != expected:
            raise ValueError(f"{cls} state dict must have keys {sorted(expected)}; "
                             f"missing {sorted(expected - set(d))}, unexpected {sorted(set(d) - expected)}")
        it = d["iter"]
        if isinstance(it, bool) or not isinstance(it, numbers.Integral) or it < 0:
            raise ValueError(f"state dict 'iter' must be an integer >= 0, got {it!r}")
        hyper = {name: _real(name, d[name]) for name in self._hyper}
        slots = {name: d[name] for name in self._slots}
        lists = [s for s in slots.values() if s is not None]
        if lists and len(lists) != len(slots):
            raise ValueError(f"state dict has some of {list(slots)} set and others None")
        for name, state in slots.items():
            if state is None:
                continue
            if not isinstance(state, (list, tuple)) or not all(isinstance(s, np.ndarray) for s in state):
                raise TypeError(f"state dict {name!r} must be a list of numpy arrays")
            if [(s.shape, s.dtype) for s in state] != [(s.shape, s.dtype) for s in lists[0]]:
                raise ValueError(f"state dict {name!r} differs in shapes or dtypes from {list(slots)[0]!r}")
        self.iter = int(it)
        for name, value in hyper.items():
            setattr(self, name, value)
        for name, state in slots.items():
            setattr(self, name, None if state is None else [s.copy(order="K") for s in state])


class SGD(_Optimizer):
    """Stochastic gradient descent: p -= lr * g."""

    def __init__(self, lr=0.01):
        super().__init__(lr=lr)

    def update(self, params, grads, scale=1):
        """p -= lr * g for every param; with a `scale` other than 1 (a clipping rate from
        fastlstm.util.clip_rate), p -= lr * (g * scale): the same values as scaling the grads
        first and updating after, in one pass over them less. Host grads keep their values;
        device grads are scaled in place first."""
        self._begin(params, grads)
        scale = _real("scale", scale)
        for p, g in zip(params, grads):
            if gpu.is_device_array(p):
                from fastlstm.kernels import optim_cuda
                if scale != 1:
                    optim_cuda.scale(*_device_flat_views(g), scale)
                optim_cuda.sgd(*_device_flat_views(p, g), self.lr)
                continue
            flat = _flat_views(p, g)
            if flat is None:
                p -= self.lr * (g if scale == 1 else g * scale)
            elif scale == 1:
                loop(_k.sgd, p.size)(flat[0], flat[1], p.dtype.type(self.lr))
            else:
                loop(_k.sgd_scaled, p.size)(flat[0], flat[1], p.dtype.type(self.lr), p.dtype.type(scale))


class ASGD(SGD):
    """SGD with weight decay that switches to averaging by the non-monotone trigger of
    AWD-LSTM (NT-ASGD, Merity et al., 2017): p -= lr * (g + weight_decay * p) every update;
    `observe(figure)` takes a validation figure (loss or perplexity: lower is better) after
    each check, and once one is worse than the best of all but the last `nonmono` checks
    (with more than `nonmono` of them), every later update also keeps `ax`, the running mean
    of the weights since the switch. Evaluate and save the averaged weights with
    `with optimizer.averaged(params): ...`. nonmono = 0 never switches.

    `ax` follows the params list that update is given (the tied weight merged,
    fastlstm.util.remove_duplicate); state_dict holds it, the checks so far and the count
    of averaged updates, so a resumed run averages on exactly."""

    _hyper = ("lr", "nonmono", "weight_decay")

    def __init__(self, lr=30.0, nonmono=5, weight_decay=0.0):
        _Optimizer.__init__(self, lr=lr, nonmono=_count("nonmono", nonmono), weight_decay=weight_decay)
        self.history = []  # the validation figures before the switch
        self.ax = None  # the averaged weights, from the switch on
        self.averaged_steps = 0

    @property
    def averaging(self):
        return self.ax is not None

    def observe(self, figure):
        """Take a validation figure; True when averaging starts with it."""
        figure = float(_real("figure", figure))
        if self.averaging:
            return False
        n = self.nonmono
        switch = bool(n) and len(self.history) > n and figure > min(self.history[:-n])
        self.history.append(figure)
        if switch:
            self.ax = []  # filled by the next update
        return switch

    def update(self, params, grads, scale=1):
        """p -= lr * (g * scale + weight_decay * p) for every param; when averaging, the mean
        of the weights after each update is kept in the same pass."""
        self._begin(params, grads)
        if any(gpu.is_device_array(p) for p in params):
            raise NotImplementedError("ASGD runs on NumPy arrays only; a model on the GPU trains with SGD")
        scale = _real("scale", scale)
        if self.averaging and not self.ax:  # the first update since the switch
            self.ax = [np.zeros_like(p) for p in params]
        self._check_averages(params)
        if self.averaging:
            self.averaged_steps += 1
        mu = 1.0 / max(self.averaged_steps, 1)
        for i, (p, g) in enumerate(zip(params, grads)):
            ax = self.ax[i] if self.averaging else _NO_AVERAGE[p.dtype]
            flat = _flat_views(p, g, ax) if self.averaging else _flat_views(p, g)
            t = p.dtype.type
            if flat is None:  # NumPy's expression, for arrays laid out otherwise
                p -= t(self.lr) * (g * t(scale) + t(self.weight_decay) * p)
                if self.averaging:
                    ax[...] = p if mu == 1 else ax + (p - ax) * t(mu)
                continue
            loop(_k.asgd, p.size)(flat[0], flat[1], t(self.lr), t(scale), t(self.weight_decay),
                    flat[2] if self.averaging else ax, t(mu))

    def _check_averages(self, params):
        if self.averaging and [(a.shape, a.dtype) for a in self.ax] != [(p.shape, p.dtype) for p in params]:
            raise ValueError("ASGD.ax does not fit the params given to update; use one optimizer per params list")

    def averaged(self, params):
        """A context in which params (the list update is given) hold the averaged weights,
        put back as they were afterwards; the weights as they are before averaging starts."""
        return _Swapped(params, self.ax if self.averaging and self.ax else None, self._check_averages)

    def state_dict(self):
        d = super().state_dict()
        d.update(history=list(self.history), ax=None if self.ax is None else [a.copy() for a in self.ax],
                 averaged_steps=self.averaged_steps)
        return d

    def load_state_dict(self, d):
        """Restore what state_dict returned (arrays copied); refuses another optimizer's dict or bad values."""
        own = ("history", "ax", "averaged_steps")
        if not isinstance(d, dict) or any(k not in d for k in own):
            raise ValueError(f"ASGD state dict must have keys {list(own)} besides SGD's")
        history, ax, steps = (d[k] for k in own)
        if not isinstance(history, (list, tuple)):
            raise TypeError("ASGD state dict 'history' must be a list of numbers")
        if ax is not None and (not isinstance(ax, (list, tuple)) or not all(isinstance(a, np.ndarray) for a in ax)):
            raise TypeError("ASGD state dict 'ax' must be None or a list of numpy arrays")
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
            raise ValueError(f"ASGD state dict 'averaged_steps' must be an integer >= 0, got {steps!r}")
        super().load_state_dict({k: v for k, v in d.items() if k not in own})
        _count("nonmono", self.nonmono)
        self.history = [float(_real("history", h)) for h in history]
        self.ax = None if ax is None else [a.copy() for a in ax]
        self.averaged_steps = int(steps)


def _count(name, value):
    """value if it is an integer >= 0, else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


_NO_AVERAGE = {np.dtype(t): np.zeros(0, dtype=t) for t in (np.float32, np.float64)}


class _Swapped:
    """The context of ASGD.averaged: values copied into params on entry and back on exit."""

    def __init__(self, params, values, check):
        self.params, self.values, self.check = params, values, check
        self.kept = None

    def __enter__(self):
        if self.values is not None:
            self.check(self.params)
            self.kept = [p.copy() for p in self.params]
            for p, v in zip(self.params, self.values):
                p[...] = v
        return self.params

    def __exit__(self, *exc):
        if self.kept is not None:
            for p, k in zip(self.params, self.kept):
                p[...] = k
        return False


def clip_and_update(optimizer, params, grads, max_norm):
    """clip_grads(grads, max_norm) then optimizer.update(params, grads), as the book's training
    loops do, returning the norm before clipping; the update goes through update_scaled."""
    norm, rate = clip_rate(grads, max_norm)
    update_scaled(optimizer, params, grads, rate)
    return norm


def update_scaled(optimizer, params, grads, rate):
    """optimizer.update(params, grads) with the grads times `rate`, a clipping factor from
    clip_rate. SGD applies it in its update's pass (one pass over the gradients less), and
    host grads keep their values; other optimizers get the grads scaled in place first, as
    clip_grads scales them (only for a rate below 1)."""
    if isinstance(optimizer, SGD):
        optimizer.update(params, grads, scale=rate)
        return
    if rate < 1:
        scale_grads(grads, rate)
    optimizer.update(params, grads)


class Momentum(_Optimizer):
    """Momentum SGD: v = momentum * v - lr * g; p += v."""

    _hyper = ("lr", "momentum")
    _slots = ("v",)

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr=lr, momentum=momentum)

    def update(self, params, grads):
        self._begin(params, grads)
        for p, g, v in zip(params, grads, self.v):
            v *= self.momentum
            v -= self.lr * g
            p += v


class Nesterov(_Optimizer):
    """Nesterov's accelerated gradient (arXiv:1212.0901), in the book's form."""

    _hyper = ("lr", "momentum")
    _slots = ("v",)

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr=lr, momentum=momentum)

    def update(self, params, grads):
        self._begin(params, grads)
        for p, g, v in zip(params, grads, self.v):
            v *= self.momentum
            v -= self.lr * g
            p += self.momentum * self.momentum * v
            p -= (1 + self.momentum) * self.lr * g


class AdaGrad(_Optimizer):
    """AdaGrad: h += g*g; p -= lr * g / (sqrt(h) + 1e-7)."""

    _slots = ("h",)

    def __init__(self, lr=0.01):
        super().__init__(lr=lr)

    def update(self, params, grads):
        self._begin(params, grads)
        for p, g, h in zip(params, grads, self.h):
            h += g * g
            p -= self.lr * g / (np.sqrt(h) + 1e-7)


class RMSprop(_Optimizer):
    """RMSprop: h = decay_rate * h + (1 - decay_rate) * g*g; p -= lr * g / (sqrt(h) + 1e-7)."""

    _hyper = ("lr", "decay_rate")
    _slots = ("h",)

    def __init__(self, lr=0.01, decay_rate=0.99):
        super().__init__(lr=lr, decay_rate=decay_rate)

    def update(self, params, grads):
        self._begin(params, grads)
        for p, g, h in zip(params, grads, self.h):
            h *= self.decay_rate
            h += (1 - self.decay_rate) * g * g
            p -= self.lr * g / (np.sqrt(h) + 1e-7)


class Adam(_Optimizer):
    """Adam (arXiv:1412.6980v8) with the book's bias correction folded into lr_t."""

    _hyper = ("lr", "beta1", "beta2")
    _slots = ("m", "v")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        super().__init__(lr=lr, beta1=beta1, beta2=beta2)

    def update(self, params, grads):
        self._begin(params, grads)
        lr_t = self.lr * np.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        # The kernel rounds as NumPy does for Python-number betas (NumPy 2 computes with a
        # NumPy float64 beta in float64) and arrays laid out alike; else the book's expressions.
        weak = all(type(h) in (int, float) for h in (self.beta1, self.beta2))
        for p, g, m, v in zip(params, grads, self.m, self.v):
            flat = _flat_views(p, g, m, v) if weak else None
            if flat is not None:
                dtype = p.dtype.type
                loop(_k.adam, p.size)(*flat, dtype(1 - self.beta1), dtype(1 - self.beta2), dtype(1e-7), float(lr_t))
                continue
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g**2 - v)
            p -= lr_t * m / (np.sqrt(v) + 1e-7)
