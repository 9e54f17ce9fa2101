"""Where a one-lane product's BLAS call starts to pay against the compiled loops of
kernels/one_row.py (fastlstm.blas.SMALL_WORK): microseconds per call of each, the best of
`--rounds` rounds of >= 2 ms of calls, over products of growing work, with the right
operand's rows contiguous (rows_times_rows) and with its columns contiguous
(rows_times_columns, a transposed weight).
The BLAS side is what a one-lane product costs without the compiled path: the switch of
BLAS to one thread and back (single_threaded_blas), the call and the bias's pass. Run it
with the benchmark environment:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/small_products.py
"""

import argparse

import numpy as np

from fastlstm.benchmark import best_time
from fastlstm.blas import _product
from fastlstm.kernels.one_row import PARTIALS, rows_times_columns, rows_times_rows
from fastlstm.threads import single_threaded_blas

MIN_TIME = 2e-3  # seconds of calls a round

SHAPES = [(4, 16, 16), (1, 64, 64), (2, 64, 64), (8, 32, 64), (8, 64, 64), (16, 64, 64), (8, 64, 128),
          (32, 64, 64), (8, 128, 128), (16, 128, 128), (32, 128, 128)]


def blas_product(a, b, bias, out):
    with single_threaded_blas():
        _product(a, b, out, bias)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'M':>4s}{'K':>5s}{'n':>5s}{'work':>9s} | {'rows':>7s}{'columns':>9s}{'BLAS':>7s}  (microseconds)")
    for M, K, n in SHAPES:
        a = rng.standard_normal((M, K)).astype(np.float32)
        W = rng.standard_normal((K, n)).astype(np.float32)
        E = np.ascontiguousarray(W.T)
        bias, out, partials = rng.standard_normal(n).astype(np.float32), np.empty((M, n), np.float32), \
            np.empty(PARTIALS, np.float32)
        rows = best_time(lambda: rows_times_rows(a, W, bias, out), args.rounds, MIN_TIME) * 1e6
        columns = best_time(lambda: rows_times_columns(a, E, bias, out, partials), args.rounds, MIN_TIME) * 1e6
        blas = best_time(lambda: blas_product(a, W, bias, out), args.rounds, MIN_TIME) * 1e6
        print(f"{M:4d}{K:5d}{n:5d}{M * K * n:9d} | {rows:7.2f}{columns:9.2f}{blas:7.2f}")


if __name__ == "__main__":
    main()
