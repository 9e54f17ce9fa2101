"""Quality per CPU hour: the book's per-element dropout against the variational recipe, on a
2-layer, 200-wide, tied model on PTB, trained one after the other under one time budget each.

Each recipe is one `fastlstm train` run (seeded, in its own folder under --out) that stops at
--time-budget minutes of wall-clock time, or when its epochs are done, and then tests its best
weights. The script then reads both runs' log.csv and writes

    docs/time_to_quality.csv  a row per validation and per test: recipe, kind, epoch, minutes, perplexity
    docs/time_to_quality.png  validation perplexity against wall-clock minutes, the test perplexities in the legend

The comparison the docs report (docs/performance.md) ran as

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/time_to_quality.py --budget 75

Tune the variational recipe's ratios and learning rate (VARIATIONAL below, or extra flags
after --) on the validation split only; the test perplexity is read once, at the end.
"""

import argparse
import csv
import sys
from pathlib import Path

from fastlstm import cli

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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="Flags after -- go to both `fastlstm train` runs.")
    p.add_argument("--budget", type=float, default=75.0, help="minutes of training per recipe (default: 75)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "time_to_quality",
                   help="folder of the two runs (default: runs/time_to_quality)")
    p.add_argument("--docs", type=Path, default=ROOT / "docs", help="where the CSV and PNG go (default: docs)")
    p.add_argument("--seed", type=int, default=1, help="seed of both runs (default: 1)")
    p.add_argument("--eval-iters", type=int, help="validate and test on the first N batches only (smoke runs)")
    p.add_argument("--threads", type=int, help="threads of both runs (default: every core)")
    p.add_argument("extra", nargs="*", help="more `fastlstm train` flags for both runs, after --")
    return p.parse_args(argv)


def train(name, flags, args):
    """Run one recipe into args.out / name; returns its exit status."""
    command = ["train", "--out", str(args.out / name.replace(" ", "_")), "--time-budget", str(args.budget),
               "--seed", str(args.seed), *flags, *args.extra]
    if args.eval_iters:
        command += ["--eval-iters", str(args.eval_iters)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    print("fastlstm " + " ".join(command), flush=True)
    return cli.main(command)


def rows_of(name, folder):
    """The validation and test rows of one run's log.csv, as FIELDS."""
    with open(folder / "log.csv", newline="") as f:
        return [{"recipe": name, "kind": r["kind"], "epoch": r["epoch"],
                 "minutes": round(float(r["elapsed_s"]) / 60, 3), "perplexity": round(float(r["perplexity"]), 2)}
                for r in csv.DictReader(f) if r["kind"] in ("valid", "test")]


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_png(rows, path, budget):
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
    ax.set_title(f"2-layer 200-wide tied LSTM on PTB, {budget:g} minutes each")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(path, format="png")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for name, flags in RECIPES.items():
        status = train(name, flags, args)
        if status != 0:
            return status
    rows = [row for name in RECIPES for row in rows_of(name, args.out / name.replace(" ", "_"))]
    args.docs.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.docs / "time_to_quality.csv")
    write_png(rows, args.docs / "time_to_quality.png", args.budget)
    for name in RECIPES:
        final = {r["kind"]: r for r in rows if r["recipe"] == name}
        print(f"{name}: validation {final['valid']['perplexity']}, test {final['test']['perplexity']}, "
              f"{final['test']['minutes']} minutes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
