"""What the regularisers cost a training step: BetterRnnlm's 650-wide shape with every
regulariser on, against the same network without them, alternating in one process.

This shared machine's speed moves by more than the few percent measured here, so each
round times one train_step of every configuration back to back (their order rotating from
round to round), and each figure is the median over the rounds of the ratio to the
plain network's step of the same round: of wall-clock time, and of the process's CPU time,
which on one thread (--threads 1: no lane waits for another) counts the work alone, however
busy the machine. The configurations, all float32, batch 20 x 35,
V = 10000, D = H = 650, tied, clipping 0.25:

    plain        BetterRnnlm with its dropout layers taken out, SGD
    book         BetterRnnlm as the book trains it (per-element dropout 0.5), SGD
    regularised  VariationalRnnlm: locked dropout 0.5, recurrent dropout 0.3, embedding
                 dropout 0.3, weight drop 0.5, AR 2, TAR 1, SGD
    all          the same under ASGD, averaging, with weight decay 1.2e-6

Run it as

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/regulariser_cost.py --rounds 40
"""

import argparse
import time

import numpy as np

import fastlstm
from fastlstm.models import BetterRnnlm, VariationalRnnlm
from fastlstm.optimizer import ASGD, SGD
from fastlstm.time_layers import TimeDropout
from fastlstm.training_step import train_step

V, D, N, T = 10000, 650, 20, 35
CLOCKS = {"wall-clock": time.perf_counter, "CPU": time.process_time}


def configurations():
    """{name: one training step as a call}, each on its own model and optimizer."""
    def plain():
        model = BetterRnnlm(V, D, D)
        model.layers = [layer for layer in model.layers if not isinstance(layer, TimeDropout)]
        return model, SGD(20.0)

    def regularised(optimizer):
        return VariationalRnnlm(V, D, D, dropout_ratio=0.5, recurrent_dropout=0.3, embed_dropout=0.3, weight_drop=0.5,
                                alpha=2.0, beta=1.0), optimizer

    def averaging():
        optimizer = ASGD(20.0, nonmono=1, weight_decay=1.2e-6)
        for figure in (2.0, 1.0, 1.5, 1.6):  # the last one starts the averaging
            optimizer.observe(figure)
        return optimizer

    builds = {"plain": plain, "book": lambda: (BetterRnnlm(V, D, D), SGD(20.0)),
              "regularised": lambda: regularised(SGD(20.0)), "all": lambda: regularised(averaging())}
    xs, ts = np.random.default_rng(0).integers(0, V, size=(2, N, T))
    steps = {}
    for name, build in builds.items():
        np.random.seed(0)
        model, optimizer = build()
        steps[name] = (lambda m, o: lambda: train_step(m, o, xs, ts, 0.25))(model, optimizer)
    return steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="timed rounds (default: 40)")
    parser.add_argument("--threads", type=int, help="threads (default: every core)")
    args = parser.parse_args(argv)
    if args.threads:
        fastlstm.set_num_threads(args.threads)
    steps = configurations()
    names = list(steps)
    for step in steps.values():
        for _ in range(3):  # compile and warm
            step()
    seconds = {clock: {name: [] for name in names} for clock in CLOCKS}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = {clock: read() for clock, read in CLOCKS.items()}
            steps[name]()
            for clock, read in CLOCKS.items():
                seconds[clock][name].append(read() - start[clock])
    print(f"{args.rounds} rounds, {fastlstm.get_num_threads()} threads; step medians and the median per-round "
          "ratio to plain (quartiles):")
    for clock, times in seconds.items():
        print(f"{clock} time")
        for name in names:
            ratio = np.array(times[name]) / np.array(times["plain"])
            print(f"  {name:12s} {np.median(times[name]) * 1e3:7.1f} ms  {_spread(ratio)}")
        print(f"  all / book   {' ' * 10}{_spread(np.array(times['all']) / np.array(times['book']))}")


def _spread(ratio):
    return f"{np.median(ratio):.3f} ({np.percentile(ratio, 25):.3f} to {np.percentile(ratio, 75):.3f})"


if __name__ == "__main__":
    main()
