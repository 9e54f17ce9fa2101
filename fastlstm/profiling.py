"""Where the time of one fastlstm training or evaluation step goes: each matrix product
(by shape) and each LSTM recurrence with its achieved GFLOP/s, the softmax kernels, and
the rest (elementwise kernels, clipping, the update, Python). Each part is also timed on
its own: their sum bounds what any ordering of the same parts can reach, against the
matrix-product limit that `fastlstm bench` uses.

`python -m fastlstm.profiling --model better --threads 2` prints it. The parts are timed
by wrapping the names the layer modules call for the duration of the run; the rest is
the step's time less the parts.
"""

import argparse
import time
from collections import defaultdict
from contextlib import contextmanager

import fastlstm
from fastlstm import benchmark, layers, time_layers


def _product_flops(a, b, *rest, **kwargs):
    """FLOPs of dot(a, b) and of matmul_tn_into(a, b, out): a's two sides times b's columns, twice."""
    return 2 * a.shape[0] * a.shape[1] * b.shape[1]


def _steps_flops(gates, *rest):
    T, N, G = gates.shape
    return 2 * T * N * (G // 4) * G


# (modules, name, label of a call, FLOPs of a call or None)
_PARTS = [
    ((layers, time_layers), "dot", lambda a, b, *r, **kwargs: f"product {a.shape[0]}x{a.shape[1]} @ {b.shape[0]}x{b.shape[1]}",
     _product_flops),
    ((layers, time_layers), "matmul_tn_into",
     lambda a, b, out: f"product {a.shape[1]}x{a.shape[0]} @ {b.shape[0]}x{b.shape[1]} (weight gradient)", _product_flops),
    ((time_layers,), "forward_steps", lambda g, *r: f"LSTM recurrence forward, {g.shape[0]} steps of "
     f"{g.shape[1]}x{g.shape[2] // 4} @ {g.shape[2] // 4}x{g.shape[2]}", _steps_flops),
    ((time_layers,), "backward_steps", lambda g, *r: f"LSTM recurrence backward, {g.shape[0]} steps of "
     f"{g.shape[1]}x{g.shape[2]} @ {g.shape[2]}x{g.shape[2] // 4}", _steps_flops),
    ((layers,), "softmax_cross_entropy_forward", lambda *a: "softmax cross-entropy forward kernel", None),
    ((layers,), "softmax_cross_entropy_backward", lambda *a: "softmax cross-entropy backward kernel", None),
    ((layers, time_layers), "column_sums", lambda *a: "bias gradients (column sums)", None),
]


@contextmanager
def _timed_parts(record):
    """Wrap the parts' names in their modules so that each call lands in record[label]."""
    saved = []
    try:
        for modules, name, label, flops in _PARTS:
            for module in modules:
                original = getattr(module, name)
                saved.append((module, name, original))
                setattr(module, name, _wrap(original, label, flops, record))
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


def _wrap(fn, label, flops, record):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        entry = record[label(*args, **kwargs)]
        entry["calls"] += 1
        entry["seconds"] += time.perf_counter() - start
        entry["flops"] += flops(*args, **kwargs) if flops else 0
        entry["call"] = (fn, args, kwargs)
        return result
    return timed


def _best_alone(call, repeat=5):
    """Best seconds of one call (fn, args, kwargs) repeated on its own."""
    fn, args, kwargs = call
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best


def profile_step(model, step="train", rounds=10, sizes=None):
    """(step seconds, tokens, parts) of a step averaged over `rounds` steps after two untimed
    ones; `sizes` overrides the book's constructor sizes.

    parts, slowest first, are dicts: "part", "calls" per step, "seconds" per step in the
    step, "gflops" there (None where not a product), and "alone": seconds per step when
    its last call is repeated on its own (best of 5) times its calls, what it costs with
    nothing else running. The last part is the rest of the step, without "alone".
    """
    fn, tokens = benchmark.make_step(model, "fastlstm", step, sizes)
    fn()
    fn()
    record = defaultdict(lambda: {"calls": 0, "seconds": 0.0, "flops": 0})
    with _timed_parts(record):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        total = (time.perf_counter() - start) / rounds
    parts = [{"part": label, "calls": r["calls"] // rounds, "seconds": r["seconds"] / rounds,
              "gflops": r["flops"] / r["seconds"] / 1e9 if r["flops"] else None,
              "alone": _best_alone(r["call"]) * r["calls"] / rounds}
             for label, r in record.items()]
    parts.sort(key=lambda p: -p["seconds"])
    parts.append({"part": "the rest: other kernels, dropout, embedding, clipping, update, Python",
                  "calls": None, "seconds": total - sum(p["seconds"] for p in parts), "gflops": None, "alone": None})
    return total, tokens, parts


def format_profile(model, step, total, tokens, parts, peak=None):
    """The profile as a table; with `peak` (GFLOP/s), what the parts alone allow against the limit."""
    lines = [f"{model} {step}: {total * 1e3:.1f} ms per step of {tokens} tokens ({tokens / total:,.0f} tokens/s), "
             f"{fastlstm.get_num_threads()} threads",
             f"  {'part':78s} {'calls':>5s} {'ms':>8s} {'share':>6s} {'GFLOP/s':>8s} {'alone ms':>9s}"]
    for p in parts:
        lines.append(f"  {p['part']:78s} {'' if p['calls'] is None else p['calls']:>5} {p['seconds'] * 1e3:8.1f} "
                     f"{p['seconds'] / total:6.1%} {'' if p['gflops'] is None else format(p['gflops'], '.1f'):>8s} "
                     f"{'' if p['alone'] is None else format(p['alone'] * 1e3, '.1f'):>9s}")
    alone = sum(p["alone"] for p in parts if p["alone"] is not None)
    bound = f"the parts alone add up to {alone * 1e3:.1f} ms: at most {tokens / alone:,.0f} tokens/s without the rest"
    if peak:
        limit = peak * 1e9 / benchmark.model_flop_per_token(model, step)
        bound += f", {tokens / alone / limit:.0%} of the limit ({limit:,.0f} tokens/s at {peak:.1f} GFLOP/s)"
    return "\n".join(lines + ["  " + bound])


def main(argv=None):
    parser = argparse.ArgumentParser(description="Where the time of a fastlstm step goes.")
    parser.add_argument("--model", choices=list(benchmark.MODELS), default="better")
    parser.add_argument("--step", choices=["train", "eval"], default="train")
    parser.add_argument("--threads", type=int, help="threads for Numba, BLAS and the lanes (default: all cores)")
    parser.add_argument("--rounds", type=int, default=10, help="timed steps to average (after two untimed ones)")
    args = parser.parse_args(argv)
    if args.threads:
        fastlstm.set_num_threads(args.threads)
    peak = benchmark.peak_gflops()
    print(format_profile(args.model, args.step, *profile_step(args.model, args.step, args.rounds), peak=peak))


if __name__ == "__main__":
    main()
