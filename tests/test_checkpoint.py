"""The checkpoint record of `fastlstm train`: what is saved is what is restored; the file is data,
checked whole when read."""

import json
import math
import os
import pickle
import zipfile
from dataclasses import fields

import numpy as np
import pytest

from fastlstm.checkpoint import Checkpoint, Position
from fastlstm.errors import UserError
from fastlstm.models import BetterRnnlm
from fastlstm.optimizer import ASGD, SGD
from fastlstm.training_step import train_step

# the keys of checkpoint.pkl as fastlstm wrote them before checkpoint.npz (format version 2)
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
    saved.write(tmp_path / "checkpoint.npz")
    draws = np.random.random(3)  # what the restored RNG must draw again

    other, other_optimizer = trained(2)  # other weights, states, lr and RNG
    read = Checkpoint.read(tmp_path / "checkpoint.npz")
    restored = read.restore(other, other_optimizer, "checkpoint.npz")
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


def read_archive(path):
    """(record, arrays) of a checkpoint.npz, read as data."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = dict(archive)
    return json.loads(arrays.pop("record").tobytes()), arrays


def write_archive(path, record, arrays):
    with open(path, "wb") as f:
        np.savez(f, record=np.frombuffer(json.dumps(record).encode(), np.uint8), **arrays)


def legacy_state(saved):
    """The dict that fastlstm pickled into checkpoint.pkl before format version 2."""
    return {"format": "fastlstm-checkpoint", "config": saved.config, "params": saved.params,
            "optimizer": saved.optimizer, "rng_state": saved.rng_state, "lstm_states": saved.lstm_states,
            **{f.name: getattr(saved.position, f.name) for f in fields(Position)}}


def test_the_file_is_an_archive_of_arrays_and_a_json_record(tmp_path):
    model, optimizer = trained(3)
    Checkpoint.capture({}, model, optimizer, Position()).write(tmp_path / "checkpoint.npz")
    record, arrays = read_archive(tmp_path / "checkpoint.npz")
    assert set(record) == {"format", "version", "config", "params", "optimizer", "rng_state", "lstm_states", "position"}
    assert record["format"] == "fastlstm-checkpoint" and record["version"] == 2
    assert set(record["position"]) == {f.name for f in fields(Position)}
    assert record["position"]["best_ppl"] == math.inf and record["position"]["interval"] == {"<tuple>": [0.0, 0]}
    assert record["params"][-2] is None and record["params"][0] == {"<array>": "params.0"}
    assert arrays["params.0"].dtype == np.float64 and record["optimizer"]["lr"] == 5.0
    assert arrays["rng_state.1"].dtype == np.uint32 and record["rng_state"]["<tuple>"][0] == "MT19937"
    assert sorted(arrays) == sorted([f"params.{i}" for i in range(9) if i != 7] + ["rng_state.1"]
                                    + [f"lstm_states.{i}.{j}" for i in range(2) for j in range(2)])
    assert [n for n in os.listdir(tmp_path)] == ["checkpoint.npz"]  # no temporary file left


def test_an_older_checkpoint_pkl_is_read_as_data(tmp_path):
    model, optimizer = trained(6)
    position = Position(epoch=1, iteration=3, best_ppl=99.5, interval=(1.5, 2), log=[{"kind": "train"}])
    saved = Checkpoint.capture({"model": "better"}, model, optimizer, position)
    state = legacy_state(saved)
    assert set(state) == KEYS
    with open(tmp_path / "checkpoint.pkl", "wb") as f:  # as fastlstm wrote it before format version 2
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    read = Checkpoint.read(tmp_path / "checkpoint.pkl")
    assert read.position == position and read.optimizer == optimizer.state_dict()
    for p, q in zip(read.params, saved.params):
        assert (p is None and q is None) or np.array_equal(p, q)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_checkpoint_pkl_that_would_run_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    with open(tmp_path / "checkpoint.pkl", "wb") as f:
        pickle.dump({"format": "fastlstm-checkpoint", "config": _RunsCode(str(marker))}, f)
    with pytest.raises(UserError, match="would run code when loaded; refused without loading it"):
        Checkpoint.read(tmp_path / "checkpoint.pkl")
    assert not marker.exists()


def test_read_refuses_what_is_not_a_whole_checkpoint(tmp_path):
    model, optimizer = trained(4)
    state = legacy_state(Checkpoint.capture({}, model, optimizer, Position()))
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


def _set(path, value):
    """A change that puts value at path (keys and indices) inside the record."""
    def change(record, arrays):
        node = record
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return change


def _array(name, value):
    def change(record, arrays):
        arrays[name] = value
    return change


_DELETE = object()
NAN_PARAM = np.full((6, 24), np.nan)


@pytest.mark.parametrize("change,message", [
    (_set(["rng_state"], _DELETE), "a fastlstm checkpoint without rng_state"),
    (_set(["position", "time_idx"], _DELETE), "a fastlstm checkpoint without time_idx"),
    (_set(["params", 0], [[1.0, 2.0]]), "params must start with the embedding weight, a 2-D array"),
    (_set(["params"], {"<array>": "params.0"}), "params must be a non-empty list"),
    (_set(["params", 1], "W"), "params must hold float arrays"),
    (_set(["lstm_states", 0], [None, None]), r"lstm_states must be a list of \(h, c\) pairs"),
    (_set(["position", "epoch"], "3"), "epoch, iteration, total_iterations and time_idx must be integers"),
    (_set(["position", "iteration"], -1), "must be integers >= 0"),
    (_set(["position", "best_ppl"], math.nan), "best_ppl must be a number > 0"),
    (_set(["position", "interval"], [1.0, 2]), "interval must be a"),
    (_set(["position", "elapsed_s"], math.inf), "elapsed_s must be a finite number"),
    (_set(["position", "log"], [{"kind": "train", "loss": 3}]), "log must be a list of rows"),
    (_set(["position"], [1, 2]), "position must be a record"),
    (_set(["position", "extra"], 1), "position must have the fields"),
    (_set(["optimizer", "lr"], math.inf), "optimizer lr must be a finite number > 0"),
    (_set(["optimizer", "type"], "Adam"), "optimizer must be the state of SGD"),
    (_set(["rng_state", "<tuple>", 0], "PCG64"), "rng_state is not the state of NumPy's MT19937"),
    (_array("rng_state.1", np.zeros(5, np.uint32)), "rng_state is not the state of NumPy's MT19937"),
    (_set(["config"], [1]), "config must be a dict of settings"),
    (_set(["surprise"], 1), r"unknown fields \['surprise'\]"),
    (_set(["version"], 3), "format version 3; this fastlstm reads version 2"),
    (_set(["format"], "other"), "is not a fastlstm checkpoint"),
    (_set(["params", 3], {"<array>": "nowhere"}), "names an array 'nowhere' that it does not hold"),
    (_array("params.1", NAN_PARAM), r"params\[1\] holds NaN or inf"),
    (_array("lstm_states.1.1", np.full((2, 6), np.inf)), r"lstm_states\[1\]\[1\] holds NaN or inf"),
])
def test_read_refuses_a_malformed_archive(tmp_path, change, message):
    assert_read_refuses(*trained(7), tmp_path / "checkpoint.npz", change, message)


def assert_read_refuses(model, optimizer, path, change, message):
    """Write the checkpoint of model and optimizer to path, apply change(record, arrays) to the
    archive, and check that reading it raises UserError matching message."""
    Checkpoint.capture({}, model, optimizer, Position()).write(path)
    record, arrays = read_archive(path)
    change(record, arrays)
    write_archive(path, record, arrays)
    with pytest.raises(UserError, match=message):
        Checkpoint.read(path)


def _zip_of_text(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", "hello")


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]), "is not a readable checkpoint"),
    (lambda p: p.write_bytes(p.read_bytes()[:100]), "is not a readable checkpoint"),
    (_zip_of_text, "is an .npz archive but not a fastlstm checkpoint"),
    (lambda p: np.savez(open(p, "wb"), a=np.zeros(2)), "holds no record"),
    (lambda p: np.savez(open(p, "wb"), record=np.frombuffer(b"{not json", np.uint8)), "is not a readable checkpoint"),
    (lambda p: np.savez(open(p, "wb"), record=np.zeros(3)), "its record is not a uint8 vector"),
    (lambda p: np.savez(open(p, "wb"), record=np.frombuffer(json.dumps({"format": "fastlstm-checkpoint", "version": 2,
                                                                        "params": {"<array>": "x"}}).encode(), np.uint8),
                        x=np.array([None, 1], dtype=object)), "Object arrays cannot be loaded"),
    (lambda p: p.write_bytes(b""), "not a readable params pickle"),
    (lambda p: p.write_bytes(pickle.dumps([np.zeros(3)])), "is not a fastlstm checkpoint"),
    (lambda p: os.remove(p), "no such file"),
    (lambda p: (os.remove(p), os.mkdir(p)), "cannot read"),
])
def test_read_refuses_truncated_foreign_and_missing_files(tmp_path, make, message):
    model, optimizer = trained(8)
    path = tmp_path / "checkpoint.npz"
    Checkpoint.capture({}, model, optimizer, Position()).write(path)
    make(path)
    with pytest.raises(UserError, match=message):
        Checkpoint.read(path)


def test_restore_checks_the_arrays_against_the_model(tmp_path):
    model, optimizer = trained(9)
    path = tmp_path / "checkpoint.npz"
    saved = Checkpoint.capture({}, model, optimizer, Position())
    saved.params[0] = np.full_like(saved.params[0], 1e300)  # finite in float64, inf in the float32 model
    saved.lstm_states = [(None, None)] * 2
    saved.write(path)
    np.random.seed(9)
    small = BetterRnnlm(20, 6, 6)  # float32
    before = [p.copy() for p in small.params]
    with pytest.raises(UserError, match=r"array 0 holds NaN or inf, or values beyond float32's range"):
        Checkpoint.read(path).restore(small, SGD(1.0), path)
    for p, q in zip(small.params, before):
        np.testing.assert_array_equal(p, q)
    saved.lstm_states[1] = (np.zeros((2, 7)), None)
    saved.write(path)
    with pytest.raises(UserError, match=r"LSTM state 1 is float64 \(2, 7\), the model's LSTM takes float32 of width 6"):
        Checkpoint.read(path).restore(small, SGD(1.0), path)
    saved.lstm_states[1] = (None, None)
    saved.params[0] = saved.params[1]  # another shape
    saved.write(path)
    with pytest.raises(UserError, match=r"array 0 has shape \(6, 24\), expected \(20, 6\)"):
        Checkpoint.read(path).restore(model, optimizer, path)
    saved.params = saved.params[:-1]
    saved.write(path)
    with pytest.raises(UserError, match="holds 8 arrays, but BetterRnnlm has 9 params"):
        Checkpoint.read(path).restore(model, optimizer, path)


# ------------------------------------------------------------------------------------ ASGD's state

def averaging(seed):
    """A small BetterRnnlm and its ASGD after three steps, the last two averaged."""
    np.random.seed(seed)
    model = BetterRnnlm(20, 6, 6, dtype=np.float64)
    optimizer = ASGD(1.0, nonmono=1, weight_decay=1e-3)
    xs = np.random.randint(0, 20, size=(2, 3))
    train_step(model, optimizer, xs, xs, 0.25)
    for figure in (2.0, 1.0, 1.5, 1.6):  # 1.6 is worse than the best but the last: averaging starts
        optimizer.observe(figure)
    for _ in range(2):
        train_step(model, optimizer, xs, xs, 0.25)
    return model, optimizer


def test_asgds_averages_go_through_the_archive(tmp_path):
    model, optimizer = averaging(10)
    assert optimizer.averaged_steps == 2 and len(optimizer.ax) == 8  # the tied weight's view is not averaged
    Checkpoint.capture({}, model, optimizer, Position()).write(tmp_path / "checkpoint.npz")
    other, other_optimizer = averaging(11)
    Checkpoint.read(tmp_path / "checkpoint.npz").restore(other, other_optimizer, "checkpoint.npz")
    a, b = optimizer.state_dict(), other_optimizer.state_dict()
    assert {k: v for k, v in a.items() if k != "ax"} == {k: v for k, v in b.items() if k != "ax"}
    assert a["history"] == [2.0, 1.0, 1.5, 1.6] and b["nonmono"] == 1 and b["weight_decay"] == 1e-3
    for p, q in zip(a["ax"], b["ax"]):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("change,message", [
    (_set(["optimizer", "nonmono"], -1), "optimizer nonmono must be an integer >= 0, got -1"),
    (_set(["optimizer", "weight_decay"], math.inf), "optimizer weight_decay must be a finite number >= 0"),
    (_set(["optimizer", "history"], [3.0, "low"]), "optimizer history must be a list of validation perplexities"),
    (_set(["optimizer", "history"], [math.nan]), "optimizer history must be a list of validation perplexities"),
    (_set(["optimizer", "ax"], {"<array>": "params.1"}), "optimizer ax must be unset or a list of float arrays"),
    (_set(["optimizer", "averaged_steps"], 0), "averaged_steps must count the updates that ax averages, got 0 for 8"),
    (_set(["optimizer", "ax"], None), "averaged_steps must count the updates that ax averages, got 2 for 0"),
    (_array("optimizer.ax.1", np.zeros((24, 6))), r"optimizer ax holds .*, not one average of each weight"),
    (_set(["optimizer", "ax", 7], _DELETE), "not one average of each weight"),
    (_array("optimizer.ax.0", np.zeros((20, 6), np.float32)), "not one average of each weight"),
    (_array("optimizer.ax.3", np.full(24, np.inf)), r"optimizer.ax\[3\] holds NaN or inf"),
])
def test_read_refuses_a_malformed_asgd_state(tmp_path, change, message):
    assert_read_refuses(*averaging(12), tmp_path / "checkpoint.npz", change, message)


def test_restore_checks_the_averages_against_the_model(tmp_path):
    model, optimizer = averaging(13)
    path = tmp_path / "checkpoint.npz"
    saved = Checkpoint.capture({}, model, optimizer, Position())
    saved.lstm_states = [(None, None)] * 2
    saved.write(path)
    np.random.seed(13)
    small = BetterRnnlm(20, 6, 6)  # float32: the float64 averages do not fit its weights
    with pytest.raises(UserError, match=r"optimizer ax holds .*float64.*, not one average of each weight .*float32.* "
                                        "of the model"):
        Checkpoint.read(path).restore(small, ASGD(1.0), path)
