"""Where a one-lane product's BLAS call starts to pay against the compiled row loops of
kernels/one_row.py (fastlstm.blas.ONE_ROW_WORK, SMALL_ROWS, SMALL_WORK): microseconds per
call of each, the best of `--rounds` rounds of >= 2 ms of calls, over products of growing
rows and work, the right operand's rows contiguous. 'BLAS' is the call and the bias's pass
as a product of at most blas.ONE_THREAD_WORK multiply-adds of two or more rows takes them
(no switch of BLAS's threads: OpenBLAS keeps it on the calling thread); 'switched' adds the
switch of BLAS to one thread and back (single_threaded_blas), which every other one-lane
product pays. Run it with the benchmark environment:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/small_products.py
"""

import argparse

import numpy as np

from fastlstm.benchmark import best_time
from fastlstm.blas import _product
from fastlstm.kernels.one_row import rows_times_rows
from fastlstm.threads import single_threaded_blas

MIN_TIME = 2e-3  # seconds of calls a round

SHAPES = [(1, 16, 16), (1, 64, 64), (1, 128, 128), (1, 128, 256), (1, 128, 512), (2, 64, 64), (2, 128, 128),
          (4, 16, 16), (4, 64, 64), (8, 16, 16), (8, 16, 64), (8, 64, 64), (16, 16, 16), (16, 64, 64),
          (32, 16, 16), (128, 16, 16)]


def switched_product(a, b, bias, out):
    with single_threaded_blas():
        _product(a, b, out, bias)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'M':>4s}{'K':>5s}{'n':>5s}{'work':>9s} | {'rows':>7s}{'BLAS':>7s}{'switched':>10s}  (microseconds)")
    for M, K, n in SHAPES:
        a = rng.standard_normal((M, K)).astype(np.float32)
        W = rng.standard_normal((K, n)).astype(np.float32)
        bias, out = rng.standard_normal(n).astype(np.float32), np.empty((M, n), np.float32)
        rows = best_time(lambda: rows_times_rows(a, W, bias, out), args.rounds, MIN_TIME) * 1e6
        blas = best_time(lambda: _product(a, W, out, bias), args.rounds, MIN_TIME) * 1e6
        switched = best_time(lambda: switched_product(a, W, bias, out), args.rounds, MIN_TIME) * 1e6
        print(f"{M:4d}{K:5d}{n:5d}{M * K * n:9d} | {rows:7.2f}{blas:7.2f}{switched:10.2f}")


if __name__ == "__main__":
    main()
