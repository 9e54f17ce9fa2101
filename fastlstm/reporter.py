"""What a `fastlstm train` run prints and writes as it goes: its header, a fixed-width progress
line per interval, the validation and test lines, log.csv and perplexity.png.

The reporter reads the run's position (fastlstm.checkpoint.Position) and keeps in it what a
resumed run must report alike: the log rows, and the loss of the interval not yet reported.
"""

import csv
import io
import math
import os
import time

from fastlstm import plotting
from fastlstm.checkpoint import LOG_FIELDS, is_view_of_earlier
from fastlstm.files import atomic_write

LOG, PLOT = "log.csv", "perplexity.png"
# the settings a header names when they are on
REGULARISERS = ("dropout", "input_dropout", "hidden_dropout", "recurrent_dropout", "embed_dropout", "weight_drop",
                "alpha", "beta")


class Reporter:
    """The reports of one run in folder `out`, with settings `config` and epochs of
    iters_per_epoch iterations, at `position`, training with `optimizer` (its lr is reported).
    `start` starts its clocks, before the first report. Without `writes` (a distributed run's
    ranks but rank 0) it keeps the log in the position but writes no file."""

    def __init__(self, out, config, iters_per_epoch, position, optimizer, title, writes=True):
        self.path = {name: os.path.join(out, name) for name in (LOG, PLOT)}
        self.writes = writes
        self.config, self.iters_per_epoch = config, iters_per_epoch
        self.pos, self.optimizer, self.title = position, optimizer, title
        self.plot_note_shown = False

    def start(self):
        """Start the clocks: elapsed seconds go on from the position's, tokens/s counts from now."""
        self.before = self.pos.elapsed_s
        self.t0 = self.timer = time.perf_counter()
        self.timed_iters = 0

    def elapsed(self):
        """Seconds of training so far, over all the runs that resumed one another."""
        return self.before + time.perf_counter() - self.t0

    def header(self, model, out, resumed_from=None):
        """The model, the schedule and the output folder; `resumed_from` names the checkpoint continued."""
        c = self.config
        params = model.params
        n_params = sum(p.size for i, p in enumerate(params) if not is_view_of_earlier(params, i))
        clip = f"clip {c['max_grad']:g}" if c["max_grad"] else "no clipping"
        layers = f", {c['num_layers']} layers" if c.get("num_layers") else ""
        drop = "".join(f", {key.replace('_', ' ')} {c[key]:g}" for key in REGULARISERS if c.get(key))
        print(f"{type(model).__name__}: vocabulary {params[0].shape[0]}, wordvec {c['wordvec_size']}, "
              f"hidden {c['hidden_size']}{layers}{drop}, {c['dtype']}, {n_params:,} params")
        asgd = f", averaged (ASGD) after {c['asgd']} checks without gain" if c.get("asgd") else ""
        decay = f", weight decay {c['weight_decay']:g}" if c.get("weight_decay") else ""
        ranks = f" ({c['ranks']} ranks of {c['batch_size'] // c['ranks']} rows)" if c.get("ranks", 1) > 1 else ""
        print(f"{c['epochs']} epochs x {self.iters_per_epoch} iterations of batch {c['batch_size']}{ranks} x time "
              f"{c['time_size']}, lr {c['lr']:g}{' (/4 when validation does not improve)' if c['lr_decay'] else ''}"
              f"{asgd}{decay}, {clip}; output in {out}")
        if resumed_from is not None:
            print(f"resuming {resumed_from}, lr {self.optimizer.lr:g}")

    def step(self, loss):
        """Count a training step of this loss into the current interval."""
        total, count = self.pos.interval
        self.pos.interval = (total + loss, count + 1)
        self.timed_iters += 1

    def progress(self):
        """The fixed-width line and log row of the interval that ends now."""
        c = self.config
        total, count = self.pos.interval
        ppl = math.exp(total / count)
        now = time.perf_counter()
        timed = self.timed_iters
        tokens_per_s = timed * c["batch_size"] * c["time_size"] / (now - self.timer) if timed else math.nan
        row = self._row("train", ppl, tokens_per_s=round(tokens_per_s, 1))
        self.pos.log.append(row)
        speed = f"{tokens_per_s:8.0f}" if timed else f"{'-':>8}"  # none timed yet after a resume
        print(f"| epoch {row['epoch']:3d} | iter {self.pos.iteration:5d}/{self.iters_per_epoch:5d} "
              f"| lr {row['lr']:8.4g} | train ppl {ppl:9.2f} | {speed} tok/s | {row['elapsed_s']:9.1f} s |", flush=True)
        self.pos.interval = (0.0, 0)
        self.timer, self.timed_iters = now, 0

    def flush(self):
        """The progress line of the steps not yet reported, if any."""
        if self.pos.interval[1]:
            self.progress()

    def result(self, kind, ppl, note):
        """The line and log row of a validation ('valid') or test ('test') perplexity."""
        row = self._row(kind, ppl, note)
        self.pos.log.append(row)
        name = {"valid": "valid ppl", "test": "test ppl "}[kind]
        print("-" * 92)
        print(f"| epoch {row['epoch']:3d} | {name} {ppl:9.2f} | {note:<45s} | {row['elapsed_s']:9.1f} s |")
        print("-" * 92, flush=True)

    def diverged(self, message):
        """Log the divergence and write the files."""
        self.pos.log.append(self._row("diverged", math.nan, message))
        self.write()

    def write(self):
        """log.csv from the log so far, and perplexity.png when matplotlib is there."""
        if not self.writes:
            return
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=LOG_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.pos.log)
        atomic_write(self.path[LOG], lambda f: f.write(text.getvalue().encode()))
        train = [(r["total_iterations"], r["perplexity"]) for r in self.pos.log if r["kind"] == "train"]
        valid = [(r["total_iterations"], r["perplexity"]) for r in self.pos.log if r["kind"] == "valid"]
        try:
            atomic_write(self.path[PLOT], lambda f: plotting.save_curves(f, train, valid, self.title))
        except ImportError as e:
            if not self.plot_note_shown:
                print(f"{PLOT} not written: {e}")
                self.plot_note_shown = True

    def _row(self, kind, ppl, note="", tokens_per_s=""):
        pos = self.pos
        # between epochs, a test follows the epoch just finished
        epoch = pos.epoch + (1 if kind != "test" or pos.iteration > 0 else 0)
        return {"kind": kind, "epoch": epoch, "iteration": pos.iteration, "total_iterations": pos.total_iterations,
                "lr": self.optimizer.lr, "perplexity": ppl, "tokens_per_s": tokens_per_s,
                "elapsed_s": round(self.elapsed(), 3), "note": note}
