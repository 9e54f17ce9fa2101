"""The shape sweep of fastlstm.benchmark (`python -m fastlstm.benchmark shapes`), on tiny cells."""

import csv
import itertools

import numpy as np
import pytest

from fastlstm import benchmark

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("layer, mode", list(itertools.product(benchmark.SHAPE_LAYERS, benchmark.SHAPE_MODES)))
def test_both_sides_compute_the_same_in_every_call(layer, mode):
    """What a cell times is equal work: the reference and fastlstm return the same outputs and
    gradients from the same weights and inputs, and a second call the same as the first
    (stateless: no state carried into the next call)."""
    arguments = benchmark.shape_arguments(layer, np.random.default_rng(0), 2, 3, 8)
    results = {}
    for kit in (benchmark.ref, benchmark.fast):
        step = benchmark.shape_step(kit, layer, mode, arguments)
        first = [None if r is None else np.array(r) for r in step()]
        results[kit] = [None if r is None else np.array(r) for r in step()]
        for a, b in zip(first, results[kit], strict=True):
            np.testing.assert_array_equal(a, b)
    expected = 2 + len(arguments[0]) if mode == "train" else 1  # output, input gradient, weight gradients
    assert len(results[benchmark.ref]) == len(results[benchmark.fast]) == expected
    for want, got in zip(results[benchmark.ref], results[benchmark.fast]):
        if want is None:  # the embedding's input gradient
            assert got is None
        else:
            assert np.any(want != 0)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_shape_sweep_rows_table_and_csv(tmp_path):
    cells = benchmark.shape_cells(["RNN", "Embedding"], ["train", "eval"], [1, 2], [3], [4, 8])
    assert cells[:3] == [("RNN", "train", 1, 3, 4), ("RNN", "train", 1, 3, 8), ("RNN", "train", 2, 3, 4)]
    logged = []
    rows = benchmark.shape_sweep(cells, quick=True, rounds=1, log=logged.append)
    assert [tuple(r[k] for k in benchmark.SHAPE_COLUMNS[:5]) for r in rows] == cells
    assert len(logged) == len(cells) and logged[-1].startswith(f"[{len(cells)}/{len(cells)}] Embedding eval N=2 T=3")
    for r in rows:
        assert list(r) == list(benchmark.SHAPE_COLUMNS)
        assert r["numpy_s"] > 0 and r["fastlstm_s"] > 0
        assert r["ratio"] == pytest.approx(r["numpy_s"] / r["fastlstm_s"])  # one round: its own ratio
    text = benchmark.format_shapes(rows)
    for title in ("RNN train", "RNN eval", "Embedding train", "Embedding eval"):
        assert f"\n{title}: NumPy time / fastlstm time\n    N x T        4        8\n" in "\n" + text
    lowest = min(rows, key=lambda r: r["ratio"])
    assert f"lowest: {benchmark.describe_cell(lowest)}" in text
    assert f"cells below 1.0x: {sum(r['ratio'] < 1 for r in rows)} of {len(cells)}" in text
    path = tmp_path / "cells.csv"
    with open(path, "w", newline="") as f:
        benchmark.write_shapes_csv(rows, f)
    with open(path) as f:
        read = list(csv.DictReader(f))
    assert [(r["layer"], r["mode"], int(r["N"]), int(r["T"]), int(r["width"])) for r in read] == cells
    assert [float(r["ratio"]) for r in read] == [r["ratio"] for r in rows]


def test_a_cells_ratio_is_the_median_of_its_rounds(monkeypatch):
    """Rounds of NumPy 4, 9, 6 s against fastlstm 2, 1, 3 s: seconds are the medians (6, 2), the
    ratio the median of the rounds' 2, 9 and 2, not 6 / 2."""
    seconds = {"ref": iter([4.0, 9.0, 6.0]), "fast": iter([2.0, 1.0, 3.0])}
    monkeypatch.setattr(benchmark, "shape_step", lambda kit, *args: "ref" if kit is benchmark.ref else "fast")
    monkeypatch.setattr(benchmark, "alternating_rounds", lambda sides, rounds, min_time, rest: {
        kit: np.array([next(seconds[fn]) for _ in range(rounds)]) for kit, _, fn in sides})
    row = benchmark.shape_cell("Affine", "eval", 1, 1, 4, rounds=3, min_time=0)
    assert (row["numpy_s"], row["fastlstm_s"], row["ratio"]) == (6.0, 2.0, 2.0)


@pytest.mark.parametrize("grid, message", [
    ({"layers": ["LSTM", "Conv"]}, "layers must be some of LSTM, RNN"),
    ({"modes": ["test"]}, "modes must be some of train, eval, got test"),
    ({"ns": [2, 0]}, "N must be positive integers"),
    ({"widths": []}, "width must be positive integers"),
])
def test_shape_cells_refuse_a_bad_grid(grid, message):
    with pytest.raises(ValueError, match=message):
        benchmark.shape_cells(**grid)


def test_shapes_command(capsys, tmp_path):
    path = tmp_path / "cells.csv"
    benchmark.main(["shapes", "--layers", "Affine", "--mode", "eval", "--n", "1", "--t", "2", "--width", "4,8",
                    "--quick", "--repeat", "1", "--csv", str(path)])
    captured = capsys.readouterr()
    assert "1 threads, 2 cells; each the median of 1 paired rounds" in captured.out
    assert "Affine eval: NumPy time / fastlstm time" in captured.out and "sweep time:" in captured.out
    assert "[2/2] Affine eval N=1 T=2 width=8" in captured.err
    assert path.read_text().splitlines()[0] == ",".join(benchmark.SHAPE_COLUMNS)


@pytest.mark.parametrize("argv, message", [(["--n", "1,x"], "expected comma-separated integers"),
                                           (["--layers", "LSTM,Attention"], "layers must be some of"),
                                           (["--csv", "/nonexistent/folder/cells.csv"], "--csv: ")])
def test_shapes_command_refuses_a_bad_grid(capsys, argv, message):
    with pytest.raises(SystemExit):
        benchmark.main(["shapes", *argv])
    assert message in capsys.readouterr().err


def test_each_sides_round_follows_its_rest(monkeypatch):
    """With a rest, every timed round of every side comes right after a sleep of that length
    (another side's BLAS workers spin on after its calls); on one thread the cells ask none."""
    events = []
    monkeypatch.setattr(benchmark.time, "sleep", lambda s: events.append(("rest", s)))
    monkeypatch.setattr(benchmark, "timed_round", lambda fn, min_time: events.append(("time", fn())) or 1.0)
    sides = [("a", 1, lambda: "a"), ("b", 1, lambda: "b")]
    benchmark.alternating_rounds(sides, rounds=2, min_time=0, rest=0.25)
    timed = [i for i, event in enumerate(events) if event[0] == "time"]
    assert [events[i][1] for i in timed] == ["a", "b", "b", "a"]
    assert all(events[i - 1] == ("rest", 0.25) for i in timed)
    rests = []
    monkeypatch.setattr(benchmark, "alternating_rounds", lambda sides, rounds, min_time, rest: rests.append(rest) or {
        kit: np.ones(rounds) for kit, _, _ in sides})
    benchmark.shape_cell("Affine", "eval", 1, 1, 4, rounds=1, min_time=0)  # one thread (the module's fixture)
    assert rests == [0.0]
