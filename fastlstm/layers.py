"""The book's `common.layers`, with Embedding, Affine, SoftmaxWithLoss and Dropout on
fastlstm's kernels; the time layers build on these four.

Every layer keeps the book's contract: `params` holds the very arrays passed in,
`grads` arrays of the same shapes that backward overwrites in place, and outputs carry
the weights' dtype. The four check their inputs here and leave the array work to their
backend (fastlstm.backends): the CPU's for these, the one `_backend_for` picks for the
time layers that extend them.
"""

import numpy as np

from fastlstm import backends, gpu
from fastlstm.config import GPU  # noqa: F401 (the book's layers module has it)
from fastlstm.checks import as_token_ids, check_ndim, check_shape, weights_dtype
from fastlstm.functions import cross_entropy_error, sigmoid, softmax
from fastlstm.kernels.dropout import _GOLDEN as _MASK_STEP  # element k of a mask hashes seed + (k + 1) x it
from fastlstm.workspace import Workspace


def _require_forward(saved, layer):
    if saved is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")


def _draw_seed(skip=0):
    """A dropout seed from NumPy's global generator, so np.random.seed governs the masks. With
    `skip`, the seed whose mask's element k is element k + skip of the drawn seed's mask: the
    part of a larger batch's mask that a rank of a data-parallel run draws (`rows_before`)."""
    seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
    return np.uint64((seed + skip * int(_MASK_STEP)) % 2**64)


class MatMul:
    """x @ W."""

    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.x = None

    def forward(self, x):
        W, = self.params
        self.x = x
        return np.dot(x, W)

    def backward(self, dout):
        W, = self.params
        self.grads[0][...] = np.dot(self.x.T, dout)
        return np.dot(dout, W.T)


class Affine(gpu.HostPickled):
    """x @ W + b over the last axis of x; W is read where it lies (a tied W is a transposed view)."""

    _ndim = 2
    _backend_for = staticmethod(backends.host)  # the backend for the weights (the time layers: chosen)

    def __init__(self, W, b):
        weights_dtype(W=W, b=b)
        check_ndim(W, 2, "W")
        check_shape(b, (W.shape[1],), "b")
        self._backend = self._backend_for(W, b)
        self.params = self._backend.prepare_weights(W, b)
        self.grads = [self._backend.zeros_like(w) for w in self.params]
        self.x = None
        self._workspace = Workspace(self._backend.alloc)

    def forward(self, x):
        out, self.x = self._apply(x, self._backend.fresh)
        return out

    def infer(self, x):
        """forward into an array kept from call to call, saving nothing for backward (evaluation)."""
        self.x = None
        return self._apply(x, self._workspace.empty)[0]

    def _apply(self, x, empty):
        W, b = self.params
        dtype = weights_dtype(W=W, b=b)
        x = self._backend.floats(x, self._ndim, dtype, "x")
        *rows, width = x.shape  # (a simulated device array's shape refuses index -1)
        if width != W.shape[0]:
            raise ValueError(f"x has width {width} but W has shape {W.shape}")
        out = empty("out", (*rows, W.shape[1]), dtype)
        self._backend.affine_forward(x.reshape(-1, W.shape[0]), W, b, out.reshape(-1, W.shape[1]))
        return out, x

    def backward(self, dout):
        _require_forward(self.x, self)
        W, b = self.params
        dout = self._backend.floats(dout, self._ndim, W.dtype, "dout")
        check_shape(dout, self.x.shape[:-1] + (W.shape[1],), "dout")
        x2 = self.x.reshape(-1, W.shape[0])
        dx = self._backend.alloc(self.x.shape, W.dtype)
        self._backend.affine_backward(x2, dout.reshape(-1, W.shape[1]), W, *self.grads, dx.reshape(x2.shape))
        return dx


class Softmax:
    """Softmax over the last axis."""

    def __init__(self):
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x):
        self.out = softmax(x)
        return self.out

    def backward(self, dout):
        dx = self.out * dout
        dx -= self.out * dx.sum(axis=1, keepdims=True)
        return dx


class SoftmaxWithLoss(gpu.HostPickled):
    """Mean softmax cross-entropy of scores (N, V) against ids (N,) or one-hot (N, V),
    fused in one kernel pass per row; the probabilities are never stored.

    When the last forward was followed by backward (a training loop), forward also
    writes the gradient for dout = 1 in the same pass over the scores, which backward
    then hands out: a training step reads its scores once less.
    """

    _ndim = 2
    ignore_label = None
    _backend_for = staticmethod(backends.host)  # the backend (the time layer: chosen)
    _backward_followed = False  # whether backward was called since the last forward

    def __init__(self):
        self._backend = self._backend_for()
        self.params, self.grads = [], []
        self.cache = None
        self._workspace = Workspace(self._backend.alloc)

    def forward(self, x, t):
        self.cache = None  # the last call's scores go before this call's gradient is made
        loss, self.cache = self._loss(x, t, self._backend.fresh, with_gradient=self._backward_followed)
        self._backward_followed = False
        return loss

    def infer(self, x, t):
        """The loss alone, computed in arrays kept from call to call (evaluation)."""
        self.cache = None
        return self._loss(x, t, self._workspace.empty)[0]

    def _loss(self, x, t, empty, with_gradient=False):
        x = self._backend.floats(x, self._ndim, None, "scores")
        t = gpu.to_host(t)
        if t.shape == x.shape:
            t = t.argmax(axis=-1)
        check_shape(t, x.shape[:-1], "targets")
        V = x.shape[x.ndim - 1]
        ts = as_token_ids(t, V, "targets", self.ignore_label).reshape(-1)
        if ts.size == 0:
            raise ValueError(f"scores of shape {x.shape} hold no rows: the mean loss of an empty batch is undefined")
        count = int(np.count_nonzero(ts >= 0))
        if count == 0:
            raise ValueError(f"every target equals ignore_label {self.ignore_label}: the mean loss is undefined")
        loss, saved, dx = self._backend.cross_entropy(x.reshape(ts.size, V), ts, count, empty, with_gradient)
        return loss, [saved, count, x.shape, dx]

    def backward(self, dout=1):
        _require_forward(self.cache, self)
        self._backward_followed = True
        saved, count, shape, dx = self.cache
        if dx is not None and dout == 1:
            self.cache[-1] = None  # handed out once: a second call makes its own
            return dx.reshape(shape)
        return self._backend.cross_entropy_gradient(saved, dout, count).reshape(shape)


class Sigmoid:
    """Logistic function."""

    def __init__(self):
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x):
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class SigmoidWithLoss:
    """Binary cross-entropy of sigmoid(x) against 0/1 labels."""

    def __init__(self):
        self.params, self.grads = [], []
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = sigmoid(x)
        self.loss = cross_entropy_error(np.c_[1 - self.y, self.y], self.t)
        return self.loss

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        return (self.y - self.t) * dout / batch_size


def _check_ratio(dropout_ratio, name="dropout_ratio"):
    if not isinstance(dropout_ratio, (int, float, np.floating, np.integer)) or isinstance(dropout_ratio, bool):
        raise TypeError(f"{name} must be a number, got {dropout_ratio!r}")
    if not 0.0 <= dropout_ratio < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {dropout_ratio}")
    return float(dropout_ratio)


def _draw_mask(backend, shape, dtype, ratio, rows_before=0):
    """A fresh inverted-dropout mask (0 or 1 / (1 - ratio)) of shape and dtype on `backend`,
    from a seed drawn from NumPy's global generator; rows of a batch of which rows_before come
    before (their mask is drawn as that batch's)."""
    skip = rows_before * int(np.prod(shape[1:]))
    return backend.draw_mask(shape, dtype, _draw_seed(skip), ratio, 1.0 / (1.0 - ratio))


def _dropout_mask_apply(backend, x, ratio, scale, rows_before=0):
    """(x * mask, mask) with a fresh mask whose kept entries hold `scale`; rows_before as _draw_mask's."""
    x = backend.floats(x, None, None, "dropout input")
    skip = rows_before * (x.size // x.shape[0]) if rows_before else 0
    return backend.dropout_apply(x, _draw_seed(skip), ratio, scale)


def _dropout_backward(backend, dout, mask):
    dout = backend.floats(dout, mask.ndim, mask.dtype, "dout")
    check_shape(dout, mask.shape, "dout")
    return backend.dropout_gradient(dout, mask)


class Dropout:
    """The book's plain (not inverted) dropout: scales by (1 - ratio) at test time."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = _check_ratio(dropout_ratio)
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            out, self.mask = _dropout_mask_apply(backends.CPU, x, self.dropout_ratio, 1.0)
            return out
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout):
        _require_forward(self.mask, self)
        return _dropout_backward(backends.CPU, dout, self.mask)


class Embedding(gpu.HostPickled):
    """Rows of W picked by integer ids of any shape; backward scatter-adds into grads[0]."""

    _ndim = None
    _backend_for = staticmethod(backends.host)  # the backend for the weights (the time layer: chosen)

    def __init__(self, W):
        weights_dtype(W=W)
        check_ndim(W, 2, "W")
        self._backend = self._backend_for(W)
        self.params = self._backend.prepare_weights(W)
        self.grads = [self._backend.zeros_like(self.params[0])]
        self.idx = None
        self._workspace = Workspace(self._backend.alloc)

    def forward(self, idx):
        out, self.idx = self._gather(idx, self._backend.fresh)
        return out

    def infer(self, idx):
        """forward into an array kept from call to call, saving nothing for backward (evaluation)."""
        self.idx = None
        return self._gather(idx, self._workspace.empty)[0]

    def _gather(self, idx, empty, scale=None):
        """(the rows of W that idx picks, each times scale[id] where a scale (V,) is given,
        the ids as backward reads them)."""
        W, = self.params
        weights_dtype(W=W)
        ids = as_token_ids(gpu.to_host(idx), W.shape[0], "token ids")  # checked on the host: kernels do not check
        if self._ndim is not None:
            check_ndim(ids, self._ndim, "token ids")
        out = empty("out", ids.shape + (W.shape[1],), W.dtype)
        return out, self._backend.gather_rows(W, ids, out, empty, scale)

    def backward(self, dout):
        self._scatter(dout)
        return None

    def _scatter(self, dout, scale=None):
        """grads[0] = the gradient of W (of W * scale[:, None] times scale, with a scale)."""
        _require_forward(self.idx, self)
        W, = self.params
        dout = self._backend.floats(dout, self.idx.ndim + 1, W.dtype, "dout")
        check_shape(dout, self.idx.shape + (W.shape[1],), "dout")
        self._backend.scatter_add_rows(self.idx, dout, self.grads[0], scale)
