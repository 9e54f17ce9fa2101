"""Work split over lanes (fastlstm/lanes.py): matrix products by rows (equal to NumPy's
to rounding; cut by the lanes' speeds, the whole product's bits), the LSTM recurrence by
hidden units (the single lane's result bit for bit, in float32 and float64, however the
units are cut); odd sizes leave uneven blocks; the lanes' speeds are learnt from the
products; an exception in any lane reaches the caller. Each test runs on lanes of its own
(fastlstm.lanes.Lanes), with the lane count, speeds and tuning it needs."""

import os
import threading
import time
import tracemalloc

import numpy as np
import pytest

from fastlstm import blas, recurrence
from fastlstm.kernels.linalg import add_to_rows
from fastlstm.lanes import Lanes
from fastlstm.recurrence import backward_steps, forward_steps
from fastlstm.threads import single_threaded_blas
from fastlstm.workspace import Workspace, fresh


@pytest.fixture
def many_lanes():
    """Lanes that split even tiny products over 3 lanes, whatever the machine's core count."""
    return Lanes(threads=3, min_rows=1, min_work=1)


def test_blocks_cover_the_range_evenly():
    lanes = Lanes()
    assert lanes.blocks(13, 3) == [(0, 4), (4, 8), (8, 13)]
    assert lanes.blocks(1, 1) == [(0, 1)]
    for items, n in [(650, 2), (17, 5), (5, 5)]:
        spans = lanes.blocks(items, n)
        assert spans[0][0] == 0 and spans[-1][1] == items
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert max(j1 - j0 for j0, j1 in spans) - min(j1 - j0 for j0, j1 in spans) <= 1


def test_the_default_lanes_start_at_equal_speeds_and_the_thread_setting():
    from fastlstm import lanes, threads
    default = lanes.default()
    assert default is lanes.default() and default.threads is None and Lanes().speeds == [1.0]
    assert default.count(10**6, 1) == threads.get_num_threads()
    assert Lanes(threads=3).count(10**6, 1) == 3 and Lanes(threads=3).count(650, 300) == 2


def test_blocks_follow_the_lanes_speeds_at_multiples_of_the_quantum():
    lanes = Lanes()
    speeds = lanes.speeds
    speeds[:] = [1.0, 0.5]
    assert lanes.blocks(700, 2, 12, follow=True) == [(0, 468), (468, 700)]  # 466.7 rounded to 12s
    speeds[:] = [1.0, 2.0]
    assert lanes.blocks(700, 2, 12, follow=True) == [(0, 228), (228, 700)]
    assert lanes.blocks(700, 2, 12) == [(0, 348), (348, 700)]  # not following: even, in 12s
    assert lanes.blocks(700, 2) == [(0, 350), (350, 700)]  # no quantum: even
    assert lanes.blocks(20, 2, 12, follow=True) == [(0, 10), (10, 20)]  # too few items for 12s
    speeds[:] = [1.0, 2.0, 0.5]
    for items in (36, 37, 100, 650):
        spans = lanes.blocks(items, 3, 12, follow=True)
        assert spans[0][0] == 0 and spans[-1][1] == items
        assert all(a[1] == b[0] and a[1] % 12 == 0 for a, b in zip(spans, spans[1:]))
        assert all(i1 - i0 >= 12 for i0, i1 in spans)
    assert lanes.blocks(650, 3, 12, follow=True) == [(0, 180), (180, 552), (552, 650)]


def test_the_lanes_learn_their_speeds_from_their_times():
    lanes = Lanes()
    speeds = lanes.speeds
    spans = [(0, 300), (300, 600)]
    lanes._learn(spans, np.array([0.010, 0.020]))  # the worker took twice as long a row
    assert speeds[1] == pytest.approx(0.5 ** lanes.learning)
    for _ in range(20):
        lanes._learn(spans, np.array([0.010, 0.040]))
    assert speeds[1] == lanes.speed_bounds[0]
    lanes._learn(spans, np.array([0.010, lanes.min_learn_seconds / 2]))  # too short to tell
    assert speeds[1] == lanes.speed_bounds[0]
    assert Lanes().speeds == [1.0]  # lanes learn their own speeds


def test_a_slower_lane_gets_fewer_items():
    """A lane that takes twice as long per item: after a few calls its block is the smaller,
    as long as the calls learn; calls that do not learn follow what was learnt."""
    taken = {}
    lanes = Lanes()
    speeds = lanes.speeds

    def lane(k, i0, i1):
        taken[k] = i1 - i0
        time.sleep((i1 - i0) * (4e-5 if k else 2e-5))

    lanes.run(lane, 240, 2, quantum=12, follow=True)
    assert taken == {0: 120, 1: 120}
    for _ in range(6):
        lanes.run(lane, 240, 2, quantum=12, follow=True, learn=True)
    assert taken[1] < 0.45 * 240
    learnt = list(speeds)
    lanes.run(lane, 240, 2, quantum=12, follow=True)
    assert speeds == learnt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lane_speeds", [[1.0, 0.5], [1.0, 2.0], [1.0, 0.6, 1.7]])
def test_products_cut_by_the_lanes_speeds_are_the_whole_products_bits(dtype, lane_speeds):
    """Cut at multiples of row_quantum, each lane's block is the whole product's rows to
    the bit: plain, into a transposed output (tn_product), with a bias and beside another
    product. Where this BLAS has no such quantum, the lanes split evenly (and round as BLAS
    does by blocks)."""
    lanes = Lanes(threads=len(lane_speeds), learning=0.0, speeds=list(lane_speeds))  # every call cuts by lane_speeds
    rng = np.random.default_rng(6)
    a, b, c, bias = (rng.standard_normal(shape).astype(dtype) for shape in [(613, 256), (256, 1024), (613, 1024), (1024,)])
    with single_threaded_blas():
        whole = {"dot": np.matmul(a, b), "C": np.matmul(a.T, c), "F": np.matmul(c.T, a).T}
    add_to_rows(with_bias := whole["dot"].copy(), bias)
    check = np.testing.assert_array_equal
    if blas.row_quantum(np.dtype(dtype)) is None:
        check = lambda got, want: np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)  # noqa: E731
    check(blas.dot(a, b, lanes=lanes), whole["dot"])
    check(blas.dot(a, b, bias=bias, lanes=lanes), with_bias)
    for order in "CF":
        out = np.zeros((256, 1024), dtype, order=order)
        blas.dots(blas.tn_product(a, c, out), lanes=lanes)
        check(out, whole[order])
        out[...], dx = 0, np.zeros((613, 256), dtype)  # a weight gradient and an input gradient together
        blas.dots(blas.tn_product(a, c, out), (c, b.T, dx), lanes=lanes)
        check(out, whole[order])
        with single_threaded_blas():
            check(dx, np.matmul(c, b.T))


def test_only_large_products_follow_the_lanes_speeds(monkeypatch):
    """Below 4 x FOLLOW_WORK multiply-adds a lane, BLAS might round a block unlike the whole
    product, so the split stays even (at multiples of the quantum)."""
    lanes = Lanes(threads=2)
    calls = []
    blocks = lanes.blocks
    monkeypatch.setattr(lanes, "blocks", lambda items, n, quantum, follow: calls.append((quantum, follow))
                        or blocks(items, n, quantum, follow))
    rng = np.random.default_rng(7)
    small = rng.standard_normal((300, 100)).astype(np.float32)  # 9 million multiply-adds in all
    large = rng.standard_normal((700, 650)).astype(np.float32)
    blas.dot(small, small.T, lanes=lanes)
    blas.dot(large, large.T, lanes=lanes)
    quantum = blas.row_quantum(np.dtype(np.float32))
    assert calls == [(quantum, False), (quantum, True)]


@pytest.mark.parametrize("M,K,P", [(1, 5, 7), (3, 1, 1), (17, 13, 29), (100, 33, 3)])
def test_dot_split_by_rows_matches_numpy(many_lanes, M, K, P):
    rng = np.random.default_rng(M * K * P)
    a, b = rng.standard_normal((M, K)), rng.standard_normal((K, P))
    np.testing.assert_allclose(blas.dot(a, b, lanes=many_lanes), np.dot(a, b), rtol=1e-13, atol=1e-13)
    out = np.full((M, P), np.nan)
    assert blas.dot(a, b, out=out, lanes=many_lanes) is out
    np.testing.assert_allclose(out, np.dot(a, b), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("rows", [(17, 29), (29, 17), (1, 40), (40, 1), (0, 5), (3, 3)])
def test_dots_split_products_of_any_rows_together(many_lanes, rows):
    """Each lane takes the same share of every product's rows; together they cover each
    product once, whatever the row counts."""
    rng = np.random.default_rng(sum(rows))
    products = [(rng.standard_normal((M, 13)), rng.standard_normal((13, 7 + k)), np.full((M, 7 + k), np.nan))
                for k, M in enumerate(rows)]
    blas.dots(*products, lanes=many_lanes)
    for a, b, out in products:
        np.testing.assert_allclose(out, a @ b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dot_adds_the_bias_to_every_row(many_lanes, dtype):
    rng = np.random.default_rng(5)
    a, b, bias = rng.standard_normal((17, 13)), rng.standard_normal((13, 29)), rng.standard_normal(29)
    a, b, bias = a.astype(dtype), b.astype(dtype), bias.astype(dtype)
    out = np.full((17, 29), np.nan, dtype)
    blas.dot(a, b, out=out, bias=bias, lanes=many_lanes)
    want = blas.dot(a, b, lanes=many_lanes)  # split the same way: BLAS rounds a block of rows as it does alone
    want += bias
    np.testing.assert_array_equal(out, want)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b + bias, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"bias must have shape \(29,\)"):
        blas.dot(a, b, bias=bias[:5], lanes=many_lanes)


def test_affine_refuses_a_bias_replaced_by_one_of_another_width():
    from fastlstm.layers import Affine
    layer = Affine(np.ones((3, 4), np.float32), np.zeros(4, np.float32))
    layer.params[1] = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="bias must have shape"):
        layer.forward(np.ones((5, 3), np.float32))


@pytest.mark.parametrize("order", ["C", "F"])
def test_transposed_product_split_by_rows(many_lanes, order):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((29, 13)), rng.standard_normal((29, 17))
    out = np.zeros((13, 17), order=order)
    blas.dots(blas.tn_product(a, b, out), lanes=many_lanes)
    np.testing.assert_allclose(out, a.T @ b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("order", ["C", "F"])
def test_transposed_product_copies_no_block_of_the_transposed_operand(many_lanes, order):
    """Each lane's rows of a.T (neither C- nor F-contiguous) go to BLAS as they are."""
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((400, 300)), rng.standard_normal((400, 200))
    out = np.zeros((300, 200), order=order)
    blas.dots(blas.tn_product(a, b, out), lanes=many_lanes)  # first calls allocate (threads, BLAS handles)
    tracemalloc.start()
    try:
        blas.dots(blas.tn_product(a, b, out), lanes=many_lanes)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # a lane's block of a.T or b.T is 300 KiB or more
    np.testing.assert_allclose(out, a.T @ b, rtol=1e-13, atol=1e-13)


def _lstm_case(N, T, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    gates = rng.standard_normal((T, N, 4 * H)).astype(dtype)
    Wh = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(dtype)
    b = rng.standard_normal(4 * H).astype(dtype)
    h0, c0 = rng.standard_normal((2, N, H)).astype(dtype)
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    return gates, Wh, b, h0, c0, dhs


def _run_recurrence(case, lanes, empty=fresh):
    """The recurrence forward and backward on `lanes`: a Lanes, or a lane count for lanes
    that split even a few units."""
    if isinstance(lanes, int):
        lanes = Lanes(threads=lanes, min_units=1, min_step_work=0)
    gates, Wh, b, h0, c0, dhs = case
    T, N, G = gates.shape
    H = G // 4
    gates = gates.copy()
    hs = np.zeros((T + 1, N, H), gates.dtype)
    cs = np.zeros((T + 1, N, H), gates.dtype)
    hs[0], cs[0] = h0, c0
    tanh_cs = np.zeros((T, N, H), gates.dtype)
    out = np.full((N, T, H), np.nan, gates.dtype)
    inputs = np.full((T, N, H + 3), np.nan, gates.dtype)  # h_t beside a 3-wide x_t, as TimeLSTM lays them
    hs_inputs = inputs[:, :, 3:]
    hs_inputs[0] = h0
    forward_steps(gates, hs, cs, tanh_cs, out, hs_inputs, Wh, b, lanes, empty)
    dA = np.full(gates.shape, np.nan, gates.dtype)
    dh = np.full((N, H), np.nan, gates.dtype)
    db = np.full(G, np.nan, gates.dtype)
    backward_steps(gates, cs, tanh_cs, dhs, Wh, dA, dh, db, lanes)
    return gates, hs, cs, tanh_cs, dA, dh, db, out, inputs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N,T,H,n_lanes", [(1, 1, 13, 3), (3, 7, 17, 2), (2, 5, 13, 5), (4, 6, 33, 3), (20, 4, 650, 2)])
@pytest.mark.parametrize("lane_speeds", [[1.0], [1.0, 0.5, 2.0, 0.7, 1.6]], ids=["even", "by-speed"])
def test_recurrence_over_lanes_is_the_single_lanes_bit_for_bit(N, T, H, n_lanes, dtype, lane_speeds):
    case = _lstm_case(N, T, H, dtype)
    one = _run_recurrence(case, 1)
    many = _run_recurrence(case, Lanes(threads=n_lanes, min_units=1, min_step_work=0, speeds=list(lane_speeds)))
    for want, got in zip(one, many):
        np.testing.assert_array_equal(got, want)
    hs, dA, db, out, inputs = many[1], many[4], many[6], many[7], many[8]
    np.testing.assert_array_equal(out, hs[1:].transpose(1, 0, 2))
    np.testing.assert_array_equal(inputs[:, :, 3:], hs[:T])
    assert np.isnan(inputs[:, :, :3]).all()  # the lanes write h only
    np.testing.assert_allclose(db, dA.sum(axis=(0, 1), dtype=np.float64), rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)


def test_recurrence_lanes_reuse_a_workspace():
    case = _lstm_case(2, 3, 13, np.float64)
    ws = Workspace()
    first = _run_recurrence(case, 2, ws.empty)
    kept = dict(ws._arrays)
    second = _run_recurrence(case, 2, ws.empty)
    assert set(kept) == {f"{name}{k}" for name in ("Wh_packed", "edge_lane", "hA_lane") for k in (0, 1)}
    assert all(ws._arrays[k] is v for k, v in kept.items())
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("failing", [0, 1, 2])
def test_an_exception_in_any_lane_reaches_the_caller_after_the_others_finish(failing):
    finished = []

    def lane(k, i0, i1):
        if k == failing:
            raise KeyError(f"lane {k}")
        finished.append(k)

    lanes = Lanes()
    with pytest.raises(KeyError, match=f"lane {failing}"):
        lanes.run(lane, 9, 3)
    assert sorted(finished) == [k for k in range(3) if k != failing]
    finished.clear()
    failing = None
    lanes.run(lane, 9, 3)  # the workers took no harm
    assert sorted(finished) == [0, 1, 2]


def test_workers_are_kept_from_call_to_call():
    threads, lanes = [], Lanes()
    record = lambda k, i0, i1: threads.append((k, threading.current_thread()))  # noqa: E731
    lanes.run(record, 6, 3)
    first = dict(threads)
    threads.clear()
    lanes.run(record, 6, 3)
    assert dict(threads) == first
    assert first[0] is threading.current_thread() and len(set(first.values())) == 3
    threads.clear()
    Lanes().run(record, 6, 3)
    assert {t for k, t in threads if k}.isdisjoint([first[1], first[2]])  # other lanes, other workers


def test_calls_from_two_threads_at_once_both_complete():
    """One uses the pool, the other, finding it busy, threads of its own."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 100))
    results, start, lanes = {}, threading.Barrier(2), Lanes(threads=2)

    def caller(name):
        start.wait()
        results[name] = [blas.dot(a, b, lanes=lanes) for _ in range(20)]

    callers = [threading.Thread(target=caller, args=(name,)) for name in "xy"]
    for t in callers:
        t.start()
    for t in callers:
        t.join(timeout=60)
    for name in "xy":
        for got in results[name]:
            np.testing.assert_allclose(got, a @ b, rtol=1e-13, atol=1e-12)


def test_a_forked_process_makes_its_own_workers(many_lanes):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((30, 20)), rng.standard_normal((20, 10))
    blas.dot(a, b, lanes=many_lanes)  # the parent's workers exist before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its copies of the parent's workers are not running
        ok = np.allclose(blas.dot(a, b, lanes=many_lanes), a @ b)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and status == 0


def test_recurrence_lanes_that_rest_and_resume_agree_bit_for_bit(monkeypatch):
    """With one spin per wait, nearly every barrier sends a lane back to rest and resume;
    4 lanes on fewer cores make them wait for each other often."""
    lanes = Lanes(threads=4, min_units=1, min_step_work=0, spins=1)
    rests = []
    monkeypatch.setattr(lanes, "rest", lambda: rests.append(1))
    case = _lstm_case(3, 9, 33, np.float32)
    one = _run_recurrence(case, 1)
    many = _run_recurrence(case, lanes)
    assert rests
    for want, got in zip(one, many):
        np.testing.assert_array_equal(got, want)


def test_a_wait_that_runs_out_twice_makes_the_next_rests_come_sooner(monkeypatch):
    """One wait running out keeps the full spins; the same wait running out again (the lane
    it waits for is off its core) makes the next CHEAP_RESTS rests come after MIN_SPINS."""
    lanes = Lanes(cheap_rests=3)
    monkeypatch.setattr(lanes, "rest", lambda: None)
    lanes.recurrence_rest(again=False)
    assert lanes.recurrence_spins() == lanes.spins
    lanes.recurrence_rest(again=True)
    spins = []
    for _ in range(4):
        spins.append(lanes.recurrence_spins())
        lanes.recurrence_rest(again=False)
    assert spins == [lanes.min_spins] * 3 + [lanes.spins]
    assert Lanes().recurrence_spins() == lanes.spins  # lanes keep their own policy


def test_lanes_whose_peer_starts_late_spin_less_and_agree_bit_for_bit(monkeypatch):
    """A lane that starts 50 ms late, as when another process holds its core, makes the
    others' wait for it run out of spins again and again: they switch to the short spins,
    and the results stay the single lane's."""
    lanes = Lanes(threads=3, min_units=1, min_step_work=0)
    case = _lstm_case(3, 5, 33, np.float32)
    one = _run_recurrence(case, 1)
    real_pack, real_spins = recurrence.pack, lanes.recurrence_spins

    def pack(b, p, **kwargs):
        if threading.current_thread().name == "fastlstm-lane1":
            time.sleep(0.05)
        real_pack(b, p, **kwargs)

    spins = []

    def spins_now():
        spins.append(real_spins())
        return spins[-1]

    monkeypatch.setattr(recurrence, "pack", pack)
    monkeypatch.setattr(lanes, "recurrence_spins", spins_now)
    many = _run_recurrence(case, lanes)
    assert spins[0] == lanes.spins and lanes.min_spins in spins
    for want, got in zip(one, many):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("failing", [0, 1, 2])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_a_recurrence_lane_that_fails_stops_the_others_waiting(monkeypatch, failing, direction):
    """A lane that fails before its loop marks the run aborted: the others, spinning at the
    first barrier, stop instead of waiting for it forever, and the error reaches the caller."""
    real_pack = recurrence.pack

    def pack(b, p, **kwargs):
        name = threading.current_thread().name  # lane 0 runs on the caller's thread
        lane = int(name[len("fastlstm-lane"):]) if name.startswith("fastlstm-lane") else 0
        backward = "starts" not in kwargs
        if lane == failing and backward == (direction == "backward"):
            raise MemoryError(f"lane {failing}")
        real_pack(b, p, **kwargs)

    monkeypatch.setattr(recurrence, "pack", pack)
    case = _lstm_case(2, 6, 30, np.float64)
    raised = []

    def run():
        try:
            _run_recurrence(case, 3)
        except MemoryError as e:
            raised.append(e)

    caller = threading.Thread(target=run, daemon=True)  # a lane left waiting would hang the test
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive(), "the other lanes kept waiting for the failed one"
    assert [str(e) for e in raised] == [f"lane {failing}"]
    monkeypatch.setattr(recurrence, "pack", real_pack)
    for want, got in zip(_run_recurrence(case, 1), _run_recurrence(case, 3)):  # the lanes took no harm
        np.testing.assert_array_equal(got, want)


def test_an_lstm_layer_runs_on_the_lanes_it_holds(monkeypatch):
    """Its input product, recurrences and gradient products, and nothing on the default lanes."""
    from fastlstm import lanes
    from fastlstm.time_layers import TimeLSTM
    rng = np.random.default_rng(8)
    layer = TimeLSTM(*(rng.standard_normal(shape) for shape in [(5, 4 * 13), (13, 4 * 13), (4 * 13,)]))
    assert layer.lanes is lanes.default()
    layer.lanes, calls = Lanes(threads=2, min_units=1, min_step_work=0, min_rows=1, min_work=1), []

    def recording(real, name):
        def run(*args, **kwargs):
            calls.append(name)
            real(*args, **kwargs)
        return run

    for runtime, name in [(layer.lanes, "own"), (lanes.default(), "default")]:
        for method in ("run", "run_products"):  # Python blocks, compiled product blocks
            monkeypatch.setattr(runtime, method, recording(getattr(runtime, method), name))
    layer.backward(layer.forward(rng.standard_normal((3, 4, 5))))
    assert calls == ["own"] * 4  # x @ Wx, forward steps, backward steps, the gradients' products


def test_a_copied_layer_shares_its_lanes_and_a_pickled_one_keeps_their_settings():
    import copy
    import pickle

    from fastlstm import lanes
    from fastlstm.time_layers import TimeLSTM
    layer = TimeLSTM(np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8))
    assert copy.deepcopy(layer).lanes is lanes.default()
    assert pickle.loads(pickle.dumps(layer)).lanes is lanes.default()
    own = layer.lanes = Lanes(threads=1, speeds=[1.0, 0.7], min_units=64, min_step_work=0)
    assert copy.deepcopy(layer).lanes is own
    loaded = pickle.loads(pickle.dumps(layer)).lanes
    assert loaded is not own and (loaded.threads, loaded.speeds, loaded.min_units) == (1, [1.0, 0.7], 64)
    loaded.run(lambda k, i0, i1: None, 4, 2)  # with workers of its own


def test_a_recurrence_takes_a_lane_per_share_of_enough_units_and_work():
    lanes = Lanes(threads=4, min_units=128, min_step_work=1 << 21, min_call_steps=8)
    assert lanes.recurrence_count(650, 20 * 650 * 4, 35) == 4  # BetterRnnlm's training: 162 units, 2.1M a step each
    assert lanes.recurrence_count(650, 1 * 650 * 4, 35) == 1  # one sequence: a lane's step too small to share
    assert lanes.recurrence_count(100, 20 * 100 * 4, 35) == 1  # Rnnlm: too few units
    assert lanes.recurrence_count(256, 10 * 256 * 4, 35) == 1  # 256 units x 10 rows: 2.6M a step in all
    assert lanes.recurrence_count(256, 64 * 256 * 4, 35) == 2
    assert lanes.recurrence_count(256, 16 * 256 * 4, 35) == 2  # 2.1M a step each
    assert lanes.recurrence_count(256, 16 * 256 * 4, 4) == 1  # the same over 4 steps: half a call's 16.8M
    assert lanes.recurrence_count(650, 20 * 650 * 4, 1) == 2  # one step: 16.9M for each of two lanes, not four
    assert lanes.recurrence_count(650, 80 * 650 * 4, 1) == 4
