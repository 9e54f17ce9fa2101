"""The checkpoint record of `fastlstm train`: what is saved is what is restored."""

import math
import pickle

import numpy as np
import pytest

from fastlstm.checkpoint import Checkpoint, Position
from fastlstm.errors import UserError
from fastlstm.models import BetterRnnlm
from fastlstm.optimizer import SGD
from fastlstm.training_step import train_step

# the keys of checkpoint.pkl as `fastlstm train` has always written them
KEYS = {"format", "config", "params", "optimizer", "epoch", "iteration", "total_iterations", "time_idx", "best_ppl",
        "rng_state", "lstm_states", "interval", "elapsed_s", "log"}


def trained(seed):
    """A small BetterRnnlm and its SGD after two steps (LSTM states set, lr changed), and NumPy's RNG moved on."""
    np.random.seed(seed)
    model = BetterRnnlm(20, 6, 6, dtype=np.float64)
    optimizer = SGD(20.0)
    xs = np.random.randint(0, 20, size=(2, 3))
    for _ in range(2):
        train_step(model, optimizer, xs, xs, 0.25)
    optimizer.lr = 5.0
    return model, optimizer


def test_a_checkpoint_restores_what_it_captured(tmp_path):
    model, optimizer = trained(1)
    position = Position(epoch=2, iteration=7, total_iterations=57, time_idx=280, best_ppl=412.5,
                        interval=(12.25, 3), elapsed_s=9.5, log=[{"kind": "train", "perplexity": 500.0}])
    saved = Checkpoint.capture({"model": "better"}, model, optimizer, position)
    position.log.append({"kind": "valid"})  # the record holds its own copy of the log
    assert len(saved.position.log) == 1
    saved.write(tmp_path / "checkpoint.pkl")
    draws = np.random.random(3)  # what the restored RNG must draw again

    other, other_optimizer = trained(2)  # other weights, states, lr and RNG
    read = Checkpoint.read(tmp_path / "checkpoint.pkl")
    restored = read.restore(other, other_optimizer, "checkpoint.pkl")
    assert restored == saved.position and restored is not read.position
    assert read.config == {"model": "better"}
    np.testing.assert_array_equal(np.random.random(3), draws)
    assert other_optimizer.state_dict() == optimizer.state_dict() and other_optimizer.lr == 5.0
    for p, q in zip(other.params, model.params):
        np.testing.assert_array_equal(p, q)
    assert np.shares_memory(other.params[-2], other.params[0])  # the tied weight, stored once, loaded in place
    for a, b in zip(other.lstm_layers, model.lstm_layers):
        np.testing.assert_array_equal(a.h, b.h)
        np.testing.assert_array_equal(a.c, b.c)


def test_the_file_keeps_its_format(tmp_path):
    model, optimizer = trained(3)
    Checkpoint.capture({}, model, optimizer, Position()).write(tmp_path / "checkpoint.pkl")
    with open(tmp_path / "checkpoint.pkl", "rb") as f:
        state = pickle.load(f)
    assert set(state) == KEYS
    assert state["format"] == "fastlstm-checkpoint" and state["best_ppl"] == math.inf
    assert state["params"][-2] is None and state["params"][0].dtype == np.float64
    assert state["interval"] == (0.0, 0) and state["optimizer"]["lr"] == 5.0


def test_read_refuses_what_is_not_a_whole_checkpoint(tmp_path):
    model, optimizer = trained(4)
    Checkpoint.capture({}, model, optimizer, Position()).write(tmp_path / "checkpoint.pkl")
    with open(tmp_path / "checkpoint.pkl", "rb") as f:
        state = pickle.load(f)
    for name, obj in (("other.pkl", {"format": "something else"}),
                      ("partial.pkl", {k: v for k, v in state.items() if k not in ("time_idx", "rng_state")})):
        with open(tmp_path / name, "wb") as f:
            pickle.dump(obj, f)
    with pytest.raises(UserError, match="other.pkl is not a fastlstm checkpoint"):
        Checkpoint.read(tmp_path / "other.pkl")
    with pytest.raises(UserError, match="partial.pkl is a fastlstm checkpoint without rng_state, time_idx"):
        Checkpoint.read(tmp_path / "partial.pkl")


def test_finite_sees_a_nan_weight():
    model, optimizer = trained(5)
    assert Checkpoint.capture({}, model, optimizer, Position()).finite()
    model.params[3][0] = np.nan
    assert not Checkpoint.capture({}, model, optimizer, Position()).finite()
