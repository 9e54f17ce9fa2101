"""Data-parallel training measured and modelled (docs/scaling.md), in one invocation:

1. `fastlstm train` tokens/s, P ranks x 1 thread (`mpiexec -n P fastlstm train --distributed`)
   against 1 process x P threads, alternating round by round (the first of a pair swapping), each
   a short run of the recipe (float32, batch 20 x 35, PTB), the figure of a run the median of
   its progress intervals' tokens/s after the first (which holds the warm-up);
2. the allreduce of the recipe's gradient buffer on P ranks of this machine (its shared memory):
   `GradientAverager`'s whole call, copies in and out included, median of repeated calls;
3. one rank's compute: a train_step at 1 thread of b rows x 35 for several b, median of
   repeated steps, which the allreduce model of docs/scaling.md divides the batch among.

Run it, on a machine as quiet as can be had, as

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/scaling.py --rounds 3

(`--model rnnlm` for the small recipe; the ranks run under the mpiexec beside sys.executable).
"""

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MPIEXEC = str(Path(sys.executable).parent / "mpiexec")
ROWS = (1, 2, 4, 5, 10, 20)  # a rank's rows in the compute measurement: batch 20 over P = 20, 10, 5, 4, 2, 1
LINKS_GBIT = (10, 25, 100)  # the modelled networks, Gb/s


def ring_allreduce_s(nbytes, ranks, gbit):
    """The bandwidth term of a ring allreduce (Patarasuk and Yuan, 2009): each rank sends and receives
    2 (P - 1) / P of the buffer over its link of `gbit` Gb/s."""
    return 2 * (ranks - 1) / ranks * nbytes * 8 / (gbit * 1e9)


def print_model(compute, nbytes, batch=20):
    """The step of P nodes, each one rank at this machine's one-thread speed (`compute`: rows -> seconds),
    modelled as its share's compute plus the allreduce, not overlapped; the speed-up over one node."""
    print(f"model, batch {batch}: a node = one rank at 1 thread of this machine; step = compute of batch/P rows "
          f"+ ring allreduce of {nbytes / 1e6:.1f} MB")
    print("   P  rows  compute ms  " + "  ".join(f"{g:3d} Gb/s: allreduce ms, speed-up" for g in LINKS_GBIT))
    for rows in sorted(compute, reverse=True):
        P = batch // rows
        cells = []
        for gbit in LINKS_GBIT:
            reduce = ring_allreduce_s(nbytes, P, gbit)
            slower = "*" if reduce > compute[rows] else " "
            cells.append(f"{reduce * 1e3:9.1f} {compute[batch] / (compute[rows] + reduce):8.2f}{slower}")
        print(f"{P:4d} {rows:5d} {compute[rows] * 1e3:11.1f}  " + "  ".join(f"{c:>33s}" for c in cells))
    print("   (* the allreduce takes longer than the compute)")
    rows = np.array(sorted(compute), dtype=float)
    per_row, fixed = np.polyfit(rows, [compute[r] for r in sorted(compute)], 1)
    print(f"fit: compute = {fixed * 1e3:.1f} ms + {per_row * 1e3:.1f} ms a row; a node at 50% efficiency needs "
          "(fixed + allreduce) / per-row rows: " + ", ".join(
              f"{(fixed + ring_allreduce_s(nbytes, 1e9, g)) / per_row:.1f} at {g} Gb/s" for g in LINKS_GBIT))


def train_tokens_per_s(model, ranks, iters, interval, data):
    """tokens/s of one short `fastlstm train` run: `ranks` ranks x 1 thread, or 1 process x -ranks threads."""
    with tempfile.TemporaryDirectory() as out:
        flags = ["train", "--model", model, "--out", out, "--max-iters", str(iters), "--eval-interval", str(interval),
                 "--eval-iters", "1", "--seed", "1", *(["--data", data] if data else [])]
        if ranks > 0:
            command = [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "fastlstm", *flags, "--distributed"]
        else:
            command = [sys.executable, "-m", "fastlstm", *flags, "--threads", str(-ranks)]
        subprocess.run(command, check=True, capture_output=True)
        with open(Path(out) / "log.csv", newline="") as f:
            speeds = [float(r["tokens_per_s"]) for r in csv.DictReader(f) if r["kind"] == "train"]
    return statistics.median(speeds[1:])


def gradient_shapes(model):
    """The shapes of the recipe's merged gradients (the distinct weights), float32."""
    from fastlstm.recipes import build_model, distinct_params
    from fastlstm.settings import DEFAULTS, RECIPES
    net = build_model({"model": model, **RECIPES[model], **DEFAULTS}, 10000)
    return [p.shape for p in distinct_params(net.params)]


def allreduce_rank(model, calls):
    """Run on every rank (`--allreduce`): rank 0 prints the JSON of the buffer and the call's times."""
    from fastlstm import distributed
    ranks = distributed.Ranks(distributed.communicator())
    grads = [np.random.default_rng(ranks.rank).random(shape, dtype=np.float32) for shape in gradient_shapes(model)]
    averager = ranks.averager(lambda: (0.0, 0, 0.0))
    times = []
    for _ in range(calls + 1):  # the first allocates the buffer
        ranks.barrier()
        start = time.perf_counter()
        averager(grads, 1.0)
        times.append(time.perf_counter() - start)
    if ranks.writes:
        buffer = averager.buffer
        print(json.dumps({"ranks": ranks.size, "floats": int(buffer.size), "bytes": int(buffer.nbytes),
                          "median_s": statistics.median(times[1:]), "min_s": min(times[1:])}))


def compute_seconds(model, rows, steps):
    """Median seconds of a train_step of `rows` x 35 at 1 thread (the recipe's float32 model)."""
    import fastlstm
    from fastlstm.optimizer import SGD
    from fastlstm.recipes import build_model
    from fastlstm.settings import DEFAULTS, RECIPES
    from fastlstm.training_step import train_step
    fastlstm.set_num_threads(1)
    np.random.seed(0)
    net = build_model({"model": model, **RECIPES[model], **DEFAULTS}, 10000)
    optimizer = SGD(1.0)
    xs, ts = np.random.default_rng(0).integers(0, 10000, size=(2, rows, 35))
    times = []
    for _ in range(steps + 1):  # the first warms up
        start = time.perf_counter()
        train_step(net, optimizer, xs, ts, 0.25)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="better", choices=("better", "rnnlm"))
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=16, help="iterations of each training run")
    p.add_argument("--interval", type=int, default=4, help="iterations of a progress interval")
    p.add_argument("--steps", type=int, default=3, help="timed steps of each compute measurement")
    p.add_argument("--data", help="PTB's folder (default: as fastlstm finds it)")
    p.add_argument("--allreduce", action="store_true", help="(internal) time the allreduce on this rank")
    args = p.parse_args()
    if args.allreduce:
        return allreduce_rank(args.model, calls=10)
    pairs = []
    for i in range(args.rounds):
        order = (args.ranks, -args.ranks) if i % 2 == 0 else (-args.ranks, args.ranks)
        speeds = {ranks: train_tokens_per_s(args.model, ranks, args.iters, args.interval, args.data) for ranks in order}
        pairs.append((speeds[args.ranks], speeds[-args.ranks]))
        print(f"round {i + 1}: {args.ranks} ranks x 1 thread {speeds[args.ranks]:,.0f} tokens/s, 1 process x "
              f"{args.ranks} threads {speeds[-args.ranks]:,.0f} tokens/s, ratio {pairs[-1][0] / pairs[-1][1]:.3f}",
              flush=True)
    ranked, threaded = (statistics.median(x) for x in zip(*pairs))
    ratio = statistics.median(a / b for a, b in pairs)
    print(f"medians: {args.ranks} x 1 thread {ranked:,.0f} tokens/s, 1 x {args.ranks} threads {threaded:,.0f} "
          f"tokens/s; median ratio {ratio:.3f}")
    done = subprocess.run([MPIEXEC, "-n", str(args.ranks), sys.executable, __file__, "--allreduce", "--model",
                           args.model], check=True, capture_output=True, text=True)
    reduce = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"allreduce of {reduce['floats']:,} float32 ({reduce['bytes'] / 1e6:.1f} MB) on {reduce['ranks']} ranks of "
          f"this machine: median {reduce['median_s'] * 1e3:.1f} ms, best {reduce['min_s'] * 1e3:.1f} ms")
    compute = {}
    for rows in ROWS:
        compute[rows] = compute_seconds(args.model, rows, args.steps)
        print(f"compute, 1 thread, {rows:2d} rows x 35: {compute[rows] * 1e3:8.1f} ms a step, "
              f"{rows * 35 / compute[rows]:,.0f} tokens/s", flush=True)
    print_model(compute, reduce["bytes"])


if __name__ == "__main__":
    main()
