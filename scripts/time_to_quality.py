"""Quality per CPU hour: the book's per-element dropout against the variational recipe, on a
2-layer, 200-wide, tied model on PTB, each trained under one time budget.

Each recipe is one `fastlstm train` run (seeded, in its own folder under --out) that stops at
--budget minutes of wall-clock time, or when its epochs are done, and then tests its best
weights. The runs go one after the other, or with --side-by-side both at once on one thread
each, so that they share the machine and its load equally (on two cores, as the figures in
docs were taken). The script then reads both runs' log.csv and writes

    docs/time_to_quality.csv  a row per validation and per test: recipe, kind, epoch, minutes, perplexity
    docs/time_to_quality.png  validation perplexity against wall-clock minutes, the test perplexities in the legend

--plot-only writes these two from the run folders already under --out, without training.
The comparison the docs report (docs/performance.md) ran, with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset, as

    python scripts/time_to_quality.py --side-by-side --budget 75 --data ../shared/data/ptb

Tune the variational recipe's ratios and learning rate (VARIATIONAL below, or extra flags
after --) on the validation split only; the test perplexity is read once, at the end.
"""

import argparse
import csv
import subprocess
import sys
from pathlib import Path

from fastlstm.cli import positive_float, positive_int, seed_value

ROOT = Path(__file__).resolve().parent.parent
SIZES = ["--wordvec-size", "200", "--hidden-size", "200"]
# The book's BetterRnnlm recipe (per-element dropout 0.5, lr 20, /4 when validation does not improve), at 200 wide.
BOOK = ["--model", "better", *SIZES]
# BetterRnnlm's shape with locked dropout, recurrent dropout, embedding dropout, weight drop and NT-ASGD.
VARIATIONAL = ["--model", "variational", *SIZES, "--dropout", "0.4", "--recurrent-dropout", "0.2",
               "--embed-dropout", "0.1", "--weight-drop", "0.2", "--asgd", "5"]
RECIPES = {"book dropout": BOOK, "variational": VARIATIONAL}
FIELDS = ("recipe", "kind", "epoch", "minutes", "perplexity")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Flags after -- go to both `fastlstm train` runs.")
    p.add_argument("--budget", type=positive_float, default=75.0, metavar="MINUTES",
                   help="minutes of training per recipe (default: 75)")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="the PTB folder of both runs (default: fastlstm's lookup, $FASTLSTM_DATA first)")
    p.add_argument("--out", type=Path, metavar="DIR", default=ROOT / "runs" / "time_to_quality",
                   help="folder of the two runs (default: runs/time_to_quality)")
    p.add_argument("--docs", type=Path, metavar="DIR", default=ROOT / "docs",
                   help="where the CSV and PNG go (default: docs)")
    p.add_argument("--seed", type=seed_value, default=1, help="seed of both runs (default: 1)")
    p.add_argument("--eval-iters", type=positive_int, metavar="N",
                   help="validate and test on the first N batches only (smoke runs)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads of each run (default: every core; 1 side by side)")
    p.add_argument("--side-by-side", action="store_true",
                   help="train both recipes at once, one thread each, their output in <out>/<recipe>.out")
    p.add_argument("--plot-only", action="store_true",
                   help="write the CSV and PNG from the runs already under --out, without training")
    p.add_argument("extra", nargs="*", help="more `fastlstm train` flags for both runs, after --")
    args = p.parse_args(argv)
    if args.side_by_side and args.threads not in (None, 1):
        p.error("--side-by-side runs each recipe on one thread; leave out --threads")
    if args.side_by_side:
        args.threads = 1
    return args


def folder(args, name):
    """The run folder of recipe `name`."""
    return args.out / name.replace(" ", "_")


def command(name, args):
    """The `fastlstm train` command line of recipe `name`, as a list."""
    flags = ["train", "--out", str(folder(args, name)), "--time-budget", str(args.budget), "--seed", str(args.seed),
             *RECIPES[name], *args.extra]
    for flag, value in (("--data", args.data), ("--eval-iters", args.eval_iters), ("--threads", args.threads)):
        if value is not None:
            flags += [flag, str(value)]
    return [sys.executable, "-m", "fastlstm", *flags]


def train(args):
    """Run both recipes, one after the other or side by side; returns the first failing exit status, or 0."""
    args.out.mkdir(parents=True, exist_ok=True)
    commands = {name: command(name, args) for name in RECIPES}
    for name, argv in commands.items():
        print("fastlstm " + " ".join(argv[3:]), flush=True)
    if not args.side_by_side:
        for argv in commands.values():
            status = subprocess.run(argv).returncode
            if status != 0:
                return status
        return 0
    runs = {}
    for name, argv in commands.items():
        log = args.out / f"{folder(args, name).name}.out"
        print(f"{name}: output in {log}", flush=True)
        with open(log, "w") as f:
            runs[name] = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
    statuses = {name: run.wait() for name, run in runs.items()}
    failed = {name: status for name, status in statuses.items() if status != 0}
    for name, status in failed.items():
        print(f"{name} failed with exit status {status}: see {args.out / (folder(args, name).name + '.out')}",
              file=sys.stderr)
    return next(iter(failed.values()), 0)


def rows_of(name, path):
    """The validation and test rows of one run's log.csv, as FIELDS."""
    log = path / "log.csv"
    if not log.is_file():
        raise SystemExit(f"time_to_quality: no {log}: train the runs first (without --plot-only)")
    with open(log, newline="") as f:
        return [{"recipe": name, "kind": r["kind"], "epoch": r["epoch"],
                 "minutes": round(float(r["elapsed_s"]) / 60, 3), "perplexity": round(float(r["perplexity"]), 2)}
                for r in csv.DictReader(f) if r["kind"] in ("valid", "test")]


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_png(rows, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), layout="tight")
    ax = fig.add_subplot()
    for name in RECIPES:
        valid = [(r["minutes"], r["perplexity"]) for r in rows if r["recipe"] == name and r["kind"] == "valid"]
        test = [r["perplexity"] for r in rows if r["recipe"] == name and r["kind"] == "test"]
        label = name + (f" (test {test[-1]:.2f})" if test else "")
        if valid:
            ax.plot(*zip(*valid), "o-", markersize=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("wall-clock minutes")
    ax.set_ylabel("validation perplexity")
    ax.set_title("2-layer 200-wide tied LSTM on PTB")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(path, format="png")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.plot_only:
        status = train(args)
        if status != 0:
            return status
    rows = [row for name in RECIPES for row in rows_of(name, folder(args, name))]
    args.docs.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.docs / "time_to_quality.csv")
    write_png(rows, args.docs / "time_to_quality.png")
    for name in RECIPES:
        final = {r["kind"]: r for r in rows if r["recipe"] == name}
        if "test" not in final:
            print(f"{name}: no test row yet (the run did not finish)")
            continue
        print(f"{name}: validation {final['valid']['perplexity']}, test {final['test']['perplexity']}, "
              f"{final['test']['minutes']} minutes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
