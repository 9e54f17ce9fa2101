"""The `fastlstm` command, in process through cli.main: train (smoke, epochs, resume, Ctrl-C, NaN), eval, generate."""

import argparse
import csv
import math
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import fastlstm
from fastlstm import cli, training
from fastlstm.checkpoint import Checkpoint, Position
from fastlstm.dataset import ptb
from fastlstm.models import BetterRnnlm, Rnnlm
from fastlstm.util import eval_perplexity

# tiny models and batches over the real vocabulary: each iteration takes milliseconds (on one thread:
# parallel kernels this small only wait for each other, the more so on a busy machine)
SMALL = ["--threads", "1", "--wordvec-size", "16", "--hidden-size", "16", "--batch-size", "4", "--time-size", "8",
         "--eval-iters", "1", "--eval-interval", "4", "--seed", "3"]
TRAIN_TOKENS = 1001  # with --small-train: 31 iterations per epoch


def train(out, *flags):
    return cli.main(["train", "--out", str(out), *SMALL, *flags])


def read_log(out):
    with open(Path(out) / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def losses(out):
    """(epoch, iteration, perplexity) of the train and valid rows, as logged."""
    return [(r["kind"], r["epoch"], r["iteration"], r["perplexity"]) for r in read_log(out) if r["kind"] in ("train", "valid")]


def checkpoint(out):
    """The run's checkpoint.npz, its fields and its position's side by side."""
    saved = Checkpoint.read(Path(out) / "checkpoint.npz")
    return {**{f.name: getattr(saved, f.name) for f in fields(Checkpoint) if f.name != "position"},
            **{f.name: getattr(saved.position, f.name) for f in fields(Position)}}


@pytest.fixture(autouse=True, scope="module")
def restore_threads():
    """--threads 1 sets the thread count of the whole test process: put it back afterwards."""
    threads = fastlstm.get_num_threads()
    yield
    fastlstm.set_num_threads(threads)


@pytest.fixture
def small_train(monkeypatch):
    """PTB with its train split cut to TRAIN_TOKENS tokens (vocabulary unchanged), so epochs are short."""
    load_data = ptb.load_data

    def short(data_type="train", data_dir=None):
        corpus, word_to_id, id_to_word = load_data(data_type, data_dir)
        return (corpus[:TRAIN_TOKENS] if data_type == "train" else corpus), word_to_id, id_to_word

    monkeypatch.setattr(ptb, "load_data", short)


@pytest.fixture
def on_forward(monkeypatch):
    """on_forward(cls, n, action): at the n-th training forward of cls (counting from 1), return
    action(model, forward) instead, where forward() runs the real one."""
    def install(cls, n, action):
        original = cls.forward
        calls = [0]

        def forward(self, xs, ts, *args, **kwargs):
            if kwargs.get("train_flg", True) and not args:
                calls[0] += 1
                if calls[0] == n:
                    return action(self, lambda: original(self, xs, ts, *args, **kwargs))
            return original(self, xs, ts, *args, **kwargs)

        monkeypatch.setattr(cls, "forward", forward)
    return install


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A --max-iters smoke run of each model on full PTB: (out folder, stdout) by model."""
    runs = {}
    for model in ("rnnlm", "better"):
        out = tmp_path_factory.mktemp(model)
        code = train(out, "--model", model, "--max-iters", "6", "--save-every", "0")
        assert code == 0
        runs[model] = out
    return runs


# ------------------------------------------------------------------------------------ the command itself

def test_entry_point_help():
    exe = Path(sys.executable).with_name("fastlstm")
    done = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in ("train", "eval", "generate"):
        assert command in done.stdout


def test_every_flag_has_help():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) >= {"train", "eval", "generate"}
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"


# ------------------------------------------------------------------------------------ train

def test_train_smoke_writes_every_file(smoke):
    out = smoke["rnnlm"]
    for name in ("checkpoint.npz", "best.pkl", "log.csv"):
        assert (out / name).is_file()
    assert (out / "perplexity.png").read_bytes().startswith(b"\x89PNG")
    rows = read_log(out)
    assert [r["kind"] for r in rows] == ["train", "train", "valid", "test"]
    assert [r["iteration"] for r in rows[:2]] == ["4", "6"]  # an interval of 4, the last 2 flushed at the stop
    assert "partial epoch" in rows[2]["note"] and float(rows[3]["perplexity"]) > 1

    ckpt = checkpoint(out)
    assert ckpt["epoch"] == 0 and ckpt["iteration"] == ckpt["total_iterations"] == 6
    assert ckpt["time_idx"] == 6 * 8 and ckpt["best_ppl"] == math.inf  # the stop's report is not in the checkpoint
    assert ckpt["interval"][1] == 2 and ckpt["optimizer"]["lr"] == 20.0
    assert ckpt["config"]["model"] == "rnnlm" and ckpt["config"]["hidden_size"] == 16
    assert len(ckpt["lstm_states"]) == 1 and ckpt["lstm_states"][0][0].shape == (4, 16)
    assert ckpt["params"][0].dtype == np.float32  # full precision
    model = Rnnlm(10000, 16, 16)
    model.load_params(out / "best.pkl")  # the book's format

    better = checkpoint(smoke["better"])
    assert better["params"][-2] is None  # the tied embed_W.T is stored once
    assert len(better["lstm_states"]) == 2


def test_train_prints_progress_and_test_perplexity(tmp_path, capsys):
    assert train(tmp_path, "--max-iters", "4") == 0
    out = capsys.readouterr().out
    progress = [line for line in out.splitlines() if line.startswith("| epoch") and "tok/s" in line]
    assert len(progress) == 1 and "iter     4/29049" in progress[0] and "lr       20" in progress[0]
    test_ppl = float(read_log(tmp_path)[-1]["perplexity"])
    assert f"test perplexity: {test_ppl:.2f} (best.pkl)" in out


def test_epochs_validate_keep_the_best_and_divide_the_lr(tmp_path, small_train, monkeypatch, capsys):
    scripted = iter([500.0, 400.0, 450.0])
    monkeypatch.setattr(training, "eval_perplexity", lambda model, corpus, b, t: next(scripted, 300.0))
    assert train(tmp_path, "--model", "better", "--epochs", "3", "--save-every", "0") == 0
    valid = [r for r in read_log(tmp_path) if r["kind"] == "valid"]
    assert [r["note"] for r in valid] == ["improved: best.pkl saved", "improved: best.pkl saved",
                                          "not improved: lr 20 -> 5"]
    assert [float(r["lr"]) for r in valid] == [20.0, 20.0, 5.0]
    ckpt = checkpoint(tmp_path)
    assert (ckpt["epoch"], ckpt["iteration"], ckpt["time_idx"], ckpt["best_ppl"]) == (3, 0, 0, 400.0)
    assert ckpt["lstm_states"] == [(None, None), (None, None)]  # cleared after validation, as in the book
    trains = [r for r in read_log(tmp_path) if r["kind"] == "train"]
    assert [r["iteration"] for r in trains[:8]] == ["4", "8", "12", "16", "20", "24", "28", "31"]  # flushed at epoch end


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted 2-epoch BetterRnnlm run (dropout draws from the RNG) on the short train split."""
    out = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        load_data = ptb.load_data
        mp.setattr(ptb, "load_data", lambda t="train", d=None: _short(load_data, t, d))
        assert train(out, "--model", "better", "--epochs", "2") == 0
    return out


def _short(load_data, data_type, data_dir):
    corpus, w2i, i2w = load_data(data_type, data_dir)
    return (corpus[:TRAIN_TOKENS] if data_type == "train" else corpus), w2i, i2w


def _same_state(a, b):
    ckpt_a, ckpt_b = checkpoint(a), checkpoint(b)
    for p, q in zip(ckpt_a["params"], ckpt_b["params"]):
        assert (p is None and q is None) or np.array_equal(p, q)
    assert ckpt_a["time_idx"] == ckpt_b["time_idx"] and ckpt_a["best_ppl"] == ckpt_b["best_ppl"]


def test_max_iters_then_resume_reproduces_the_losses(reference_run, tmp_path, small_train):
    assert train(tmp_path, "--model", "better", "--epochs", "2", "--max-iters", "40") == 0
    assert train(tmp_path, "--model", "better", "--epochs", "2", "--resume") == 0
    assert losses(tmp_path) == losses(reference_run)
    _same_state(tmp_path, reference_run)


def test_keyboard_interrupt_leaves_a_resumable_checkpoint(reference_run, tmp_path, small_train, on_forward, capsys):
    def interrupt(model, forward):
        forward()  # the layers' state moves on; the checkpoint must not see it
        raise KeyboardInterrupt
    on_forward(BetterRnnlm, 45, interrupt)
    assert train(tmp_path, "--model", "better", "--epochs", "2") == 130
    err = capsys.readouterr().err
    assert "epoch 2, iteration 13/31" in err and f"fastlstm train --out {tmp_path} --resume" in err
    assert checkpoint(tmp_path)["total_iterations"] == 44
    assert (tmp_path / "best.pkl").is_file()
    assert cli.main(["train", "--out", str(tmp_path), "--resume"]) == 0
    assert losses(tmp_path) == losses(reference_run)
    _same_state(tmp_path, reference_run)


def test_ctrl_c_stops_after_the_current_iteration(reference_run, tmp_path, small_train, on_forward, capsys):
    def sigint(model, forward):
        os.kill(os.getpid(), signal.SIGINT)
        return forward()
    on_forward(BetterRnnlm, 20, sigint)
    handler = signal.getsignal(signal.SIGINT)
    assert train(tmp_path, "--model", "better", "--epochs", "2") == 130
    assert signal.getsignal(signal.SIGINT) is handler
    assert checkpoint(tmp_path)["total_iterations"] == 20
    assert "Ctrl-C" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(tmp_path), "--resume"]) == 0
    assert losses(tmp_path) == losses(reference_run)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, on_forward, capsys):
    on_forward(Rnnlm, 7, lambda model, forward: float("nan"))
    assert train(tmp_path, "--max-iters", "20", "--save-every", "5") == 1
    err = capsys.readouterr().err
    assert "loss is nan at epoch 1, iteration 7/29049" in err and "epoch 1, iteration 5" in err
    ckpt = checkpoint(tmp_path)
    assert ckpt["total_iterations"] == 5
    assert all(np.isfinite(p).all() for p in ckpt["params"])
    assert read_log(tmp_path)[-1]["kind"] == "diverged"


def test_second_ctrl_c_quits_without_saving(tmp_path, on_forward, capsys):
    def sigint_twice(model, forward):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        return forward()
    on_forward(Rnnlm, 3, sigint_twice)
    assert train(tmp_path, "--max-iters", "10") == 130
    assert "quit without saving" in capsys.readouterr().err
    assert checkpoint(tmp_path)["total_iterations"] == 0  # the one written at the start


def test_weights_gone_bad_are_not_checkpointed(tmp_path, on_forward, capsys):
    def poison(model, forward):
        loss = forward()
        model.params[0][0, 0] = np.inf  # the update that follows keeps it
        return loss
    on_forward(Rnnlm, 4, poison)
    assert train(tmp_path, "--max-iters", "10", "--save-every", "2") == 1
    assert "the weights hold NaN or inf after epoch 1, iteration 4/29049" in capsys.readouterr().err
    assert checkpoint(tmp_path)["total_iterations"] == 2


def test_train_refuses_user_mistakes(tmp_path, capsys):
    assert train(tmp_path / "a", "--data", str(tmp_path / "nowhere"), "--max-iters", "1") == 1
    assert "ptb.train.txt not found" in capsys.readouterr().err
    assert train(tmp_path / "b", "--dropout", "0.3") == 1
    assert "--dropout applies to --model better only" in capsys.readouterr().err
    assert train(tmp_path / "c", "--resume") == 1
    assert "nothing to resume" in capsys.readouterr().err
    assert train(tmp_path / "d", "--max-iters", "1") == 0
    capsys.readouterr()
    assert train(tmp_path / "d", "--max-iters", "1") == 1
    assert "already holds a run" in capsys.readouterr().err
    assert train(tmp_path / "d", "--resume", "--lr", "3") == 1
    err = capsys.readouterr().err
    assert "--lr 3.0 differs from the checkpoint's 20.0" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        cli.main(["train", "--dropout", "1.5"])


def test_train_without_matplotlib_notes_the_missing_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert train(tmp_path, "--max-iters", "1") == 0
    assert "perplexity.png not written" in capsys.readouterr().out
    assert not (tmp_path / "perplexity.png").exists()


# ------------------------------------------------------------------------------------ eval

def test_eval_book_format_pickle(tmp_path, capsys):
    np.random.seed(5)
    model = Rnnlm(10000, 16, 24)
    path = tmp_path / "Rnnlm.pkl"
    with open(path, "wb") as f:  # the book's save_params
        pickle.dump([p.astype(np.float16) for p in model.params], f)
    assert cli.main(["eval", "--params", str(path), "--eval-iters", "2"]) == 0
    out = capsys.readouterr().out
    assert "Rnnlm (V=10000, D=16, H=24, float32)" in out
    model.load_params(path)
    corpus = ptb.load_data("test")[0][:2 * 350 + 1]
    assert f"test perplexity: {eval_perplexity(model, corpus):.2f}" in out


def test_eval_train_outputs(smoke, capsys):
    for model, cls in (("rnnlm", "Rnnlm"), ("better", "BetterRnnlm")):
        for name in ("best.pkl", "checkpoint.npz"):
            assert cli.main(["eval", "--params", str(smoke[model] / name), "--split", "valid", "--eval-iters", "1"]) == 0
            out = capsys.readouterr().out
            assert f"{cls} (V=10000, D=16, H=16" in out and "valid perplexity: " in out


def test_eval_refuses_bad_files(smoke, tmp_path, capsys):
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle")
    wrong = tmp_path / "wrong.pkl"
    with open(wrong, "wb") as f:
        pickle.dump([np.zeros((3, 4), np.float16)] * 6, f)
    cases = [(tmp_path / "missing.pkl", "no such file"), (garbage, "not a readable pickle"),
             (smoke["rnnlm"] / "log.csv", "not a readable pickle"), (wrong, "do not fit the Rnnlm")]
    for path, message in cases:
        assert cli.main(["eval", "--params", str(path)]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert cli.main(["eval", "--params", str(smoke["rnnlm"] / "best.pkl"), "--model", "better"]) == 1
    assert "holds a Rnnlm, not the --model better" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ generate

def test_generate(smoke, capsys):
    params = str(smoke["rnnlm"] / "best.pkl")
    assert cli.main(["generate", "--params", params, "--start", "you", "--length", "30", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    words = text.replace(".\n", " <eos> ").split()
    assert len(words) == 30 and words[0] == "you"
    assert not {"<unk>", "N", "$"} & set(words)
    assert cli.main(["generate", "--params", params, "--start", "you", "--length", "30", "--seed", "1"]) == 0
    assert capsys.readouterr().out == text


def test_generate_unknown_word_lists_close_ones(smoke, capsys):
    assert cli.main(["generate", "--params", str(smoke["rnnlm"] / "best.pkl"), "--start", "yuo"]) == 1
    err = capsys.readouterr().err
    assert "'yuo' is not in PTB's vocabulary; close words: " in err and "you" in err
