"""Text generation, one token at a time, against the book's NumPy code: the time of one
token of `predict` (N = T = 1, stateful) and of `generate` (100 tokens, sampling included),
for Rnnlm (V 10000, D = H = 100) and BetterRnnlm (D = H = 650, 2 layers, tied), float32.

The book: the plain-NumPy reference models (fastlstm.reference.models) for predict, and the
book's chapter 7 RnnlmGen / BetterRnnlmGen (tests/book_ch07/rnnlm_gen.py, the book's own
loop with np.random.choice) on the reference layers for generate, each at 1 and at 2 BLAS
threads, the better counting. fastlstm at 2 threads (--threads): fastlstm.models' Rnnlm / BetterRnnlm
for predict, and for generate both fastlstm.models.RnnlmGen (fastlstm.generate) and the
book's chapter 7 file on fastlstm's layers (the drop-in).

This shared machine's speed moves from second to second, so each round times every side
back to back, in an order that turns from round to round, and the figures are the medians
over the rounds of each round's ratio book / fastlstm. Run it with the benchmark environment:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/bench_generation.py
"""

import argparse
import statistics
import time

import numpy as np
import threadpoolctl

from fastlstm import models, threads
from fastlstm.benchmark import _book_model
from fastlstm.reference import models as ref_models

# model: (fastlstm's generator class, reference model class, the book's class in ch07's rnnlm_gen,
# predict tokens per timed run)
MODELS = {"rnnlm": (models.RnnlmGen, ref_models.Rnnlm, "RnnlmGen", 200),
          "better": (models.BetterRnnlmGen, ref_models.BetterRnnlm, "BetterRnnlmGen", 10)}
GENERATED = 100  # tokens per generate call
# Seconds of rest before each timed run: after calls on 2 BLAS threads, OpenBLAS's workers spin
# for a while, holding a core that the next side wants (50 ms of rest still left fastlstm's
# next run up to twice as slow; docs/performance.md).
SETTLE = 0.5


def per_token(fn, tokens):
    """Seconds per token of fn(), which handles `tokens` tokens."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / tokens


def sides(model):
    """{side: (fn, tokens)} of one model: predict and generate of the book at 1 and 2 BLAS
    threads, of fastlstm, and the book's generator file on fastlstm's layers."""
    ours, reference, book_class, tokens = MODELS[model]
    np.random.seed(0)
    fast, book = ours(), reference()
    book_gen, drop_in = _book_model(ref_models, "ch07", "rnnlm_gen", book_class), _book_model(
        models, "ch07", "rnnlm_gen", book_class)
    ids = np.random.default_rng(0).integers(0, 10000, size=tokens).reshape(-1, 1, 1)

    def predict(net):
        return lambda: [net.predict(x) for x in ids]

    def generate(net):
        return lambda: net.generate(1, sample_size=GENERATED)

    def blas(n, fn):
        def run():
            with threadpoolctl.threadpool_limits(n, user_api="blas"):
                fn()
        return run

    out = {}
    for n in (1, 2):
        out[f"book predict {n}"] = (blas(n, predict(book)), tokens)
        out[f"book generate {n}"] = (blas(n, generate(book_gen)), GENERATED - 1)
    out["fastlstm predict"] = (predict(fast), tokens)
    out["fastlstm generate"] = (generate(fast), GENERATED - 1)
    out["book file on fastlstm generate"] = (generate(drop_in), GENERATED - 1)
    return out


def rounds(model, count):
    """[{side: seconds per token}] for `count` rounds, after one untimed call of each side."""
    timed = sides(model)
    for fn, _ in timed.values():
        fn()
    names = list(timed)
    results = []
    for r in range(count):
        order = names[r % len(names):] + names[:r % len(names)]
        seeds = {name: r for name in names}  # the same draws for every side of a round
        result = {}
        for name in order:
            time.sleep(SETTLE)
            np.random.seed(seeds[name])
            result[name] = per_token(*timed[name])
        results.append(result)
    return results


def report(model, results):
    """Lines: each side's median ms per token, and the medians of the rounds' ratios."""
    lines = [f"{model}: {len(results)} rounds, ms per token (median)"]
    for name in results[0]:
        lines.append(f"  {name:34s} {statistics.median(r[name] for r in results) * 1e3:8.3f}")
    for step, fast_side in (("predict", "fastlstm predict"), ("generate", "fastlstm generate"),
                            ("generate", "book file on fastlstm generate")):
        ratios = [min(r[f"book {step} 1"], r[f"book {step} 2"]) / r[fast_side] for r in results]
        lines.append(f"  book (better of 1, 2 BLAS threads) / {fast_side}: median {statistics.median(ratios):.2f}x "
                     f"(rounds {min(ratios):.2f} .. {max(ratios):.2f})")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, default=2, help="fastlstm's threads (the book's BLAS: 1 and 2)")
    args = parser.parse_args(argv)
    threads.set_num_threads(args.threads)
    print(f"fastlstm on {args.threads} thread(s); the book at 1 and 2 BLAS threads, the better counting")
    for model in args.models:
        print(report(model, rounds(model, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
