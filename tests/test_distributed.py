"""`mpiexec -n 2 fastlstm train --distributed`: two ranks with batch B follow one process with
batch B, rank 0 alone writes, a resume needs the same number of ranks, ranks started unlike one
another are refused, a rank that dies or fails (a NaN, drifting weights, an exception) and a stop
signal stop every rank and leave the last good checkpoint, and without MPI the command says how
to install it. Each rank runs on one thread; the runs are
tiny (width 16, batch 4 x 8) on PTB."""

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastlstm import cli
from fastlstm.checkpoint import Checkpoint
from generated_text import write_corpus

pytest.importorskip("mpi4py", reason='mpi4py is not installed: pip install "fastlstm[mpi]" (the test extra has it)')

MPIEXEC = str(Path(sys.executable).parent / "mpiexec")  # the `mpich` wheel's, beside the environment's python
AUDIT = str(Path(__file__).resolve().parent / "write_audit.py")
FAULT = str(Path(__file__).resolve().parent / "rank_fault.py")
SMALL = ["--wordvec-size", "16", "--hidden-size", "16", "--batch-size", "4", "--time-size", "8", "--eval-iters", "1",
         "--eval-interval", "1", "--seed", "3", "--dtype", "float64"]
ITERS = 20
COMPARED = ("kind", "epoch", "iteration", "total_iterations", "lr", "perplexity", "note")  # all but the timings


# The runs in this process take --threads 1, which sets the whole process's: one_thread puts it back after.
pytestmark = pytest.mark.usefixtures("one_thread")


def train_command(out, *flags):
    return [sys.executable, "-m", "fastlstm", "train", "--distributed", "--out", str(out), *SMALL, *flags]


def mpiexec(*commands, timeout=120):
    """Run `mpiexec -n 1 COMMAND : -n 1 COMMAND ...` (one rank per command); the finished process."""
    argv = [MPIEXEC]
    for i, command in enumerate(commands):
        argv += ([":"] if i else []) + ["-n", "1", *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def two_ranks(out, *flags):
    """A 2-rank distributed run into out; asserts it succeeds, returns its stdout."""
    done = mpiexec(train_command(out, *flags), train_command(out, *flags))
    assert done.returncode == 0, done.stderr
    return done.stdout


def log(out):
    with open(Path(out) / "log.csv", newline="") as f:
        return [{k: row[k] for k in COMPARED} for row in csv.DictReader(f)]


def relative_differences(a, b):
    """|loss_a - loss_b| / |loss_b| of each row (loss = log of the row's perplexity)."""
    assert [(r["kind"], r["total_iterations"]) for r in a] == [(r["kind"], r["total_iterations"]) for r in b]
    return [abs(math.log(float(x["perplexity"])) / math.log(float(y["perplexity"])) - 1) for x, y in zip(a, b)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{model: (a one-process run's folder, a 2-rank run's folder)}, ITERS iterations each, made on first use."""
    made = {}

    def run(model):
        if model not in made:
            one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
            assert cli.main(["train", "--out", str(one), *SMALL, "--model", model, "--threads", "1",
                             "--max-iters", str(ITERS)]) == 0
            two_ranks(two, "--model", model, "--max-iters", str(ITERS))
            made[model] = one, two
        return made[model]
    return run


@pytest.mark.parametrize("model", ["rnnlm", "variational"])
def test_two_ranks_follow_one_process_with_the_same_batch(runs, model):
    """20 iterations in float64, the losses of every step, the validation and the test within 1e-5
    relative; variational drops (locked, recurrent and word dropout): each rank's masks are its
    rows' of the whole batch's."""
    one, two = runs(model)
    differences = relative_differences(log(two), log(one))
    print(f"{model}: worst relative difference of the losses over {len(differences)} rows: {max(differences):.2e}")
    assert len(differences) == ITERS + 2 and max(differences) < 1e-5
    assert Checkpoint.read(two / "checkpoint.npz").config["ranks"] == 2


def test_rank_0_alone_writes_and_a_resume_continues_exactly(runs, tmp_path):
    """Rank 1 runs under an audit of every write into the run folder: none. Stopped by --max-iters
    and resumed on two ranks, the run's log is that of a run that never stopped."""
    _, whole = runs("rnnlm")
    out, record = tmp_path / "out", tmp_path / "rank1.json"
    first = train_command(out, "--max-iters", "9", "--save-every", "4")
    done = mpiexec(first, [sys.executable, AUDIT, str(record), str(out), *first[3:]])
    assert done.returncode == 0, done.stderr
    assert json.loads(record.read_text()) == []
    assert {"checkpoint.npz", "best.pkl", "log.csv", "vocab.txt"} <= set(os.listdir(out))
    two_ranks(out, "--resume", "--max-iters", str(ITERS))
    assert log(out) == log(whole)


def test_a_resume_on_another_number_of_ranks_is_refused(runs, capsys):
    one, two = runs("rnnlm")
    assert cli.main(["train", "--out", str(two), "--resume"]) == 1
    assert ("is the checkpoint of a run on 2 ranks, and this run has 1: a run resumes on as many ranks as it "
            "started with (mpiexec -n 2 fastlstm train --distributed --resume)") in capsys.readouterr().err
    before = (one / "checkpoint.npz").read_bytes()
    done = mpiexec(train_command(one, "--resume"), train_command(one, "--resume"))
    assert done.returncode != 0
    assert "is the checkpoint of a run on 1 rank, and this run has 2" in done.stderr
    assert "Traceback" not in done.stderr and (one / "checkpoint.npz").read_bytes() == before


def test_ranks_started_with_different_settings_or_data_are_refused(tmp_path):
    """A flag of rank 1's unlike rank 0's is refused before anything else; so is --data of rank 1's
    that holds other text, before anything is written."""
    command = train_command(tmp_path, "--max-iters", "2")
    done = mpiexec(command, [*command, "--lr", "10"])
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "the ranks were started with different command lines (rank 1 unlike rank 0)" in done.stderr
    texts = [write_corpus(tmp_path / f"text{seed}", {"train": 5000, "valid": 1000, "test": 1000}, words=100, seed=seed)
             for seed in (0, 1)]
    out = tmp_path / "run"
    done = mpiexec(*(train_command(out, "--max-iters", "2", "--data", str(text)) for text in texts))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "the ranks were started with different data (rank 1 unlike rank 0)" in done.stderr
    assert not (out / "checkpoint.npz").exists()


def test_a_batch_that_does_not_split_over_the_ranks_is_refused(tmp_path):
    command = train_command(tmp_path, "--batch-size", "3")
    done = mpiexec(command, command)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "batch 3 does not split evenly over 2 ranks: give --batch-size a multiple of 2" in done.stderr


def test_a_rank_that_dies_stops_the_job_and_the_last_checkpoint_resumes(tmp_path):
    command = train_command(tmp_path, "--max-iters", "100000", "--save-every", "5")
    argv = [MPIEXEC, "-n", "1", *command, ":", "-n", "1", *command]
    job = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_checkpoint(job, tmp_path / "checkpoint.npz", 10)
        os.kill(rank_pid(job.pid, 1), signal.SIGKILL)
        _, err = job.communicate(timeout=60)
    finally:
        job.kill()
    assert job.returncode != 0, err
    saved = Checkpoint.read(tmp_path / "checkpoint.npz")  # whole: writes are atomic
    assert saved.position.total_iterations >= 10 and saved.position.total_iterations % 5 == 0
    stopped_at = saved.position.total_iterations
    two_ranks(tmp_path, "--resume", "--max-iters", str(stopped_at + 2))
    assert Checkpoint.read(tmp_path / "checkpoint.npz").position.total_iterations == stopped_at + 2


def test_sigterm_to_mpiexec_stops_every_rank_at_the_same_step_with_a_checkpoint(tmp_path):
    """mpiexec passes SIGTERM on to the ranks; the step's allreduce carries it, so every rank stops
    after the same step, and rank 0 saves there."""
    command = train_command(tmp_path, "--max-iters", "100000", "--save-every", "5")
    job = subprocess.Popen([MPIEXEC, "-n", "1", *command, ":", "-n", "1", *command], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        wait_for_checkpoint(job, tmp_path / "checkpoint.npz", 10)
        job.send_signal(signal.SIGTERM)
        _, err = job.communicate(timeout=60)
    finally:
        job.kill()
    assert job.returncode == 128 + signal.SIGTERM, err
    stopped = re.search(r"stopped by SIGTERM: checkpoint saved at epoch 1, iteration (\d+)/", err)
    assert stopped and f"mpiexec -n 2 fastlstm train --distributed --out {tmp_path}" in err
    assert Checkpoint.read(tmp_path / "checkpoint.npz").position.total_iterations == int(stopped.group(1))


@pytest.mark.parametrize("fault, at, status, message, saved_at", [
    ("nan", 7, 1, ["training stopped: loss is nan on rank 1 at epoch 1, iteration 7/",
                   "retry from the checkpoint with:\n  mpiexec -n 2 fastlstm train --distributed --out"], 5),
    ("weights", 3, 1, ["training stopped: the ranks' weights differ after epoch 1, iteration 8/"], 8),
    ("error", 7, None, ["fastlstm train: rank 1 of 2: error: a fault injected into this rank; stopping every rank"], 5),
])
def test_a_fault_on_one_rank_stops_every_rank_and_keeps_the_last_good_checkpoint(tmp_path, fault, at, status, message,
                                                                                 saved_at):
    """A NaN loss on rank 1 alone, weights of rank 1 that drift from rank 0's (seen at the validation
    after --max-iters 8), an exception on rank 1: the job ends, with the message, on every rank."""
    command = train_command(tmp_path, "--max-iters", "8", "--save-every", "5")
    done = mpiexec(command, [sys.executable, FAULT, fault, str(at), *command[3:]])
    assert done.returncode != 0 and (status is None or done.returncode == status), done.stderr
    assert all(line in done.stderr for line in message), done.stderr
    assert Checkpoint.read(tmp_path / "checkpoint.npz").position.total_iterations == saved_at


def wait_for_checkpoint(job, path, iterations, timeout=60):
    """Wait until the running job's checkpoint at path stands at `iterations` or later."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and Checkpoint.read(path).position.total_iterations >= iterations):
        assert time.monotonic() < deadline and job.poll() is None, job.stderr.read()
        time.sleep(0.2)


def rank_pid(root, rank):
    """The process id of MPI rank `rank` among the descendants of process `root` (MPICH sets PMI_RANK)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    pending, found = [root], []
    while pending:
        pid = pending.pop()
        for child in children.get(pid, []):
            pending.append(child)
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"PMI_RANK={rank}".encode() in environ and b"python" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    assert len(found) == 1, f"rank {rank} not found under process {root}"
    return found[0]


def test_without_mpi_the_command_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `import mpi4py` then raises ImportError
    assert cli.main(["train", "--distributed", "--out", str(tmp_path / "run"), *SMALL, "--max-iters", "1"]) == 1
    err = capsys.readouterr().err
    assert "--distributed needs mpi4py and an MPI library" in err and 'pip install "fastlstm[mpi]"' in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_distributed_alone_trains_as_one_process(tmp_path, capsys):
    """Without mpiexec (one rank) --distributed runs as one process, and says so; its checkpoint is one
    process's, so a plain --resume continues it."""
    done = subprocess.run(train_command(tmp_path, "--max-iters", "2"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--distributed on one rank: it trains as one process" in done.stderr
    assert cli.main(["train", "--out", str(tmp_path), "--resume", "--threads", "1", "--max-iters", "3"]) == 0
    assert [r["total_iterations"] for r in log(tmp_path) if r["kind"] == "train"] == ["1", "2", "3"]
