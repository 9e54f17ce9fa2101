"""`fastlstm train --model variational | awd`: the full-size recipes by smoke runs, their
files evaluated and sampled, an exact resume with ASGD averaging, --time-budget, and the
settings each model takes."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastlstm import cli, recipes, reporter, settings
from fastlstm.checkpoint import Checkpoint
from fastlstm.dataset import ptb
from fastlstm.optimizer import ASGD
from fastlstm.util import eval_perplexity
from test_cli import SMALL, checkpoint, read_log, restore_threads, small_train  # noqa: F401  (fixtures)


def losses(out):
    """(kind, epoch, iteration, perplexity, note) of the train and valid rows, as logged."""
    return [(r["kind"], r["epoch"], r["iteration"], r["perplexity"], r["note"]) for r in read_log(out)
            if r["kind"] in ("train", "valid")]


@pytest.fixture(scope="module")
def full_size(tmp_path_factory):
    """Two iterations of each full-size recipe (BetterRnnlm's and AWD-LSTM's sizes, their
    published settings), validated and tested on one batch: {model: out folder}."""
    runs = {}
    for model in ("variational", "awd"):
        out = tmp_path_factory.mktemp(model)
        assert cli.main(["train", "--model", model, "--out", str(out), "--max-iters", "2", "--eval-iters", "1",
                         "--eval-interval", "1"]) == 0
        runs[model] = out
    return runs


def test_full_size_recipes_train_save_evaluate_and_generate(full_size, capsys):
    for model, cls, shapes in (("variational", "VariationalRnnlm", "D=650, H=650"),
                               ("awd", "AwdRnnlm", "D=400, H=1150")):
        out = full_size[model]
        ckpt = checkpoint(out)
        assert ckpt["config"] == {"model": model, **settings.RECIPES[model], **settings.DEFAULTS,
                                  "max_iters": 2, "eval_iters": 1, "eval_interval": 1}
        assert ckpt["total_iterations"] == 2 and ckpt["optimizer"]["type"] == ("ASGD" if model == "awd" else "SGD")
        kinds = [r["kind"] for r in read_log(out)]
        assert kinds == ["train", "train", "valid", "test"]
        train_ppl = [float(r["perplexity"]) for r in read_log(out) if r["kind"] == "train"]
        assert 100 < train_ppl[1] < train_ppl[0] < 20000
        # a book-format file of VariationalRnnlm's weights has BetterRnnlm's layout (and evaluates alike)
        inferred = {"best.pkl": "BetterRnnlm" if model == "variational" else cls, "checkpoint.npz": cls}
        for params, name in inferred.items():
            assert cli.main(["eval", "--params", str(out / params), "--split", "valid", "--eval-iters", "1"]) == 0
            assert f"{name} (V=10000, {shapes}" in capsys.readouterr().out
        assert cli.main(["eval", "--params", str(out / "best.pkl"), "--model", model, "--eval-iters", "1"]) == 0
        assert f"{cls} (V=10000, {shapes}" in capsys.readouterr().out
        assert cli.main(["generate", "--params", str(out / "best.pkl"), "--start", "you", "--length", "5",
                         "--seed", "1"]) == 0
        assert len(capsys.readouterr().out.replace(".\n", " <eos> ").split()) == 5


def test_recipes_hold_the_published_settings():
    awd = settings.RECIPES["awd"]
    assert (awd["wordvec_size"], awd["hidden_size"], awd["num_layers"]) == (400, 1150, 3)
    assert (awd["dropout"], awd["hidden_dropout"], awd["input_dropout"], awd["embed_dropout"], awd["weight_drop"]) == \
        (0.4, 0.25, 0.4, 0.1, 0.5)
    assert (awd["alpha"], awd["beta"], awd["lr"], awd["max_grad"], awd["batch_size"], awd["time_size"]) == \
        (2.0, 1.0, 30.0, 0.25, 20, 70)
    assert (awd["asgd"], awd["weight_decay"], awd["epochs"], awd["lr_decay"]) == (5, 1.2e-6, 500, False)
    variational = settings.RECIPES["variational"]
    assert (variational["dropout"], variational["recurrent_dropout"], variational["embed_dropout"]) == (0.5, 0.3, 0.3)
    better = settings.RECIPES["better"]
    assert all(variational[k] == better[k] for k in better if k != "dropout")


def test_resume_with_averaging_reproduces_the_run(small_train, tmp_path, monkeypatch):
    """ASGD switches after the third validation (the first two figures are lowered, so the
    third is worse than the best before the last); a run stopped in the averaged fourth epoch
    and resumed ends as the uninterrupted one, bit for bit, its average included."""
    observe = ASGD.observe
    monkeypatch.setattr(ASGD, "observe", lambda self, figure: observe(self, figure - 1000 * (len(self.history) < 2)))
    flags = ["--model", "awd", "--epochs", "4", "--asgd", "1", "--save-every", "0"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert cli.main(["train", "--out", str(whole), *SMALL, *flags]) == 0
    assert cli.main(["train", "--out", str(split), *SMALL, *flags, "--max-iters", "100"]) == 0
    assert checkpoint(split)["optimizer"]["averaged_steps"] == 100 - 93
    assert cli.main(["train", "--out", str(split), "--resume"]) == 0
    assert losses(split) == losses(whole)
    notes = [r["note"] for r in read_log(whole) if r["kind"] == "valid"]
    assert "ASGD averages from now on" in notes[2] and "ASGD" not in notes[1] + notes[3]
    a, b = checkpoint(whole), checkpoint(split)
    assert a["optimizer"]["averaged_steps"] == 31
    for p, q in zip(a["params"] + a["optimizer"]["ax"], b["params"] + b["optimizer"]["ax"]):
        assert (p is None and q is None) or np.array_equal(p, q)

    # evaluation of the checkpoint takes the averaged weights
    ckpt = Checkpoint.read(whole / "checkpoint.npz")
    net, _ = recipes.load_model(whole / "checkpoint.npz")
    averaged = [a for a in ckpt.optimizer["ax"]]
    distinct = recipes.distinct_params(net.params)
    assert all(np.array_equal(p, a) for p, a in zip(distinct, averaged))


def test_time_budget_stops_cleanly_and_tests_the_best_weights(small_train, tmp_path, monkeypatch):
    monkeypatch.setattr(reporter.Reporter, "elapsed", lambda self: 10.0 * self.pos.total_iterations)  # 10 s a step
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), *SMALL, "--model", "variational", "--time-budget", "0.5"]) == 0
    assert checkpoint(out)["total_iterations"] == 3
    rows = read_log(out)
    assert [r["kind"] for r in rows][-2:] == ["valid", "test"]
    assert rows[-2]["note"] == "partial epoch (--time-budget): best.pkl saved" and rows[-1]["note"] == "best.pkl"
    assert (out / "best.pkl").is_file()
    assert cli.main(["train", "--out", str(out), "--resume", "--max-iters", "5"]) == 0  # the budget is not kept
    assert checkpoint(out)["total_iterations"] == 5


def test_settings_a_model_does_not_take_are_refused(tmp_path, capsys):
    cases = [(["--model", "awd", "--recurrent-dropout", "0.2"], "--recurrent-dropout applies to --model variational only"),
             (["--model", "better", "--alpha", "2"], "--alpha applies to --model variational only (and to awd)"),
             (["--model", "variational", "--num-layers", "2"], "--num-layers applies to --model awd only"),
             (["--model", "rnnlm", "--weight-drop", "0.2"], "--weight-drop applies to --model variational only (and "
                                                            "to awd): Rnnlm has no such setting")]
    for i, (flags, message) in enumerate(cases):
        assert cli.main(["train", "--out", str(tmp_path / str(i)), *flags]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not (tmp_path / str(i)).exists()


def test_eval_infers_an_awd_file_and_refuses_a_wrong_model(tmp_path, capsys):
    np.random.seed(0)
    model = settings.MODELS["awd"](10000, 8, 12, num_layers=2)
    path = tmp_path / "awd.pkl"
    model.save_params(path)
    assert cli.main(["eval", "--params", str(path), "--eval-iters", "1"]) == 0
    assert "AwdRnnlm (V=10000, D=8, H=12, float32)" in capsys.readouterr().out
    model.load_params(path)
    corpus = ptb.load_data("test")[0][:351]
    capsys.readouterr()
    want = eval_perplexity(model, corpus)
    assert cli.main(["eval", "--params", str(path), "--eval-iters", "1"]) == 0
    assert f"test perplexity: {want:.2f}" in capsys.readouterr().out
    assert cli.main(["eval", "--params", str(path), "--model", "better"]) == 1
    assert "holds a AwdRnnlm, not the --model better" in capsys.readouterr().err


def test_time_to_quality_script_writes_its_csv_and_png(ptb_dir, tmp_path):
    """The comparison script side by side, with a budget of seconds and one batch of validation;
    then --plot-only writes the same CSV from the run folders."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "FASTLSTM_DATA"}  # --data alone says where PTB is

    def script(*flags):
        return subprocess.run([sys.executable, str(root / "scripts" / "time_to_quality.py"), "--out",
                               str(tmp_path / "runs"), *flags], capture_output=True, text=True, timeout=600,
                              env={**env, "PYTHONPATH": str(root)})

    refused = script("--plot-only", "--docs", str(tmp_path / "none"))  # no runs yet
    assert refused.returncode == 1 and "train the runs first" in refused.stderr and not (tmp_path / "none").exists()
    refused = script("--side-by-side", "--threads", "2")
    assert refused.returncode == 2 and "--side-by-side runs each recipe on one thread" in refused.stderr
    done = script("--budget", "0.1", "--eval-iters", "1", "--side-by-side", "--data", str(ptb_dir),
                  "--docs", str(tmp_path / "docs"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(tmp_path / "docs" / "time_to_quality.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["recipe"], r["kind"]) for r in rows] == [("book dropout", "valid"), ("book dropout", "test"),
                                                         ("variational", "valid"), ("variational", "test")]
    assert all(0 < float(r["minutes"]) < 5 and float(r["perplexity"]) > 1 for r in rows)
    assert (tmp_path / "docs" / "time_to_quality.png").read_bytes()[:4] == b"\x89PNG"
    assert "--model variational" in done.stdout and f"--data {ptb_dir} --eval-iters 1 --threads 1" in done.stdout
    assert "test" in done.stdout.splitlines()[-1]
    for recipe in ("book_dropout", "variational"):
        assert "test perplexity" in (tmp_path / "runs" / f"{recipe}.out").read_text()
    again = script("--plot-only", "--docs", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    csv_text = (tmp_path / "docs" / "time_to_quality.csv").read_text()
    assert (tmp_path / "again" / "time_to_quality.csv").read_text() == csv_text
    assert again.stdout.splitlines()[-1] == done.stdout.splitlines()[-1]
