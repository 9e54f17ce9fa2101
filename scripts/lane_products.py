"""Where a product's second lane starts to pay: milliseconds per `blas.dot` call on two lanes
against one (`Lanes(threads=1)`) and against OpenBLAS's own threads (`np.matmul` with BLAS on
the thread setting), float32, over products of growing work a lane. Each figure is the
median of 5 batches of about 30 ms of calls, each batch after `--rest` seconds of sleep
(after a multi-threaded BLAS call OpenBLAS's workers spin for about 0.1 s on the core the
next lane needs). Run it with the benchmark environment:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/lane_products.py --rest 0.15
"""

import argparse
import statistics
import time

import numpy as np

import fastlstm
from fastlstm import blas
from fastlstm.benchmark import timed_round
from fastlstm.lanes import Lanes

BATCH_SECONDS = 0.03

SHAPES = [(64, 256, 256), (128, 256, 256), (256, 256, 256), (512, 256, 256), (1024, 256, 256), (2048, 256, 256),
          (128, 650, 650), (256, 650, 650), (700, 100, 1000), (350, 100, 10000), (700, 100, 10000)]


def median_ms(fn, rest, batches=5):
    fn()
    times = []
    for _ in range(batches):
        time.sleep(rest)
        times.append(timed_round(fn, BATCH_SECONDS) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rest", type=float, default=0.15)
    args = parser.parse_args()
    fastlstm.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    lanes, one = Lanes(threads=args.threads), Lanes(threads=1)
    print(f"{'M x K x n':>18s} {'a lane':>8s} | {'one lane':>9s}{'lanes':>8s}{'ratio':>7s} | {'BLAS threads':>12s}  (ms)")
    for M, K, n in SHAPES:
        a = rng.standard_normal((M, K)).astype(np.float32)
        b = rng.standard_normal((K, n)).astype(np.float32)
        out = np.empty((M, n), np.float32)
        split = median_ms(lambda: blas.dot(a, b, out=out, lanes=lanes), args.rest)
        single = median_ms(lambda: blas.dot(a, b, out=out, lanes=one), args.rest)
        threads = median_ms(lambda: np.matmul(a, b, out=out), args.rest)
        share = np.log2(M * K * n / args.threads)
        print(f"{M:>6d} x {K:>4d} x {n:<5d} 2^{share:5.1f} | {single:9.3f}{split:8.3f}{single / split:7.2f} | {threads:12.3f}")


if __name__ == "__main__":
    main()
