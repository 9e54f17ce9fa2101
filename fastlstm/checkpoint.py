"""The checkpoint of a `fastlstm train` run: everything a resumed run needs to continue bit for bit.

`Checkpoint` is the one list of what is saved: `capture` takes it from the run's model,
optimizer, NumPy's global RNG and `Position`; `restore` puts it back; `write` and `read` go
over the record's fields, so a field added to it is saved and restored alike.

On disk it is data that cannot run code: a NumPy .npz archive (read with allow_pickle=False)
holding the record's arrays and, as the uint8 array "record", the UTF-8 JSON of the rest:
{"format": FORMAT, "version": VERSION, <field>: <value>, ...}, where an array stands as
{"<array>": its name in the archive} and a tuple as {"<tuple>": [...]}. fastlstm before format
version 2 wrote checkpoint.pkl, a pickled dict of the same fields (the position's beside them);
`read` takes it through the restricted reader of fastlstm.safe_pickle, which builds data only.
Reading checks every field's keys, types and values (finite, in range) before anything uses them;
`restore` checks the arrays against the model's (count, shapes, dtypes, finite once converted).
"""

import json
import math
import os
from dataclasses import dataclass, field, fields, replace

import numpy as np

from fastlstm import safe_pickle, settings
from fastlstm.checks import converted_weights
from fastlstm.errors import UserError
from fastlstm.files import atomic_write
from fastlstm.settings import is_int, is_real

FORMAT = "fastlstm-checkpoint"
VERSION = 2  # 1: the pickled dict of checkpoint.pkl
FILE, LEGACY_FILE = "checkpoint.npz", "checkpoint.pkl"
LOG_FIELDS = ("kind", "epoch", "iteration", "total_iterations", "lr", "perplexity", "tokens_per_s", "elapsed_s", "note")
_ARRAY, _TUPLE = "<array>", "<tuple>"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Position:
    """Where a run stands: what its loop and its reports advance from one checkpoint to the next."""

    epoch: int = 0  # epochs done
    iteration: int = 0  # iterations done in the current epoch
    total_iterations: int = 0
    time_idx: int = 0  # the stateful batches' position in the training data
    best_ppl: float = math.inf  # the best validation perplexity so far
    interval: tuple = (0.0, 0)  # (loss sum, iterations) of the progress interval not yet reported
    elapsed_s: float = 0.0  # seconds of training over all the runs that resumed one another, at the last save
    log: list = field(default_factory=list)  # the rows of log.csv, dicts of LOG_FIELDS


@dataclass
class Checkpoint:
    """A run's state: its settings, the model's weights and LSTM states, the optimizer, the RNG, its position."""

    config: dict  # the run's settings (fastlstm.settings)
    params: list  # full-precision copies; None for a view of an earlier param (the tied embed_W.T)
    optimizer: dict  # optimizer.state_dict(), the lr included (ASGD's: its averages `ax` too)
    rng_state: tuple  # NumPy's global RNG state: the dropout masks draw from it
    lstm_states: list  # (h, c) of each LSTM layer; None before the first step
    position: Position

    @classmethod
    def capture(cls, config, model, optimizer, position):
        """Copies of the state of a run that trains model with optimizer."""
        return cls(config=config, params=param_copies(model.params), optimizer=optimizer.state_dict(),
                   rng_state=np.random.get_state(),
                   lstm_states=[(_copy(layer.h), _copy(layer.c)) for layer in model.lstm_layers],
                   position=replace(position, log=list(position.log)))

    def check_settings(self, path):
        """Refuse (UserError naming `path`) settings that fastlstm.settings.check refuses, and LSTM
        states of another batch size than the settings say (`restore` checks their widths)."""
        settings.check(self.config, path)
        batch = self.config["batch_size"]
        for i, pair in enumerate(self.lstm_states):
            for state in pair:
                if state is not None and state.shape[0] != batch:
                    raise UserError(f"{path}: LSTM state {i} has shape {state.shape}, the run's batch is {batch}")

    def restore(self, model, optimizer, path):
        """Put the weights, LSTM states, optimizer state and RNG state back; returns a copy of the position.
        Everything is checked against the model and optimizer first (UserError naming `path`)."""
        lstms = model.lstm_layers
        if len(self.lstm_states) != len(lstms):
            raise UserError(f"{path} holds {len(self.lstm_states)} LSTM states, the model has {len(lstms)} LSTMs")
        for i, (layer, pair) in enumerate(zip(lstms, self.lstm_states)):
            H, dtype = layer.params[1].shape[0], layer.params[1].dtype
            for state in pair:
                if state is not None and (state.shape[1] != H or state.dtype != dtype):
                    raise UserError(f"{path}: LSTM state {i} is {state.dtype} {state.shape}, the model's LSTM "
                                    f"takes {dtype} of width {H}")
        weights = [None if is_view_of_earlier(model.params, i) else p for i, p in enumerate(model.params)]
        problem = _check_averages(self.optimizer.get("ax"), weights)
        if problem:
            raise UserError(f"{path}: {problem} of the model")
        try:
            optimizer.load_state_dict(self.optimizer)
        except (TypeError, ValueError) as e:
            raise UserError(f"{path}: the optimizer's state: {e}") from None
        load_params(model, self.params, path)
        for layer, (h, c) in zip(lstms, self.lstm_states):
            layer.set_state(h, c)
        np.random.set_state(self.rng_state)
        return replace(self.position, log=list(self.position.log))

    def evaluation_params(self):
        """The weights to evaluate, as `params` lists them: the averaged ones in place of the
        distinct weights once the run averages (ASGD's `ax`)."""
        averages = self.optimizer.get("ax")
        if not averages:
            return self.params
        averaged = iter(averages)
        return [None if p is None else next(averaged) for p in self.params]

    def finite(self):
        """Whether every weight is finite (no NaN or inf)."""
        return all(p is None or np.isfinite(p).all() for p in self.params)

    def write(self, path):
        """Write the record to path as an .npz archive, atomically (files.atomic_write)."""
        arrays = {}
        record = {"format": FORMAT, "version": VERSION}
        for name in _field_names():
            value = getattr(self, name)
            if name == "position":
                value = {f.name: getattr(value, f.name) for f in fields(Position)}
            record[name] = _encode(value, name, arrays)
        arrays["record"] = np.frombuffer(json.dumps(record).encode(), np.uint8)
        atomic_write(path, lambda file: np.savez(file, **arrays))

    @classmethod
    def read(cls, path):
        """The checkpoint in path (an .npz archive, or an older fastlstm's checkpoint.pkl), checked;
        UserError for a missing or unreadable file, or one that is not a whole, sound checkpoint."""
        if is_archive(path):
            return cls._checked(_read_npz(path), path)
        try:
            state = safe_pickle.load(path)
        except safe_pickle.UnsafePickle as e:
            raise UserError(f"{e}; it is neither a fastlstm checkpoint (.npz) nor an older fastlstm's "
                            "checkpoint.pkl") from None
        return cls.from_legacy(state, path)

    @classmethod
    def from_legacy(cls, state, path):
        """The checkpoint of what an older fastlstm's checkpoint.pkl unpickles to (through
        fastlstm.safe_pickle), checked; UserError for anything that is not such a checkpoint."""
        if not is_legacy(state):
            raise UserError(f"{path} is not a fastlstm checkpoint")
        state = dict(state)
        position = {f.name: state.pop(f.name) for f in fields(Position) if f.name in state}
        del state["format"]
        return cls._checked({**state, "position": position}, path)

    @classmethod
    def _checked(cls, state, path):
        """The record of `state` (a field -> value dict, the position's a dict too), once every field
        is of its type and every number in range; UserError naming path otherwise."""
        missing = [name for name in _field_names() if name not in state]
        if not isinstance(state.get("position", {}), dict):
            raise UserError(f"{path}: position must be a record of {[f.name for f in fields(Position)]}")
        missing += [f.name for f in fields(Position) if f.name not in state.get("position", {})]
        if missing:
            raise UserError(f"{path} is a fastlstm checkpoint without {', '.join(missing)}")
        unknown = set(state) - set(_field_names())
        if unknown:
            raise UserError(f"{path}: unknown fields {sorted(map(str, unknown))}")
        if not isinstance(state["config"], dict):
            raise UserError(f"{path}: config must be a dict of settings")
        for name, check in _FIELD_CHECKS.items():
            problem = check(state[name])
            if problem:
                raise UserError(f"{path}: {name} {problem}")
        problem = _check_averages(state["optimizer"].get("ax"), state["params"])
        if problem:
            raise UserError(f"{path}: {problem}")
        for where, a in _arrays(state, ""):
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise UserError(f"{path}: {where} holds NaN or inf; this checkpoint cannot be used: resume from "
                                "an earlier one, or start anew")
        position = Position(**state["position"])
        return cls(**{name: state[name] for name in _field_names() if name != "position"}, position=position)


def is_archive(path):
    """Whether the file at path is a zip archive, as .npz checkpoints are; UserError when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def find(folder):
    """The path of the checkpoint in a run folder (checkpoint.npz, else an older checkpoint.pkl), or None."""
    for name in (FILE, LEGACY_FILE):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    return None


def _field_names():
    return [f.name for f in fields(Checkpoint)]


def _encode(value, key, arrays):
    """value as JSON, its arrays moved into `arrays` under names made from `key`."""
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {_ARRAY: key}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _encode(v, f"{key}.{k}", arrays) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(node, arrays, path):
    """What _encode made node from, its arrays taken from `arrays`."""
    if isinstance(node, list):
        return [_decode(v, arrays, path) for v in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {_ARRAY}:
        if not isinstance(node[_ARRAY], str) or node[_ARRAY] not in arrays:
            raise UserError(f"{path} names an array {node[_ARRAY]!r} that it does not hold")
        return arrays[node[_ARRAY]]
    if set(node) == {_TUPLE} and isinstance(node[_TUPLE], list):
        return tuple(_decode(v, arrays, path) for v in node[_TUPLE])
    return {k: _decode(v, arrays, path) for k, v in node.items()}


def _read_npz(path):
    """The fields of an .npz checkpoint, as written by Checkpoint.write."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        record = arrays.pop("record")
        if record.dtype != np.uint8 or record.ndim != 1:
            raise ValueError("its record is not a uint8 vector")
        record = json.loads(record.tobytes().decode())
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise UserError(f"{path} is not a fastlstm checkpoint")
        if record.get("version") != VERSION:
            raise UserError(f"{path} is a fastlstm checkpoint of format version {record.get('version')!r}; this "
                            f"fastlstm reads version {VERSION}: use the fastlstm that wrote it")
        return {name: _decode(value, arrays, path) for name, value in record.items() if name not in ("format", "version")}
    except UserError:
        raise
    except KeyError:
        raise UserError(f"{path} is an .npz archive but not a fastlstm checkpoint (it holds no record)") from None
    except Exception as e:  # a truncated or foreign archive raises anything from BadZipFile to RecursionError
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from None


def is_legacy(obj):
    """Whether obj is what an older fastlstm's checkpoint.pkl unpickles to."""
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def _is_count(v):
    return is_int(v) and v >= 0


def _check_params(params):
    if not isinstance(params, list) or not params:
        return "must be a non-empty list"
    if not isinstance(params[0], np.ndarray) or params[0].ndim != 2:
        return "must start with the embedding weight, a 2-D array"
    if not all(p is None or isinstance(p, np.ndarray) and p.dtype.kind == "f" for p in params):
        return "must hold float arrays (or None for a tied weight)"
    return None


def _check_optimizer(state):
    if not isinstance(state, dict) or state.get("type") not in ("SGD", "ASGD"):
        return "must be the state of SGD or ASGD"
    if not (is_real(state.get("lr")) and math.isfinite(state["lr"]) and state["lr"] > 0):
        return f"lr must be a finite number > 0, got {state.get('lr')!r}"
    return _check_asgd(state) if state["type"] == "ASGD" else None


def _check_asgd(state):
    """What is wrong with ASGD's own entries (fastlstm.optimizer.ASGD.state_dict), or None."""
    decay, history, ax, steps = (state.get(k) for k in ("weight_decay", "history", "ax", "averaged_steps"))
    if not _is_count(state.get("nonmono")):
        return f"nonmono must be an integer >= 0, got {state.get('nonmono')!r}"
    if not (is_real(decay) and math.isfinite(decay) and decay >= 0):
        return f"weight_decay must be a finite number >= 0, got {decay!r}"
    if not (isinstance(history, list) and all(is_real(h) and h > 0 for h in history)):  # perplexities; inf may be one
        return "history must be a list of validation perplexities (numbers > 0)"
    if ax is not None and not (isinstance(ax, list) and all(isinstance(a, np.ndarray) and a.dtype.kind == "f"
                                                            for a in ax)):
        return "ax must be unset or a list of float arrays"
    if not _is_count(steps) or (steps > 0) != bool(ax):
        return f"averaged_steps must count the updates that ax averages, got {steps!r} for {len(ax or [])} arrays"
    return None


def _check_averages(ax, params):
    """What is wrong with ASGD's averages `ax` against the weights they average, `params` with None
    for a view (one average of each other param, of its shape and dtype), or None."""
    if not ax:
        return None
    distinct = [p for p in params if p is not None]
    if [(a.shape, a.dtype) for a in ax] != [(p.shape, p.dtype) for p in distinct]:
        return (f"optimizer ax holds {[(a.shape, a.dtype.name) for a in ax]}, not one average of each weight "
                f"{[(p.shape, p.dtype.name) for p in distinct]}")
    return None


def _check_rng_state(state):
    ok = (isinstance(state, tuple) and len(state) == 5 and state[0] == "MT19937"
          and isinstance(state[1], np.ndarray) and state[1].dtype == np.uint32 and state[1].shape == (624,)
          and _is_count(state[2]) and state[2] <= 624 and _is_count(state[3]) and state[3] <= 1 and is_real(state[4]))
    return None if ok else "is not the state of NumPy's MT19937 generator"


def _check_lstm_states(states):
    ok = isinstance(states, list) and all(
        isinstance(pair, tuple) and len(pair) == 2
        and all(s is None or isinstance(s, np.ndarray) and s.dtype.kind == "f" and s.ndim == 2 for s in pair)
        for pair in states)
    return None if ok else "must be a list of (h, c) pairs of 2-D float arrays or None"


def _check_position(position):
    if set(position) != {f.name for f in fields(Position)}:
        return f"must have the fields {[f.name for f in fields(Position)]}"
    p = position
    if not all(_is_count(p[name]) for name in ("epoch", "iteration", "total_iterations", "time_idx")):
        return "epoch, iteration, total_iterations and time_idx must be integers >= 0"
    if not (is_real(p["best_ppl"]) and p["best_ppl"] > 0):  # inf until a first validation
        return f"best_ppl must be a number > 0, got {p['best_ppl']!r}"
    interval = p["interval"]
    if not (isinstance(interval, tuple) and len(interval) == 2 and is_real(interval[0])
            and math.isfinite(interval[0]) and _is_count(interval[1])):
        return f"interval must be a (finite loss sum, count) pair, got {interval!r}"
    if not (is_real(p["elapsed_s"]) and math.isfinite(p["elapsed_s"]) and p["elapsed_s"] >= 0):
        return f"elapsed_s must be a finite number >= 0, got {p['elapsed_s']!r}"
    rows = p["log"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) and set(r) <= set(LOG_FIELDS) for r in rows):
        return f"log must be a list of rows with the fields {', '.join(LOG_FIELDS)}"
    return None


# the checks of each field but config (fastlstm.settings.check); each returns what is wrong, or None
_FIELD_CHECKS = {"params": _check_params, "optimizer": _check_optimizer, "rng_state": _check_rng_state,
                 "lstm_states": _check_lstm_states, "position": _check_position}


def _arrays(value, where):
    """(where, array) for every array inside value (nested lists, tuples and dicts)."""
    if isinstance(value, np.ndarray):
        yield where, value
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _arrays(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _arrays(v, f"{where}.{k}" if where else str(k))


def is_view_of_earlier(params, i):
    """True when params[i] shares memory with an earlier param (the tied embed_W.T)."""
    return any(np.may_share_memory(params[i], q) for q in params[:i])


def param_copies(params):
    """Full-precision copies of params; None for a view of an earlier one, which loading that one restores."""
    return [None if is_view_of_earlier(params, i) else p.copy() for i, p in enumerate(params)]


def load_params(model, saved, path):
    """Write param_copies' list into model's arrays in place, once it is checked against them
    (fastlstm.checks.converted_weights; None where, and only where, the model has a view)."""
    try:
        converted = converted_weights(saved, model.params, path, type(model).__name__)
    except ValueError as e:
        raise UserError(str(e)) from None
    views = [i for i in range(len(model.params)) if is_view_of_earlier(model.params, i)]
    if [i for i, a in enumerate(converted) if a is None] != views:
        raise UserError(f"{path}: the tied weights are not where {type(model).__name__} has them")
    for p, a in zip(model.params, converted):
        if a is not None:
            p[...] = a


def _copy(state):
    """A copy of an LSTM h or c (None before the first step)."""
    return None if state is None else np.array(state, copy=True)
