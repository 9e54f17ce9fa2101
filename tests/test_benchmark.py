"""The throughput benchmark (fastlstm.benchmark, `fastlstm bench`) and the asv suite, on tiny sizes."""

import importlib
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

import fastlstm
from fastlstm import benchmark, cli
from fastlstm.kernels import packed_product

ASV_DIR = Path(__file__).resolve().parents[1] / "asv_benchmarks"
TINY = {"vocab_size": 50, "wordvec_size": 8, "hidden_size": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("model, step, mflop", [("better", "train", 79.6), ("better", "eval", 26.5),
                                                ("rnnlm", "train", 6.48), ("rnnlm", "eval", 2.16)])
def test_flop_per_token_at_the_books_sizes(model, step, mflop):
    s, layers = benchmark.MODELS[model]["sizes"], benchmark.MODELS[model]["layers"]
    flop = benchmark.flop_per_token(step, s["vocab_size"], s["wordvec_size"], s["hidden_size"], layers)
    assert flop / 1e6 == pytest.approx(mflop, rel=1e-3)


def test_model_throughput_on_tiny_models():
    rows = benchmark.model_throughput(["rnnlm", "better"], quick=True, sizes=TINY, peak_size=64,
                                      memory=False, settle=0)
    assert [(r["model"], r["step"]) for r in rows] == [(m, s) for m in ("rnnlm", "better") for s in ("train", "eval")]
    for r in rows:
        assert r["threads"] == 1
        for impl in benchmark.IMPLEMENTATIONS:
            assert len(r[f"{impl}_peaks_gflops"]) == benchmark.TIMING[True][impl]["repeat"]  # one per round
            rate = r[f"{impl}_tokens_per_s"]
            # every figure from the round's own measurements: the best run, the best peak call
            calls = r[f"{impl}_round_calls"]
            assert r[f"{impl}_round_tokens_per_s"] == [r["batch"] * r["time"] / min(c["seconds"]) for c in calls]
            assert r[f"{impl}_peaks_gflops"] == [max(c["gflops"]) for c in calls]
            assert rate == pytest.approx(np.median(r[f"{impl}_round_tokens_per_s"]))
            fractions = [t * r["flop_per_token"] / 1e9 / g
                         for t, g in zip(r[f"{impl}_round_tokens_per_s"], r[f"{impl}_peaks_gflops"])]
            assert r[f"{impl}_fraction"] == pytest.approx(np.median(fractions))
            assert r[f"{impl}_gflops"] == pytest.approx(rate * r["flop_per_token"] / 1e9)
        assert r["peak_gflops"] == pytest.approx(np.median(r["fastlstm_peaks_gflops"]))
        assert benchmark.row_peaks(r) == r["fastlstm_peaks_gflops"] + r["numpy_peaks_gflops"]
        assert r["limit_tokens_per_s"] == pytest.approx(r["peak_gflops"] * 1e9 / r["flop_per_token"])
        assert r["speedup"] == pytest.approx(r["fastlstm_tokens_per_s"] / r["numpy_tokens_per_s"])
    assert "better" in benchmark.format_throughput(rows)


def test_model_throughput_refuses_unknown_peers():
    with pytest.raises(ValueError, match="peers must be some of torch, got tf"):
        benchmark.model_throughput(["rnnlm"], peers=("tf",))


def test_each_round_counts_against_the_peak_measured_just_before_it(monkeypatch):
    """Rounds of 2 and 4 s against peaks of 100 and 50 GFLOP/s (a slow moment slows both), each
    side of a round the best of its measurements: tokens/s and the fraction are medians over
    rounds, the fraction of each round against its own peak."""
    rounds = itertools.cycle([[([2.5, 2.0], [90.0, 100.0]), ([4.0, 4.4], [50.0, 45.0])],
                              [([1.0, 1.5], [100.0, 80.0])]])  # fastlstm's, then NumPy's
    monkeypatch.setattr(benchmark, "interleaved_rounds", lambda fns, *args, **kwargs: [next(rounds) for _ in fns])
    monkeypatch.setattr(benchmark, "make_step", lambda model, impl, step, sizes: (None, 700))
    row = benchmark.model_throughput(["rnnlm"], quick=True, memory=False, settle=0)[0]
    flop = row["flop_per_token"]
    assert row["fastlstm_tokens_per_s"] == pytest.approx((350 + 175) / 2)
    assert row["fastlstm_fraction"] == pytest.approx(350 * flop / 1e9 / 100)  # both rounds give the same
    assert row["numpy_fraction"] == pytest.approx(700 * flop / 1e9 / 100)
    assert row["fastlstm_peaks_gflops"] == [100.0, 50.0] and row["peak_gflops"] == pytest.approx(75.0)
    assert row["fastlstm_round_tokens_per_s"] == [350.0, 175.0]
    assert row["fastlstm_round_calls"][1] == {"seconds": [4.0, 4.4], "gflops": [50.0, 45.0]}
    assert row["fastlstm_round_fractions"] == pytest.approx([350 * flop / 1e9 / 100] * 2)
    fraction = f"{350 * flop / 1e9 / 100:.1%}"
    assert f"rnnlm  train {fraction} {fraction}" in benchmark.format_throughput([row])  # each round's, listed
    unsorted = {**row, "fastlstm_round_fractions": [0.8, 0.7, 0.75]}
    assert "rnnlm  train 70.0% 75.0% 80.0%" in benchmark.format_throughput([unsorted])  # lowest first
    assert row["speedup"] == pytest.approx(262.5 / 700)


class FakeClock:
    """time.perf_counter and time.sleep of a clock that only the calls move (binary fractions: exact sums)."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_rounds_of_one_side_measure_the_peak_before_each_round(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(benchmark, "time", clock)
    events = []
    durations = iter([8.0, 0.5, 0.25, 0.75, 0.125])  # the untimed call's, then the timed runs'

    def fn():
        events.append("step")
        clock.now += next(durations)

    def peak():
        events.append("peak")
        return 10.0 * events.count("peak")

    rounds, = benchmark.interleaved_rounds([fn], peak, repeat=2, min_time=0, settle=0, best_of=2)
    assert events == ["step"] + ["peak", "peak", "step", "step"] * 2  # an untimed call first
    assert [gflops for _, gflops in rounds] == [[10.0, 20.0], [30.0, 40.0]]
    assert [seconds for seconds, _ in rounds] == [[0.5, 0.25], [0.75, 0.125]]  # each run its own call


def test_interleaved_rounds_give_each_side_its_own_peak_in_turns(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(benchmark, "time", clock)
    events = []

    def side(name):
        def fn():
            events.append(name)
            clock.now += 0.5
        return fn

    def peak():
        events.append("peak")
        return 10.0 * events.count("peak")

    a, b = benchmark.interleaved_rounds([side("a"), side("b")], peak, repeat=3, min_time=0, settle=0, best_of=2)
    assert events == ["a", "b"] + ["peak", "peak", "a", "a", "peak", "peak", "b", "b"] \
        + ["peak", "peak", "b", "b", "peak", "peak", "a", "a"] + ["peak", "peak", "a", "a", "peak", "peak", "b", "b"]
    assert [gflops for _, gflops in a] == [[10.0, 20.0], [70.0, 80.0], [90.0, 100.0]]  # each its own peak
    assert [gflops for _, gflops in b] == [[30.0, 40.0], [50.0, 60.0], [110.0, 120.0]]
    assert all(seconds == [0.5, 0.5] for seconds, _ in a + b)


def test_timed_round_averages_the_calls_of_at_least_min_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(benchmark, "time", clock)
    durations = iter([0.25, 0.25, 0.5, 4.0])

    def fn():
        clock.now += next(durations)
    assert benchmark.timed_round(fn, min_time=0.75) == 1.0 / 3  # the third call passes 0.75 s; no fourth
    assert benchmark.timed_round(fn, min_time=0) == 4.0


def test_peak_is_the_gflops_of_one_product(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(benchmark, "time", clock)
    peak = benchmark.Peak(size=64)
    dot = np.dot
    monkeypatch.setattr(benchmark.np, "dot", lambda a, b, out: (dot(a, b, out=out), clock.sleep(0.5)))
    assert peak() == 2 * 64 ** 3 / 0.5 / 1e9
    np.testing.assert_allclose(peak.out, peak.a @ peak.b, rtol=1e-4)


def test_step_memory_in_a_fresh_process():
    mib = benchmark.step_memory([("better", "fastlstm", "train"), ("better", "numpy", "eval")], TINY)
    assert set(mib) == {"better/fastlstm/train", "better/numpy/eval"}
    if sys.platform.startswith("linux"):
        for figures in mib.values():
            assert figures["step"] <= figures["total"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
def test_step_memory_sees_what_a_step_allocates(monkeypatch):
    """A step that fills 64 MiB and frees them: its high-water growth is those 64 MiB."""
    def step():
        np.ones(64 * 2**20 // 8)  # written, so resident

    monkeypatch.setattr(benchmark, "make_step", lambda model, impl, step_name, sizes: (step, 1))
    figures = benchmark._measure_step_memory([("rnnlm", "fastlstm", "train")], None)["rnnlm/fastlstm/train"]
    if figures is None:
        pytest.skip("the peak RSS cannot be reset here")
    assert 62 <= figures["step"] <= 70 and figures["step"] <= figures["total"]


@pytest.mark.parametrize("model", ["rnnlm", "better"])
def test_steps_run_the_models_on_the_books_batches(model):
    for step, (N, T) in benchmark.STEPS.items():
        fn, tokens = benchmark.make_step(model, "fastlstm", step, TINY)
        assert tokens == N * T
        loss = fn()
        if step == "eval":  # the loss of untrained weights on random ids: about log V
            assert abs(loss - np.log(TINY["vocab_size"])) < 0.5


def test_chapter_speedups_take_medians_of_rounds_in_turns(monkeypatch):
    calls = []
    toy = ("a toy chapter", lambda kit, data_dir: lambda: calls.append(kit))
    monkeypatch.setitem(benchmark.CHAPTER_CASES, "toy", toy)
    seconds = {benchmark.ref_models: iter([4.0, 9.0, 6.0]), benchmark.models: iter([2.0, 1.0, 3.0])}
    monkeypatch.setattr(benchmark, "timed_round", lambda fn, min_time: (fn(), next(seconds[calls[-1]]))[1])
    [(label, t_ref, t_fast, ratio)] = benchmark.chapter_speedups(["toy"], rounds=3, min_time=0)
    assert (label, t_ref, t_fast) == ("a toy chapter", 6.0, 2.0)
    assert ratio == 2.0  # the median of the rounds' 2, 9 and 2
    ref, fast = benchmark.ref_models, benchmark.models
    assert calls == [ref, fast] + [ref, fast] + [fast, ref] + [ref, fast]  # an untimed call each, then in turns


def test_chapters_command_times_chapter_5(capsys):
    benchmark.main(["chapters", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "chapter 5 SimpleRnnlm training iteration, N=10 T=5 D=H=100" in out and out.rstrip().endswith("x")
    for name in ("ch04", "ch07", "ch07-peeky", "ch08"):  # the book's files of chapters 4, 7 and 8 too
        assert out.count(benchmark.CHAPTER_CASES[name][0]) == 1


def test_chapter_speedups_take_numpy_at_the_better_of_two_thread_counts(monkeypatch):
    calls, threads = [], [2]  # the thread setting, faked: the toy runs no kernel
    monkeypatch.setattr(fastlstm, "get_num_threads", lambda: threads[0])
    monkeypatch.setattr(fastlstm, "set_num_threads", lambda n: threads.__setitem__(0, n))
    toy = ("a toy chapter", lambda kit, data_dir: lambda: calls.append((kit, threads[0])))
    monkeypatch.setitem(benchmark.CHAPTER_CASES, "toy", toy)
    ref, fast = benchmark.ref_models, benchmark.models
    seconds = {(ref, 2): iter([4.0, 9.0]), (fast, 2): iter([2.0, 2.0]), (ref, 1): iter([5.0, 3.0])}
    monkeypatch.setattr(benchmark, "timed_round", lambda fn, min_time: (fn(), next(seconds[calls[-1]]))[1])
    [(_, t_ref, t_fast, ratio)] = benchmark.chapter_speedups(["toy"], rounds=2, min_time=0)
    assert threads == [2]  # restored
    assert (t_ref, t_fast, ratio) == (3.5, 2.0, 1.75)  # rounds of 4 (at 2 threads) and 3 (at 1)
    sides = [(ref, 2), (fast, 2), (ref, 1)]
    assert calls == sides + sides + sides[::-1]  # an untimed call each, then in turns


def test_chapters_command_times_greedy_decoding(capsys):
    benchmark.main(["chapters", "--repeat", "1", "--cases", "ch07-decode,ch08-decode"])
    out = capsys.readouterr().out
    assert "chapter 7 Seq2seq greedy decoding of one question" in out
    assert "chapter 8 AttentionSeq2seq greedy decoding of one question" in out


def test_chapters_command_refuses_unknown_cases(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["chapters", "--cases", "ch05,ch09"])
    assert "ch04, ch05" in capsys.readouterr().err


def test_bench_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE fastlstm bench" in out


def test_bench_refuses_unknown_models(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--models", "rnnlm,gpt"])
    assert "rnnlm, better" in capsys.readouterr().err


def test_bench_profile_prints_each_models_training_profile(capsys, monkeypatch):
    from fastlstm import profiling
    rows = benchmark.model_throughput(["rnnlm"], quick=True, sizes=TINY, peak_size=64, memory=False, settle=0)
    monkeypatch.setattr(benchmark, "model_throughput", lambda *args, **kwargs: rows)
    profile_step = profiling.profile_step
    monkeypatch.setattr(profiling, "profile_step", lambda model, step: profile_step(model, step, 1, TINY))
    assert cli.main(["bench", "--quick", "--models", "rnnlm", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "--profile" in out.splitlines()[0]
    tile = packed_product.TILE
    assert f"recurrence tile: {tile.vector_bytes * 8}-bit vectors, {tile.rows} rows" in out  # the host's choice
    assert "rnnlm train:" in out and "the parts alone, each the faster of fastlstm and BLAS, add up to" in out and "of the limit" in out


@pytest.fixture(scope="module")
def asv_suite():
    sys.path.insert(0, str(ASV_DIR))
    try:
        yield lambda name: importlib.import_module(f"benchmarks.{name}")
    finally:
        sys.path.remove(str(ASV_DIR))


def test_asv_model_benchmarks_run_on_tiny_sizes(asv_suite, monkeypatch):
    bench = asv_suite("bench_models")
    assert bench.Throughput.track_tokens_per_s.unit == "tokens/s"
    assert bench.Throughput.params == (["rnnlm", "better"], ["train", "eval"])
    monkeypatch.setitem(bench.CONFIGS, "better", (*bench.CONFIGS["better"][:1], {**TINY, "dropout_ratio": 0.5},
                                                  bench.CONFIGS["better"][2]))
    monkeypatch.setattr(bench, "ROUNDS", 3)
    steps = []  # (arguments, (loss, norm)) of every training step
    train_step = bench.train_step
    monkeypatch.setattr(bench, "train_step", lambda *args: steps.append((args, train_step(*args))) or steps[-1][1])
    timings = iter([[0.5, 0.25, 1.0], [2.0, 4.0, 0.5]])

    def repeat(fn, number, repeat):  # timeit.repeat of single calls, the seconds scripted
        calls = [fn() for _ in range(number * repeat)]
        assert len(calls) == bench.ROUNDS
        return next(timings)
    monkeypatch.setattr(bench.timeit, "repeat", repeat)
    for step, rate in (("train", 700 / 0.25), ("eval", 350 / 0.5)):
        b = bench.Throughput()
        b.setup("better", step)
        assert b.track_tokens_per_s("better", step) == rate  # tokens of the batch over the best round
    assert len(steps) == 1 + bench.ROUNDS  # setup's call, then the timed ones: the train step is train_step
    assert {(args[1].lr, args[4]) for args, _ in steps} == {(20.0, 0.25)}  # SGD lr 20, clipping at 0.25
    assert steps[-1][1][0] < steps[0][1][0]  # the same batch again: its loss falls
    assert abs(b.step() - np.log(TINY["vocab_size"])) < 0.5  # the eval step: the loss of a forward
    m = bench.TrainingMemory()
    m.setup()
    m.peakmem_better_train_step()
    assert len(steps) == 1 + bench.ROUNDS + 2  # setup's step, then the measured one


def test_asv_kernel_benchmarks_run_on_tiny_sizes(asv_suite, monkeypatch):
    bench = asv_suite("bench_kernels")
    monkeypatch.setattr(bench, "V", 50)
    for cls in (bench.LSTM, bench.SoftmaxCrossEntropy, bench.EmbeddingBackward):
        assert cls.params[0] == ["float32", "float64"]
        for dtype in cls.params[0]:
            args = (dtype, 8) if len(cls.params) == 2 else (dtype,)
            b = cls()
            b.setup(*args)
            for name in dir(cls):
                if name.startswith("time_"):
                    getattr(b, name)(*args)
    assert bench.LSTM.params[1] == bench.EmbeddingBackward.params[1] == [100, 650]


def test_asv_compile_benchmarks_parse_the_warmup_line(asv_suite):
    bench = asv_suite("bench_compile")
    assert bench.FirstCall.unit == "seconds"
    assert {"track_warm_cache", "track_cold_cache"} <= set(dir(bench.FirstCall))
    line = "warm-up 0.91 s: 27 kernels loaded from the cache, 0 compiled (float32; cache beside x)"
    assert bench.WARMUP_LINE.search(line).groups() == ("0.91", "27", "0")


def test_ppmi_speedup_times_both():
    from fastlstm.benchmark import ppmi_speedup

    t_ref, t_fast = ppmi_speedup(vocab_size=30, repeat=1)
    assert 0 < t_fast < t_ref  # 900 cells: the book's loop pays a NumPy call per cell
