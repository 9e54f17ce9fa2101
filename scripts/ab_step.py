"""Time a training or evaluation step of this checkout against the same step at another
commit, alternating the two in one process.

This shared machine's speed moves from minute to minute by more than most changes gain,
so two runs of the bench cannot tell a change of a few percent. Here each round times one
step of each version back to back (in turns, which goes first), and the figure is the
median over the rounds of the ratio old / new.

The other commit's `fastlstm` and `kernels` are taken with `git archive` into a scratch
folder, renamed `fastlstm_old` so that both import side by side (its kernels compile on
first use, into that folder, which goes when the run ends). Run it with the benchmark environment:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/ab_step.py HEAD~2 --model better --step train
"""

import argparse
import importlib
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def old_package(rev, folder):
    """Unpack `rev`'s fastlstm and kernels into folder/fastlstm_old and return the folder."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "fastlstm", "kernels"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    package = folder / "fastlstm_old"
    (folder / "fastlstm").rename(package)
    kernels = package / "kernels"
    if kernels.is_symlink():  # the checkout's link to the top-level kernels/
        kernels.unlink()
    (folder / "kernels").rename(kernels)
    for path in package.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\bfastlstm\.", "fastlstm_old.", text)
        text = re.sub(r"\bfrom fastlstm import\b", "from fastlstm_old import", text)
        text = re.sub(r"^import fastlstm$", "import fastlstm_old as fastlstm", text, flags=re.M)
        path.write_text(text)
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the commit to compare against, e.g. HEAD~1")
    parser.add_argument("--model", choices=["rnnlm", "better"], default="better")
    parser.add_argument("--step", choices=["train", "eval"], default="train")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fastlstm-ab-") as folder:
        sys.path.insert(0, str(old_package(args.rev, Path(folder))))
        compare(args)


def compare(args):
    """Time args.rounds rounds of both steps and print the figures."""
    steps = {}
    for name, package in (("old", "fastlstm_old"), ("new", "fastlstm")):
        module = importlib.import_module(package)
        module.set_num_threads(args.threads)
        steps[name], _ = importlib.import_module(f"{package}.benchmark").make_step(args.model, "fastlstm", args.step)
    for step in steps.values():
        for _ in range(3):  # compile and warm
            step()
    seconds = {name: [] for name in steps}
    for r in range(args.rounds):
        for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
            start = time.perf_counter()
            steps[name]()
            seconds[name].append(time.perf_counter() - start)
    ratio = np.array(seconds["old"]) / np.array(seconds["new"])
    print(f"{args.model} {args.step}, {args.threads} threads, {args.rounds} rounds: "
          f"{args.rev} {np.median(seconds['old']) * 1e3:.1f} ms, this checkout {np.median(seconds['new']) * 1e3:.1f} ms "
          f"(medians); old / new per round: median {np.median(ratio):.3f}, quartiles "
          f"{np.percentile(ratio, 25):.3f} to {np.percentile(ratio, 75):.3f}, new faster in {int((ratio > 1).sum())}")


if __name__ == "__main__":
    main()
