"""Whole-model figures of the book's two configurations in float32: tokens/s of a training
and of an evaluation step (tokens = batch x time steps), and the peak memory of one
BetterRnnlm training step. `fastlstm bench` measures the same models and batches against
the NumPy reference; this suite tracks them per commit. Its training step is
`fastlstm.training_step.train_step`, the step of every training loop of fastlstm; on commits
older than that function, the step written out as the book's trainer runs it (clip_grads,
then update)."""

import timeit

import numpy as np

from fastlstm.models import BetterRnnlm, Rnnlm
from fastlstm.optimizer import SGD
from fastlstm.util import clip_grads, remove_duplicate

try:
    from fastlstm.training_step import train_step
except ImportError:  # a commit older than train_step: its training loops' step, written out
    def train_step(model, optimizer, xs, ts, max_grad):
        model.forward(xs, ts)
        model.backward()
        params, grads = remove_duplicate(model.params, model.grads)
        clip_grads(grads, max_grad)
        optimizer.update(params, grads)

# model class, the book's sizes, keyword arguments of the forward of eval_perplexity
CONFIGS = {
    "rnnlm": (Rnnlm, {"vocab_size": 10000, "wordvec_size": 100, "hidden_size": 100}, {}),
    "better": (BetterRnnlm, {"vocab_size": 10000, "wordvec_size": 650, "hidden_size": 650, "dropout_ratio": 0.5},
               {"train_flg": False}),
}
BATCH = {"train": (20, 35), "eval": (10, 35)}  # (N, T): the book's training batch and eval_perplexity's
ROUNDS = 3  # single-step timings per track_; the best counts


def make_step(model, step, seed=0):
    """(fn, tokens): one step of a freshly built stateful model on fixed random token ids.

    train: train_step with clipping at 0.25 and SGD(20) (forward, backward, remove_duplicate,
    clipping, update); eval: the forward of the book's eval_perplexity.
    """
    cls, sizes, eval_kwargs = CONFIGS[model]
    np.random.seed(seed)  # the book's models draw their weights (and dropout seeds) from the global RNG
    net = cls(**sizes, dtype=np.float32)
    N, T = BATCH[step]
    xs, ts = np.random.default_rng(seed).integers(0, sizes["vocab_size"], size=(2, N, T))
    if step == "eval":
        return (lambda: net.forward(xs, ts, **eval_kwargs)), N * T
    optimizer = SGD(20.0)
    return (lambda: train_step(net, optimizer, xs, ts, 0.25)), N * T


class Throughput:
    """Tokens per second of a warm step (the JIT is warmed in setup, never timed)."""

    params = (list(CONFIGS), list(BATCH))
    param_names = ["model", "step"]
    timeout = 300

    def setup(self, model, step):
        self.step, self.tokens = make_step(model, step)
        self.step()

    def track_tokens_per_s(self, model, step):
        return self.tokens / min(timeit.repeat(self.step, number=1, repeat=ROUNDS))

    track_tokens_per_s.unit = "tokens/s"


class TrainingMemory:
    """Peak RSS of the process (asv's peakmem: imports, model and setup included) over one
    BetterRnnlm training step after a warm one."""

    timeout = 300

    def setup(self):
        self.step, _ = make_step("better", "train")
        self.step()

    def peakmem_better_train_step(self):
        self.step()
