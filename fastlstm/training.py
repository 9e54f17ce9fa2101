"""`fastlstm train`: the book's chapter 6 recipes as a run that checkpoints, logs, plots and resumes exactly.

Batches follow the stateful layout of `fastlstm.trainer`. As in the book's scripts, the
rnnlm recipe runs its epochs as one `trainer.fit(..., max_epoch=4)`: the data position
(time_idx) and the LSTM state carry on from epoch to epoch. The better recipe calls
`trainer.fit(..., max_epoch=1)` per epoch: both start afresh every epoch. After every
epoch comes validation with `eval_perplexity` (batch 10, time 35), from a cleared state. A better validation perplexity saves `best.pkl`; with lr decay on
(the better recipe) a worse one divides the lr by 4. The run ends by testing the best weights.

The output folder holds:
  checkpoint.pkl  everything a resumed run needs to continue bit for bit: full-precision
                  params, optimizer state (with the lr), epoch, iteration, time_idx, best
                  validation perplexity, NumPy's global RNG state (dropout draws from it),
                  the LSTM h/c states, the unfinished interval's loss, the log, the settings
  best.pkl        the best-validated weights in the book's float16 format (model.save_params)
  log.csv         a row per progress interval ('train'), validation ('valid') and test ('test')
  perplexity.png  the curves, when matplotlib is installed

Files are written to a temporary file and renamed, so a killed run never leaves a broken one.
A run stopped by --max-iters in mid-epoch saves its checkpoint first and then validates and
tests the weights as they are; that report stays out of the checkpoint, so a --resume
continues exactly as if the run had never stopped.
"""

import csv
import io
import math
import os
import pickle
import signal
import sys
import time

import numpy as np

from fastlstm import plotting
from fastlstm.dataset import ptb
from fastlstm.files import atomic_write
from fastlstm.models import BetterRnnlm, Rnnlm
from fastlstm.optimizer import SGD
from fastlstm.trainer import stateful_batch
from fastlstm.training_step import train_step
from fastlstm.util import eval_perplexity

MODELS = {"rnnlm": Rnnlm, "better": BetterRnnlm}
# the book's ch06 train_rnnlm.py and train_better_rnnlm.py
RECIPES = {
    "rnnlm": dict(wordvec_size=100, hidden_size=100, dropout=None, epochs=4, batch_size=20, time_size=35,
                  lr=20.0, max_grad=0.25, lr_decay=False, continuous_epochs=True),
    "better": dict(wordvec_size=650, hidden_size=650, dropout=0.5, epochs=40, batch_size=20, time_size=35,
                   lr=20.0, max_grad=0.25, lr_decay=True, continuous_epochs=False),
}
DEFAULTS = dict(eval_interval=20, eval_iters=None, save_every=200, seed=None, dtype="float32", max_iters=None)
RESUME_MAY_CHANGE = ("epochs", "max_iters", "eval_interval", "save_every")  # none changes the arithmetic
EVAL_BATCH, EVAL_TIME = 10, 35  # the book's eval_perplexity protocol
CHECKPOINT, BEST, LOG, PLOT = "checkpoint.pkl", "best.pkl", "log.csv", "perplexity.png"
FORMAT = "fastlstm-checkpoint"
LOG_FIELDS = ("kind", "epoch", "iteration", "total_iterations", "lr", "perplexity", "tokens_per_s", "elapsed_s", "note")


class UserError(Exception):
    """A mistake the user can fix (bad file, flag, word): the CLI prints it as one line, without a traceback."""


class Diverged(Exception):
    """The loss, the gradient norm or the weights became NaN or inf; the message says where."""


class _Abort(BaseException):
    """A second Ctrl-C: quit at once, without saving."""


def flag(key):
    """The command-line flag of a setting: 'max_grad' -> '--max-grad'."""
    return "--" + key.replace("_", "-")


def resolve_config(options, saved=None):
    """The run's settings: the recipe of options['model'] updated by the options given; on resume the
    saved settings, of which only RESUME_MAY_CHANGE may be given other values."""
    if saved is None:
        name = options.get("model", "rnnlm")
        if name == "rnnlm" and options.get("dropout") is not None:
            raise UserError("--dropout applies to --model better only: Rnnlm has no dropout layers")
        return {"model": name, **RECIPES[name], **DEFAULTS, **options}
    config = dict(saved, max_iters=options.get("max_iters"))  # a limit of this invocation only
    for key, value in options.items():
        if key in RESUME_MAY_CHANGE:
            config[key] = value
        elif value != config[key]:
            raise UserError(f"{flag(key)} {value} differs from the checkpoint's {config[key]}; a resumed run keeps "
                            f"its settings (only {', '.join(map(flag, RESUME_MAY_CHANGE))} may change)")
    return config


def build_model(config, vocab_size):
    """A fresh model of config's kind and sizes (weights drawn from NumPy's global RNG, as in the book)."""
    kwargs = {"dtype": np.dtype(config["dtype"]).type}
    if config["model"] == "better":
        kwargs["dropout_ratio"] = config["dropout"]
    return MODELS[config["model"]](vocab_size, config["wordvec_size"], config["hidden_size"], **kwargs)


def read_pickle(path):
    """The object pickled in path; UserError when it is missing or unreadable. Load only files you trust."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except Exception as e:  # unpickling garbage raises anything from EOFError to ImportError
        raise UserError(f"{path} is not a readable pickle ({type(e).__name__}: {e})") from None


def _is_view_of_earlier(params, i):
    """True when params[i] shares memory with an earlier param (the tied embed_W.T)."""
    return any(np.may_share_memory(params[i], q) for q in params[:i])


def _checkpoint_params(params):
    """Full-precision copies of params; None for a view of an earlier one, which loading that one restores."""
    return [None if _is_view_of_earlier(params, i) else p.copy() for i, p in enumerate(params)]


def _load_checkpoint_params(model, saved, path):
    """Write a checkpoint's params into model's arrays in place (None entries are views of earlier ones)."""
    if len(saved) != len(model.params):
        raise UserError(f"{path} holds {len(saved)} params, the model has {len(model.params)}")
    for i, (p, a) in enumerate(zip(model.params, saved)):
        if a is not None and a.shape != p.shape:
            raise UserError(f"{path}: param {i} has shape {a.shape}, the model's has {p.shape}")
    for p, a in zip(model.params, saved):
        if a is not None:
            p[...] = a


def read_checkpoint(path):
    """A checkpoint dict written by `fastlstm train`; UserError for anything else."""
    obj = read_pickle(path)
    if not (isinstance(obj, dict) and obj.get("format") == FORMAT):
        raise UserError(f"{path} is not a fastlstm checkpoint")
    return obj


def infer_architecture(arrays, path):
    """(model name, V, D, H) from the shapes of a book-format params list: 6 arrays are the
    book's Rnnlm, 9 its BetterRnnlm (with the output weight tied to the embedding)."""
    n = len(arrays)
    if n not in (6, 9) or arrays[0].ndim != 2 or arrays[2].ndim != 2:
        raise UserError(f"{path} holds {n} arrays of shapes {[a.shape for a in arrays]}: not the params of the "
                        "book's Rnnlm (6 arrays) or BetterRnnlm (9 arrays)")
    (V, D), H = arrays[0].shape, arrays[2].shape[0]
    lstm = [(D, 4 * H), (H, 4 * H), (4 * H,)]
    if n == 6:
        name, expected = "rnnlm", [(V, D), *lstm, (H, V), (V,)]
    else:
        name, expected = "better", [(V, D), *lstm, (H, 4 * H), (H, 4 * H), (4 * H,), (D, V), (V,)]
    shapes = [a.shape for a in arrays]
    if shapes != expected:
        raise UserError(f"{path}: shapes {shapes} do not fit the {MODELS[name].__name__} they would be "
                        f"(expected {expected})")
    return name, V, D, H


def load_model(path, model=None, dtype=None):
    """(model, description) of the weights in path: a book-format params pickle (float16 list, as written
    by the book's save_params or by `fastlstm train` as best.pkl) or a fastlstm checkpoint. The kind
    and sizes come from the file; `model` ('rnnlm' or 'better'), when given, must agree."""
    obj = read_pickle(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        config = dict(obj["config"], dtype=dtype or obj["config"]["dtype"])
        vocab_size = next(a for a in obj["params"] if a is not None).shape[0]
        source = "checkpoint"
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(a, np.ndarray) for a in obj):
        name, vocab_size, D, H = infer_architecture(obj, path)
        config = {"model": name, "wordvec_size": D, "hidden_size": H, "dropout": RECIPES["better"]["dropout"],
                  "dtype": dtype or "float32"}
        source = "book-format params"
    else:
        raise UserError(f"{path} is neither params in the book's format (a list of arrays) nor a fastlstm checkpoint")
    if model is not None and model != config["model"]:
        raise UserError(f"{path} holds a {MODELS[config['model']].__name__}, not the --model {model} "
                        f"({MODELS[model].__name__})")
    net = build_model(config, vocab_size)
    if source == "checkpoint":
        _load_checkpoint_params(net, obj["params"], path)
    else:
        try:
            net.load_params(path)
        except (ValueError, FileNotFoundError) as e:
            raise UserError(str(e)) from None
    desc = (f"{type(net).__name__} (V={vocab_size}, D={config['wordvec_size']}, H={config['hidden_size']}, "
            f"{config['dtype']}) from {source} {path}")
    return net, desc


def check_vocab(model, word_to_id, path):
    """Refuse weights whose vocabulary size is not PTB's."""
    V = model.params[0].shape[0]
    if V != len(word_to_id):
        raise UserError(f"{path} has a vocabulary of {V} words, but PTB has {len(word_to_id)}")


def eval_slice(corpus, eval_iters):
    """corpus, or its first eval_iters batches of the book's eval protocol (quick smoke runs)."""
    if eval_iters is None:
        return corpus
    return corpus[:eval_iters * EVAL_BATCH * EVAL_TIME + 1]


class Run:
    """One training run in an output folder: the model, the position in the data, the loop and its files."""

    def __init__(self, out, data_dir, options, resume):
        self.out, self.data_dir = out, data_dir
        self.path = {name: os.path.join(out, name) for name in (CHECKPOINT, BEST, LOG, PLOT)}
        if resume:
            if not os.path.isfile(self.path[CHECKPOINT]):
                raise UserError(f"nothing to resume: no {CHECKPOINT} in {out}")
            saved = read_checkpoint(self.path[CHECKPOINT])
        else:
            if os.path.exists(self.path[CHECKPOINT]):
                raise UserError(f"{out} already holds a run ({CHECKPOINT}): continue it with --resume, "
                                "or choose another --out")
            saved = None
        self.config = c = resolve_config(options, saved and saved["config"])

        corpus, word_to_id, _ = ptb.load_data("train", data_dir)
        self.xs, self.ts = corpus[:-1], corpus[1:]
        self.valid = eval_slice(ptb.load_data("valid", data_dir)[0], c["eval_iters"])
        self.test = eval_slice(ptb.load_data("test", data_dir)[0], c["eval_iters"])
        self.iters_per_epoch = len(self.xs) // (c["batch_size"] * c["time_size"])
        if self.iters_per_epoch < 1:
            raise UserError(f"batch {c['batch_size']} x time {c['time_size']} is larger than the training data")

        if saved is None and c["seed"] is not None:
            np.random.seed(c["seed"])
        self.model = build_model(c, len(word_to_id))
        self.optimizer = SGD(c["lr"])
        self.epoch = self.iteration = self.total = self.time_idx = 0
        self.best_ppl = math.inf
        self.interval_loss, self.interval_count = 0.0, 0
        self.elapsed_before = 0.0
        self.log = []
        if saved is not None:
            self._restore(saved)
        self.saved_at = (self.epoch, self.iteration) if saved is not None else None
        self.stop_requested = False
        self.plot_note_shown = False

    # ------------------------------------------------------------------ state

    def _restore(self, saved):
        """Put the checkpoint's state into the model, optimizer, RNG and loop position."""
        _load_checkpoint_params(self.model, saved["params"], self.path[CHECKPOINT])
        self.optimizer.load_state_dict(saved["optimizer"])
        for layer, (h, c) in zip(self.model.lstm_layers, saved["lstm_states"]):
            layer.set_state(h, c)
        np.random.set_state(saved["rng_state"])
        self.epoch, self.iteration, self.total = saved["epoch"], saved["iteration"], saved["total_iterations"]
        self.time_idx, self.best_ppl = saved["time_idx"], saved["best_ppl"]
        self.interval_loss, self.interval_count = saved["interval"]
        self.elapsed_before = saved["elapsed_s"]
        self.log = list(saved["log"])

    def _save_checkpoint(self):
        """Write checkpoint.pkl from the current state; refuses (Diverged) weights that hold NaN or inf."""
        params = _checkpoint_params(self.model.params)
        if not all(p is None or np.isfinite(p).all() for p in params):
            raise Diverged(f"the weights hold NaN or inf after {self._where(self.iteration)}")
        ckpt = {
            "format": FORMAT,
            "config": self.config,
            "params": params,
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "total_iterations": self.total,
            "time_idx": self.time_idx,
            "best_ppl": self.best_ppl,
            "rng_state": np.random.get_state(),
            "lstm_states": [(_copy(layer.h), _copy(layer.c)) for layer in self.model.lstm_layers],
            "interval": (self.interval_loss, self.interval_count),
            "elapsed_s": self.elapsed(),
            "log": list(self.log),
        }
        atomic_write(self.path[CHECKPOINT], lambda f: pickle.dump(ckpt, f, protocol=pickle.HIGHEST_PROTOCOL))
        self.saved_at = (self.epoch, self.iteration)

    def elapsed(self):
        """Seconds of training so far, over all the runs that resumed one another."""
        return self.elapsed_before + time.perf_counter() - self.t0

    # ------------------------------------------------------------------ the loop

    def run(self):
        """Train to the end and test; returns the exit status: 0 done, 1 diverged, 130 interrupted."""
        os.makedirs(self.out, exist_ok=True)
        self.t0 = self.timer = time.perf_counter()
        self.timed_iters = 0
        self._print_header()
        if self.saved_at is None:
            self._save_checkpoint()
        try:
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread, where no signal arrives anyway
            previous = None
        interrupted = False
        try:
            try:
                self._loop()
            except KeyboardInterrupt:
                interrupted = True
                self._save_checkpoint()
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)
        except Diverged as e:
            return self._diverged(e)
        except _Abort:
            print(f"\nquit without saving: {self.path[CHECKPOINT]} is the one of {self._saved_where()}",
                  file=sys.stderr)
            return 130
        if interrupted:
            self._write_reports()
            best = "; best.pkl kept" if os.path.isfile(self.path[BEST]) else ""
            print(f"\ninterrupted: checkpoint saved at {self._saved_where()}/{self.iters_per_epoch}{best}. "
                  f"Continue with:\n  {self._resume_command()}", file=sys.stderr)
            return 130
        self._finish()
        return 0

    def _loop(self):
        c = self.config
        while self.epoch < c["epochs"]:
            while self.iteration < self.iters_per_epoch:
                if c["max_iters"] is not None and self.total >= c["max_iters"]:
                    self._save_checkpoint()
                    return
                self._iteration()
                if c["save_every"] and self.total % c["save_every"] == 0:
                    self._save_checkpoint()
                if self.stop_requested:
                    raise KeyboardInterrupt
            self._end_epoch()
            if self.stop_requested:
                raise KeyboardInterrupt

    def _iteration(self):
        """One training step on the next stateful batch. A KeyboardInterrupt inside it puts the RNG and
        the LSTM states back as they were, so the checkpoint is the one of the last completed step."""
        c = self.config
        lstms = self.model.lstm_layers
        rng_state = np.random.get_state()
        lstm_states = [(layer.h, layer.c) for layer in lstms]
        try:
            xs, ts = stateful_batch(self.xs, self.ts, c["batch_size"], c["time_size"], self.time_idx)
            loss, _ = train_step(self.model, self.optimizer, xs, ts, c["max_grad"] or None, check_finite=True)
        except FloatingPointError as e:
            raise Diverged(f"{e} at {self._where(self.iteration + 1)}") from None
        except KeyboardInterrupt:
            np.random.set_state(rng_state)
            for layer, (h, cell) in zip(lstms, lstm_states):
                layer.set_state(h, cell)
            raise
        self.time_idx += c["time_size"]
        self.iteration += 1
        self.total += 1
        self.interval_loss += loss
        self.interval_count += 1
        self.timed_iters += 1
        if self.iteration % c["eval_interval"] == 0:
            self._progress()

    def _end_epoch(self):
        """Validate, keep the best weights, apply the lr schedule, start the next epoch, save."""
        if self.interval_count:
            self._progress()
        ppl = self._validate()
        lr = self.optimizer.lr
        if ppl < self.best_ppl:
            self.model.save_params(self.path[BEST])
            self.best_ppl = ppl
            note = "improved: best.pkl saved"
        elif self.config["lr_decay"]:
            self.optimizer.lr = lr / 4.0
            note = f"not improved: lr {lr:g} -> {lr / 4.0:g}"
        else:
            note = "not improved"
        self._report("valid", ppl, note)
        self.epoch += 1
        self.iteration = 0
        if not self.config["continuous_epochs"]:
            self.time_idx = 0
        self._save_checkpoint()
        self._write_reports()

    def _validate(self):
        """eval_perplexity on the validation split from a cleared LSTM state; afterwards the
        training state carries on (continuous epochs) or is cleared, as the book's scripts do."""
        states = [(layer.h, layer.c) for layer in self.model.lstm_layers]
        self.model.reset_state()
        ppl = float(eval_perplexity(self.model, self.valid, EVAL_BATCH, EVAL_TIME))
        self.model.reset_state()
        if self.config["continuous_epochs"]:
            for layer, (h, c) in zip(self.model.lstm_layers, states):
                layer.set_state(h, c)
        return ppl

    def _finish(self):
        """Report a run stopped in mid-epoch, then test the best weights."""
        if self.iteration > 0:
            if self.interval_count:
                self._progress()
            ppl = self._validate()
            note = "partial epoch (--max-iters)"
            if ppl < self.best_ppl:
                self.model.save_params(self.path[BEST])
                note += ": best.pkl saved"
            self._report("valid", ppl, note)
        if os.path.isfile(self.path[BEST]):
            self.model.load_params(self.path[BEST])
            which = "best.pkl"
        else:
            which = "the final weights (no best.pkl)"
        self.model.reset_state()
        ppl = float(eval_perplexity(self.model, self.test, EVAL_BATCH, EVAL_TIME))
        self._report("test", ppl, which)
        self._write_reports()
        print(f"test perplexity: {ppl:.2f} ({which})")

    # ------------------------------------------------------------------ stops

    def _on_sigint(self, signum, frame):
        """The first Ctrl-C asks the loop to stop after the current step; a second one quits at once."""
        if self.stop_requested:
            raise _Abort
        self.stop_requested = True
        print("\nCtrl-C: stopping after the current step and saving a checkpoint "
              "(press Ctrl-C again to quit at once without saving)", file=sys.stderr, flush=True)

    def _where(self, iteration):
        """'epoch E, iteration I/N (K in total)' for iteration I of the current epoch."""
        total = self.total + iteration - self.iteration
        return f"epoch {self.epoch + 1}, iteration {iteration}/{self.iters_per_epoch} ({total} in total)"

    def _diverged(self, error):
        """Report a NaN or inf, keeping checkpoint.pkl and best.pkl as they are; returns the exit status."""
        self.log.append(self._row("diverged", math.nan, str(error)))
        self._write_reports()
        print(f"training stopped: {error}.\nThe last good checkpoint, {self.path[CHECKPOINT]} "
              f"({self._saved_where()}), and best.pkl are kept. Start again with a lower --lr or --max-grad, "
              f"or retry from the checkpoint with:\n  {self._resume_command()}", file=sys.stderr)
        return 1

    def _saved_where(self):
        """Where the checkpoint on disk stands."""
        e, i = self.saved_at
        return f"epoch {e + 1}, iteration {i}"

    def _resume_command(self):
        """The command line that continues this run."""
        data = f" --data {self.data_dir}" if self.data_dir is not None else ""
        return f"fastlstm train --out {self.out}{data} --resume"

    # ------------------------------------------------------------------ reports

    def _row(self, kind, ppl, note="", tokens_per_s=""):
        # between epochs, a test follows the epoch just finished
        epoch = self.epoch + (1 if kind != "test" or self.iteration > 0 else 0)
        return {"kind": kind, "epoch": epoch, "iteration": self.iteration, "total_iterations": self.total,
                "lr": self.optimizer.lr, "perplexity": ppl, "tokens_per_s": tokens_per_s,
                "elapsed_s": round(self.elapsed(), 3), "note": note}

    def _progress(self):
        """The fixed-width line and log row of the interval that ends now."""
        c = self.config
        ppl = math.exp(self.interval_loss / self.interval_count)
        now = time.perf_counter()
        tokens_per_s = self.timed_iters * c["batch_size"] * c["time_size"] / (now - self.timer) if self.timed_iters else math.nan
        row = self._row("train", ppl, tokens_per_s=round(tokens_per_s, 1))
        self.log.append(row)
        speed = f"{tokens_per_s:8.0f}" if self.timed_iters else f"{'-':>8}"  # none timed yet after a resume
        print(f"| epoch {row['epoch']:3d} | iter {self.iteration:5d}/{self.iters_per_epoch:5d} | lr {row['lr']:8.4g} "
              f"| train ppl {ppl:9.2f} | {speed} tok/s | {row['elapsed_s']:9.1f} s |", flush=True)
        self.interval_loss, self.interval_count = 0.0, 0
        self.timer, self.timed_iters = now, 0

    def _report(self, kind, ppl, note):
        row = self._row(kind, ppl, note)
        self.log.append(row)
        name = {"valid": "valid ppl", "test": "test ppl "}[kind]
        print("-" * 92)
        print(f"| epoch {row['epoch']:3d} | {name} {ppl:9.2f} | {note:<45s} | {row['elapsed_s']:9.1f} s |")
        print("-" * 92, flush=True)

    def _print_header(self):
        c = self.config
        params = self.model.params
        n_params = sum(p.size for i, p in enumerate(params) if not _is_view_of_earlier(params, i))
        clip = f"clip {c['max_grad']:g}" if c["max_grad"] else "no clipping"
        drop = f", dropout {c['dropout']:g}" if c["model"] == "better" else ""
        print(f"{type(self.model).__name__}: vocabulary {self.model.params[0].shape[0]}, wordvec {c['wordvec_size']}, "
              f"hidden {c['hidden_size']}{drop}, {c['dtype']}, {n_params:,} params")
        print(f"{c['epochs']} epochs x {self.iters_per_epoch} iterations of batch {c['batch_size']} x time "
              f"{c['time_size']}, lr {c['lr']:g}{' (/4 when validation does not improve)' if c['lr_decay'] else ''}, "
              f"{clip}; output in {self.out}")
        if self.saved_at is not None:
            print(f"resuming {self.path[CHECKPOINT]} at {self._saved_where()}, lr {self.optimizer.lr:g}")

    def _write_reports(self):
        """log.csv from the log so far, and perplexity.png when matplotlib is there."""
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=LOG_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.log)
        atomic_write(self.path[LOG], lambda f: f.write(text.getvalue().encode()))
        train = [(r["total_iterations"], r["perplexity"]) for r in self.log if r["kind"] == "train"]
        valid = [(r["total_iterations"], r["perplexity"]) for r in self.log if r["kind"] == "valid"]
        title = f"{type(self.model).__name__} on PTB"
        try:
            atomic_write(self.path[PLOT], lambda f: plotting.save_curves(f, train, valid, title))
        except ImportError as e:
            if not self.plot_note_shown:
                print(f"{PLOT} not written: {e}")
                self.plot_note_shown = True


def _copy(state):
    """A copy of an LSTM h or c (None before the first step)."""
    return None if state is None else np.array(state, copy=True)

