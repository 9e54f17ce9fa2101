"""`fastlstm train`: the book's chapter 6 recipes as a run that checkpoints, logs, plots and resumes exactly.

Batches follow the stateful layout of `fastlstm.trainer`. As in the book's scripts, the
rnnlm recipe runs its epochs as one `trainer.fit(..., max_epoch=4)`: the data position
(time_idx) and the LSTM state carry on from epoch to epoch. The better recipe calls
`trainer.fit(..., max_epoch=1)` per epoch: both start afresh every epoch. After every
epoch comes validation with `eval_perplexity` (batch 10, time 35), from a cleared state. A better validation perplexity saves `best.pkl`; with lr decay on
(the better recipe) a worse one divides the lr by 4. The run ends by testing the best weights.

The output folder holds:
  checkpoint.pkl  everything a resumed run needs to continue bit for bit (fastlstm.checkpoint)
  best.pkl        the best-validated weights in the book's float16 format (model.save_params)
  log.csv         a row per progress interval ('train'), validation ('valid') and test ('test')
  perplexity.png  the curves, when matplotlib is installed (these two: fastlstm.reporter)

Files are written to a temporary file and renamed, so a killed run never leaves a broken one.
A run stopped by --max-iters in mid-epoch saves its checkpoint first and then validates and
tests the weights as they are; that report stays out of the checkpoint, so a --resume
continues exactly as if the run had never stopped.
"""

import os
import signal
import sys

import numpy as np

from fastlstm.checkpoint import Checkpoint, Position, is_checkpoint, load_params, read_pickle
from fastlstm.dataset import ptb
from fastlstm.errors import Diverged, UserError
from fastlstm.models import BetterRnnlm, Rnnlm
from fastlstm.optimizer import SGD
from fastlstm.reporter import Reporter
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
CHECKPOINT, BEST = "checkpoint.pkl", "best.pkl"


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
    if is_checkpoint(obj):
        obj = Checkpoint.from_dict(obj, path)
        config = dict(obj.config, dtype=dtype or obj.config["dtype"])
        vocab_size = next(a for a in obj.params if a is not None).shape[0]
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
        load_params(net, obj.params, path)
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


class _Abort(BaseException):
    """A second Ctrl-C: quit at once, without saving."""


class Run:
    """One training run in an output folder: its data and model, and the loop over epochs and
    iterations with validation, the lr schedule, the stops and Ctrl-C. Where the run stands
    is a checkpoint.Position, saved and restored as a checkpoint.Checkpoint; what it shows
    and logs goes through a reporter.Reporter."""

    def __init__(self, out, data_dir, options, resume):
        self.out, self.data_dir = out, data_dir
        self.path = {name: os.path.join(out, name) for name in (CHECKPOINT, BEST)}
        saved = self._saved(resume)
        self.config = c = resolve_config(options, saved and saved.config)
        vocab_size = self._load_data()
        if saved is None and c["seed"] is not None:
            np.random.seed(c["seed"])
        self.model = build_model(c, vocab_size)
        self.optimizer = SGD(c["lr"])
        if saved is None:
            self.pos, self.saved_at = Position(), None
        else:
            self.pos = saved.restore(self.model, self.optimizer, self.path[CHECKPOINT])
            self.saved_at = (self.pos.epoch, self.pos.iteration)
        self.report = Reporter(out, c, self.iters_per_epoch, self.pos, self.optimizer,
                               f"{type(self.model).__name__} on PTB")
        self.stop_requested = False

    def _saved(self, resume):
        """The checkpoint to resume (None for a new run); UserError where the folder disagrees."""
        path = self.path[CHECKPOINT]
        if resume:
            if not os.path.isfile(path):
                raise UserError(f"nothing to resume: no {CHECKPOINT} in {self.out}")
            return Checkpoint.read(path)
        if os.path.exists(path):
            raise UserError(f"{self.out} already holds a run ({CHECKPOINT}): continue it with --resume, "
                            "or choose another --out")
        return None

    def _load_data(self):
        """Load the PTB splits (validation and test cut by eval_iters); returns the vocabulary size."""
        c = self.config
        corpus, word_to_id, _ = ptb.load_data("train", self.data_dir)
        self.xs, self.ts = corpus[:-1], corpus[1:]
        self.valid = eval_slice(ptb.load_data("valid", self.data_dir)[0], c["eval_iters"])
        self.test = eval_slice(ptb.load_data("test", self.data_dir)[0], c["eval_iters"])
        self.iters_per_epoch = len(self.xs) // (c["batch_size"] * c["time_size"])
        if self.iters_per_epoch < 1:
            raise UserError(f"batch {c['batch_size']} x time {c['time_size']} is larger than the training data")
        return len(word_to_id)

    def _save_checkpoint(self):
        """Write checkpoint.pkl from the current state; refuses (Diverged) weights that hold NaN or inf."""
        self.pos.elapsed_s = self.report.elapsed()
        checkpoint = Checkpoint.capture(self.config, self.model, self.optimizer, self.pos)
        if not checkpoint.finite():
            raise Diverged(f"the weights hold NaN or inf after {self._where(self.pos.iteration)}")
        checkpoint.write(self.path[CHECKPOINT])
        self.saved_at = (self.pos.epoch, self.pos.iteration)

    # ------------------------------------------------------------------ the loop

    def run(self):
        """Train to the end and test; returns the exit status: 0 done, 1 diverged, 130 interrupted."""
        os.makedirs(self.out, exist_ok=True)
        self.report.start()
        resumed = None if self.saved_at is None else f"{self.path[CHECKPOINT]} at {self._saved_where()}"
        self.report.header(self.model, self.out, resumed)
        if self.saved_at is None:
            self._save_checkpoint()
        try:
            interrupted = self._loop_catching_ctrl_c()
        except Diverged as e:
            return self._diverged(e)
        except _Abort:
            print(f"\nquit without saving: {self.path[CHECKPOINT]} is the one of {self._saved_where()}",
                  file=sys.stderr)
            return 130
        if interrupted:
            self.report.write()
            best = "; best.pkl kept" if os.path.isfile(self.path[BEST]) else ""
            print(f"\ninterrupted: checkpoint saved at {self._saved_where()}/{self.iters_per_epoch}{best}. "
                  f"Continue with:\n  {self._resume_command()}", file=sys.stderr)
            return 130
        self._finish()
        return 0

    def _loop_catching_ctrl_c(self):
        """The loop, with Ctrl-C handled by _on_sigint; True when a KeyboardInterrupt stopped it
        (the checkpoint of the last completed step then saved)."""
        try:
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread, where no signal arrives anyway
            previous = None
        try:
            self._loop()
        except KeyboardInterrupt:
            self._save_checkpoint()
            return True
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return False

    def _loop(self):
        c, pos = self.config, self.pos
        while pos.epoch < c["epochs"]:
            while pos.iteration < self.iters_per_epoch:
                if c["max_iters"] is not None and pos.total_iterations >= c["max_iters"]:
                    self._save_checkpoint()
                    return
                self._iteration()
                if c["save_every"] and pos.total_iterations % c["save_every"] == 0:
                    self._save_checkpoint()
                if self.stop_requested:
                    raise KeyboardInterrupt
            self._end_epoch()
            if self.stop_requested:
                raise KeyboardInterrupt

    def _iteration(self):
        """One training step on the next stateful batch. A KeyboardInterrupt inside it puts the RNG and
        the LSTM states back as they were, so the checkpoint is the one of the last completed step."""
        c, pos = self.config, self.pos
        lstms = self.model.lstm_layers
        rng_state = np.random.get_state()
        lstm_states = [(layer.h, layer.c) for layer in lstms]
        try:
            xs, ts = stateful_batch(self.xs, self.ts, c["batch_size"], c["time_size"], pos.time_idx)
            loss, _ = train_step(self.model, self.optimizer, xs, ts, c["max_grad"] or None, check_finite=True)
        except FloatingPointError as e:
            raise Diverged(f"{e} at {self._where(pos.iteration + 1)}") from None
        except KeyboardInterrupt:
            np.random.set_state(rng_state)
            for layer, (h, cell) in zip(lstms, lstm_states):
                layer.set_state(h, cell)
            raise
        pos.time_idx += c["time_size"]
        pos.iteration += 1
        pos.total_iterations += 1
        self.report.step(loss)
        if pos.iteration % c["eval_interval"] == 0:
            self.report.progress()

    def _end_epoch(self):
        """Validate, keep the best weights, apply the lr schedule, start the next epoch, save."""
        pos = self.pos
        self.report.flush()
        ppl = self._validate()
        lr = self.optimizer.lr
        if ppl < pos.best_ppl:
            self.model.save_params(self.path[BEST])
            pos.best_ppl = ppl
            note = "improved: best.pkl saved"
        elif self.config["lr_decay"]:
            self.optimizer.lr = lr / 4.0
            note = f"not improved: lr {lr:g} -> {lr / 4.0:g}"
        else:
            note = "not improved"
        self.report.result("valid", ppl, note)
        pos.epoch += 1
        pos.iteration = 0
        if not self.config["continuous_epochs"]:
            pos.time_idx = 0
        self._save_checkpoint()
        self.report.write()

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
        if self.pos.iteration > 0:
            self.report.flush()
            ppl = self._validate()
            note = "partial epoch (--max-iters)"
            if ppl < self.pos.best_ppl:
                self.model.save_params(self.path[BEST])
                note += ": best.pkl saved"
            self.report.result("valid", ppl, note)
        if os.path.isfile(self.path[BEST]):
            self.model.load_params(self.path[BEST])
            which = "best.pkl"
        else:
            which = "the final weights (no best.pkl)"
        self.model.reset_state()
        ppl = float(eval_perplexity(self.model, self.test, EVAL_BATCH, EVAL_TIME))
        self.report.result("test", ppl, which)
        self.report.write()
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
        pos = self.pos
        total = pos.total_iterations + iteration - pos.iteration
        return f"epoch {pos.epoch + 1}, iteration {iteration}/{self.iters_per_epoch} ({total} in total)"

    def _diverged(self, error):
        """Report a NaN or inf, keeping checkpoint.pkl and best.pkl as they are; returns the exit status."""
        self.report.diverged(str(error))
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
