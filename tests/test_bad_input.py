"""Bad input is refused with a clear exception before any kernel runs."""

import numpy as np
import pytest

from fastlstm.layers import Dropout, SoftmaxWithLoss
from fastlstm.time_layers import TimeAffine, TimeDropout, TimeEmbedding, TimeLSTM, TimeSoftmaxWithLoss

f32 = np.float32


def lstm(D=3, H=2, dtype=f32):
    return TimeLSTM(np.zeros((D, 4 * H), dtype), np.zeros((H, 4 * H), dtype), np.zeros(4 * H, dtype))


@pytest.mark.parametrize("bad", [-1, 10, 2**40])
def test_token_id_out_of_range(bad):
    layer = TimeEmbedding(np.zeros((10, 4), f32))
    with pytest.raises(IndexError, match=f"token id {bad}, outside \\[0, 10\\)"):
        layer.forward(np.array([[1, bad]]))


def test_unsigned_token_id_out_of_range():
    layer = TimeEmbedding(np.zeros((10, 4), f32))
    with pytest.raises(IndexError, match="token id 18446744073709551615"):
        layer.forward(np.array([[1, 2**64 - 1]], dtype=np.uint64))


def test_token_ids_must_be_integers_of_the_right_rank():
    layer = TimeEmbedding(np.zeros((10, 4), f32))
    with pytest.raises(TypeError, match="integer token ids, got float64"):
        layer.forward(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="must be 2-D, got shape \\(3,\\)"):
        layer.forward(np.array([1, 2, 3]))


@pytest.mark.parametrize("bad", [-2, 5])
def test_target_out_of_range(bad):
    with pytest.raises(IndexError, match=f"token id {bad}, outside \\[0, 5\\) or -1"):
        TimeSoftmaxWithLoss().forward(np.zeros((1, 2, 5), f32), np.array([[0, bad]]))


def test_targets_shape_and_all_ignored():
    loss = TimeSoftmaxWithLoss()
    with pytest.raises(ValueError, match="targets must have shape \\(1, 2\\), got \\(2, 1\\)"):
        loss.forward(np.zeros((1, 2, 5), f32), np.zeros((2, 1), int))
    with pytest.raises(ValueError, match="every target equals ignore_label -1"):
        loss.forward(np.zeros((1, 2, 5), f32), np.full((1, 2), -1))
    for N, T in ((0, 2), (1, 0)):
        with pytest.raises(ValueError, match="hold no rows: the mean loss of an empty batch is undefined"):
            loss.forward(np.zeros((N, T, 5), f32), np.zeros((N, T), int))
    with pytest.raises(ValueError, match="hold no rows"):
        SoftmaxWithLoss().forward(np.zeros((0, 5), f32), np.zeros(0, int))
    with pytest.raises(ValueError, match="scores must be 3-D"):
        loss.forward(np.zeros((2, 5), f32), np.zeros(2, int))
    with pytest.raises(TypeError, match="scores must be float32 or float64, got int64"):
        loss.forward(np.zeros((1, 2, 5), np.int64), np.zeros((1, 2), int))


def test_lstm_input_shapes():
    layer = lstm(D=3, H=2)
    with pytest.raises(ValueError, match="xs must be 3-D, got shape \\(2, 3\\)"):
        layer.forward(np.zeros((2, 3), f32))
    with pytest.raises(ValueError, match="xs has width 4 but Wx has shape \\(3, 8\\)"):
        layer.forward(np.zeros((1, 2, 4), f32))
    with pytest.raises(TypeError, match="xs must hold floats, got int64"):
        layer.forward(np.zeros((1, 2, 3), np.int64))
    layer.forward(np.zeros((1, 2, 3), f32))
    with pytest.raises(ValueError, match="dhs must have shape \\(1, 2, 2\\), got \\(1, 2, 3\\)"):
        layer.backward(np.zeros((1, 2, 3), f32))


def test_lstm_stateful_batch_change():
    layer = lstm(D=3, H=2)
    layer.stateful = True
    layer.forward(np.zeros((2, 2, 3), f32))
    with pytest.raises(ValueError, match="state h has shape \\(2, 2\\) but this batch needs \\(3, 2\\)"):
        layer.forward(np.zeros((3, 2, 3), f32))


@pytest.mark.parametrize("shapes,message", [
    (((3, 8), (2, 6), (8,)), "Wh must have shape \\(H, 4H\\)"),
    (((3, 12), (2, 8), (8,)), "Wx must have shape \\(D, 8\\) to match Wh \\(2, 8\\), got \\(3, 12\\)"),
    (((3, 8), (2, 8), (6,)), "b must have shape \\(8,\\) to match Wh \\(2, 8\\), got \\(6,\\)"),
    (((3, 8), (2, 8), (2, 4)), "b must be 1-D"),
])
def test_lstm_weights_that_do_not_fit(shapes, message):
    Wx, Wh, b = (np.zeros(s, f32) for s in shapes)
    with pytest.raises(ValueError, match=message):
        TimeLSTM(Wx, Wh, b)


def test_integer_and_mixed_dtype_weights():
    with pytest.raises(TypeError, match="Wx must be float32 or float64, got int64"):
        TimeLSTM(np.zeros((3, 8), np.int64), np.zeros((2, 8), f32), np.zeros(8, f32))
    with pytest.raises(TypeError, match="weights must share one dtype, got Wx float32, Wh float64, b float32"):
        TimeLSTM(np.zeros((3, 8), f32), np.zeros((2, 8)), np.zeros(8, f32))
    with pytest.raises(TypeError, match="W must be float32 or float64, got int32"):
        TimeEmbedding(np.zeros((4, 2), np.int32))
    with pytest.raises(TypeError, match="weights must share one dtype, got W float32, b float64"):
        TimeAffine(np.zeros((4, 2), f32), np.zeros(2))
    with pytest.raises(TypeError, match="W must be a NumPy array, got list"):
        TimeEmbedding([[0.0, 1.0]])


def test_affine_shapes():
    with pytest.raises(ValueError, match="b must have shape \\(3,\\), got \\(4,\\)"):
        TimeAffine(np.zeros((2, 3), f32), np.zeros(4, f32))
    layer = TimeAffine(np.zeros((2, 3), f32), np.zeros(3, f32))
    with pytest.raises(ValueError, match="x has width 5 but W has shape \\(2, 3\\)"):
        layer.forward(np.zeros((1, 1, 5), f32))


def test_weights_swapped_for_integers_after_construction():
    layer = TimeEmbedding(np.zeros((4, 2), f32))
    layer.params[0] = np.zeros((4, 2), np.int64)
    with pytest.raises(TypeError, match="W must be float32 or float64"):
        layer.forward(np.zeros((1, 1), int))


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_dropout_ratio_outside_range(ratio):
    with pytest.raises(ValueError, match=f"dropout_ratio must be in \\[0, 1\\), got {ratio}"):
        TimeDropout(ratio)
    with pytest.raises(ValueError, match="dropout_ratio must be in"):
        Dropout(ratio)


def test_dropout_ratio_type_and_input_dtype():
    with pytest.raises(TypeError, match="dropout_ratio must be a number, got '0.5'"):
        TimeDropout("0.5")
    with pytest.raises(TypeError, match="dropout input must be float32 or float64, got int64"):
        TimeDropout(0.5).forward(np.zeros((1, 2, 3), np.int64))


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="TimeLSTM.backward called before forward"):
        lstm().backward(np.zeros((1, 1, 2), f32))
    with pytest.raises(RuntimeError, match="TimeEmbedding.backward called before forward"):
        TimeEmbedding(np.zeros((3, 2), f32)).backward(np.zeros((1, 1, 2), f32))
    with pytest.raises(RuntimeError, match="TimeSoftmaxWithLoss.backward called before forward"):
        TimeSoftmaxWithLoss().backward()
