"""Where a kernel's parallel loops start to pay: the time of a call of each kernel's parallel
build against its serial twin (kernels/parallel.py), over sizes, at the thread count given.

A kernel in a layer runs between other work (products, the recurrence, Python), during which
Numba's threads go back to sleep, so each timed call here follows `--gap` microseconds of
other work on the caller's thread, as in a step; `--gap 0` times calls back to back (threads
still awake). The figure per size is the median over rounds of serial / parallel, each round
timing both builds in turn. Lanes.min_parallel_items is the smallest size from which the
parallel builds of all kernels run at least as fast. Run it with the benchmark environment:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/parallel_threshold.py --threads 2
"""

import argparse
import statistics
import time

import numpy as np

import fastlstm
from fastlstm.kernels import dropout, embedding, linalg, optim, softmax


def _cases(items, rng):
    """{name: (kernel, args)} for calls on about `items` float32 elements."""
    f32 = np.float32
    p, g, m, v = (rng.standard_normal(items).astype(f32) for _ in range(4))
    V = 418
    rows = max(1, items // V)
    x = rng.standard_normal((rows, V)).astype(f32)
    ts = rng.integers(0, V, rows)
    D = 100
    W = rng.standard_normal((10000, D)).astype(f32)
    ids = rng.integers(0, 10000, max(1, items // D))
    out = np.empty((ids.size, D), f32)
    a = rng.standard_normal((max(1, items // 512), 512)).astype(f32)
    return {
        "sgd": (optim.sgd, (p, g, f32(0.1))),
        "adam": (optim.adam, (p, g, m, np.abs(v), f32(0.1), f32(0.001), f32(1e-7), 0.001)),
        "softmax loss+gradient": (softmax.softmax_cross_entropy_forward_backward,
                                  (x, ts, np.empty(rows), f32(1 / rows), np.empty_like(x))),
        "embedding gather": (embedding.embedding_forward, (W, ids, out)),
        "column sums": (linalg.column_sums, (a, np.empty(512, f32))),
        "dropout": (dropout.dropout_forward, (p, 7, 0.5, f32(2.0), np.empty_like(p), np.empty_like(p))),
    }


def _other_work(seconds):
    """Busy work on the caller's thread for about `seconds`, as between a step's kernels."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _call_time(kernel, args, gap, calls):
    """Median seconds of one call, each after `gap` seconds of other work."""
    times = []
    for _ in range(calls):
        _other_work(gap)
        start = time.perf_counter()
        kernel(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gap", type=float, default=100.0, help="microseconds of other work before each call")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args(argv)
    fastlstm.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    sizes = [1 << k for k in range(10, 23, 2)]
    print(f"{args.threads} threads, {args.gap:g} us of other work before each call; "
          f"serial / parallel time, medians of {args.rounds} rounds (above 1: the parallel build pays)")
    print(f"{'kernel':24s}" + "".join(f"{s:>9d}" for s in sizes))
    for name in _cases(16, rng):
        ratios = []
        for items in sizes:
            kernel, call = _cases(items, rng)[name]
            kernel(*call), kernel.serial(*call)
            rounds = [_call_time(kernel.serial, call, args.gap * 1e-6, args.calls)
                      / _call_time(kernel, call, args.gap * 1e-6, args.calls) for _ in range(args.rounds)]
            ratios.append(statistics.median(rounds))
        print(f"{name:24s}" + "".join(f"{r:9.2f}" for r in ratios), flush=True)


if __name__ == "__main__":
    main()
