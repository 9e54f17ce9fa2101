"""Work split over the cores by fastlstm's own threads ("lanes"), each running
single-threaded BLAS and serial kernels.

BLAS's own threads do not pay here. They do not speed up the small per-step products of
a recurrence (20 x 650 times 650 x 2600 ran no faster on two), and after a
multi-threaded call OpenBLAS's workers spin for a while, holding a core: a recurrence on
two lanes took 87 ms right after a two-thread product and 39 ms after a one-thread one.
So every product in the layers runs one block of the work per lane, as a single-threaded
BLAS call or a compiled loop (the recurrence's lanes meet once per step inside theirs:
fastlstm/recurrence.py).

The lanes other than the caller's own run on worker threads kept from call to call:
starting and joining a thread per call cost about 0.3 ms a call more here (0.69 against
0.40 ms for a call of two 0.18 ms lanes), 15 calls a BetterRnnlm training step. A worker
waits for its next block by spinning briefly (kernels/spin.py), then sleeps on an event;
the caller waits for the workers by spinning briefly, then resting.

One core of a shared machine runs slower at times, for hundreds of milliseconds (a
worker's blocks took 1.3 to 1.5x as long per row as the caller's, product after product,
then 1.0x again): lanes that split evenly then wait for the slow one. Work whose results
do not depend on where it is cut (at multiples of a quantum) is split instead by the
lanes' speeds, learnt from the products' blocks as they run (`run(..., quantum, follow,
learn)`).
"""

import os
import threading
import time
from collections import deque

import numpy as np

from fastlstm.kernels.spin import publish, wait_all
from fastlstm.threads import get_num_threads, single_threaded_blas

# Rounds a recurrence's lane spins waiting for the others (about 1 ms here, longer than a
# recurrence step) before it sleeps for a moment (REST seconds asked, 0.08 ms here) and
# spins again: when the thread it waits for has lost its core, or a virtual machine's host
# has taken the other CPU, a spinning lane would keep its own core busy for nothing; a
# sleeping one lets it go idle. Against a blocking barrier, a BetterRnnlm training step
# with the recurrence's spinning barrier and the fused SGD update ran 0.99x to 1.02x
# faster with 0.13 ms of spinning, 1.01x to 1.08x with 1 ms.
SPINS = 1 << 15
REST = 2e-5
# Rounds of the shorter spins (about 15 us): the caller's wait for the workers' blocks of a
# product, and a recurrence's lanes while another process holds a core
# (fastlstm/recurrence.py). There a spinning thread takes CPU time from the one it waits
# for: with a busy process beside it, a BetterRnnlm training step on two threads ran 1.2x
# faster than with 1 ms of spinning, evaluation 1.4x.
MIN_SPINS = 1 << 9
# Rounds a worker spins for its next block (about 0.06 ms) before it sleeps on an event:
# enough to catch a product that follows at once, short enough not to take a core from
# the Numba kernels the caller runs in between. Against a thread started per call, steps
# ran 1.01x to 1.02x faster (training) and 1.01x to 1.04x (evaluation); spinning 1 ms,
# 0.99x to 1.01x and 1.04x to 1.16x.
IDLE_SPINS = 1 << 11
# How far one product's measured lane speeds move the ones learnt before (on a log scale):
# a slow core's episode is followed within two or three products, 20 to 80 ms each in a
# BetterRnnlm step, while the ratio measured from one product to the next wanders by about
# 5% when nothing changes. A training step with 0.8 or 0.25 ran 0.994x and 0.986x as fast.
LEARNING = 0.5
# A lane's speed relative to the caller's stays within these, so that no lane's block
# shrinks below a third of the work of two lanes.
SPEED_BOUNDS = (0.5, 2.0)
# Lanes that took less than this tell little about their speeds.
MIN_LEARN_SECONDS = 1e-3


def rest():
    """Sleep for a moment between rounds of spinning."""
    time.sleep(REST)


def wait(progress, steps):
    """Wait until every lane's slot of `progress` holds `steps` or more (kernels/spin.py),
    spinning briefly and resting in turn, or its abort slot is set. The callers are at the
    end of a product, whose blocks can end milliseconds apart when one core is slower at
    the moment: a rest costs them nothing there."""
    while wait_all(progress, steps, MIN_SPINS) == 0:
        rest()


def lane_count(items, min_items):
    """Lanes for `items` units of work (rows, hidden units): one per thread of the thread
    setting, each with at least `min_items`."""
    return max(1, min(get_num_threads(), items // min_items))


def blocks(items, lanes, quantum=None, follow=False):
    """[(i0, i1), ...]: `lanes` contiguous blocks of range(items), as even as can be, or with
    `follow`, sized to the lanes' speeds learnt so far; with `quantum`, every cut at a
    multiple of it and every block at least that long (when items are enough)."""
    if quantum is None or items < lanes * quantum:
        edges = [items * k // lanes for k in range(lanes + 1)]
    else:  # edges counted in quanta; the last block takes the rest
        shares, quanta = np.cumsum(_speeds(lanes) if follow else [1.0] * lanes), items // quantum
        edges = [0] + [int(round(items * share / shares[-1] / quantum)) for share in shares[:-1]]
        for k in range(1, lanes):  # keep a quantum for every block, before and after
            edges[k] = min(max(edges[k], edges[k - 1] + 1), quanta - (lanes - k))
        edges = [e * quantum for e in edges] + [items]
    return list(zip(edges[:-1], edges[1:]))


def run(lane, items, lanes, quantum=None, follow=False, learn=False):
    """lane(k, i0, i1) for each block k of range(items), with single-threaded BLAS: the
    first block on this thread, the others on the pool's workers (or, when another thread
    is using the pool, on threads of their own). Returns when all are done; an exception
    in any lane is raised here, once all lanes have stopped.

    With `quantum`, the cuts fall at multiples of it, and with `follow` too, the blocks
    follow the lanes' speeds (for work whose results do not depend on such cuts); with
    `learn`, the lanes' times update the speeds (for work the lanes do apart: not a
    recurrence, whose lanes wait for each other).
    """
    with single_threaded_blas():
        if lanes == 1:
            lane(0, 0, items)
            return
        spans = blocks(items, lanes, quantum, follow)
        if _pool.lock.acquire(blocking=False):
            try:
                seconds = _run_on_workers(lane, spans, _pool.workers(len(spans) - 1))
                if learn:
                    _learn(spans, seconds)
            finally:
                _pool.lock.release()
        else:
            _run_threads(lane, spans)


_speed = [1.0]  # each lane's speed relative to the caller's (lane 0), learnt by products


def _speeds(lanes):
    """The first `lanes` speeds, lanes not seen before at 1."""
    _speed.extend([1.0] * (lanes - len(_speed)))
    return _speed[:lanes]


def _learn(spans, seconds):
    """Move the lanes' speeds towards the items per second their blocks just ran at."""
    if seconds.min() < MIN_LEARN_SECONDS:
        return
    rates = [(i1 - i0) / s for (i0, i1), s in zip(spans, seconds)]
    low, high = SPEED_BOUNDS
    for k, speed in enumerate(_speeds(len(spans))[1:], start=1):
        _speed[k] = min(high, max(low, speed ** (1 - LEARNING) * (rates[k] / rates[0]) ** LEARNING))


class _Worker(threading.Thread):
    """A lane's thread that runs the blocks posted to it in turn; each block's `progress`
    slot is set once the block is done."""

    def __init__(self, k):
        super().__init__(name=f"fastlstm-lane{k}", daemon=True)
        self._posted = np.zeros(2, dtype=np.int64)  # blocks posted, and an abort slot never set
        self._tasks = deque()
        self._wake = threading.Event()
        self.start()

    def post(self, task):
        """task = (lane, k, i0, i1, progress, seconds, errors)."""
        self._tasks.append(task)
        publish(self._posted, 0, self._posted[0] + 1)
        self._wake.set()

    def run(self):
        taken = 0
        while True:
            if wait_all(self._posted, taken + 1, IDLE_SPINS) != 1:
                self._wake.wait()
                self._wake.clear()
                continue
            taken += 1
            lane, k, i0, i1, progress, seconds, errors = self._tasks.popleft()
            seconds[k] = _attempt(lane, k, i0, i1, errors)
            publish(progress, k, 1)


class _Pool:
    """The workers, made as they are first needed, anew in a process forked from this one."""

    def __init__(self):
        self._pid = None
        self._workers = []
        self.lock = threading.Lock()

    def workers(self, n):
        if self._pid != os.getpid():  # a fork copies no threads
            self._pid, self._workers = os.getpid(), []
        while len(self._workers) < n:
            self._workers.append(_Worker(len(self._workers) + 1))
        return self._workers[:n]


_pool = _Pool()


def _attempt(lane, k, i0, i1, errors):
    """lane(k, i0, i1), its exception appended to `errors`: the caller raises it once every
    lane has stopped. Returns the seconds it took."""
    start = time.perf_counter()
    try:
        lane(k, i0, i1)
    except BaseException as e:
        errors.append(e)
    return time.perf_counter() - start


def _run_on_workers(lane, spans, workers):
    """Returns each lane's seconds."""
    progress = np.zeros(len(spans) + 1, dtype=np.int64)
    seconds = np.zeros(len(spans))
    errors = []
    for worker, (k, (i0, i1)) in zip(workers, enumerate(spans[1:], start=1)):
        worker.post((lane, k, i0, i1, progress, seconds, errors))
    seconds[0] = _attempt(lane, 0, *spans[0], errors)
    publish(progress, 0, 1)
    wait(progress, 1)
    if errors:
        raise errors[0]
    return seconds


def _run_threads(lane, spans):
    errors = []
    threads = [threading.Thread(target=_attempt, args=(lane, k, i0, i1, errors), name=f"fastlstm-lane{k}", daemon=True)
               for k, (i0, i1) in enumerate(spans) if k > 0]
    for thread in threads:
        thread.start()
    _attempt(lane, 0, *spans[0], errors)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
