"""Time a BetterRnnlm training step under two of Numba's threading layers, alternating processes.

A process keeps the threading layer it started with, so scripts/ab_step.py (both versions in
one process) cannot compare layers. Here each round starts one process per layer, in turns
which goes first; each times STEPS training steps (batch 20 x 35, the bench's step) after a
warm-up and reports its median and its best step time. The figures are the medians over the
rounds of time(baseline) / time(candidate), of the median steps and of the best steps (on a
busy machine the best step is the one least slowed by other processes): above 1, the
candidate is faster. Run it as

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/ab_threading_layer.py --rounds 8

(`--baseline omp --candidate tbb` by default: the tbb wheel must be installed for tbb).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

STEPS, WARM = 12, 3


def child(steps):
    """Time `steps` training steps in this process; print the layer, the median and the best seconds as JSON."""
    import numba
    import numpy as np

    from fastlstm.models import BetterRnnlm
    from fastlstm.optimizer import SGD
    from fastlstm.training_step import train_step

    rng = np.random.default_rng(0)
    np.random.seed(0)
    model, optimizer = BetterRnnlm(10000, 650, 650), SGD(20.0)
    xs, ts = (rng.integers(0, 10000, size=(20, 35)) for _ in range(2))
    times = []
    for i in range(WARM + steps):
        start = time.perf_counter()
        train_step(model, optimizer, xs, ts, 0.25)
        if i >= WARM:
            times.append(time.perf_counter() - start)
    print(json.dumps({"layer": numba.threading_layer(), "median": statistics.median(times), "best": min(times)}))


def run(layer, steps):
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    done = subprocess.run([sys.executable, __file__, "--child", "--steps", str(steps)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the {layer} process failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["layer"] == layer, result
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="process pairs (default: 8)")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"timed steps a process (default: {STEPS})")
    parser.add_argument("--baseline", default="omp", help="threading layer A (default: omp)")
    parser.add_argument("--candidate", default="tbb", help="threading layer B (default: tbb)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.steps)
    ratios = {"median": [], "best": []}
    for r in range(args.rounds):
        order = [args.baseline, args.candidate][:: 1 if r % 2 == 0 else -1]
        steps = {layer: run(layer, args.steps) for layer in order}
        for kind, values in ratios.items():
            values.append(steps[args.baseline][kind] / steps[args.candidate][kind])
        print(f"round {r + 1}: " + ", ".join(f"{layer} {steps[layer]['median'] * 1e3:.0f} ms (best "
                                              f"{steps[layer]['best'] * 1e3:.0f})" for layer in order)
              + f" a step: {ratios['median'][-1]:.3f} (best {ratios['best'][-1]:.3f})", flush=True)
    for kind, values in ratios.items():
        print(f"{args.candidate} speed / {args.baseline} speed, {kind} steps: median {statistics.median(values):.3f} "
              f"over {len(values)} rounds ({min(values):.3f} to {max(values):.3f})")

if __name__ == "__main__":
    main()
