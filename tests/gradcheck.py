"""Central finite differences in float64, the yardstick for every analytic gradient."""

import numpy as np


def numerical_grad(f, x, eps=1e-6):
    """d f() / d x by central differences, perturbing x in place (x may be a view of a weight)."""
    grad = np.zeros(x.shape)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + eps
        fp = f()
        x[idx] = old - eps
        fm = f()
        x[idx] = old
        grad[idx] = (fp - fm) / (2 * eps)
    return grad


def assert_grad_close(analytic, numeric, name, rtol=1e-5, atol=1e-7):
    """Compare an analytic gradient with its finite-difference estimate, naming the array on failure."""
    analytic = np.asarray(analytic, dtype=np.float64)
    err = np.abs(analytic - numeric).max(initial=0.0)
    scale = np.abs(numeric).max(initial=0.0)
    assert err <= atol + rtol * scale, f"{name}: max error {err:.3e} against gradient scale {scale:.3e}"
