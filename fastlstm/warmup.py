"""Compile (or load from Numba's cache) every kernel a training or evaluation step uses.

`python -m fastlstm.warmup` prints how long that took and how many kernels came from
the cache, which tells a cold first run (compiling) from a warm one (loading).
"""

import argparse
import time

import numpy as np

from fastlstm import kernels
from fastlstm.generate import generate
from fastlstm.kernels import (dropout, embedding, gru, linalg, lstm, one_row, optim, packed_product, recurrence,
                              regularisers, rnn, sampling, softmax, spin, word_counts)
from fastlstm.lanes import default as default_lanes
from fastlstm.models import BetterRnnlm, Rnnlm, SimpleRnnlm, VariationalRnnlm
from fastlstm.optimizer import ASGD, SGD
from fastlstm.threads import get_num_threads
from fastlstm.time_layers import TimeGRU
from fastlstm.training_step import train_step
from fastlstm.util import clip_grads, create_co_matrix, ppmi, preprocess, remove_duplicate

KERNEL_MODULES = (dropout, embedding, gru, linalg, lstm, one_row, optim, packed_product, recurrence, regularisers, rnn,
                  sampling, softmax, spin, word_counts)


def dispatchers():
    """Every compiled kernel of fastlstm.kernels, by qualified name."""
    found = {}
    for module in KERNEL_MODULES:
        for name, obj in vars(module).items():
            if hasattr(obj, "stats") and hasattr(obj, "py_func") and obj.py_func.__module__ == module.__name__:
                key = f"{module.__name__.rsplit('.', 1)[-1]}.{name}"
                found[key] = obj
                if hasattr(obj, "serial"):  # kernels/parallel.py
                    found[f"{key}.serial"] = obj.serial
    return found


def warm_up(dtypes=(np.float32,)):
    """`_run_models` with the kernels' serial twins, which the tiny models' calls pick, and again,
    where there are threads to share them, with their parallel builds, which larger calls pick
    (fastlstm.lanes.Lanes.loop; on one thread every call takes the twin)."""
    lanes = default_lanes()
    _run_models(dtypes)
    if get_num_threads() == 1:
        return
    saved, lanes.min_parallel_items = lanes.min_parallel_items, 0
    try:
        _run_models(dtypes)
    finally:
        lanes.min_parallel_items = saved


def _run_models(dtypes):
    """Run two training steps (train_step), the book's clip_grads and update, and one evaluation
    step of tiny SimpleRnnlm, Rnnlm and BetterRnnlm models per dtype, and a generated token
    (fastlstm.generate): the second step's forward also writes the softmax gradient
    (fastlstm.layers.SoftmaxWithLoss); then two steps of a tiny VariationalRnnlm with every
    regulariser on, under averaging ASGD; a TimeGRU's forward,
    backward and evaluation; and chapter 2's co-occurrence counts and PPMI of a sentence (the
    book's int64 ids, int32 counts)."""
    state = np.random.get_state()
    try:
        corpus, word_to_id, _ = preprocess("You say goodbye and I say hello.")
        ppmi(create_co_matrix(corpus, len(word_to_id)))
        np.random.seed(0)
        for dtype in dtypes:
            for model in (SimpleRnnlm(13, 5, 3, dtype=dtype), Rnnlm(13, 5, 3, dtype=dtype),
                          BetterRnnlm(13, 5, 5, dtype=dtype)):
                xs = np.random.randint(0, 13, size=(2, 3))
                optimizer = SGD(0.1)
                for _ in range(2):
                    train_step(model, optimizer, xs, xs, max_grad=1e-3)  # the training loops' step
                params, grads = remove_duplicate(model.params, model.grads)
                clip_grads(grads, 1e-3)  # book-style code's clipping and update
                optimizer.update(params, grads)
                model.reset_state()
                model.predict(xs)
                model.reset_state()
                generate(model, 0, sample_size=2)  # one token at a time: the one-row path and the sampling
            regularised = VariationalRnnlm(13, 5, 5, weight_drop=0.3, alpha=1.0, beta=1.0, dtype=dtype)
            asgd = ASGD(0.1, nonmono=1, weight_decay=1e-6)
            for figure in (2.0, 1.0, 1.5, 1.6):  # the last one starts the averaging
                asgd.observe(figure)
            for _ in range(2):
                train_step(regularised, asgd, xs, xs, max_grad=1e-3)
            layer = TimeGRU(np.zeros((5, 9), dtype), np.zeros((3, 9), dtype))
            xs = np.ones((2, 3, 5), dtype)
            layer.backward(layer.forward(xs))
            layer.infer(xs)
    finally:
        np.random.set_state(state)


def cache_counts():
    """(hits, misses) of Numba's on-disk cache over all kernels in this process."""
    hits = misses = 0
    for d in dispatchers().values():
        hits += sum(d.stats.cache_hits.values())
        misses += sum(d.stats.cache_misses.values())
    return hits, misses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--float64", action="store_true", help="also compile the float64 kernels")
    args = parser.parse_args(argv)
    dtypes = (np.float32, np.float64) if args.float64 else (np.float32,)
    start = time.perf_counter()
    warm_up(dtypes)
    elapsed = time.perf_counter() - start
    hits, misses = cache_counts()
    print(f"warm-up {elapsed:.2f} s: {hits} kernels loaded from the cache, {misses} compiled "
          f"({', '.join(np.dtype(d).name for d in dtypes)}; cache beside {kernels.__file__})")


if __name__ == "__main__":
    main()
