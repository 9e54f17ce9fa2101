"""Speed of fastlstm against the plain-NumPy reference of the book's layers, measured in
one run as ratios (a shared machine is noisy; a ratio from one run is not).

`python -m fastlstm.benchmark layers` times the three hot layers at the book's sizes.
"""

import argparse
import time

import numpy as np

import fastlstm
import fastlstm.reference.numpy_layers as ref
import fastlstm.time_layers as fast
from fastlstm.warmup import warm_up


def best_time(fn, repeat=5, min_time=0.2):
    """Best per-call seconds of fn() over `repeat` rounds, each of at least `min_time` seconds."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def _lstm_case(kit, rng, N, T, H):
    Wx, Wh = ((rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(np.float32) for _ in range(2))
    layer = kit.TimeLSTM(Wx, Wh, np.zeros(4 * H, np.float32))
    xs, dhs = (rng.standard_normal((N, T, H)).astype(np.float32) for _ in range(2))

    def step():
        layer.forward(xs)
        layer.backward(dhs)
    return step


def _softmax_case(kit, rng, N, T, V):
    xs = rng.standard_normal((N, T, V)).astype(np.float32)
    ts = rng.integers(0, V, size=(N, T))
    layer = kit.TimeSoftmaxWithLoss()

    def step():
        layer.forward(xs, ts)
        layer.backward()
    return step


def _embedding_case(kit, rng, N, T, V, D):
    layer = kit.TimeEmbedding(rng.standard_normal((V, D)).astype(np.float32))
    ids = rng.integers(0, V, size=(N, T))
    dout = rng.standard_normal((N, T, D)).astype(np.float32)
    layer.forward(ids)
    return lambda: layer.backward(dout)


LAYER_CASES = [
    ("TimeLSTM forward+backward, N=20 T=35 D=H=650", _lstm_case, (20, 35, 650)),
    ("TimeSoftmaxWithLoss forward+backward, N=20 T=35 V=10000", _softmax_case, (20, 35, 10000)),
    ("TimeEmbedding backward, N=20 T=35 V=10000 D=650", _embedding_case, (20, 35, 10000, 650)),
]


def layer_speedups(repeat=5):
    """[(case, reference seconds, fastlstm seconds)] for the hot layers in float32."""
    warm_up()
    rows = []
    for name, case, sizes in LAYER_CASES:
        timings = [best_time(case(kit, np.random.default_rng(0), *sizes), repeat) for kit in (ref, fast)]
        rows.append((name, *timings))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time fastlstm against the NumPy reference layers.")
    parser.add_argument("what", choices=["layers"], help="what to measure")
    parser.add_argument("--threads", type=int, help="threads for Numba and BLAS (default: all cores)")
    parser.add_argument("--repeat", type=int, default=5, help="timing rounds; the best round counts")
    args = parser.parse_args(argv)
    if args.threads:
        fastlstm.set_num_threads(args.threads)
    print(f"float32, {fastlstm.get_num_threads()} threads; best of {args.repeat} rounds")
    print(f"{'case':58s} {'NumPy ms':>9s} {'fastlstm ms':>11s} {'speed-up':>8s}")
    for name, t_ref, t_fast in layer_speedups(args.repeat):
        print(f"{name:58s} {t_ref * 1e3:9.2f} {t_fast * 1e3:11.2f} {t_ref / t_fast:7.1f}x")


if __name__ == "__main__":
    main()
