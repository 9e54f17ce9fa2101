"""The book's simple time layers (TimeSigmoidWithLoss, Simple_TimeSoftmaxWithLoss,
Simple_TimeAffine): against the book's step-by-step loops in fastlstm.reference, against
finite differences in float64, with the book's attributes, and refusing bad input."""

import numpy as np
import pytest

from fastlstm import time_layers as fast
from fastlstm.reference import numpy_layers as ref
from gradcheck import assert_grad_close, numerical_grad

SHAPES = [(1, 1, 2), (3, 4, 5), (2, 7, 13)]  # V > 1: with V = 1 the book reads ids as one-hot
TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def data(N, T, V, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, T, V)).astype(dtype) * 2, rng.integers(0, V, size=(N, T))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,T,V", SHAPES)
def test_sigmoid_loss_is_the_books(dtype, N, T, V):
    xs, ts = data(N, T, 1, dtype)
    xs, ts = xs[:, :, 0] * V, ts % 2  # (N, T) scores and 0/1 labels
    ours, book = fast.TimeSigmoidWithLoss(), ref.TimeSigmoidWithLoss()
    loss = ours.forward(xs, ts)
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss, book.forward(xs, ts), **TOL[dtype])
    dxs = ours.backward(2.0)
    assert dxs.dtype == dtype and dxs.shape == (N, T)
    np.testing.assert_allclose(dxs, book.backward(2.0), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,T,V", SHAPES)
def test_simple_softmax_loss_is_the_books(dtype, N, T, V):
    xs, ts = data(N, T, V, dtype)
    ours, book = fast.Simple_TimeSoftmaxWithLoss(), ref.Simple_TimeSoftmaxWithLoss()
    loss = ours.forward(xs, ts)
    # the book's cross_entropy_error adds 1e-7 inside the log; fastlstm's softmax losses do not
    np.testing.assert_allclose(loss, book.forward(xs, ts), rtol=1e-5)
    dxs = ours.backward(0.5)
    assert dxs.dtype == dtype and dxs.shape == xs.shape
    np.testing.assert_allclose(dxs, book.backward(0.5), **TOL[dtype])
    # one-hot targets, as the book's layer takes them too
    np.testing.assert_allclose(ours.forward(xs, np.eye(V, dtype=int)[ts]), loss, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,T,V", SHAPES)
def test_simple_affine_is_the_books_with_its_attributes(dtype, N, T, V):
    rng = np.random.default_rng(1)
    W, b = rng.standard_normal((3, V)).astype(dtype), rng.standard_normal(V).astype(dtype)
    x, dout = rng.standard_normal((N, T, 3)).astype(dtype), rng.standard_normal((N, T, V)).astype(dtype)
    ours, book = fast.Simple_TimeAffine(W, b), ref.Simple_TimeAffine(W, b)
    assert ours.W is W and ours.b is b and ours.params == [W, b]
    np.testing.assert_allclose(ours.forward(x), book.forward(x), **TOL[dtype])
    dx = ours.backward(dout)
    np.testing.assert_allclose(dx, book.backward(dout), **TOL[dtype])
    assert ours.dW is ours.grads[0] and ours.db is ours.grads[1]  # overwritten in place
    np.testing.assert_allclose(ours.dW, book.dW, **TOL[dtype])
    np.testing.assert_allclose(ours.db, book.db, **TOL[dtype])


def test_gradients_by_finite_differences():
    rng = np.random.default_rng(2)
    xs, labels = rng.standard_normal((3, 4)), rng.integers(0, 2, size=(3, 4))
    layer = fast.TimeSigmoidWithLoss()
    layer.forward(xs, labels)
    assert_grad_close(layer.backward(), numerical_grad(lambda: layer.forward(xs, labels), xs), "sigmoid dxs")

    scores, ts = rng.standard_normal((2, 3, 5)), rng.integers(0, 5, size=(2, 3))
    soft = fast.Simple_TimeSoftmaxWithLoss()
    soft.forward(scores, ts)
    assert_grad_close(soft.backward(), numerical_grad(lambda: soft.forward(scores, ts), scores), "softmax dxs")

    W, b, x, R = rng.standard_normal((4, 5)), rng.standard_normal(5), rng.standard_normal((2, 3, 4)), \
        rng.standard_normal((2, 3, 5))
    affine = fast.Simple_TimeAffine(W, b)

    def loss():
        return np.sum(affine.forward(x) * R)

    loss()
    dx = affine.backward(R)
    assert_grad_close(dx, numerical_grad(loss, x), "affine dx")
    assert_grad_close(affine.dW.copy(), numerical_grad(loss, W), "affine dW")
    assert_grad_close(affine.db.copy(), numerical_grad(loss, b), "affine db")


def test_bad_input():
    layer = fast.TimeSigmoidWithLoss()
    with pytest.raises(IndexError, match="labels holds token id 2, outside \\[0, 2\\)"):
        layer.forward(np.zeros((1, 2)), np.array([[0, 2]]))
    with pytest.raises(ValueError, match="labels must have shape \\(1, 2\\), got \\(2, 1\\)"):
        layer.forward(np.zeros((1, 2)), np.zeros((2, 1), int))
    with pytest.raises(ValueError, match="xs must be 2-D"):
        layer.forward(np.zeros((1, 2, 3)), np.zeros((1, 2), int))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        fast.TimeSigmoidWithLoss().backward()
    with pytest.raises(IndexError, match="token id -1, outside \\[0, 5\\)"):  # no ignore_label here
        fast.Simple_TimeSoftmaxWithLoss().forward(np.zeros((1, 2, 5)), np.array([[0, -1]]))
    with pytest.raises(ValueError, match="x has width 4 but W has shape \\(3, 5\\)"):
        fast.Simple_TimeAffine(np.zeros((3, 5)), np.zeros(5)).forward(np.zeros((1, 2, 4)))
