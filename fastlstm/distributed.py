"""Data-parallel training over MPI (mpi4py, the extra `fastlstm[mpi]`):
`mpiexec -n P fastlstm train --distributed ...`.

P ranks with batch B follow one process with batch B. Each rank builds the same model (one
seed, drawn by rank 0 when none is given) and takes rows [r B/P, (r + 1) B/P) of every
stateful batch (fastlstm.trainer's layout, cut across the ranks); its dropout masks are
those rows' masks of the whole batch (`rows_before` of the dropping layers), and it draws
every seed that one process draws, so NumPy's RNG stays the same on every rank. Its loss is
the mean over its rows, so the mean over the ranks of their gradients is the gradient of the
whole batch: `GradientAverager` takes it, after the tied weights are merged, with one
allreduce of one flat buffer per step, which also carries each rank's loss, penalty, stop
signal and clock. So every rank clips by the global norm, updates alike, stops at the same
step and sees a NaN on any rank. Validation and test split the evaluation batch's rows over
the ranks and sum their losses. Weights are compared by hash at start-up and at each
validation, settings and data at start-up. Rank 0 alone takes the run's lock, writes and
prints; every rank reads the run folder (a resumed checkpoint, best.pkl), so it must be one
that every rank sees. `OneProcess` is the same interface for a run without MPI.
"""

import hashlib
import json
import os
import sys
import time
import traceback

import numpy as np

from fastlstm.errors import Diverged, UserError
from fastlstm.settings import SEED_LIMIT
from fastlstm.util import eval_loss

INSTALL = 'pip install "fastlstm[mpi]"'
ABORT_DELAY_S = 0.5
# what each rank puts in the step's buffer beside the gradients, a row per rank
_LOSS, _PENALTY, _SIGNAL, _ELAPSED = range(4)
_FIELDS = 4


class Disagreement(UserError):
    """The ranks were started unlike one another: raised on every rank at the same point."""


def communicator():
    """MPI's world communicator; UserError saying how to install MPI where mpi4py cannot be imported."""
    try:
        from mpi4py import MPI
    except ImportError as e:  # no mpi4py, or no MPI library for it
        raise UserError(f"--distributed needs mpi4py and an MPI library ({e}); install them with: {INSTALL}") from None
    return MPI.COMM_WORLD


def run(make_run):
    """Run make_run(ranks).run() on this rank of MPI's world, with every rank's output but rank 0's
    silenced; returns its exit status. A Disagreement, which every rank raises alike, ends every
    rank as an error of one process does (rank 0 reports it). Any other exception on a rank of
    several prints one line naming the rank (a traceback for what is not a user's mistake) and
    aborts the whole job, so that no rank waits for it forever; the checkpoint on disk is the
    last good one (writes are atomic)."""
    ranks = Ranks(communicator())
    if ranks.size == 1:
        print("--distributed on one rank: it trains as one process (start P ranks with mpiexec -n P)", file=sys.stderr)
        return make_run(ranks).run()
    if ranks.rank != 0:
        sys.stdout = sys.stderr = open(os.devnull, "w")
    try:
        return make_run(ranks).run()
    except Disagreement:
        raise
    except BaseException as e:  # noqa: B036 (a rank that stops alone must stop them all)
        message = str(e) or type(e).__name__
        print(f"fastlstm train: rank {ranks.rank} of {ranks.size}: error: {message}; stopping every rank",
              file=sys.__stderr__, flush=True)
        if not isinstance(e, (UserError, OSError, KeyboardInterrupt)):
            traceback.print_exc(file=sys.__stderr__)
        time.sleep(ABORT_DELAY_S)  # mpiexec may end the job before it has passed on lines written just before
        ranks.comm.Abort(1)


def _digest(*parts):
    """The SHA-256 hex digest of parts (bytes or arrays), in order."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


class OneProcess:
    """A run of one process without MPI: the interface of `Ranks`, doing nothing collective."""

    rank, size, writes = 0, 1, True

    def rows(self, batch):
        return slice(None)

    def share_seed(self, config):
        pass

    def take_rows(self, model, batch):
        pass

    def keep_rows(self, model, batch):
        pass

    def agree_on_command(self, options, resume):
        pass

    def agree(self, config, data, params):
        pass

    def averager(self, local):
        return None

    def gather_states(self, states):
        return states

    def first_signal(self, signal):
        return signal

    def check_same_weights(self, params, where):
        pass

    def barrier(self):
        pass


class Ranks:
    """This rank of a data-parallel run on the MPI communicator comm (module docstring)."""

    def __init__(self, comm):
        from mpi4py import MPI
        self.MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.writes = self.rank == 0

    def rows(self, batch):
        """This rank's rows of a training batch of `batch` rows (a multiple of size: the run refuses others)."""
        share = batch // self.size
        return slice(self.rank * share, (self.rank + 1) * share)

    def share_seed(self, config):
        """Give an unseeded run rank 0's seed, drawn from its RNG, so that every rank builds the same weights."""
        if config["seed"] is None:
            config["seed"] = self.comm.bcast(int(np.random.randint(SEED_LIMIT)) if self.writes else None, root=0)

    def take_rows(self, model, batch):
        """Make model's per-row masks this rank's rows of those of the whole batch."""
        for layer in model.layers:
            if hasattr(layer, "rows_before"):
                layer.rows_before = self.rows(batch).start

    def keep_rows(self, model, batch):
        """Cut the LSTM states a checkpoint restored (the whole batch's) to this rank's rows."""
        rows = self.rows(batch)
        for layer in model.lstm_layers:
            if layer.h is not None:
                layer.set_state(np.array(layer.h[rows]), np.array(layer.c[rows]))

    def agree_on_command(self, options, resume):
        """Disagreement on every rank unless every rank was given the same settings and --resume: checked
        first, so that ranks started unlike one another never wait for one another."""
        self._agree({"command lines": [json.dumps([options, resume], sort_keys=True).encode()]})

    def agree(self, config, data, params):
        """Disagreement on every rank unless every rank has the same resolved settings, data (the token
        ids of every split and the vocabulary) and weights."""
        self._agree({"settings": [json.dumps(config, sort_keys=True).encode()],
                     "data": [*(data.splits[s] for s in sorted(data.splits)), "\n".join(data.vocab.words).encode()],
                     "weights": params})

    def _agree(self, parts):
        """Disagreement naming what differs, and where, unless the digest of each entry of parts (a name ->
        its bytes or arrays) is the same on every rank."""
        every = self.comm.allgather({what: _digest(*pieces) for what, pieces in parts.items()})
        differ = {what: [r for r, theirs in enumerate(every) if theirs[what] != every[0][what]] for what in parts}
        problems = [f"{what} (rank {', '.join(map(str, ranks))} unlike rank 0)"
                    for what, ranks in differ.items() if ranks]
        if problems:
            raise Disagreement(f"the ranks were started with different {' and '.join(problems)}: start every rank "
                            "with the same command line, --data and fastlstm")

    def averager(self, local):
        """train_step's reduce_gradients for this rank; local() gives (penalty, stop signal or 0,
        seconds of training) of this rank after its forward."""
        return GradientAverager(self, local)

    def gather_states(self, states):
        """The LSTM states (h, c) of the whole batch on rank 0 (this rank's on the others), from every rank's rows."""
        gathered = []
        for pair in states:
            whole = []
            for state in pair:
                if state is None:
                    whole.append(None)
                    continue
                state = np.ascontiguousarray(state)
                out = np.empty((state.shape[0] * self.size, *state.shape[1:]), state.dtype) if self.writes else None
                self.comm.Gather(state, out, root=0)
                whole.append(out if self.writes else state)
            gathered.append(tuple(whole))
        return gathered

    def first_signal(self, signal):
        """The stop signal of the first rank that has one (by rank), or None: what every rank acts on."""
        signals = self.comm.allgather(signal)
        return next((s for s in signals if s is not None), None)

    def check_same_weights(self, params, where):
        """Diverged on every rank unless every rank holds the same weights (SHA-256 of their bytes)."""
        digests = self.comm.allgather(_digest(*params))
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            raise Diverged(f"the ranks' weights differ {where} (rank {', '.join(map(str, differ))} unlike rank 0)")

    def perplexity(self, model, corpus, batch_size, time_size):
        """eval_perplexity's figure, each rank taking its share of the batch's rows (none where the ranks
        outnumber them): the mean over the rows of their losses, summed over the ranks."""
        first, end = np.linspace(0, batch_size, self.size + 1).astype(int)[[self.rank, self.rank + 1]]
        sums = np.zeros(2)
        if end > first:
            total, batches = eval_loss(model, corpus, batch_size, time_size, slice(first, end))
            sums[:] = total * (end - first), batches * (end - first)
        self.comm.Allreduce(self.MPI.IN_PLACE, sums, op=self.MPI.SUM)
        return float(np.exp(sums[0] / sums[1]))

    def barrier(self):
        self.comm.Barrier()


class GradientAverager:
    """train_step's reduce_gradients on one rank: the mean over the ranks of the merged gradients,
    written back into them, and of the losses, with one allreduce of one flat buffer that holds
    the gradients and a row per rank of (loss, penalty, stop signal, seconds of training).

    After a step: `losses` (each rank's), `penalty` (the mean), `signal` (the first rank's stop
    signal, 0 for none) and `elapsed` (the largest clock): the same on every rank.
    """

    def __init__(self, ranks, local):
        self.ranks, self.local = ranks, local
        self.buffer = None
        self.losses, self.penalty, self.signal, self.elapsed = None, 0.0, 0, None

    def __call__(self, grads, loss):
        size = sum(g.size for g in grads)
        P = self.ranks.size
        if self.buffer is None or self.buffer.dtype != grads[0].dtype or self.buffer.size != size + P * _FIELDS:
            self.buffer = np.empty(size + P * _FIELDS, grads[0].dtype)
        views, start = [], 0
        for g in grads:
            views.append(self.buffer[start:start + g.size].reshape(g.shape))
            start += g.size
            np.copyto(views[-1], g)
        table = self.buffer[size:].reshape(P, _FIELDS)
        table[...] = 0
        table[self.ranks.rank] = (loss, *self.local())
        self.ranks.comm.Allreduce(self.ranks.MPI.IN_PLACE, self.buffer, op=self.ranks.MPI.SUM)
        for g, v in zip(grads, views):
            np.divide(v, P, out=g)
        table = table.astype(np.float64)
        self.losses = table[:, _LOSS]
        self.penalty = float(table[:, _PENALTY].mean())
        self.signal = int(next((s for s in table[:, _SIGNAL] if s), 0))
        self.elapsed = float(table[:, _ELAPSED].max())
        return float(self.losses.mean())
