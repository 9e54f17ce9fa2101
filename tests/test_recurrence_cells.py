"""The recurrence's lanes are generic over the cell (fastlstm/recurrence.py,
kernels/recurrence.py): a cell of two dependent products per step, as a GRU's, brings only
its step kernels and its phases, and runs on the lanes with NumPy's results, the same bits
on any number of lanes."""

from dataclasses import replace

import numpy as np
import pytest
from numba import njit

from fastlstm.kernels.recurrence import lane_loops
from fastlstm.lanes import Lanes
from fastlstm.recurrence import LSTM, Cell, RecurrentMasks, backward, forward
from fastlstm.workspace import fresh


# A two-layer step: s = tanh(x0_t + h_t @ W0), h_{t+1} = tanh(x1_t + s @ W1), Wh = [W0 | W1].
@njit(nogil=True)
def _forward_step(phase, t, state, products, j0):
    xs, hs, ss = state  # xs (T, N, 2H): x0_t and x1_t side by side; hs (T + 1, N, H); ss (T, N, H)
    product = products[phase]
    N, K, H = product.shape[0], product.shape[1], hs.shape[2]
    for n in range(N):
        for j in range(K):
            if phase == 0:
                ss[t, n, j0 + j] = np.tanh(xs[t, n, j0 + j] + product[n, j])
            else:
                hs[t + 1, n, j0 + j] = np.tanh(xs[t, n, H + j0 + j] + product[n, j])


@njit(nogil=True)
def _backward_step(phase, t, state, products, j0):
    hs, ss, dhs, da1, da0 = state  # dhs (T, N, H): the outputs' gradients; da1, da0 (T, N, H): the operands
    N, K = products[0].shape
    for n in range(N):
        for j in range(K):
            u = j0 + j
            if phase == 0:  # products[1]: the gradient of h_{t+1} through step t + 1 (zero at first)
                da1[t, n, u] = (dhs[t, n, u] + products[1][n, j]) * (1 - hs[t + 1, n, u] ** 2)
            else:  # products[0]: da1[t] @ W1.T, the gradient of s
                da0[t, n, u] = products[0][n, j] * (1 - ss[t, n, u] ** 2)


TWO_PRODUCTS = Cell(*lane_loops("two_products", _forward_step, _backward_step, cache=False), phases=(1, 1))


def _run(xs, Wh, h0, dhs, lanes):
    T, N, H = dhs.shape
    hs = np.zeros((T + 1, N, H))
    hs[0] = h0
    ss = np.full((T, N, H), np.nan)
    forward(TWO_PRODUCTS, (hs, ss), (xs, hs, ss), Wh, lanes, fresh)
    da1, da0, dh = np.full((T, N, H), np.nan), np.full((T, N, H), np.nan), np.full((N, H), np.nan)
    backward(TWO_PRODUCTS, (da1, da0), (hs, ss, dhs, da1, da0), Wh, dh, lanes)
    return hs, ss, da1, da0, dh


def _reference(xs, Wh, h0, dhs):
    T, N, H = dhs.shape
    W0, W1 = Wh[:, :H], Wh[:, H:]
    hs, ss = [h0], []
    for t in range(T):
        ss.append(np.tanh(xs[t, :, :H] + hs[-1] @ W0))
        hs.append(np.tanh(xs[t, :, H:] + ss[-1] @ W1))
    da1, da0, dh = np.zeros((T, N, H)), np.zeros((T, N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        da1[t] = (dhs[t] + dh) * (1 - hs[t + 1] ** 2)
        da0[t] = (da1[t] @ W1.T) * (1 - ss[t] ** 2)
        dh = da0[t] @ W0.T
    return np.array(hs), np.array(ss), da1, da0, dh


@pytest.mark.parametrize("N,T,H,n_lanes", [(3, 5, 17, 3), (2, 4, 40, 2), (1, 1, 7, 1)])
def test_a_cell_of_two_dependent_products_runs_on_the_lanes(N, T, H, n_lanes):
    rng = np.random.default_rng(H)
    xs, Wh = rng.standard_normal((T, N, 2 * H)), rng.standard_normal((H, 2 * H)) / np.sqrt(H)
    h0, dhs = rng.standard_normal((N, H)), rng.standard_normal((T, N, H))
    want = _reference(xs, Wh, h0, dhs)
    one = _run(xs, Wh, h0, dhs, Lanes(threads=1))
    many = _run(xs, Wh, h0, dhs, Lanes(threads=n_lanes, min_units=1, min_step_work=0, speeds=[1.0, 0.5, 2.0]))
    for name, w, a, b in zip(["hs", "ss", "da1", "da0", "dh"], want, one, many):
        np.testing.assert_allclose(a, w, rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(b, a, err_msg=name)


def test_the_lstm_is_one_phase_of_its_four_gate_blocks():
    assert LSTM.phases == (4,) and LSTM.blocks() == [(0, 4)]
    assert TWO_PRODUCTS.blocks() == [(0, 1), (1, 2)]
    assert Cell(None, None, phases=(2, 1)).blocks() == [(0, 2), (2, 3)]  # a GRU's: z and r, then h~


@pytest.mark.parametrize("n_lanes", [1, 3])
def test_weight_drop_on_any_cell_is_its_wh_times_the_mask_to_the_bit(n_lanes):
    """forward and backward pack Wh times a weight mask as they pack Wh: a two-phase cell (a
    GRU's shape) gets weight drop with nothing of its own, with the bits of a masked copy."""
    N, T, H = 3, 4, 11
    rng = np.random.default_rng(5)
    xs, Wh = rng.standard_normal((T, N, 2 * H)), rng.standard_normal((H, 2 * H)) / np.sqrt(H)
    h0, dhs = rng.standard_normal((N, H)), rng.standard_normal((T, N, H))
    mask = (rng.random(Wh.shape) > 0.4) / 0.6
    lanes = Lanes(threads=n_lanes, min_units=1, min_step_work=0, speeds=[1.0, 0.5, 2.0][:n_lanes])
    want = _run(xs, Wh * mask, h0, dhs, lanes)
    hs, ss = np.zeros((T + 1, N, H)), np.full((T, N, H), np.nan)
    hs[0] = h0
    masks = replace(RecurrentMasks.none(hs), weight=mask)
    forward(TWO_PRODUCTS, (hs, ss), (xs, hs, ss), Wh, lanes, fresh, masks)
    da1, da0, dh = np.full((T, N, H), np.nan), np.full((T, N, H), np.nan), np.full((N, H), np.nan)
    backward(TWO_PRODUCTS, (da1, da0), (hs, ss, dhs, da1, da0), Wh, dh, lanes, masks)
    for name, w, got in zip(["hs", "ss", "da1", "da0", "dh"], want, (hs, ss, da1, da0, dh)):
        np.testing.assert_array_equal(got, w, err_msg=name)
