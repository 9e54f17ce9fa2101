"""`fastlstm train`: the recipes of fastlstm.settings as a run that checkpoints, logs, plots and resumes exactly,
on PTB or on a text folder of one's own (fastlstm.run_data).

Batches follow the stateful layout of `fastlstm.trainer`. As in the book's scripts, the
rnnlm recipe runs its epochs as one `trainer.fit(..., max_epoch=4)`: the data position
(time_idx) and the LSTM state carry on from epoch to epoch. The other recipes call
`trainer.fit(..., max_epoch=1)` per epoch, as the better one does: both start afresh every
epoch. After every epoch comes validation with `eval_perplexity` (batch 10, time 35), from
a cleared state. A better validation perplexity saves `best.pkl`; with lr decay on (better,
variational) a worse one divides the lr by 4; with ASGD (awd) the validation figures feed
its non-monotone trigger, and once it averages, validation, best.pkl and the test take
the averaged weights. The run ends by testing the best weights.

The output folder holds:
  checkpoint.npz  everything a resumed run needs to continue bit for bit (fastlstm.checkpoint)
  best.pkl        the best-validated weights in the book's float16 format (model.save_params)
  log.csv         a row per progress interval ('train'), validation ('valid') and test ('test')
  perplexity.png  the curves, when matplotlib is installed (these two: fastlstm.reporter)
  vocab.txt       the vocabulary, a word a line (fastlstm.dataset.vocabulary), which eval and generate read
  run.lock        held by the run for its whole life (fastlstm.run_lock): one run per folder

A run checks its settings and reads its data before it writes anything. Files are written to
a temporary file and renamed, so a killed run never leaves a broken one, and the temporary
files of a killed write are removed when the next run takes the folder. A run stopped by
--max-iters or --time-budget in mid-epoch saves its checkpoint first and then validates and
tests the weights as they are; that report stays out of the checkpoint, so a --resume
continues exactly as if the run had never stopped. The log rows live in the checkpoint, so
after any stop and a --resume log.csv holds every row once.
"""

import os
import shlex
import signal
import sys
from contextlib import nullcontext

import numpy as np

from fastlstm import checkpoint, distributed, run_data, run_lock, settings
from fastlstm.checkpoint import Checkpoint, Position
from fastlstm.dataset import vocabulary
from fastlstm.errors import Diverged, UserError
from fastlstm.files import remove_temporary_files
from fastlstm.optimizer import ASGD
from fastlstm.recipes import build_model, build_optimizer, distinct_params
from fastlstm.reporter import Reporter
from fastlstm.trainer import stateful_batch
from fastlstm.training_step import train_step
from fastlstm.util import eval_perplexity

EVAL_BATCH, EVAL_TIME = 10, 35  # the book's eval_perplexity protocol
CHECKPOINT, LEGACY_CHECKPOINT, BEST, VOCAB = checkpoint.FILE, checkpoint.LEGACY_FILE, "best.pkl", vocabulary.FILE
# the signals that stop a run after its current step, with a checkpoint; the exit status is 128 + the signal's number
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


def check_eval_split(ids, what):
    """Refuse a split too short for one batch of the evaluation protocol; `what` names it."""
    if len(ids) < EVAL_BATCH * EVAL_TIME + 1:
        raise UserError(f"{what} holds {len(ids)} tokens; evaluating needs at least {EVAL_BATCH * EVAL_TIME + 1} "
                        f"(a batch of {EVAL_BATCH} x {EVAL_TIME}, and one)")


def eval_slice(corpus, eval_iters):
    """corpus, or its first eval_iters batches of the book's eval protocol (quick smoke runs)."""
    if eval_iters is None:
        return corpus
    return corpus[:eval_iters * EVAL_BATCH * EVAL_TIME + 1]


class _Abort(BaseException):
    """A second stop signal (Ctrl-C): quit at once, without saving."""


class Run:
    """One training run in an output folder: its data and model, and the loop over epochs and
    iterations with validation, the lr schedule, the stops and the stop signals. Where the run
    stands is a checkpoint.Position, saved and restored as a checkpoint.Checkpoint; what it
    shows and logs goes through a reporter.Reporter. Constructing it checks the settings and
    reads the data, writing nothing; `run` takes the folder and trains.

    `group` is the run's processes: fastlstm.distributed.OneProcess (the default), or this
    rank of a data-parallel run (distributed.Ranks), which trains on its rows of each batch
    and writes nothing unless it is rank 0."""

    def __init__(self, out, data_dir, options, resume, group=None):
        self.out, self.data_dir, self.options, self.resume = out, data_dir, options, resume
        self.group = group or distributed.OneProcess()
        self.group.agree_on_command(options, resume)
        self.path = {name: os.path.join(out, name) for name in (CHECKPOINT, LEGACY_CHECKPOINT, BEST, VOCAB)}
        if os.path.exists(out) and not os.path.isdir(out):
            raise UserError(f"--out {out} is a file, not a folder")
        if resume:  # the vocabulary's size is a setting of the run, kept in its checkpoint
            path = self._checkpoint_to_resume()
            saved = Checkpoint.read(path)
            saved.check_settings(path)
            self._check_ranks(settings.completed(saved.config)["ranks"], path)
            vocab_size, self.config = settings.completed(saved.config)["vocab_size"], None
        else:
            self.config = settings.resolve({**options, "ranks": self.group.size})
            self.group.share_seed(self.config)
            vocab_size = self.config["vocab_size"]
        self.data = run_data.load(data_dir, vocab_size)
        train = self.data.splits["train"]
        self.xs, self.ts, self.vocab_size = train[:-1], train[1:], len(self.data.vocab)
        for split in ("valid", "test"):
            check_eval_split(self.data.splits[split], f"the {split} split of {self.data.name}")
        if resume:
            self._check_run_vocab()
        else:
            self._check_sizes()
        self.stop_signal = None

    def _check_run_vocab(self):
        """Refuse to resume on data of another vocabulary than the run's vocab.txt (if it has one)."""
        if os.path.isfile(self.path[VOCAB]) and vocabulary.read(self.path[VOCAB]).words != self.data.vocab.words:
            raise UserError(f"{self.path[VOCAB]} is not the vocabulary of {self.data.name}: resume with the --data "
                            "(and on the text) that the run started with")

    def _check_ranks(self, ranks, path):
        """Refuse to resume a checkpoint of `ranks` processes on another number of them."""
        P = self.group.size
        if ranks != P:
            how = f"mpiexec -n {ranks} fastlstm train --distributed" if ranks > 1 else "fastlstm train"
            raise UserError(f"{path} is the checkpoint of a run on {ranks} rank{'s' * (ranks > 1)}, and this run has "
                            f"{P}: a run resumes on as many ranks as it started with ({how} --resume)")

    def _check_sizes(self):
        """Set iters_per_epoch; UserError when one batch does not fit in the training data, or
        does not split evenly over the ranks."""
        c = self.config
        if c["batch_size"] % self.group.size:
            raise UserError(f"batch {c['batch_size']} does not split evenly over {self.group.size} ranks: give "
                            f"--batch-size a multiple of {self.group.size}")
        self.iters_per_epoch = len(self.xs) // (c["batch_size"] * c["time_size"])
        if self.iters_per_epoch < 1:
            raise UserError(f"batch {c['batch_size']} x time {c['time_size']} is larger than the training data")

    def _open(self):
        """In the locked folder: clear what killed writes left, then start the run anew or restore
        the checkpoint (checked whole before anything is written); the ranks of a distributed run
        then agree on their settings, data and weights."""
        if self.group.writes:
            remove_temporary_files(self.out)
        saved = self._saved()
        if saved is not None:
            self.config = settings.resolve(self.options, saved.config)
            self._check_sizes()
        c = self.config
        self.valid, self.test = (eval_slice(self.data.splits[split], c["eval_iters"]) for split in ("valid", "test"))
        if saved is None and c["seed"] is not None:
            np.random.seed(c["seed"])
        self.model = build_model(c, self.vocab_size)
        self.group.take_rows(self.model, c["batch_size"])
        self.optimizer = build_optimizer(c)
        self.distinct_params = distinct_params(self.model.params)  # the list the optimizer updates
        if saved is None:
            self.pos, self.saved_at = Position(), None
        else:
            self.pos = saved.restore(self.model, self.optimizer, self.saved_path)
            if self.pos.iteration > self.iters_per_epoch:
                raise UserError(f"{self.saved_path} stands at iteration {self.pos.iteration} of an epoch of "
                                f"{self.iters_per_epoch}: it is not a checkpoint of this data")
            self.saved_at = (self.pos.epoch, self.pos.iteration)
            self.group.keep_rows(self.model, c["batch_size"])
        self.group.agree(c, self.data, self.distinct_params)
        if self.group.writes and (saved is None or not os.path.isfile(self.path[VOCAB])):  # older runs have none
            vocabulary.write(self.path[VOCAB], self.data.vocab.words)
        self.report = Reporter(self.out, c, self.iters_per_epoch, self.pos, self.optimizer,
                               f"{type(self.model).__name__} on {self.data.name}", writes=self.group.writes)
        self.averager = self.group.averager(
            lambda: (self.model.penalty, self.stop_signal or 0, self.report.elapsed()))
        self.stopped_by = None  # the limit of this invocation that stopped the loop

    def _saved(self):
        """The checkpoint to resume (None for a new run); UserError where the folder disagrees."""
        self.saved_path = checkpoint.find(self.out)
        if not self.resume:
            if self.saved_path is not None:
                raise UserError(f"{self.out} already holds a run ({os.path.basename(self.saved_path)}): continue it "
                                "with --resume, or choose another --out")
            return None
        saved = Checkpoint.read(self._checkpoint_to_resume())
        saved.check_settings(self.saved_path)
        return saved

    def _checkpoint_to_resume(self):
        """The path of the checkpoint that --resume continues; UserError when there is none."""
        path = checkpoint.find(self.out)
        if path is None:
            raise UserError(f"nothing to resume: no {CHECKPOINT} in {self.out}")
        return path

    def _save_checkpoint(self):
        """Write checkpoint.npz from the current state; refuses (Diverged) weights that hold NaN or inf.
        The first save of a run resumed from an older fastlstm's checkpoint.pkl removes that file."""
        self.pos.elapsed_s = self.report.elapsed()
        saved = Checkpoint.capture(self.config, self.model, self.optimizer, self.pos)
        saved.lstm_states = self.group.gather_states(saved.lstm_states)  # the whole batch's, on the writer
        if not saved.finite():
            raise Diverged(f"the weights hold NaN or inf after {self._where(self.pos.iteration)}")
        if self.group.writes:
            saved.write(self.path[CHECKPOINT])
        self.saved_at = (self.pos.epoch, self.pos.iteration)
        if self.saved_path == self.path[LEGACY_CHECKPOINT] and self.group.writes:
            os.remove(self.saved_path)
            print(f"{self.saved_path}, written by an older fastlstm, is now {self.path[CHECKPOINT]}")
        self.saved_path = self.path[CHECKPOINT]

    # ------------------------------------------------------------------ the loop

    def run(self):
        """Take the folder (fastlstm.run_lock), train to the end and test; returns the exit status:
        0 done, 1 diverged, 128 + the signal's number when a stop signal stopped it (130 for Ctrl-C)."""
        with run_lock.hold(self.out) if self.group.writes else nullcontext():
            self._open()
            return self._train()

    def _train(self):
        """The run in its locked folder, from its start or its checkpoint to the end; the exit status."""
        self.report.start()
        resumed = None if self.saved_at is None else f"{self.saved_path} at {self._saved_where()}"
        self.report.header(self.model, self.out, resumed)
        if self.saved_at is None or self.saved_path != self.path[CHECKPOINT]:
            self._save_checkpoint()
        try:
            stopped_by = self._loop_until_stopped()
        except Diverged as e:
            return self._diverged(e)
        except _Abort:
            print(f"\nquit without saving: {self.path[CHECKPOINT]} is the one of {self._saved_where()}",
                  file=sys.stderr)
            return 128 + signal.SIGINT
        if stopped_by is not None:
            self.report.write()
            best = "; best.pkl kept" if os.path.isfile(self.path[BEST]) else ""
            print(f"\n{'interrupted' if stopped_by == signal.SIGINT else f'stopped by {STOP_SIGNALS[stopped_by]}'}: "
                  f"checkpoint saved at {self._saved_where()}/{self.iters_per_epoch}{best}. "
                  f"Continue with:\n  {self._resume_command()}", file=sys.stderr, flush=True)
            return 128 + stopped_by
        try:
            self._finish()
        except Diverged as e:  # the ranks of a distributed run compare their weights at its validation
            return self._diverged(e)
        return 0

    def _loop_until_stopped(self):
        """The loop, with the stop signals handled by _on_stop_signal; the signal that stopped it (the
        checkpoint of the last completed step then saved), SIGINT for a KeyboardInterrupt, or None."""
        previous = {}
        for signum in STOP_SIGNALS:
            try:
                if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
                    previous[signum] = signal.signal(signum, self._on_stop_signal)
            except ValueError:  # not the main thread, where no signal arrives anyway
                break
        try:
            self._loop()
        except KeyboardInterrupt:
            self._save_checkpoint()
            return self.stop_signal or signal.SIGINT
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return None

    def _loop(self):
        c, pos = self.config, self.pos
        while pos.epoch < c["epochs"]:
            while pos.iteration < self.iters_per_epoch:
                self.stopped_by = self._limit_reached()
                if self.stopped_by:
                    self._save_checkpoint()
                    return
                self._iteration()
                if c["save_every"] and pos.total_iterations % c["save_every"] == 0:
                    self._save_checkpoint()
                self._stop_if_signalled(after_step=True)
            self._end_epoch()
            self._stop_if_signalled(after_step=False)

    def _stop_if_signalled(self, after_step):
        """KeyboardInterrupt once a stop signal came: to one process, or to any rank of a distributed
        run (which every rank then acts on at once: the one the step's allreduce carried, or after
        an epoch the first of the ranks' now)."""
        if self.averager is None:
            signum = self.stop_signal
        else:
            signum = self.averager.signal if after_step else self.group.first_signal(self.stop_signal)
        if signum:
            self.stop_signal = signum
            raise KeyboardInterrupt

    def _limit_reached(self):
        """The flag of the limit of this invocation that the run has reached, or None."""
        c = self.config
        if c["max_iters"] is not None and self.pos.total_iterations >= c["max_iters"]:
            return "--max-iters"
        # the ranks of a distributed run go by the largest of their clocks at the last step
        elapsed = self.report.elapsed() if self.averager is None else (self.averager.elapsed or self.pos.elapsed_s)
        if c["time_budget"] is not None and elapsed >= 60 * c["time_budget"]:
            return "--time-budget"
        return None

    def _iteration(self):
        """One training step on the next stateful batch. A KeyboardInterrupt inside it puts the RNG and
        the LSTM states back as they were, so the checkpoint is the one of the last completed step."""
        c, pos = self.config, self.pos
        lstms = self.model.lstm_layers
        rng_state = np.random.get_state()
        lstm_states = [(layer.h, layer.c) for layer in lstms]
        try:
            xs, ts = stateful_batch(self.xs, self.ts, c["batch_size"], c["time_size"], pos.time_idx)
            rows = self.group.rows(c["batch_size"])
            loss, _ = train_step(self.model, self.optimizer, xs[rows], ts[rows], c["max_grad"] or None,
                                 check_finite=True, reduce_gradients=self.averager)
        except FloatingPointError as e:
            raise Diverged(f"{e}{self._ranks_diverged()} at {self._where(pos.iteration + 1)}") from None
        except KeyboardInterrupt:
            np.random.set_state(rng_state)
            for layer, (h, cell) in zip(lstms, lstm_states):
                layer.set_state(h, cell)
            raise
        pos.time_idx += c["time_size"]
        pos.iteration += 1
        pos.total_iterations += 1
        penalty = self.model.penalty if self.averager is None else self.averager.penalty
        self.report.step(loss - penalty)  # the cross-entropy: AR and TAR left out
        if pos.iteration % c["eval_interval"] == 0:
            self.report.progress()

    def _end_epoch(self):
        """Validate, keep the best weights, apply the lr schedule, start the next epoch, save."""
        pos = self.pos
        self.report.flush()
        ppl = self._validate()
        lr = self.optimizer.lr
        if ppl < pos.best_ppl:
            self._save_best()
            pos.best_ppl = ppl
            note = "improved: best.pkl saved"
        elif self.config["lr_decay"]:
            self.optimizer.lr = lr / 4.0
            note = f"not improved: lr {lr:g} -> {lr / 4.0:g}"
        else:
            note = "not improved"
        if isinstance(self.optimizer, ASGD) and self.optimizer.observe(ppl):
            note += "; ASGD averages from now on"
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
        self.group.check_same_weights(self.distinct_params, f"after {self._where(self.pos.iteration)}")
        states = [(layer.h, layer.c) for layer in self.model.lstm_layers]
        self.model.reset_state()
        with self._averaged():
            ppl = self._perplexity(self.valid)
        self.model.reset_state()
        if self.config["continuous_epochs"]:
            for layer, (h, c) in zip(self.model.lstm_layers, states):
                layer.set_state(h, c)
        return ppl

    def _perplexity(self, corpus):
        """eval_perplexity's figure of the model on corpus; the ranks of a distributed run share its rows."""
        if self.group.size == 1:
            return float(eval_perplexity(self.model, corpus, EVAL_BATCH, EVAL_TIME))
        return self.group.perplexity(self.model, corpus, EVAL_BATCH, EVAL_TIME)

    def _averaged(self):
        """A context in which the model holds the weights to evaluate and save: ASGD's averages once
        it averages, else the weights as they are."""
        if isinstance(self.optimizer, ASGD):
            return self.optimizer.averaged(self.distinct_params)
        return nullcontext()

    def _save_best(self):
        if self.group.writes:
            with self._averaged():
                self.model.save_params(self.path[BEST])

    def _finish(self):
        """Report a run stopped in mid-epoch, then test the best weights."""
        if self.pos.iteration > 0:
            self.report.flush()
            ppl = self._validate()
            note = "partial epoch" + (f" ({self.stopped_by})" if self.stopped_by else "")
            if ppl < self.pos.best_ppl:
                self._save_best()
                note += ": best.pkl saved"
            self.report.result("valid", ppl, note)
        self.group.barrier()  # best.pkl, which rank 0 writes, is every rank's to read
        if os.path.isfile(self.path[BEST]):
            self.model.load_params(self.path[BEST])
            which = "best.pkl"
        else:
            which = "the final weights (no best.pkl)"
        self.model.reset_state()
        ppl = self._perplexity(self.test)
        self.report.result("test", ppl, which)
        self.report.write()
        print(f"test perplexity: {ppl:.2f} ({which})")

    # ------------------------------------------------------------------ stops

    def _on_stop_signal(self, signum, frame):
        """The first stop signal asks the loop to stop after the current step and save; a second quits at once."""
        if self.stop_signal is not None:
            raise _Abort
        self.stop_signal = signum
        print(f"\n{STOP_SIGNALS[signum]}: stopping after the current step and saving a checkpoint "
              "(press Ctrl-C again to quit at once without saving)", file=sys.stderr, flush=True)

    def _where(self, iteration):
        """'epoch E, iteration I/N (K in total)' for iteration I of the current epoch."""
        pos = self.pos
        total = pos.total_iterations + iteration - pos.iteration
        return f"epoch {pos.epoch + 1}, iteration {iteration}/{self.iters_per_epoch} ({total} in total)"

    def _diverged(self, error):
        """Report a NaN or inf, keeping checkpoint.npz and best.pkl as they are; returns the exit status."""
        self.report.diverged(str(error))
        print(f"training stopped: {error}.\nThe last good checkpoint, {self.path[CHECKPOINT]} "
              f"({self._saved_where()}), and best.pkl are kept. Start again with a lower --lr or --max-grad, "
              f"or retry from the checkpoint with:\n  {self._resume_command()}", file=sys.stderr)
        return 1

    def _ranks_diverged(self):
        """' on rank R' naming the ranks whose own loss is NaN or inf, when a distributed run has such."""
        if self.averager is None or self.averager.losses is None:
            return ""
        bad = [str(r) for r, loss in enumerate(self.averager.losses) if not np.isfinite(loss)]
        return f" on rank {', '.join(bad)}" if bad else ""

    def _saved_where(self):
        """Where the checkpoint on disk stands."""
        e, i = self.saved_at
        return f"epoch {e + 1}, iteration {i}"

    def _resume_command(self):
        """The command line that continues this run."""
        data = f" --data {shlex.quote(str(self.data_dir))}" if self.data_dir is not None else ""
        P = self.group.size
        command = f"mpiexec -n {P} fastlstm train --distributed" if P > 1 else "fastlstm train"
        return f"{command} --out {shlex.quote(str(self.out))}{data} --resume"
