"""Whether two lanes should cut a product by its rows or by its columns
(fastlstm.blas._bands, COLUMN_ROWS): microseconds of the whole product on one thread, and
of its two halves run at once on two threads (single-threaded BLAS each, as the lanes run
them), cut in the middle of the rows or at the multiple of 16 columns nearest the middle;
the best of `--rounds` rounds. A row cut makes each lane pack all of the right operand, a
column cut only its half, which pays where each lane has few rows. Run it with the
benchmark environment:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/split_axis.py
"""

import argparse
import threading
import time

import numpy as np

from fastlstm.threads import single_threaded_blas

# (M, K, N, right operand transposed): the output layers' and the layers' short products
SHAPES = [(8, 650, 2600, False), (32, 256, 256, False), (32, 650, 650, False), (32, 650, 650, True),
          (64, 650, 650, False), (64, 650, 650, True), (128, 128, 512, False), (128, 256, 256, False),
          (128, 256, 256, True), (128, 650, 650, False), (128, 650, 650, True), (256, 650, 650, True),
          (350, 100, 10000, False), (350, 650, 2600, False), (650, 128, 650, False)]
MIN_WORK = 2e8  # multiply-adds of a round's calls


def concurrent_time(parts, calls):
    """Microseconds per call of the slowest of `parts` [(a, b, out)], each on its own
    thread, all started together."""
    barrier, times = threading.Barrier(len(parts)), [0.0] * len(parts)

    def work(i):
        a, b, out = parts[i]
        barrier.wait()
        start = time.perf_counter()
        for _ in range(calls):
            np.matmul(a, b, out=out)
        times[i] = (time.perf_counter() - start) / calls * 1e6

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(parts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return max(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("M x K x N, B transposed: one thread | rows halves (speed-up) | columns halves (speed-up), microseconds")
    with single_threaded_blas():
        for M, K, N, transposed in SHAPES:
            a = rng.standard_normal((M, K)).astype(np.float32)
            b = rng.standard_normal((N, K)).astype(np.float32).T if transposed else \
                rng.standard_normal((K, N)).astype(np.float32)
            out = np.empty((M, N), np.float32)
            calls = max(10, int(MIN_WORK / (M * K * N)))
            h, c = M // 2, round(N / 32) * 16
            layouts = {"whole": [(a, b, out)], "rows": [(a[:h], b, out[:h]), (a[h:], b, out[h:])],
                       "columns": [(a, b[:, :c], out[:, :c]), (a, b[:, c:], out[:, c:])]}
            best = {name: min(concurrent_time(parts, calls) for _ in range(args.rounds))
                    for name, parts in layouts.items()}
            print(f"{M} x {K} x {N}, {'T' if transposed else 'N'}: {best['whole']:.0f} | "
                  f"{best['rows']:.0f} ({best['whole'] / best['rows']:.2f}x) | "
                  f"{best['columns']:.0f} ({best['whole'] / best['columns']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
