"""Where a recurrence's second lane starts to pay: a recurrent time layer's forward+backward
and its evaluation (infer) on one lane against two, over the batch N and the width H
(D = H), at T steps.

Two lanes meet at every step; that costs about the same at any size, while each lane's
share of a step's product, N x H x gates x K multiply-adds for its K units, grows with N
and H; the hand-off to the worker costs the same at any T. Lanes.min_step_work is the
share of a step from which the second lane paid here, and Lanes.min_call_steps how many
steps of that share a call needs. Each round times
both settings back to back, which first alternating (benchmark.alternating_rounds); the
figure is the median over rounds of one lane's time / two lanes' (above 1: the second lane
pays). Run it with the benchmark environment, on a machine whose two cores are free:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/recurrence_lanes.py
"""

import argparse

import numpy as np

import fastlstm
from fastlstm.benchmark import alternating_rounds
from fastlstm.lanes import Lanes
from fastlstm import time_layers

GATES = {"LSTM": 4, "RNN": 1, "GRU": 3}  # blocks of H columns in Wh


def _calls(cell, N, T, H, lanes, rng):
    """(training call, evaluation call) of a Time`cell` on `lanes`."""
    G = GATES[cell] * H
    Wx, Wh = ((rng.standard_normal((H, G)) / np.sqrt(H)).astype(np.float32) for _ in range(2))
    bias = [] if cell == "GRU" else [np.zeros(G, np.float32)]
    layer = getattr(time_layers, "Time" + cell)(Wx, Wh, *bias)
    layer.lanes = lanes
    xs, dhs = (rng.standard_normal((N, T, H)).astype(np.float32) for _ in range(2))

    def train():
        layer.forward(xs)
        layer.backward(dhs)
    return train, lambda: layer.infer(xs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=sorted(GATES), default="LSTM")
    parser.add_argument("--n", default="1,8,20,64,128")
    parser.add_argument("--h", default="32,64,128,256,650")
    parser.add_argument("--t", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.05)
    args = parser.parse_args(argv)
    fastlstm.set_num_threads(2)
    settings = {lanes: Lanes(threads=lanes, min_units=1, min_step_work=0) for lanes in (1, 2)}
    gates = GATES[args.cell]
    print(f"Time{args.cell}, T = {args.t}, float32: one lane's time / two lanes' (median of {args.rounds} rounds), "
          f"and the two lanes' share of a step, N x H x {gates}K multiply-adds")
    print(f"{'N':>4s} {'H':>4s} {'share':>9s} {'train':>6s} {'eval':>6s}")
    for N in map(int, args.n.split(",")):
        for H in map(int, args.h.split(",")):
            calls = {n: _calls(args.cell, N, args.t, H, lanes, np.random.default_rng(0)) for n, lanes in settings.items()}
            ratios = []
            for which in (0, 1):  # training, evaluation
                times = alternating_rounds([(n, 2, calls[n][which]) for n in (1, 2)], args.rounds, args.min_time)
                ratios.append(float(np.median(times[1] / times[2])))
            share = N * H * gates * (H // 2)
            print(f"{N:4d} {H:4d} {share:9d} {ratios[0]:6.2f} {ratios[1]:6.2f}", flush=True)


if __name__ == "__main__":
    main()
