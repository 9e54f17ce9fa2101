"""The checkpoint of a `fastlstm train` run: everything a resumed run needs to continue bit for bit.

`Checkpoint` is the one list of what is saved: `capture` takes it from the run's model,
optimizer, NumPy's global RNG and `Position`; `restore` puts it back; `write` and `read` go
over the record's fields, so a field added to it is saved and restored alike. On disk it is
a pickled dict: "format" (FORMAT), then every field, the position's fields among them.
"""

import math
import pickle
from dataclasses import dataclass, field, fields, replace

import numpy as np

from fastlstm.errors import UserError
from fastlstm.files import atomic_write

FORMAT = "fastlstm-checkpoint"


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
    log: list = field(default_factory=list)  # the rows of log.csv


@dataclass
class Checkpoint:
    """A run's state: its settings, the model's weights and LSTM states, the optimizer, the RNG, its position."""

    config: dict  # the run's settings
    params: list  # full-precision copies; None for a view of an earlier param (the tied embed_W.T)
    optimizer: dict  # optimizer.state_dict(), the lr included
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

    def restore(self, model, optimizer, path):
        """Put the weights, LSTM states, optimizer state and RNG state back; returns a copy of the position.
        `path` names the file in errors."""
        load_params(model, self.params, path)
        optimizer.load_state_dict(self.optimizer)
        for layer, (h, c) in zip(model.lstm_layers, self.lstm_states):
            layer.set_state(h, c)
        np.random.set_state(self.rng_state)
        return replace(self.position, log=list(self.position.log))

    def finite(self):
        """Whether every weight is finite (no NaN or inf)."""
        return all(p is None or np.isfinite(p).all() for p in self.params)

    def write(self, path):
        """Pickle the record to path, atomically (files.atomic_write)."""
        state = {"format": FORMAT, **{name: getattr(self, name) for name in _own_fields()},
                 **{f.name: getattr(self.position, f.name) for f in fields(Position)}}
        atomic_write(path, lambda file: pickle.dump(state, file, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def read(cls, path):
        """The checkpoint in path; UserError for a missing or unreadable file, or one that is not a checkpoint."""
        return cls.from_dict(read_pickle(path), path)

    @classmethod
    def from_dict(cls, state, path):
        """The record of a dict that `write` pickled; UserError (naming path) for anything else."""
        if not is_checkpoint(state):
            raise UserError(f"{path} is not a fastlstm checkpoint")
        missing = [name for name in _own_fields() + [f.name for f in fields(Position)] if name not in state]
        if missing:
            raise UserError(f"{path} is a fastlstm checkpoint without {', '.join(missing)}")
        position = Position(**{f.name: state[f.name] for f in fields(Position)})
        return cls(**{name: state[name] for name in _own_fields()}, position=position)


def _own_fields():
    """The names of Checkpoint's fields but its position, whose own fields are stored beside them."""
    return [f.name for f in fields(Checkpoint) if f.name != "position"]


def is_checkpoint(obj):
    """Whether obj is what a checkpoint file unpickles to."""
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def read_pickle(path):
    """The object pickled in path; UserError when it is missing or unreadable. Load only files you trust."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except Exception as e:  # unpickling garbage raises anything from EOFError to ImportError
        raise UserError(f"{path} is not a readable pickle ({type(e).__name__}: {e})") from None


def is_view_of_earlier(params, i):
    """True when params[i] shares memory with an earlier param (the tied embed_W.T)."""
    return any(np.may_share_memory(params[i], q) for q in params[:i])


def param_copies(params):
    """Full-precision copies of params; None for a view of an earlier one, which loading that one restores."""
    return [None if is_view_of_earlier(params, i) else p.copy() for i, p in enumerate(params)]


def load_params(model, saved, path):
    """Write param_copies' list into model's arrays in place (None entries are views of earlier ones)."""
    if len(saved) != len(model.params):
        raise UserError(f"{path} holds {len(saved)} params, the model has {len(model.params)}")
    for i, (p, a) in enumerate(zip(model.params, saved)):
        if a is not None and a.shape != p.shape:
            raise UserError(f"{path}: param {i} has shape {a.shape}, the model's has {p.shape}")
    for p, a in zip(model.params, saved):
        if a is not None:
            p[...] = a


def _copy(state):
    """A copy of an LSTM h or c (None before the first step)."""
    return None if state is None else np.array(state, copy=True)
