"""Where the time of one fastlstm training or evaluation step goes: each matrix product
(by shape) and each LSTM recurrence with its achieved GFLOP/s, the softmax kernels, every
other kernel (dropout, embedding, clipping, the update), and the rest (NumPy's copies,
checks, threads, Python). Each part is also timed on its own, and each product (a
recurrence's per-step product T times) as one NumPy call on BLAS's own threads: the faster
of the two, summed over the parts, bounds what any ordering of the same parts on this
machine's BLAS can reach, against the matrix-product limit that `fastlstm bench` uses.

`python -m fastlstm.profiling --model better --threads 2` prints it. The parts are timed
by wrapping, for the duration of the run, the names that the layers' CPU backend
(fastlstm/backends/cpu.py) calls and the optimizer's kernels; the rest is the step's time
less the parts.
"""

import argparse
import time
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

import fastlstm
from fastlstm import benchmark
from fastlstm.backends import cpu
from fastlstm.kernels import optim


def _product_flops(a, b, *rest, **kwargs):
    """FLOPs of dot(a, b): a's two sides times b's columns, twice."""
    return 2 * a.shape[0] * a.shape[1] * b.shape[1]


def _products_label(*products, lanes=None):
    """The label of a `dots` call: its products' shapes, which its lanes split together."""
    shapes = (f"{a.shape[0]}x{a.shape[1]} @ {b.shape[0]}x{b.shape[1]}" for a, b, _ in products)
    return f"products {' and '.join(shapes)}, split together"


def _products_flops(*products, lanes=None):
    """FLOPs of dots(*products)."""
    return sum(_product_flops(a, b) for a, b, _ in products)


def _steps_flops(gates, *rest, zero_start=False):
    """FLOPs of the steps' products: from a zero initial state the first step has none."""
    T, N, G = gates.shape
    return 2 * (T - zero_start) * N * (G // 4) * G


def _dot_in_blas(a, b, out=None, bias=None, lanes=None):
    """The product alone: a bias is left out."""
    return [(1, np.dot, (a, b), {} if out is None else {"out": out})]


def _products_in_blas(*products, lanes=None):
    return [(1, np.dot, (a, b), {"out": out}) for a, b, out in products]


def _forward_steps_in_blas(gates, hs, cs, tanh_cs, out, hs_inputs, Wh, *rest, zero_start=False):
    return [(gates.shape[0] - zero_start, np.dot, (hs[0], Wh), {})]


def _backward_steps_in_blas(gates, cs, tanh_cs, dhs, Wh, dA, *rest):
    return [(gates.shape[0], np.dot, (dA[0], Wh.T), {})]


# (modules, name, label of a call, FLOPs of a call or None, the call's products as
# [(times, fn, args, kwargs) of one NumPy call, ...], or None)
_PARTS = [
    ((cpu,), "dot", lambda a, b, *r, **kwargs: f"product {a.shape[0]}x{a.shape[1]} @ {b.shape[0]}x{b.shape[1]}",
     _product_flops, _dot_in_blas),
    ((cpu,), "dots", _products_label, _products_flops, _products_in_blas),
    ((cpu,), "forward_steps", lambda g, *r, **kwargs: f"LSTM recurrence forward, {g.shape[0]} steps of "
     f"{g.shape[1]}x{g.shape[2] // 4} @ {g.shape[2] // 4}x{g.shape[2]}", _steps_flops, _forward_steps_in_blas),
    ((cpu,), "backward_steps", lambda g, *r: f"LSTM recurrence backward, {g.shape[0]} steps of "
     f"{g.shape[1]}x{g.shape[2]} @ {g.shape[2]}x{g.shape[2] // 4}", _steps_flops, _backward_steps_in_blas),
    ((cpu,), "softmax_cross_entropy_forward", lambda *a: "softmax cross-entropy forward kernel", None, None),
    ((cpu,), "softmax_cross_entropy_forward_backward",
     lambda *a: "softmax cross-entropy kernel, loss and gradient", None, None),
    ((cpu,), "column_sums", lambda *a: "bias gradients (column sums)", None, None),
    ((cpu,), "dropout_forward", lambda *a: "dropout forward kernel (mask and product)", None, None),
    ((cpu,), "dropout_backward", lambda *a: "dropout backward kernel", None, None),
    ((cpu,), "embedding_forward", lambda *a: "embedding forward kernel (gather)", None, None),
    ((cpu,), "embedding_backward", lambda *a: "embedding backward kernel (scatter-add)", None, None),
    ((optim,), "sum_squares", lambda *a: "gradient clipping: sum of squares kernel", None, None),
    ((optim,), "scale", lambda *a: "gradient clipping: scaling kernel", None, None),
    ((optim,), "sgd", lambda *a: "SGD kernel: remove_duplicate's merge of the tied weight (and unclipped updates)",
     None, None),
    ((optim,), "sgd_scaled", lambda *a: "SGD kernel with the clipping's scale: the update", None, None),
]


@contextmanager
def _timed_parts(record):
    """Wrap the parts' names in their modules so that each call lands in record[label]."""
    saved = []
    try:
        for modules, name, label, flops, in_blas in _PARTS:
            for module in modules:
                original = getattr(module, name)
                saved.append((module, name, original))
                setattr(module, name, _wrap(original, label, flops, in_blas, record))
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


def _wrap(fn, label, flops, in_blas, record):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        entry = record[label(*args, **kwargs)]
        entry["calls"] += 1
        entry["seconds"] += time.perf_counter() - start
        entry["flops"] += flops(*args, **kwargs) if flops else 0
        entry.setdefault("replay", []).append((fn, args, kwargs))
        entry["in_blas"] = in_blas(*args, **kwargs) if in_blas else None
        return result
    if hasattr(fn, "serial"):  # a kernel with parallel loops and its serial twin (fastlstm.lanes.Lanes.loop)
        timed.serial, timed.cost = _wrap(fn.serial, label, flops, in_blas, record), fn.cost
    return timed


def _alone(calls, repeat=5):
    """Median seconds of calls [(fn, args, kwargs), ...] made again one after another on their
    own: a median, as the step's figures are, so that the two compare."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for fn, args, kwargs in calls:
            fn(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def _in_blas(in_blas, repeat=5):
    """Median seconds of a part's products as NumPy calls [(times, fn, args, kwargs), ...] on BLAS's own threads."""
    return sum(times * _alone([(fn, args, kwargs)], repeat) for times, fn, args, kwargs in in_blas)


def profile_step(model, step="train", rounds=10, sizes=None):
    """(step seconds, tokens, parts) of a step: medians over `rounds` steps after two untimed
    ones, as on a shared machine a few slow steps would move a mean; `sizes` overrides the
    book's constructor sizes.

    parts, slowest first, are dicts: "part", "calls" per step, "seconds" per step in the
    step, "gflops" there (None where not a product), "alone": seconds when the last step's
    calls of the part are made again on their own (median of 5), what it costs with nothing
    else running, and "blas": the same for its products as plain NumPy calls on BLAS's own
    threads (None where it has none). The last part is the rest of the step, with neither.
    Made again, the in-place kernels (the update, clipping) change the model's arrays:
    that happens after the timed steps. The BLAS calls are timed last: after a
    multi-threaded call OpenBLAS's workers spin for a while and would slow what is timed
    next (fastlstm/lanes.py).
    """
    fn, tokens = benchmark.make_step(model, "fastlstm", step, sizes)
    fn()
    fn()
    record = defaultdict(lambda: {"calls": 0, "seconds": 0.0, "flops": 0})
    totals, seconds = [], defaultdict(list)  # per round: the step, each part
    with _timed_parts(record):
        for _ in range(rounds):
            for r in record.values():
                r["replay"] = []  # the calls of this step only
            before = {label: r["seconds"] for label, r in record.items()}
            start = time.perf_counter()
            fn()
            totals.append(time.perf_counter() - start)
            for label, r in record.items():
                seconds[label].append(r["seconds"] - before.get(label, 0.0))
    total = float(np.median(totals))
    parts = []
    for label, r in record.items():
        median = float(np.median(seconds[label]))
        parts.append({"part": label, "calls": r["calls"] // rounds, "seconds": median,
                      "gflops": r["flops"] / rounds / median / 1e9 if r["flops"] else None,
                      "alone": _alone(r["replay"])})
    for p, r in zip(parts, record.values()):
        p["blas"] = _in_blas(r["in_blas"]) * r["calls"] / rounds if r["in_blas"] else None
    parts.sort(key=lambda p: -p["seconds"])
    parts.append({"part": "the rest: NumPy's copies, checks, threads, Python",
                  "calls": None, "seconds": total - sum(p["seconds"] for p in parts), "gflops": None, "alone": None,
                  "blas": None})
    return total, tokens, parts


def format_profile(model, step, total, tokens, parts, peak=None):
    """The profile as a table; with `peak` (GFLOP/s), what the parts alone allow against the
    limit, and the step's own fraction of it."""
    def ms(seconds, width):
        return format("" if seconds is None else format(seconds * 1e3, ".1f"), f">{width}s")

    lines = [f"{model} {step}: {total * 1e3:.1f} ms per step of {tokens} tokens ({tokens / total:,.0f} tokens/s), "
             f"{fastlstm.get_num_threads()} threads",
             f"  {'part':78s} {'calls':>5s} {'ms':>8s} {'share':>6s} {'GFLOP/s':>8s} {'alone ms':>9s} {'BLAS ms':>8s}"]
    for p in parts:
        lines.append(f"  {p['part']:78s} {'' if p['calls'] is None else p['calls']:>5} {ms(p['seconds'], 8)} "
                     f"{p['seconds'] / total:6.1%} {'' if p['gflops'] is None else format(p['gflops'], '.1f'):>8s} "
                     f"{ms(p['alone'], 9)} {ms(p['blas'], 8)}")
    alone = sum(min(p["alone"], p["blas"] or p["alone"]) for p in parts if p["alone"] is not None)
    bound = (f"the parts alone, each the faster of fastlstm and BLAS, add up to {alone * 1e3:.1f} ms: "
             f"at most {tokens / alone:,.0f} tokens/s without the rest")
    if peak:
        limit = peak * 1e9 / benchmark.model_flop_per_token(model, step)
        bound += (f", {tokens / alone / limit:.0%} of the limit ({limit:,.0f} tokens/s at {peak:.1f} GFLOP/s);"
                  f" the step itself: {tokens / total / limit:.0%}")
    return "\n".join(lines + ["  " + bound])


def main(argv=None):
    parser = argparse.ArgumentParser(description="Where the time of a fastlstm step goes.")
    parser.add_argument("--model", choices=list(benchmark.MODELS), default="better")
    parser.add_argument("--step", choices=["train", "eval"], default="train")
    parser.add_argument("--threads", type=int, help="threads for Numba, BLAS and the lanes (default: all cores)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="timed steps (after two untimed ones); each figure is their median")
    args = parser.parse_args(argv)
    if args.threads:
        fastlstm.set_num_threads(args.threads)
    peak = benchmark.Peak()
    before = peak.best(3)  # and after: the limit is at their mean, the peak of the steps' moment
    profile = profile_step(args.model, args.step, args.rounds)
    print(format_profile(args.model, args.step, *profile, peak=(before + peak.best(3)) / 2))


if __name__ == "__main__":
    main()
