"""Work split over the cores by fastlstm's own threads ("lanes"), each running
single-threaded BLAS and serial kernels.

BLAS's own threads do not pay here: they do not speed up the small per-step products of
a recurrence, and after a multi-threaded call OpenBLAS's workers spin for a while,
holding a core that the next kernel wants. So every product in the layers runs one block
of the work per lane, as a single-threaded BLAS call or a compiled loop (the
recurrence's lanes meet once per step inside theirs: fastlstm/recurrence.py).

A `Lanes` object holds all that steers the split and its timing:
- the worker threads, kept from call to call (a thread started per call costs more than
  a small product's block); a worker waits for its next block by spinning briefly in
  compiled code (kernels/blas_calls.serve), runs a product's block there and any other
  block in Python, then sleeps on an event; a woken worker is kept off its caller's CPU;
  the caller waits for the workers by spinning briefly, then resting;
- the lanes' speeds: one core of a shared machine runs slower at times, for hundreds of
  milliseconds, and lanes that split evenly then wait for the slow one; so work whose
  results do not depend on where it is cut (at multiples of a quantum) is split by the
  lanes' speeds, learnt from the products' blocks as they run (`run(..., quantum,
  follow, learn)`);
- the recurrence's rest policy (spin long, or short while another process holds a core);
- the tuning constants, as fields with their defaults.
The layers run on `default()`, the process's lanes, unless given others; tests make
their own.
"""

import ctypes
import functools
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from itertools import accumulate

import numba
import numpy as np

from fastlstm.kernels import blas_calls
from fastlstm.kernels.spin import publish, wait_all, wait_first
from fastlstm.threads import get_num_threads, single_threaded_blas


@dataclass(eq=False)
class Lanes:
    """The lanes' workers, learnt speeds, rest policy and tuning. A copy of a layer shares its
    lanes; a pickled one is loaded with the same settings and speeds (the process's default
    lanes: with the loading process's)."""

    # Lanes at most; None: as many as the thread setting (fastlstm.threads) allows.
    threads: int | None = None
    # Each lane's speed relative to the caller's (lane 0), learnt by products; lanes not seen yet run at 1.
    speeds: list = field(default_factory=lambda: [1.0])
    # Rounds a recurrence's lane spins waiting for the others (longer than a step) before it rests:
    # when the lane it waits for has lost its core, spinning would keep its own core busy for nothing.
    spins: int = 1 << 15
    # Seconds a rest asks to sleep.
    rest_seconds: float = 2e-5
    # Rounds of the short spins: a recurrence's lanes while another process holds a core, where a spinning
    # thread takes time from the one it waits for.
    min_spins: int = 1 << 9
    # Rounds the caller spins for the workers' blocks of a product before each rest: about as long as
    # blocks cut alike end apart, since a rest asks for far less than the sleep the OS grants.
    product_spins: int = 1 << 12
    # A recurrence's wait that runs out of `spins` twice (another process runs where the lane it waits for
    # should) makes the lanes' next `cheap_rests` rests come after `min_spins` rounds.
    cheap_rests: int = 256
    # Rounds a worker spins for its next block before it sleeps: enough to catch a product that follows at
    # once, short enough not to take a core from the kernels the caller runs in between.
    idle_spins: int = 1 << 11
    # How far one product's measured speeds move the learnt ones (on a log scale): far enough to follow a
    # slow core within a few products, not so far that the products' jitter moves the cuts.
    learning: float = 0.5
    # A lane's speed relative to the caller's stays within these, so that no lane's block shrinks below a
    # third of the work of two lanes.
    speed_bounds: tuple = (0.5, 2.0)
    # Lanes that took less than this tell little about their speeds.
    min_learn_seconds: float = 1e-3
    # Fewest hidden units per recurrence lane, and fewest multiply-adds of a lane's share of a step's product
    # (N x H x gates x its units): below either, a barrier per step costs more than the lane saves; and a
    # share of a call of T steps at least min_call_steps x min_step_work, since a call's hand-off to the
    # workers costs as much as several steps' barriers (scripts/recurrence_lanes.py measures where a second
    # lane starts to pay).
    min_units: int = 64
    min_step_work: int = 1 << 20
    min_call_steps: int = 8
    # A lane's share of a product: at least this many rows and multiply-adds, below which handing it to a
    # worker costs more than the lane saves.
    min_rows: int = 16
    min_work: int = 1 << 21
    # A lane's share of a one-row product (text generation), in multiply-adds: bound by reading the
    # weights, each multiply-add costs a weight's load, so a smaller share than min_work pays.
    min_row_work: int = 1 << 20
    # Fewest items (the elements a call reads or writes) that a kernel's parallel loops share over Numba's
    # threads; below, its serial twin runs on the caller's thread, since a hand-off to the other threads
    # (waking them) costs more than they save (scripts/parallel_threshold.py measures where they start to pay).
    min_parallel_items: int = 1 << 18
    _pool: "_Pool" = field(default_factory=lambda: _Pool(), init=False, repr=False)
    _cheap_left: int = field(default=0, init=False, repr=False)  # rests left to come after min_spins

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __reduce__(self):
        if self is _DEFAULT:
            return default, ()
        return type(self), tuple(getattr(self, f.name) for f in fields(self) if f.init)

    def count(self, items, min_items):
        """Lanes for `items` units of work (rows, hidden units), each with at least `min_items`."""
        if items < 2 * min_items:  # one lane whatever the threads: no look-up of their count
            return 1
        threads = get_num_threads() if self.threads is None else self.threads
        return max(1, min(threads, items // min_items))

    def recurrence_count(self, units, unit_work, steps):
        """Lanes for a recurrence of `steps` steps over `units` hidden units, each taking
        `unit_work` multiply-adds a step: each lane at least min_units units, min_step_work
        multiply-adds a step and min_call_steps x min_step_work over the steps."""
        work = max(self.min_step_work, -(-self.min_call_steps * self.min_step_work // max(1, steps)))
        return self.count(units, max(self.min_units, -(-work // max(1, unit_work))))

    def loop(self, kernel, items):
        """`kernel` (kernels/parallel.py) for a call on `items` items: its parallel loops where they
        are enough to share (items times the kernel's cost) and Numba has threads to share them,
        else its serial twin."""
        if items * kernel.cost < self.min_parallel_items or get_num_threads() == 1:
            return kernel.serial
        return kernel

    def blocks(self, items, lanes, quantum=None, follow=False):
        """[(i0, i1), ...]: `lanes` contiguous blocks of range(items), as even as can be, or with
        `follow`, sized to the lanes' speeds learnt so far; with `quantum`, every cut at a
        multiple of it and every block at least that long (when items are enough)."""
        if quantum is None or items < lanes * quantum:
            edges = [items * k // lanes for k in range(lanes + 1)]
        else:  # edges counted in quanta; the last block takes the rest
            shares, quanta = list(accumulate(self._speeds(lanes) if follow else [1.0] * lanes)), items // quantum
            edges = [0] + [int(round(items * share / shares[-1] / quantum)) for share in shares[:-1]]
            for k in range(1, lanes):  # keep a quantum for every block, before and after
                edges[k] = min(max(edges[k], edges[k - 1] + 1), quanta - (lanes - k))
            edges = [e * quantum for e in edges] + [items]
        return list(zip(edges[:-1], edges[1:]))

    def run(self, lane, items, lanes, quantum=None, follow=False, learn=False):
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
            spans = self.blocks(items, lanes, quantum, follow)
            if self._pool.lock.acquire(blocking=False):
                try:
                    seconds = self._run_on_workers(lane, spans, self._pool.workers(len(spans) - 1, self))
                    if learn:
                        self._learn(spans, seconds)
                finally:
                    self._pool.lock.release()
            else:
                _run_threads(lane, spans)

    def run_products(self, blocks, count, spans):
        """Each lane k runs the first `count` product blocks of blocks[k] (kernels/blas_calls.py)
        in compiled code, the first lane on this thread, with single-threaded BLAS; their times
        update the lanes' speeds, the lane k having taken range(*spans[k]) of the lead's
        items. Where another thread is using the pool, or the pool has no slots for so many
        lanes, this thread runs them all."""
        clock = clock_address()
        with single_threaded_blas():
            if len(blocks) > len(self._pool.seconds) or not self._pool.lock.acquire(blocking=False):
                for k in range(len(blocks)):
                    blas_calls.run_blocks(blocks[k], count, clock)
                return
            try:
                self._learn(spans, self._run_compiled(blocks, count, clock))
            finally:
                self._pool.lock.release()

    def rest(self):
        """Sleep for a moment between rounds of spinning."""
        time.sleep(self.rest_seconds)

    def wait(self, progress, steps):
        """Wait until every lane's slot of `progress` holds `steps` or more (kernels/spin.py),
        spinning briefly and resting in turn, or its abort slot is set. The callers are at the
        end of a product, whose blocks can end milliseconds apart when one core is slower at
        the moment: a rest costs them nothing there."""
        while wait_all(progress, steps, self.product_spins) == 0:
            self.rest()

    def recurrence_spins(self):
        """Rounds a recurrence lane's next wait spins before it rests."""
        return self.min_spins if self._cheap_left else self.spins

    def recurrence_rest(self, again):
        """Rest after a recurrence's wait ran out of spins; `again` when the same wait had run
        out before."""
        if self._cheap_left:
            self._cheap_left -= 1
        elif again:
            self._cheap_left = self.cheap_rests
        self.rest()

    def _speeds(self, lanes):
        """The first `lanes` speeds, lanes not seen before at 1."""
        self.speeds.extend([1.0] * (lanes - len(self.speeds)))
        return self.speeds[:lanes]

    def _learn(self, spans, seconds):
        """Move the lanes' speeds towards the items per second their blocks just ran at."""
        if seconds.min() < self.min_learn_seconds:
            return
        rates = [(i1 - i0) / s for (i0, i1), s in zip(spans, seconds)]
        low, high = self.speed_bounds
        for k, speed in enumerate(self._speeds(len(spans))[1:], start=1):
            self.speeds[k] = min(high, max(low, speed ** (1 - self.learning) * (rates[k] / rates[0]) ** self.learning))

    def _run_compiled(self, blocks, count, clock):
        """run_products on the pool's workers; returns each lane's seconds."""
        pool, n = self._pool, len(blocks)
        workers = pool.workers(n - 1, self)
        pool.seq += 1
        for k, worker in enumerate(workers, start=1):
            blas_calls.post(worker.board, blocks[k], count, pool.seq, clock)
            worker.wake()
        pool.seconds[0] = blas_calls.run_blocks(blocks[0], count, clock)
        publish(pool.progress, 0, pool.seq)
        while wait_first(pool.progress, n, pool.seq, self.product_spins) == 0:
            self.rest()
        return pool.seconds[:n].copy()

    def _run_on_workers(self, lane, spans, workers):
        """Returns each lane's seconds."""
        progress = np.zeros(len(spans) + 1, dtype=np.int64)
        seconds = np.zeros(len(spans))
        errors = []
        for worker, (k, (i0, i1)) in zip(workers, enumerate(spans[1:], start=1)):
            worker.post((lane, k, i0, i1, progress, seconds, errors))
        seconds[0] = _attempt(lane, 0, *spans[0], errors)
        publish(progress, 0, 1)
        self.wait(progress, 1)
        if errors:
            raise errors[0]
        return seconds


class _Worker(threading.Thread):
    """A lane's thread that runs the blocks posted to it in turn, spinning its lanes'
    `idle_spins` rounds for the next before it sleeps: compiled product blocks without
    leaving compiled code (kernels/blas_calls.serve, which sets the pool's progress slot),
    Python blocks in Python, each setting its own call's `progress` slot once done."""

    def __init__(self, k, lanes):
        super().__init__(name=f"fastlstm-lane{k}", daemon=True)
        self._k, self._lanes = k, lanes
        self.board = np.zeros(blas_calls.BOARD_SIZE, dtype=np.int64)
        self._tasks = deque()
        self._wake = threading.Event()
        self._allowed = _allowed_cpus()  # a new thread's are its creator's
        self._barred_cpu = -1
        self.start()

    def post(self, task):
        """A Python block: task = (lane, k, i0, i1, progress, seconds, errors)."""
        self._tasks.append(task)
        self.board[blas_calls.KIND] = blas_calls.PYTHON_TASK
        publish(self.board, blas_calls.POSTED, self.board[blas_calls.POSTED] + 1)
        self.wake()

    def wake(self):
        """Wake the thread if it sleeps (a block was posted), keeping it off the caller's CPU.

        Linux may put a woken thread on its waker's CPU (on a virtual machine an idle CPU
        looks preempted, so the waker's looks the better place), and a caller and a worker
        both running keep each other there: the lanes then take turns on one core while
        another idles, until the scheduler balances its load, milliseconds later. So the
        worker may run anywhere its thread may but on the CPU its caller was last seen on;
        its CPU set changes only when the caller's CPU does."""
        cpu = _current_cpu()
        if cpu != self._barred_cpu and self._allowed is not None and (others := self._allowed - {cpu}):
            try:
                os.sched_setaffinity(self.native_id, others)
                self._barred_cpu = cpu
            except OSError:  # the CPU set changed since the thread started: the lanes work without this
                self._allowed = None
        self._wake.set()

    def run(self):
        pool = self._lanes._pool
        while True:
            if blas_calls.serve(self.board, pool.progress, pool.seconds, self._k, self._lanes.idle_spins) == blas_calls.IDLE:
                self._wake.wait()
                self._wake.clear()
                continue
            lane, k, i0, i1, progress, seconds, errors = self._tasks.popleft()
            seconds[k] = _attempt(lane, k, i0, i1, errors)
            publish(progress, k, 1)


# Lanes for which a pool has slots, at least as many as Numba may run threads (a Lanes object may
# ask for more lanes than that).
MAX_COMPILED_LANES = max(64, numba.config.NUMBA_NUM_THREADS)


class _Pool:
    """The workers, made as they are first needed, anew in a process forked from this one;
    and the slots where they publish the end of compiled blocks (a slot per lane, then an
    abort slot never set: compiled blocks raise nothing) and their seconds."""

    def __init__(self):
        self._pid = None
        self._workers = []
        self.lock = threading.Lock()
        self.progress = np.zeros(MAX_COMPILED_LANES + 1, dtype=np.int64)
        self.seconds = np.zeros(MAX_COMPILED_LANES)
        self.seq = 0  # compiled tasks posted

    def workers(self, n, lanes):
        """The first n workers of `lanes`' pool."""
        if self._pid != os.getpid():  # a fork copies no threads
            self._pid, self._workers = os.getpid(), []
        while len(self._workers) < n:
            self._workers.append(_Worker(len(self._workers) + 1, lanes))
        return self._workers[:n]


def _c_function(name):
    """The C library's function `name` (ctypes), or None where there is none."""
    try:
        return getattr(ctypes.CDLL(None), name, None)
    except (OSError, TypeError):  # no C library to open by that route (Windows)
        return None


_SCHED_GETCPU = _c_function("sched_getcpu")


def _current_cpu():
    """The CPU this thread runs on, or -1 where the C library cannot tell."""
    return -1 if _SCHED_GETCPU is None else _SCHED_GETCPU()


def _allowed_cpus():
    """The set of CPUs this thread may run on, or None where the OS cannot tell."""
    try:
        return os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return None


@functools.lru_cache(maxsize=None)
def clock_address():
    """The address of the C library's clock_gettime, through which compiled lanes time their
    blocks (on time.perf_counter's clock), or None where there is none."""
    function = _c_function("clock_gettime")
    return None if function is None else ctypes.cast(function, ctypes.c_void_p).value


def _attempt(lane, k, i0, i1, errors):
    """lane(k, i0, i1), its exception appended to `errors`: the caller raises it once every
    lane has stopped. Returns the seconds it took."""
    start = time.perf_counter()
    try:
        lane(k, i0, i1)
    except BaseException as e:
        errors.append(e)
    return time.perf_counter() - start


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


_DEFAULT = Lanes()


def default():
    """The process's lanes, which the layers use unless given others."""
    return _DEFAULT


def loop(kernel, items):
    """default().loop(kernel, items): the build of a kernel with parallel loops that a call on
    `items` items runs on the process's lanes."""
    return _DEFAULT.loop(kernel, items)
