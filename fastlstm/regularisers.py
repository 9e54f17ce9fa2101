"""Activation regularisation (AR) and temporal activation regularisation (TAR), the loss
terms of AWD-LSTM (Merity et al., 2017) on a recurrent layer's outputs h (N, T, H):

    AR  = alpha * mean(h ** 2)                       (on the last layer's dropped output)
    TAR = beta * mean((h[:, t] - h[:, t - 1]) ** 2)  (on its raw output, t >= 1)

A model adds them to its loss in forward, and their gradients to the gradient flowing
back into the layer whose output they read (fastlstm.models), so a training step sees
one loss. Each works on the backend its h lives on (the CPU's kernels/regularisers.py,
or its CUDA twin).
"""

import numbers

from fastlstm import backends, gpu


def _backend_of(h):
    return backends.CUDA if gpu.is_device_array(h) else backends.CPU


def _coefficient(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class ActivationRegularisation:
    """AR: alpha * mean(h ** 2). forward(h) returns the term and keeps h; backward(dh) adds
    its gradient, 2 * alpha * h / h.size, into dh in place and returns dh."""

    def __init__(self, alpha):
        self.alpha = _coefficient("alpha", alpha)
        self.h = None

    def forward(self, h):
        self.h = h
        return self.alpha * _backend_of(h).activation_penalty(h) / h.size

    def backward(self, dh):
        _backend_of(dh).add_activation_gradient(dh, self.h, 2 * self.alpha / self.h.size)
        return dh


class TemporalActivationRegularisation:
    """TAR: beta * mean((h[:, t] - h[:, t - 1]) ** 2) over t >= 1 (0 for a single step).
    forward(h) returns the term and keeps h; backward(dh) adds its gradient into dh in
    place and returns dh."""

    def __init__(self, beta):
        self.beta = _coefficient("beta", beta)
        self.h = None

    def forward(self, h):
        self.h = h
        N, T, H = h.shape
        if T < 2:
            return 0.0
        return self.beta * _backend_of(h).temporal_penalty(h) / (N * (T - 1) * H)

    def backward(self, dh):
        N, T, H = self.h.shape
        if T > 1:
            _backend_of(dh).add_temporal_gradient(dh, self.h, 2 * self.beta / (N * (T - 1) * H))
        return dh
