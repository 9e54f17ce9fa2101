"""fastlstm.optimizer.ASGD: AWD-LSTM's non-monotone trigger, the running average of the
weights since the switch, weight decay, its state for an exact resume, and the averaged
weights swapped in for evaluation."""

import numpy as np
import pytest

from fastlstm.optimizer import ASGD, SGD, update_scaled


def params_and_grads(rng, dtype=np.float64):
    params = [rng.standard_normal((3, 5)).astype(dtype), rng.standard_normal(7).astype(dtype),
              np.asfortranarray(rng.standard_normal((4, 2))).astype(dtype),
              rng.standard_normal((4, 6)).astype(dtype)[:, ::2]]  # a strided view: NumPy's expression
    return params, lambda: [rng.standard_normal(p.shape).astype(dtype) for p in params]


def test_the_trigger_compares_with_the_best_but_the_last_n():
    """AWD-LSTM's rule: switch when a figure is worse than the minimum of all figures but the
    last n, once more than n are in; from then on nothing switches."""
    optimizer = ASGD(1.0, nonmono=2)
    decisions = [optimizer.observe(f) for f in (5.0, 4.0, 3.0, 3.5, 3.2, 3.6, 9.0)]
    assert decisions == [False, False, False, False, False, True, False]
    assert optimizer.averaging and optimizer.history == [5.0, 4.0, 3.0, 3.5, 3.2, 3.6]
    never = ASGD(1.0, nonmono=0)
    assert not any(never.observe(f) for f in (1.0, 2.0, 3.0, 4.0)) and not never.averaging


def test_updates_and_the_running_average():
    rng = np.random.default_rng(0)
    params, grads_of = params_and_grads(rng)
    expected = [p.copy() for p in params]
    optimizer = ASGD(0.1, nonmono=1, weight_decay=0.01)
    for figure in (2.0, 1.0, 1.5, 1.6):
        optimizer.observe(figure)
    assert optimizer.averaging
    iterates = []
    for _ in range(4):
        grads = grads_of()
        update_scaled(optimizer, params, grads, 0.5)
        for e, g in zip(expected, grads):
            e -= 0.1 * (g * 0.5 + 0.01 * e)
        iterates.append([e.copy() for e in expected])
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, rtol=1e-13)
    means = [np.mean([it[i] for it in iterates], axis=0) for i in range(len(params))]
    for a, m in zip(optimizer.ax, means):
        np.testing.assert_allclose(a, m, rtol=1e-12, atol=1e-15)
    assert optimizer.averaged_steps == 4 and optimizer.iter == 4
    kept = [p.copy() for p in params]
    with optimizer.averaged(params) as inside:
        assert inside is params
        for p, m in zip(params, means):
            np.testing.assert_allclose(p, m, rtol=1e-12, atol=1e-15)
    for p, k in zip(params, kept):
        np.testing.assert_array_equal(p, k)


def test_before_the_switch_without_decay_it_is_sgd_to_the_bit():
    rng = np.random.default_rng(1)
    a, grads_of = params_and_grads(rng, np.float32)
    b = [p.copy() for p in a]
    asgd, sgd = ASGD(20.0, nonmono=5), SGD(20.0)
    for rate in (1.0, 0.3):
        grads = grads_of()
        update_scaled(asgd, a, grads, rate)
        update_scaled(sgd, b, grads, rate)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    with asgd.averaged(a):  # nothing averaged yet: the weights as they are
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p, q)


def test_state_dict_resumes_the_average_exactly():
    rng = np.random.default_rng(2)
    params, grads_of = params_and_grads(rng)
    grads = [grads_of() for _ in range(5)]
    optimizer = ASGD(0.5, nonmono=1, weight_decay=1e-3)
    for figure in (2.0, 1.0, 1.5, 1.6):
        optimizer.observe(figure)
    optimizer.update(params, grads[0])
    optimizer.update(params, grads[1])
    saved, saved_params = optimizer.state_dict(), [p.copy() for p in params]
    for g in grads[2:]:
        optimizer.update(params, g)
    resumed = ASGD(0.5)
    resumed.load_state_dict(saved)
    assert (resumed.nonmono, resumed.weight_decay, resumed.averaged_steps) == (1, 1e-3, 2)
    for g in grads[2:]:
        resumed.update(saved_params, g)
    for p, q, a, b in zip(params, saved_params, optimizer.ax, resumed.ax):
        np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(a, b)
    saved["ax"][0][...] = 7  # the loaded state is a copy
    assert not np.any(resumed.ax[0] == 7)


def test_refuses_what_does_not_fit():
    rng = np.random.default_rng(3)
    params, grads_of = params_and_grads(rng)
    optimizer = ASGD(0.1, nonmono=1)
    for figure in (2.0, 1.0, 1.5, 1.6):
        optimizer.observe(figure)
    optimizer.update(params, grads_of())
    with pytest.raises(ValueError, match="does not fit the params"):
        optimizer.update(params[:2], grads_of()[:2])
    with pytest.raises(ValueError, match="does not fit the params"):
        with optimizer.averaged(params[1:]):
            pass
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="nonmono must be an integer >= 0"):
            ASGD(1.0, nonmono=bad)
    state = optimizer.state_dict()
    del state["ax"]
    with pytest.raises(ValueError, match="must have keys"):
        ASGD().load_state_dict(state)
    with pytest.raises(ValueError, match="state dict is of 'SGD'"):
        ASGD().load_state_dict({**SGD(1.0).state_dict(), "history": [], "ax": None, "averaged_steps": 0})
