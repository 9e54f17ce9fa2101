"""The inputs and faults of docs/reliability.md that a user meets through the library and the
`fastlstm` command: each is refused with one clear line (exit status 1, or 2 for a bad command
line), nothing is written before the arguments are checked, and no file runs code."""

import errno
import os
import pickle
import re
import shutil
import signal
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import fastlstm
from fastlstm import cli, files, training
from fastlstm.base_model import BaseModel
from fastlstm.checkpoint import Checkpoint, Position
from fastlstm.models import BetterRnnlm, Rnnlm

SMALL = ["--threads", "1", "--wordvec-size", "16", "--hidden-size", "16", "--batch-size", "4", "--time-size", "8",
         "--eval-iters", "1", "--eval-interval", "4", "--seed", "3"]


@pytest.fixture(autouse=True, scope="module")
def restore_threads():
    """--threads 1 sets the thread count of the whole test process: put it back afterwards."""
    threads = fastlstm.get_num_threads()
    yield
    fastlstm.set_num_threads(threads)


def train(out, *flags):
    return cli.main(["train", "--out", str(out), *SMALL, *flags])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 6-iteration Rnnlm run: its folder."""
    out = tmp_path_factory.mktemp("run")
    assert train(out, "--max-iters", "6") == 0
    return out


def one_line_error(capsys, message):
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    return err


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


# ------------------------------------------------------------------------------------ weight files are data

@pytest.mark.parametrize("where", ["load_params", "eval", "generate", "resume"])
def test_code_in_a_weight_file_never_runs(run, tmp_path, where, capsys):
    marker = tmp_path / "ran"
    evil = [p.astype(np.float16) for p in Rnnlm(10000, 16, 16).params] + [_RunsCode(str(marker))]
    path = tmp_path / ("checkpoint.pkl" if where == "resume" else "evil.pkl")
    with open(path, "wb") as f:
        pickle.dump(evil, f)
    if where == "load_params":
        with pytest.raises(ValueError, match="would run code when loaded; refused without loading it"):
            Rnnlm(10000, 16, 16).load_params(path)
    else:
        argv = {"eval": ["eval", "--params", str(path)],
                "generate": ["generate", "--params", str(path), "--start", "you"],
                "resume": ["train", "--out", str(tmp_path), "--resume"]}[where]
        assert cli.main(argv) == 1
        one_line_error(capsys, "would run code when loaded; refused without loading it")
    assert not marker.exists()


class AttentionSeq2seq(BaseModel):
    """The params of the book's chapter 8 AttentionSeq2seq: encoder and decoder embedding and LSTM, the
    affine output over [attention context, h]."""

    def __init__(self, V=13, D=16, H=32):
        shapes = [(V, D), (D, 4 * H), (H, 4 * H), (4 * H,), (V, D), (D, 4 * H), (H, 4 * H), (4 * H,), (2 * H, V), (V,)]
        self.params = [np.random.randn(*s).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("make", [lambda: Rnnlm(100, 8, 12), lambda: BetterRnnlm(100, 12, 12), AttentionSeq2seq])
def test_the_books_files_load(tmp_path, make, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.random.seed(1)
    saved = make()
    name = type(saved).__name__ + ".pkl"
    with open(name, "wb") as f:  # the book's save_params, chapters 6 and 8
        pickle.dump([p.astype(np.float16) for p in saved.params], f)
    loaded = make()
    loaded.load_params()
    for p, q in zip(loaded.params, saved.params):
        np.testing.assert_array_equal(p, q.astype(np.float16).astype(np.float32))


def test_overflow_on_conversion_is_refused(tmp_path, capsys):
    model = Rnnlm(10000, 16, 16)
    big = [p.astype(np.float64) for p in model.params]
    big[3][0] = 1e39  # an LSTM bias: finite as float64, inf once in the float32 model
    path = tmp_path / "big.pkl"
    with open(path, "wb") as f:
        pickle.dump(big, f)
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match="array 3 holds NaN or inf, or values beyond float32's range"):
        model.load_params(path)
    for p, q in zip(model.params, before):
        np.testing.assert_array_equal(p, q)
    assert cli.main(["eval", "--params", str(path)]) == 1
    one_line_error(capsys, "array 3 holds NaN or inf, or values beyond float32's range")
    assert cli.main(["eval", "--params", str(path), "--dtype", "float64", "--eval-iters", "1"]) == 0  # fits float64


@pytest.mark.parametrize("make,message", [
    (lambda p: pickle.dump([a.astype(np.int64) for a in Rnnlm(10000, 4, 4).params], open(p, "wb")),
     "array 0 has dtype int64, expected a float dtype"),
    (lambda p: pickle.dump([a.astype(np.float16) for a in Rnnlm(50, 4, 4).params], open(p, "wb")),
     "has a vocabulary of 50 words, but PTB has 10000"),
    (lambda p: os.mkdir(p), "cannot read"),
    (lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "is not a readable checkpoint"),
])
def test_eval_refuses_params_it_cannot_use(tmp_path, make, message, capsys):
    path = tmp_path / "params.pkl"
    make(path)
    assert cli.main(["eval", "--params", str(path)]) == 1
    one_line_error(capsys, message)


# ------------------------------------------------------------------------------------ checkpoints

def _rewrite_checkpoint(out, change):
    """Apply change(checkpoint) to out's checkpoint.npz and write it back."""
    saved = Checkpoint.read(out / "checkpoint.npz")
    change(saved)
    saved.write(out / "checkpoint.npz")


def _copy_run(run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(run, out)
    return out


@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_nan_checkpoint_is_refused(run, tmp_path, command, capsys):
    out = _copy_run(run, tmp_path)
    _rewrite_checkpoint(out, lambda saved: saved.params[2].__setitem__((0, 0), np.nan))
    argv = ["eval", "--params", str(out / "checkpoint.npz")] if command == "eval" else \
        ["train", "--out", str(out), "--resume"]
    assert cli.main(argv) == 1
    one_line_error(capsys, "params[2] holds NaN or inf; this checkpoint cannot be used")


@pytest.mark.parametrize("key,value,message", [
    ("wordvec_size", 32, "--model better ties the output weight to the embedding, so it needs --wordvec-size = "
                         "--hidden-size, got 32 and 16"),
    ("lr", "abc", "--lr must be a finite number > 0, got 'abc'"),
    ("batch_size", 0, "--batch-size must be an integer > 0, got 0"),
    ("seed", 2**40, "--seed must be an integer in [0, 4294967296), or unset"),
    ("weight_drop", 0.3, "--weight-drop applies to --model variational only (and to awd): BetterRnnlm has no such "
                         "setting"),
    ("time_budget", -1.0, "--time-budget must be a finite number > 0 (minutes), or unset, got -1.0"),
    ("vocab_size", 1, "--vocab-size must be an integer > 1, or unset, got 1"),
    ("dropout", None, "--dropout must be a number in [0, 1), got None"),
])
def test_a_checkpoints_settings_are_checked(tmp_path, key, value, message, capsys):
    out = tmp_path / "better"
    assert train(out, "--model", "better", "--max-iters", "2") == 0
    _rewrite_checkpoint(out, lambda saved: saved.config.__setitem__(key, value))
    for argv in (["eval", "--params", str(out / "checkpoint.npz")], ["train", "--out", str(out), "--resume"]):
        assert cli.main(argv) == 1
        one_line_error(capsys, message)


@pytest.mark.parametrize("key", ["time_budget", "vocab_size"])
def test_a_checkpoint_without_a_newer_setting_resumes(tmp_path, key, capsys):
    """A checkpoint written before --time-budget or --vocab-size existed lacks that setting: it
    evaluates and resumes, as a run without it."""
    out = tmp_path / "run"
    assert train(out, "--max-iters", "2") == 0
    _rewrite_checkpoint(out, lambda saved: saved.config.pop(key))
    assert cli.main(["eval", "--params", str(out / "checkpoint.npz"), "--eval-iters", "1"]) == 0
    assert cli.main(["train", "--out", str(out), "--resume", "--max-iters", "3"]) == 0
    saved = Checkpoint.read(out / "checkpoint.npz")
    assert saved.position.total_iterations == 3 and saved.config[key] is None


def test_an_older_checkpoint_pkl_resumes_and_becomes_npz(tmp_path, capsys):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert train(straight, "--max-iters", "16") == 0
    assert train(stopped, "--max-iters", "8", "--save-every", "0") == 0
    saved = Checkpoint.read(stopped / "checkpoint.npz")
    state = {"format": "fastlstm-checkpoint", **{f.name: getattr(saved, f.name) for f in fields(Checkpoint)
                                                   if f.name != "position"},
             **{f.name: getattr(saved.position, f.name) for f in fields(Position)}}
    with open(stopped / "checkpoint.pkl", "wb") as f:  # as fastlstm wrote it before checkpoint.npz
        pickle.dump(state, f)
    os.remove(stopped / "checkpoint.npz")
    capsys.readouterr()
    assert cli.main(["eval", "--params", str(stopped / "checkpoint.pkl"), "--eval-iters", "1"]) == 0
    assert cli.main(["train", "--out", str(stopped), "--resume", "--max-iters", "16"]) == 0
    assert "checkpoint.pkl, written by an older fastlstm, is now" in capsys.readouterr().out
    assert not (stopped / "checkpoint.pkl").exists()
    a, b = Checkpoint.read(straight / "checkpoint.npz"), Checkpoint.read(stopped / "checkpoint.npz")
    assert a.position.total_iterations == b.position.total_iterations == 16
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)


# ------------------------------------------------------------------------------------ arguments first

@pytest.mark.parametrize("flags,status,message", [
    (["--lr", "inf"], 2, "--lr: must be a finite number, got inf"),
    (["--lr", "nan"], 2, "--lr: must be a finite number, got nan"),
    (["--lr", "0"], 2, "--lr: must be > 0, got 0"),
    (["--max-grad", "inf"], 2, "--max-grad: must be a finite number, got inf"),
    (["--model", "better", "--dropout", "1"], 2, "--dropout: must be >= 0 and < 1, got 1"),
    (["--seed", str(2**32)], 2, "--seed: must be >= 0 and < 4294967296"),
    (["--seed", "-1"], 2, "--seed: must be >= 0"),
    (["--batch-size", "0"], 2, "--batch-size: must be > 0, got 0"),
    (["--hidden-size", "abc"], 2, "--hidden-size: not an integer: 'abc'"),
    (["--epochs", "1.5"], 2, "--epochs: not an integer: '1.5'"),
    (["--time-budget", "0"], 2, "--time-budget: must be > 0, got 0"),
    (["--time-budget", "inf"], 2, "--time-budget: must be a finite number, got inf"),
    (["--model", "variational", "--recurrent-dropout", "1"], 2, "--recurrent-dropout: must be >= 0 and < 1, got 1"),
    (["--model", "awd", "--weight-drop", "-0.1"], 2, "--weight-drop: must be >= 0 and < 1, got -0.1"),
    (["--model", "awd", "--alpha", "nan"], 2, "--alpha: must be a finite number, got nan"),
    (["--model", "awd", "--asgd", "-1"], 2, "--asgd: must be >= 0, got -1"),
    (["--model", "awd", "--num-layers", "0"], 2, "--num-layers: must be > 0, got 0"),
    (["--model", "awd", "--recurrent-dropout", "0.2"], 1,
     "--recurrent-dropout applies to --model variational only: AwdRnnlm has no such setting"),
    (["--model", "variational", "--hidden-size", "32"], 1,
     "--model variational ties the output weight to the embedding, so it needs --wordvec-size = --hidden-size"),
    (["--model", "better", "--hidden-size", "32"], 1,
     "--model better ties the output weight to the embedding, so it needs --wordvec-size = --hidden-size"),
    (["--batch-size", "100000", "--time-size", "100"], 1, "batch 100000 x time 100 is larger than the training data"),
    (["--threads", "100000"], 1, "--threads: number of threads must be in [1, "),
    (["--data", "/nowhere"], 1, "ptb.train.txt not found"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, flags, status, message, capsys):
    out = tmp_path / "out"
    try:
        assert train(out, *flags) == status
    except SystemExit as e:  # argparse: usage and the error on stderr
        assert e.code == status
    one_line_error(capsys, message)
    assert not out.exists()


def test_a_damaged_data_file_is_refused(ptb_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        shutil.copy(ptb_dir / name, data / name)
    with open(data / "ptb.valid.txt", "a") as f:
        f.write("one more line\n")
    assert train(tmp_path / "out", "--data", str(data)) == 1
    one_line_error(capsys, "SHA-256 mismatch for ptb.valid.txt")
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    assert train(tmp_path / "out", "--max-iters", "1") == 1
    one_line_error(capsys, "is a file, not a folder")


def test_out_of_memory_is_one_line(tmp_path, monkeypatch, capsys):
    def no_memory(config, vocab_size):
        raise MemoryError
    monkeypatch.setattr(training, "build_model", no_memory)
    assert train(tmp_path / "out", "--hidden-size", "100000", "--wordvec-size", "100000") == 1
    one_line_error(capsys, "out of memory; choose smaller sizes")


def test_bench_checks_its_json_folder_before_measuring(tmp_path, capsys):
    assert cli.main(["bench", "--quick", "--json", str(tmp_path / "missing" / "b.json")]) == 1
    err = one_line_error(capsys, "its folder does not exist or cannot be written")
    assert "measuring" not in err


# ------------------------------------------------------------------------------------ the run's folder

def test_disk_full_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    write = files.atomic_write
    saves = []

    def full_disk(path, fill):
        if str(path).endswith("checkpoint.npz"):
            saves.append(path)
            if len(saves) == 3:  # the third save (iteration 4) finds the disk full half-way
                def half(f):
                    f.write(b"x" * 100)
                    raise OSError(errno.ENOSPC, "No space left on device")
                return write(path, half)
        return write(path, fill)
    monkeypatch.setattr("fastlstm.checkpoint.atomic_write", full_disk)
    assert train(out, "--max-iters", "20", "--save-every", "2") == 1
    one_line_error(capsys, "No space left on device")
    assert Checkpoint.read(out / "checkpoint.npz").position.total_iterations == 2
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "run.lock", "vocab.txt"]  # no temporary file left
    monkeypatch.setattr("fastlstm.checkpoint.atomic_write", write)
    assert cli.main(["train", "--out", str(out), "--resume", "--max-iters", "4"]) == 0


def test_temporary_files_of_killed_writes_are_removed_at_the_next_start(run, tmp_path):
    out = _copy_run(run, tmp_path)
    left = [".checkpoint.npz.0123456789abcdef0123456789abcdef.tmp", ".best.pkl.fedcba9876543210fedcba9876543210.tmp",
            ".log.csv.00000000000000000000000000000000.tmp"]
    kept = ["notes.tmp", ".checkpoint.npz.short.tmp"]  # not the names atomic_write makes
    for name in left + kept:
        (out / name).write_bytes(b"partial")
    assert cli.main(["train", "--out", str(out), "--resume", "--max-iters", "6"]) == 0
    names = set(os.listdir(out))
    assert not names & set(left) and set(kept) <= names


def test_an_ignored_sighup_stays_ignored(tmp_path):
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        assert train(tmp_path, "--max-iters", "2") == 0
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_the_lock_names_its_holder_and_is_released(tmp_path, capsys):
    from fastlstm import run_lock
    with run_lock.hold(tmp_path):
        assert Path(tmp_path / "run.lock").read_text().strip() == str(os.getpid())
        assert train(tmp_path, "--max-iters", "1") == 1
        one_line_error(capsys, f"is in use by another run (process {os.getpid()}")
    assert (tmp_path / "run.lock").read_text() == ""
    assert train(tmp_path, "--max-iters", "1") == 0


# ------------------------------------------------------------------------------------ the table itself

def test_the_fault_table_counts_its_rows_and_names_tests_that_exist():
    """docs/reliability.md: every row names tests that exist in the files its letters stand for,
    and the counts above the table are those of its rows."""
    tests = Path(__file__).parent
    text = (tests.parent / "docs" / "reliability.md").read_text()
    files = dict(re.findall(r"`tests/(test_\w+\.py)`\s+\((\w)[,)]", text))
    files = {letter: (tests / name).read_text() for name, letter in files.items()}
    rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [int(r.split("|")[1]) for r in rows] == list(range(1, len(rows) + 1))
    assert f"Tried: {len(rows)}. Refused cleanly or handled as designed: {len(rows)}." in text
    for row in rows:
        named = re.findall(r"\b([A-Z]) `(test_\w+)", row.split("|")[4])
        assert named, row
        for letter, name in named:
            assert f"def {name}(" in files[letter], f"{name} is not in the test file {letter}"
