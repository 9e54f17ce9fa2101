"""A real `fastlstm train` process under the faults of a real run: stop signals, kill -9, a second
run into its folder, a fork; each checked as a user would see it, against an uninterrupted run."""

import csv
import importlib.metadata
import multiprocessing
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numba
import numpy as np
import pytest

from fastlstm import cli
from fastlstm.checkpoint import Checkpoint
from fastlstm.models import Rnnlm
from fastlstm.time_layers import TimeSoftmaxWithLoss

SMALL = ["--threads", "1", "--wordvec-size", "16", "--hidden-size", "16", "--batch-size", "4", "--time-size", "8",
         "--eval-iters", "1", "--eval-interval", "4", "--seed", "3", "--save-every", "7"]
ITERS = 300  # the compared runs' length; a stopped run is stopped well before it
COMPARED = ("kind", "epoch", "iteration", "total_iterations", "lr", "perplexity", "note")  # all but the timings


# The runs in this process take --threads 1, which sets the whole process's: one_thread puts it back after.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The log rows of an uninterrupted run of ITERS iterations."""
    out = tmp_path_factory.mktemp("reference")
    assert cli.main(["train", "--out", str(out), *SMALL, "--max-iters", str(ITERS)]) == 0
    return log_rows(out)


def log_rows(out):
    with open(Path(out) / "log.csv", newline="") as f:
        return [tuple(row[k] for k in COMPARED) for row in csv.DictReader(f)]


def start(out, *flags):
    """A `python -m fastlstm train` process into out, its output piped."""
    return subprocess.Popen([sys.executable, "-m", "fastlstm", "train", "--out", str(out), *SMALL, *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_iteration(process, at_least, timeout=120):
    """Read the process's progress lines until one reports an iteration >= at_least; returns it."""
    deadline, pending = time.monotonic() + timeout, b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if not ready:
            assert process.poll() is None, process.stderr.read().decode()
            continue
        chunk = os.read(process.stdout.fileno(), 1 << 16)
        assert chunk, f"the run ended early: {process.stderr.read().decode()}"
        pending += chunk
        for line in pending.decode(errors="replace").splitlines():
            found = re.search(r"\| iter\s+(\d+)/", line)
            if found and int(found.group(1)) >= at_least:
                return int(found.group(1))
        pending = pending[pending.rfind(b"\n") + 1:]
    process.kill()
    pytest.fail(f"no progress line reached iteration {at_least} in {timeout} s")


def finish(process, timeout=120):
    """(exit status, stdout, stderr) of a process once it has ended."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_saves_at_the_current_step_and_the_resumed_log_is_whole(reference, tmp_path, signum, capsys):
    process = start(tmp_path, "--max-iters", "100000")
    try:
        wait_for_iteration(process, 20)
        # a second run into the same folder, or a --resume, is refused at once, naming the holder
        for flags in ([*SMALL], ["--resume"]):
            assert cli.main(["train", "--out", str(tmp_path), *flags]) == 1
            assert f"is in use by another run (process {process.pid}" in capsys.readouterr().err
        process.send_signal(signum)
        status, _, err = finish(process)
    finally:
        process.kill()
    assert status == 128 + signum, err
    name = signal.Signals(signum).name
    assert f"{name}: stopping after the current step" in err and "Traceback" not in err
    saved = re.search(rf"stopped by {name}: checkpoint saved at epoch 1, iteration (\d+)/", err)
    assert saved and f"fastlstm train --out {tmp_path}" in err and "--resume" in err
    stopped_at = int(saved.group(1))
    assert 20 <= stopped_at < ITERS
    assert Checkpoint.read(tmp_path / "checkpoint.npz").position.total_iterations == stopped_at
    assert cli.main(["train", "--out", str(tmp_path), "--resume", "--max-iters", str(ITERS)]) == 0
    assert log_rows(tmp_path) == reference


def test_kill_9_then_resume_loses_and_repeats_no_log_row(reference, tmp_path, capsys):
    process = start(tmp_path, "--max-iters", "100000")
    try:
        wait_for_iteration(process, 30)
        process.kill()
        status, _, _ = finish(process)
    finally:
        process.kill()
    assert status == -signal.SIGKILL
    assert (tmp_path / "run.lock").read_text().strip() == str(process.pid)  # left by the killed run
    (tmp_path / ".checkpoint.npz.0123456789abcdef0123456789abcdef.tmp").write_bytes(b"half a write")
    assert cli.main(["train", "--out", str(tmp_path), "--resume", "--max-iters", str(ITERS)]) == 0
    out = capsys.readouterr().out
    assert f"the run of process {process.pid} ended without releasing it (killed?); taken over" in out
    assert log_rows(tmp_path) == reference
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert (tmp_path / "run.lock").read_text() == ""  # released by a run that ended


def _loss():
    np.random.seed(0)
    model = Rnnlm(50, 8, 8)
    xs = np.random.randint(0, 50, (4, 5))
    return float(model.forward(xs, xs))


def _loss_into(queue):
    queue.put(_loss())


@pytest.mark.skipif(sys.platform != "linux", reason="fork is multiprocessing's default on Linux")
def test_a_forked_child_runs_kernels_with_the_parents_results():
    try:
        importlib.metadata.version("tbb")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the tbb package is not installed: Numba's GNU OpenMP layer kills a forked child")
    parent = _loss()  # kernels have run in this process before the fork
    assert numba.threading_layer() == "tbb"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_loss_into, args=(queue,))
    child.start()
    child.join(120)
    assert child.exitcode == 0, f"the forked child ended with {child.exitcode}"
    assert queue.get(timeout=10) == parent


def test_two_threads_run_parallel_kernels_at_once():
    """Numba's threading layer must take parallel kernels from several threads at once (the
    workqueue layer, also fork-safe, aborts the process here)."""
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((20, 35, 2000)).astype(np.float32)
    targets = rng.integers(0, 2000, size=(20, 35))
    expected = TimeSoftmaxWithLoss().forward(scores, targets)
    results = {}

    def work(name):
        layer = TimeSoftmaxWithLoss()
        results[name] = [layer.forward(scores, targets) for _ in range(50)]

    workers = [threading.Thread(target=work, args=(name,)) for name in "ab"]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert results["a"] == results["b"] == [expected] * 50
