"""The book's `common.layers`, with Embedding, Affine, SoftmaxWithLoss and Dropout on
fastlstm's kernels; the time layers build on these four.

Every layer keeps the book's contract: `params` holds the very arrays passed in,
`grads` arrays of the same shapes that backward overwrites in place, and outputs carry
the weights' dtype.
"""

import numba
import numpy as np

from fastlstm.blas import dot, dots, tn_product
from fastlstm.checks import as_floats, as_token_ids, check_ndim, check_shape, weights_dtype
from fastlstm.functions import cross_entropy_error, sigmoid, softmax
from fastlstm.kernels.linalg import column_sums
from fastlstm.kernels.dropout import dropout_backward, dropout_forward
from fastlstm.kernels.embedding import embedding_backward, embedding_forward
from fastlstm.kernels.softmax import softmax_cross_entropy_forward, softmax_cross_entropy_forward_backward
from fastlstm.workspace import Workspace, fresh


def _require_forward(saved, layer):
    if saved is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")


def _draw_seed():
    """A dropout seed from NumPy's global generator, so np.random.seed governs the masks."""
    return np.uint64(np.random.randint(0, 2**63 - 1, dtype=np.int64))


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


class Affine:
    """x @ W + b over the last axis of x; W is read where it lies (a tied W is a transposed view)."""

    _ndim = 2
    _new_array = staticmethod(fresh)  # where forward's arrays are made (the CUDA twin: on the device)

    def __init__(self, W, b):
        weights_dtype(W=W, b=b)
        check_ndim(W, 2, "W")
        check_shape(b, (W.shape[1],), "b")
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None
        self._workspace = Workspace()

    def forward(self, x):
        out, self.x = self._apply(x, self._new_array)
        return out

    def infer(self, x):
        """forward into an array kept from call to call, saving nothing for backward (evaluation)."""
        self.x = None
        return self._apply(x, self._workspace.empty)[0]

    def _apply(self, x, empty):
        W, b = self.params
        dtype = weights_dtype(W=W, b=b)
        x = as_floats(x, self._ndim, dtype, "x")
        if x.shape[-1] != W.shape[0]:
            raise ValueError(f"x has width {x.shape[-1]} but W has shape {W.shape}")
        out = empty("out", x.shape[:-1] + (W.shape[1],), dtype)
        out2 = out.reshape(-1, W.shape[1])
        dot(x.reshape(-1, W.shape[0]), W, out=out2, bias=b)
        return out, x

    def backward(self, dout):
        _require_forward(self.x, self)
        W, b = self.params
        dout = as_floats(dout, self._ndim, W.dtype, "dout")
        check_shape(dout, self.x.shape[:-1] + (W.shape[1],), "dout")
        x2 = self.x.reshape(-1, W.shape[0])
        dout2 = dout.reshape(-1, W.shape[1])
        dx = np.empty(self.x.shape, dtype=W.dtype)
        dots(tn_product(x2, dout2, self.grads[0]), (dout2, W.T, dx.reshape(x2.shape)))
        column_sums(dout2, self.grads[1])
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


class SoftmaxWithLoss:
    """Mean softmax cross-entropy of scores (N, V) against ids (N,) or one-hot (N, V),
    fused in one kernel pass per row; the probabilities are never stored.

    When the last forward was followed by backward (a training loop), forward also
    writes the gradient for dout = 1 in the same pass over the scores, which backward
    then hands out: a BetterRnnlm training step read its 28 MB of scores once less.
    """

    _ndim = 2
    ignore_label = None
    _new_array = staticmethod(fresh)  # where forward's arrays are made (the CUDA twin: on the device)
    _precomputes_gradient = True  # the CUDA twin does not
    _backward_followed = False  # whether backward was called since the last forward

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None
        self._workspace = Workspace()

    def forward(self, x, t):
        self.cache = None  # the last call's scores go before this call's gradient is made
        if self._backward_followed and self._precomputes_gradient:
            loss, self.cache = self._loss(x, t, self._new_array, with_gradient=True)
        else:
            loss, self.cache = self._loss(x, t, self._new_array)
        self._backward_followed = False
        return loss

    def infer(self, x, t):
        """The loss alone, computed in arrays kept from call to call (evaluation)."""
        self.cache = None
        return self._loss(x, t, self._workspace.empty)[0]

    def _loss(self, x, t, empty, with_gradient=False):
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"scores must be float32 or float64, got {x.dtype}")
        check_ndim(x, self._ndim, "scores")
        t = np.asarray(t)
        if t.shape == x.shape:
            t = t.argmax(axis=-1)
        check_shape(t, x.shape[:-1], "targets")
        V = x.shape[-1]
        ts = as_token_ids(t, V, "targets", self.ignore_label).reshape(-1)
        count = int(np.count_nonzero(ts >= 0))
        if count == 0:
            raise ValueError(f"every target equals ignore_label {self.ignore_label}: the mean loss is undefined")
        x2 = np.ascontiguousarray(x).reshape(-1, V)
        row_loss = empty("row_loss", (x2.shape[0],), np.float64)
        dx = None
        if with_gradient:
            dx = np.empty_like(x2)
            softmax_cross_entropy_forward_backward(x2, ts, row_loss, x2.dtype.type(1 / count), dx)
        else:
            tasks = max(1, min(x2.shape[0], numba.get_num_threads()))
            softmax_cross_entropy_forward(x2, ts, row_loss, empty("exps", (tasks, V), x.dtype))
        return row_loss.sum() / count, [x2, ts, count, x.shape, dx]

    def backward(self, dout=1):
        _require_forward(self.cache, self)
        self._backward_followed = True
        x2, ts, count, shape, dx = self.cache
        if dx is not None and dout == 1:
            self.cache[-1] = None  # handed out once: a second call makes its own
            return dx.reshape(shape)
        dx = np.empty_like(x2)
        scale = x2.dtype.type(dout / count)
        softmax_cross_entropy_forward_backward(x2, ts, np.empty(x2.shape[0]), scale, dx)
        return dx.reshape(shape)


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


def _check_ratio(dropout_ratio):
    if not isinstance(dropout_ratio, (int, float, np.floating, np.integer)) or isinstance(dropout_ratio, bool):
        raise TypeError(f"dropout_ratio must be a number, got {dropout_ratio!r}")
    if not 0.0 <= dropout_ratio < 1.0:
        raise ValueError(f"dropout_ratio must be in [0, 1), got {dropout_ratio}")
    return float(dropout_ratio)


def _dropout_mask_apply(x, ratio, scale):
    """(x * mask, mask) with a fresh mask whose kept entries hold `scale`."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"dropout input must be float32 or float64, got {x.dtype}")
    x = np.ascontiguousarray(x)
    mask = np.empty_like(x)
    out = np.empty_like(x)
    dropout_forward(x.reshape(-1), _draw_seed(), ratio, scale, mask.reshape(-1), out.reshape(-1))
    return out, mask


def _dropout_backward(dout, mask):
    dout = np.ascontiguousarray(as_floats(dout, mask.ndim, mask.dtype, "dout"))
    check_shape(dout, mask.shape, "dout")
    dx = np.empty_like(mask)
    dropout_backward(dout.reshape(-1), mask.reshape(-1), dx.reshape(-1))
    return dx


class Dropout:
    """The book's plain (not inverted) dropout: scales by (1 - ratio) at test time."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = _check_ratio(dropout_ratio)
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            out, self.mask = _dropout_mask_apply(x, self.dropout_ratio, 1.0)
            return out
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout):
        _require_forward(self.mask, self)
        return _dropout_backward(dout, self.mask)


class Embedding:
    """Rows of W picked by integer ids of any shape; backward scatter-adds into grads[0]."""

    _ndim = None
    _new_array = staticmethod(fresh)  # where forward's arrays are made (the CUDA twin: on the device)

    def __init__(self, W):
        weights_dtype(W=W)
        check_ndim(W, 2, "W")
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx = None
        self._workspace = Workspace()

    def forward(self, idx):
        out, self.idx = self._gather(idx, self._new_array)
        return out

    def infer(self, idx):
        """forward into an array kept from call to call, saving nothing for backward (evaluation)."""
        self.idx = None
        return self._gather(idx, self._workspace.empty)[0]

    def _gather(self, idx, empty):
        W, = self.params
        weights_dtype(W=W)
        ids = as_token_ids(idx, W.shape[0], "token ids")
        if self._ndim is not None:
            check_ndim(ids, self._ndim, "token ids")
        out = empty("out", ids.shape + (W.shape[1],), W.dtype)
        embedding_forward(W, ids.reshape(-1), out.reshape(-1, W.shape[1]))
        return out, ids

    def backward(self, dout):
        _require_forward(self.idx, self)
        W, = self.params
        dout = as_floats(dout, self.idx.ndim + 1, W.dtype, "dout")
        check_shape(dout, self.idx.shape + (W.shape[1],), "dout")
        embedding_backward(self.idx.reshape(-1), dout.reshape(-1, W.shape[1]), self.grads[0])
        return None
