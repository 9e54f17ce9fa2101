"""Run `python -m fastlstm ARGS...` with a fault injected into this process's training step number
AT (counted from 1), for tests/test_distributed.py to start one rank of a distributed run so:

    python rank_fault.py FAULT AT ARGS...

FAULT: nan (the step's forward returns NaN), error (the step raises RuntimeError) or weights
(after the step, one weight moves: this rank's weights then differ from the others')."""

import runpy
import sys

from fastlstm import training

fault, at = sys.argv[1], int(sys.argv[2])
sys.argv = ["fastlstm", *sys.argv[3:]]
step, calls = training.train_step, [0]


def faulty_step(model, *args, **kwargs):
    calls[0] += 1
    if calls[0] != at:
        return step(model, *args, **kwargs)
    if fault == "error":
        raise RuntimeError("a fault injected into this rank")
    if fault == "nan":
        model.forward = lambda xs, ts: float("nan")
    try:
        return step(model, *args, **kwargs)
    finally:
        model.__dict__.pop("forward", None)
        if fault == "weights":
            model.params[-1][0] += 1e-3


training.train_step = faulty_step
runpy.run_module("fastlstm", run_name="__main__", alter_sys=True)
