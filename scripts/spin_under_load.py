"""A BetterRnnlm step with another process busy on one core: two threads with the lanes'
short spins (fastlstm/lanes.py, fastlstm/recurrence.py), two threads spinning 1 ms before
every rest as the lanes did before them, and one thread. Each figure is a median over
rounds that alternate the three in one process; the ratio is the median over rounds of
the 1 ms spins' time over the short spins' (docs/performance.md, Under load):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/spin_under_load.py [--step eval] [--rounds 8] [--no-load]
"""

import argparse
import subprocess
import sys
import time

import numpy as np

import fastlstm
from fastlstm import benchmark, lanes

SETUPS = {"short spins": 2, "1 ms spins": 2, "one thread": 1}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step", choices=["train", "eval"], default="train")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--no-load", action="store_true", help="without the busy process")
    args = parser.parse_args()
    steps = {}
    for name, threads in SETUPS.items():
        fastlstm.set_num_threads(threads)
        steps[name], _ = benchmark.make_step("better", "fastlstm", args.step)
        steps[name]()
    busy = None if args.no_load else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    runtime = lanes.default()  # the lanes the steps' layers run on
    short = runtime.cheap_rests, runtime.min_spins
    seconds = {name: [] for name in SETUPS}
    try:
        for r in range(args.rounds):
            for name in (list(SETUPS) if r % 2 == 0 else reversed(list(SETUPS))):
                fastlstm.set_num_threads(SETUPS[name])
                long_only = name == "1 ms spins"
                runtime.cheap_rests, runtime.min_spins = (0, runtime.spins) if long_only else short
                runtime._cheap_left = 0
                steps[name]()  # untimed: the spin policy settles
                start = time.perf_counter()
                steps[name]()
                seconds[name].append(time.perf_counter() - start)
    finally:
        runtime.cheap_rests, runtime.min_spins = short
        if busy is not None:
            busy.kill()
    load = "without" if args.no_load else "with"
    print(f"BetterRnnlm {args.step} step, {load} a busy process, {args.rounds} rounds:")
    for name, times in seconds.items():
        print(f"  {name:12s} {np.median(times) * 1e3:7.1f} ms")
    ratio = np.median(np.array(seconds["1 ms spins"]) / np.array(seconds["short spins"]))
    print(f"  short spins {ratio:.3f}x as fast as 1 ms spins")


if __name__ == "__main__":
    main()
