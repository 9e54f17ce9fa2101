"""Speed of fastlstm against the plain-NumPy reference of the book's layers, measured in
one run as ratios (a shared machine is noisy; a ratio from one run is not).

`python -m fastlstm.benchmark layers` times the three hot layers at the book's sizes;
`python -m fastlstm.benchmark chapters` a training iteration of the book's chapters 4, 5, 7
and 8 at their sizes (4, 7 and 8 run the book-style files of a checkout's tests/book_chXX);
`python -m fastlstm.benchmark ppmi` the PPMI of chapter 2 against the book's loop;
`python -m fastlstm.benchmark shapes` every compiled time layer over a grid of shapes (`--quick`, `--csv`);
`fastlstm bench` (model_throughput) measures whole training and evaluation steps of both
book models in tokens/s, against the machine's matrix-product peak measured in the same run,
and, with `--peer torch`, against PyTorch's CPU LSTM (fastlstm.torch_peer, optional).
"""

import argparse
import csv
import gc
import importlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import fastlstm
import fastlstm.reference.numpy_layers as ref
import fastlstm.time_layers as fast
from fastlstm import models, util
from fastlstm import optimizer as optimizers
from fastlstm.dataset import ptb, sequence
from fastlstm.errors import UserError
from fastlstm.kernels import packed_product
from fastlstm.optimizer import SGD
from fastlstm.reference import book_files, counting
from fastlstm.reference import models as ref_models
from fastlstm.reference import training as book_training
from fastlstm.trainer import stateful_batch
from fastlstm.training_step import train_step
from fastlstm.warmup import warm_up


def timed_round(fn, min_time):
    """Seconds per call of fn() over a round of calls lasting at least `min_time` seconds (one call when 0)."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls


def best_time(fn, repeat=5, min_time=0.2):
    """Best per-call seconds of fn() over `repeat` timed rounds, after one untimed call."""
    fn()
    return min(timed_round(fn, min_time) for _ in range(repeat))


def _lstm_case(kit, rng, N, T, H):
    Wx, Wh = ((rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(np.float32) for _ in range(2))
    layer = kit.TimeLSTM(Wx, Wh, np.zeros(4 * H, np.float32))
    xs, dhs = (rng.standard_normal((N, T, H)).astype(np.float32) for _ in range(2))

    def step():
        layer.forward(xs)
        layer.backward(dhs)
    return step


def _softmax_case(kit, rng, N, T, V):
    xs = rng.standard_normal((N, T, V)).astype(np.float32)
    ts = rng.integers(0, V, size=(N, T))
    layer = kit.TimeSoftmaxWithLoss()

    def step():
        layer.forward(xs, ts)
        layer.backward()
    return step


def _embedding_case(kit, rng, N, T, V, D):
    layer = kit.TimeEmbedding(rng.standard_normal((V, D)).astype(np.float32))
    ids = rng.integers(0, V, size=(N, T))
    dout = rng.standard_normal((N, T, D)).astype(np.float32)
    layer.forward(ids)
    return lambda: layer.backward(dout)


LAYER_CASES = [
    ("TimeLSTM forward+backward, N=20 T=35 D=H=650", _lstm_case, (20, 35, 650)),
    ("TimeSoftmaxWithLoss forward+backward, N=20 T=35 V=10000", _softmax_case, (20, 35, 10000)),
    ("TimeEmbedding backward, N=20 T=35 V=10000 D=650", _embedding_case, (20, 35, 10000, 650)),
]


def layer_speedups(repeat=5):
    """[(case, reference seconds, fastlstm seconds)] for the hot layers in float32."""
    warm_up()
    rows = []
    for name, case, sizes in LAYER_CASES:
        timings = [best_time(case(kit, np.random.default_rng(0), *sizes), repeat) for kit in (ref, fast)]
        rows.append((name, *timings))
    return rows


def ppmi_speedup(vocab_size=400, repeat=5):
    """(reference seconds, fastlstm seconds) of the PPMI of the co-occurrence counts (window 2)
    of the PTB training words with ids below vocab_size: the book's loop once, the kernel's best."""
    corpus = ptb.load_data("train")[0]
    C = util.create_co_matrix(corpus[corpus < vocab_size], vocab_size, window_size=2)
    start = time.perf_counter()
    counting.ppmi(C)
    return time.perf_counter() - start, best_time(lambda: util.ppmi(C), repeat)


# ---------------------------------------------------------------------------- the book's chapters
# A case builds one side's step from its `kit`: fastlstm.models (fastlstm's layers, train_step
# and optimizers) or fastlstm.reference.models (the reference layers with the book's training
# step and optimizers in NumPy, fastlstm.reference.training: the book's code).

def _training(kit):
    """(training step, optimizers module) of a side."""
    return (book_training.train_step, book_training) if kit is ref_models else (train_step, optimizers)


def _book_model(kit, chapter, module, cls, *args):
    """Model `cls` of the book-style file `module` of `chapter`, on a side's layers, from seed 0."""
    with tempfile.TemporaryDirectory() as folder, book_files.in_book_root(folder):
        with book_files.layers("reference" if kit is ref_models else "fastlstm"):
            np.random.seed(0)
            return getattr(book_files.load(chapter, module), cls)(*args)


def _chapter4_case(kit, data_dir=None):
    """One iteration of chapter 4's training (Trainer.fit: a batch, the training step without
    clipping, Adam) at the book's sizes: CBOW with negative sampling, window 5, hidden 100,
    batch 100 of PTB's training contexts."""
    corpus, word_to_id, _ = ptb.load_data("train", data_dir)
    contexts, target = util.create_contexts_target(corpus, 5)
    idx = np.random.default_rng(0).permutation(len(target))[:100]
    model = _book_model(kit, "ch04", "cbow", "CBOW", len(word_to_id), 100, 5, corpus)
    step, kit_optimizers = _training(kit)
    adam, x, t = kit_optimizers.Adam(), contexts[idx], target[idx]
    return lambda: step(model, adam, x, t)


def _chapter5_case(kit, data_dir=None):
    """One iteration of chapter 5's training (RnnlmTrainer.fit: the next stateful batch, then
    the training step without clipping) at the book's sizes: SimpleRnnlm of word vectors and
    hidden states 100 wide on the first 1000 words of PTB's training split, batch 10 x 5
    steps, SGD with lr 0.1."""
    corpus = ptb.load_data("train", data_dir)[0][:1000]
    np.random.seed(0)
    model = kit.SimpleRnnlm(int(corpus.max()) + 1, 100, 100)
    step, kit_optimizers = _training(kit)
    optimizer, xs, ts = kit_optimizers.SGD(0.1), corpus[:-1], corpus[1:]
    positions = itertools.count(0, 5)
    return lambda: step(model, optimizer, *stateful_batch(xs, ts, 10, 5, next(positions)))


def _seq2seq_case(name, decode=False):
    """The case of one iteration of chapter 7's or 8's training of seq2seq model `name` (Trainer.fit:
    a batch of 128 questions, the training step clipping at 5, Adam) at the book's sizes (word
    vectors 16 wide); with `decode`, of eval_seq2seq's greedy decoding of one test question."""
    def case(kit, data_dir=None):
        chapter, module, _, hidden, _ = book_files.SEQ2SEQ[name]
        (x, t), (x_test, t_test) = book_files.seq2seq_data(name)
        model = _book_model(kit, chapter, module, name, len(sequence.get_vocab()[0]), 16, hidden)
        if decode:
            question, correct = x_test[[0]], t_test[[0]]
            return lambda: model.generate(question, correct[0, 0], correct.shape[1] - 1)
        idx = np.random.default_rng(0).permutation(len(x))[:128]
        step, kit_optimizers = _training(kit)
        adam, x, t = kit_optimizers.Adam(), x[idx], t[idx]
        return lambda: step(model, adam, x, t, 5.0)
    return case


CHAPTER_CASES = {
    "ch04": ("chapter 4 CBOW training iteration, N=100 window 5 H=100", _chapter4_case),
    "ch05": ("chapter 5 SimpleRnnlm training iteration, N=10 T=5 D=H=100", _chapter5_case),
    "ch07": ("chapter 7 Seq2seq training iteration, N=128 D=16 H=128", _seq2seq_case("Seq2seq")),
    "ch07-peeky": ("chapter 7 PeekySeq2seq training iteration, N=128 D=16 H=128", _seq2seq_case("PeekySeq2seq")),
    "ch08": ("chapter 8 AttentionSeq2seq training iteration, N=128 D=16 H=256", _seq2seq_case("AttentionSeq2seq")),
    "ch07-decode": ("chapter 7 Seq2seq greedy decoding of one question", _seq2seq_case("Seq2seq", True)),
    "ch07-peeky-decode": ("chapter 7 PeekySeq2seq greedy decoding of one question",
                          _seq2seq_case("PeekySeq2seq", True)),
    "ch08-decode": ("chapter 8 AttentionSeq2seq greedy decoding of one question",
                    _seq2seq_case("AttentionSeq2seq", True)),
}
TRAINING_CASES = ("ch04", "ch05", "ch07", "ch07-peeky", "ch08")


# Seconds of rest before each side's round where sides run on several threads: after a
# multi-threaded call OpenBLAS's workers spin on for about a tenth of a second (2^28 cycles),
# holding the core that the next side's lanes need (docs/performance.md, "Every shape").
SIDE_REST = 0.12


def alternating_rounds(sides, rounds, min_time, rest=0.0):
    """{key: seconds per call in each round (array)} of sides (key, threads, fn): every fn is
    called once untimed (compiled, a first NumPy call's fresh memory paid for), then each of
    `rounds` rounds times every side by timed_round on its thread count, after `rest` seconds
    of sleep, in order in even rounds and in reverse in odd ones, so that a moment when the
    shared machine is slower weighs on both sides alike; a key of several sides counts its
    best in each round."""
    def use(threads):
        if threads != fastlstm.get_num_threads():
            fastlstm.set_num_threads(threads)
    for _, threads, fn in sides:
        use(threads)
        fn()
    times = {key: [] for key, _, _ in sides}
    for r in range(rounds):
        best = {}
        for key, threads, fn in (sides if r % 2 == 0 else sides[::-1]):
            use(threads)
            time.sleep(rest)
            seconds = timed_round(fn, min_time)
            best[key] = min(seconds, best.get(key, seconds))
        for key, seconds in best.items():
            times[key].append(seconds)
    return {key: np.array(seconds) for key, seconds in times.items()}


def chapter_speedups(names=TRAINING_CASES, rounds=9, min_time=0.2, data_dir=None):
    """[(case, NumPy seconds, fastlstm seconds, ratio)] of each named chapter case, float32,
    warm, timed by alternating_rounds (each round after SIDE_REST on several threads): the
    NumPy side at the better of fastlstm's thread count and one thread (on a busy machine,
    multi-threaded BLAS at these sizes can run many times slower). The seconds are medians
    over the rounds, the ratio (NumPy / fastlstm) the median of the rounds' ratios, so that a
    moment when the shared machine is slower weighs on both sides alike."""
    threads = fastlstm.get_num_threads()
    rows = []
    try:
        for name in names:
            label, case = CHAPTER_CASES[name]
            steps = {kit: case(kit, data_dir) for kit in (ref_models, models)}
            sides = [(ref_models, threads, steps[ref_models]), (models, threads, steps[models])]
            if threads > 1:
                sides.append((ref_models, 1, steps[ref_models]))
            times = alternating_rounds(sides, rounds, min_time, SIDE_REST if threads > 1 else 0.0)
            t_ref, t_fast = times[ref_models], times[models]
            rows.append((label, float(np.median(t_ref)), float(np.median(t_fast)), float(np.median(t_ref / t_fast))))
    finally:
        fastlstm.set_num_threads(threads)
    return rows


# ---------------------------------------------------------------------------- every shape
# Each compiled time layer at every shape of a grid, forward+backward ('train') and the
# evaluation forward ('eval'), fastlstm's time layers against the reference's, float32.

SHAPE_LAYERS = ("LSTM", "RNN", "GRU", "Affine", "Embedding", "SoftmaxWithLoss")
SHAPE_MODES = ("train", "eval")
SHAPE_GRID = {"n": (1, 2, 8, 32, 128), "t": (1, 4, 35), "width": (16, 64, 128, 256, 650)}
GATES = {"LSTM": 4, "RNN": 1, "GRU": 3}  # blocks of H columns in Wx and Wh
EMBEDDING_VOCAB = 10000  # the book's PTB vocabulary: an embedding's rows whatever its width
# (rounds, min_time) of a cell: the full sweep and --quick (True)
SHAPE_TIMING = {False: (7, 0.02), True: (3, 0.002)}
SHAPE_COLUMNS = ("layer", "mode", "N", "T", "width", "numpy_s", "fastlstm_s", "ratio")


def shape_arguments(layer, rng, N, T, width):
    """(constructor, forward, backward) arguments of `layer` at batch N, T steps and `width`,
    float32 from `rng`: recurrent layers D = H = width; Affine width -> width; Embedding
    EMBEDDING_VOCAB rows of width; SoftmaxWithLoss width classes, targets uniform."""
    def floats(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)
    if layer in GATES:
        G = GATES[layer] * width
        weights = [floats(width, G, scale=width ** -0.5), floats(width, G, scale=width ** -0.5)]
        bias = [] if layer == "GRU" else [floats(G, scale=0.1)]
        return weights + bias, (floats(N, T, width),), (floats(N, T, width),)
    if layer == "Affine":
        return [floats(width, width, scale=width ** -0.5), floats(width)], (floats(N, T, width),), \
            (floats(N, T, width),)
    if layer == "Embedding":
        return [floats(EMBEDDING_VOCAB, width)], (rng.integers(0, EMBEDDING_VOCAB, (N, T)),), (floats(N, T, width),)
    return [], (floats(N, T, width), rng.integers(0, width, (N, T))), ()  # SoftmaxWithLoss


def shape_step(kit, layer, mode, arguments):
    """A call of a freshly built Time`layer` of `kit` (ref or fast) on shape_arguments, stateless,
    returning what it computed. 'train': forward, then backward of the fixed dout: (output,
    input gradient, *weight gradients). 'eval': (output,) of the evaluation forward as the
    models run it: fastlstm's `infer` (nothing saved for backward), the reference's forward."""
    constructor, forward, backward = arguments
    obj = getattr(kit, "Time" + layer)(*(w.copy() for w in constructor))
    if mode == "train":
        def step():
            out = obj.forward(*forward)
            return (out, obj.backward(*backward), *obj.grads)
        return step
    evaluate = obj.infer if kit is fast else obj.forward
    return lambda: (evaluate(*forward),)


def shape_cell(layer, mode, N, T, width, rounds, min_time):
    """One cell of the sweep as a dict of SHAPE_COLUMNS: both sides built from the same weights
    and inputs (default_rng(0)), timed by alternating_rounds on the current threads (each
    round after SIDE_REST on several); seconds per call are medians over the rounds, the ratio
    (NumPy / fastlstm) the rounds' median."""
    arguments = shape_arguments(layer, np.random.default_rng(0), N, T, width)
    threads = fastlstm.get_num_threads()
    times = alternating_rounds([(kit, threads, shape_step(kit, layer, mode, arguments)) for kit in (ref, fast)],
                               rounds, min_time, SIDE_REST if threads > 1 else 0.0)
    return {"layer": layer, "mode": mode, "N": N, "T": T, "width": width,
            "numpy_s": float(np.median(times[ref])), "fastlstm_s": float(np.median(times[fast])),
            "ratio": float(np.median(times[ref] / times[fast]))}


def shape_cells(layers=SHAPE_LAYERS, modes=SHAPE_MODES, ns=SHAPE_GRID["n"], ts=SHAPE_GRID["t"],
                widths=SHAPE_GRID["width"]):
    """[(layer, mode, N, T, width)] of every combination, in that order; ValueError for a layer
    or mode not in SHAPE_LAYERS or SHAPE_MODES, or a size that is not a positive int."""
    for name, given, known in (("layers", layers, SHAPE_LAYERS), ("modes", modes, SHAPE_MODES)):
        unknown = [x for x in given if x not in known]
        if unknown or not given:
            raise ValueError(f"{name} must be some of {', '.join(known)}, got {', '.join(map(str, given)) or 'none'}")
    for name, sizes in (("N", ns), ("T", ts), ("width", widths)):
        if not sizes or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
            raise ValueError(f"{name} must be positive integers, got {list(sizes)}")
    return list(itertools.product(layers, modes, ns, ts, widths))


def shape_sweep(cells, quick=False, rounds=None, log=None):
    """shape_cell of each (layer, mode, N, T, width) of `cells` (shape_cells), timed as
    SHAPE_TIMING[quick] says, `rounds` replacing its rounds; `log`, a print-like callable,
    receives each cell as it ends."""
    default_rounds, min_time = SHAPE_TIMING[quick]
    warm_up()
    rows = []
    for i, cell in enumerate(cells, 1):
        rows.append(shape_cell(*cell, rounds or default_rounds, min_time))
        if log:
            log(f"[{i}/{len(cells)}] {describe_cell(rows[-1])}")
    return rows


def describe_cell(row):
    """A cell of shape_sweep in one line: its shape, both sides' milliseconds and the ratio."""
    return (f"{row['layer']} {row['mode']} N={row['N']} T={row['T']} width={row['width']}: NumPy "
            f"{row['numpy_s'] * 1e3:.3f} ms, fastlstm {row['fastlstm_s'] * 1e3:.3f} ms, {row['ratio']:.2f}x")


def format_shapes(rows):
    """The rows of shape_sweep as a table of ratios per layer and mode (rows N x T, columns
    width), then the lowest cell and the count of cells below 1.0x."""
    lines = []
    for layer, mode in dict.fromkeys((r["layer"], r["mode"]) for r in rows):
        table = {(r["N"], r["T"], r["width"]): r["ratio"] for r in rows if (r["layer"], r["mode"]) == (layer, mode)}
        widths = sorted({w for _, _, w in table})
        lines += ["", f"{layer} {mode}: NumPy time / fastlstm time",
                  f"{'N x T':>9s}" + "".join(f"{w:>9d}" for w in widths)]
        for N, T in sorted({(N, T) for N, T, _ in table}):
            cells = (f"{table[N, T, w]:8.2f}x" if (N, T, w) in table else f"{'':9s}" for w in widths)
            lines.append(f"{N:>4d} x{T:>3d}" + "".join(cells))
    lowest = min(rows, key=lambda r: r["ratio"])
    below = sum(r["ratio"] < 1.0 for r in rows)
    lines += ["", f"lowest: {describe_cell(lowest)}", f"cells below 1.0x: {below} of {len(rows)}"]
    return "\n".join(lines[1:])


def write_shapes_csv(rows, file):
    """Every cell of shape_sweep into an open text file (newline=""), one line each, in the
    order of SHAPE_COLUMNS."""
    writer = csv.DictWriter(file, SHAPE_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


# ---------------------------------------------------------------------------- whole models

# The book's two configurations: model classes (fastlstm, NumPy reference), constructor sizes and
# LSTM layers. An evaluation step is the forward that eval_perplexity calls (util.evaluation_forward).
MODELS = {
    "rnnlm": {"classes": {"fastlstm": models.Rnnlm, "numpy": ref_models.Rnnlm},
              "sizes": {"vocab_size": 10000, "wordvec_size": 100, "hidden_size": 100},
              "layers": 1},
    "better": {"classes": {"fastlstm": models.BetterRnnlm, "numpy": ref_models.BetterRnnlm},
               "sizes": {"vocab_size": 10000, "wordvec_size": 650, "hidden_size": 650, "dropout_ratio": 0.5},
               "layers": 2},
}
IMPLEMENTATIONS = ("fastlstm", "numpy")
# Optional peers, each a module of fastlstm that needs a package fastlstm does not: its name, the
# package, and how to install it. A peer starts from the weights fastlstm's model draws and is
# timed as fastlstm is, its rounds interleaved with fastlstm's.
PEERS = {"torch": ("fastlstm.torch_peer", "torch", "pip install torch")}
LABELS = {"fastlstm": "fastlstm", "numpy": "NumPy", "torch": "PyTorch"}
# (N, T) of a step: the book's training batch, and the batch of its eval_perplexity
STEPS = {"train": (20, 35), "eval": (10, 35)}
LR, MAX_GRAD = 20.0, 0.25  # SGD learning rate and gradient clipping of the book's recipes
PEAK_SIZE = 4096  # side of the float32 np.dot whose GFLOP/s is the peak
# Seconds of rest around a round's peak: after a multi-threaded call, OpenBLAS's workers
# (and Numba's) spin for a while, holding a core (docs/performance.md, Method).
SETTLE = 0.2
# Measurements of each side of a round, the best counting: the peak's np.dot calls and the
# step's timed runs alike, so that a disturbed call on either side is dropped the same way.
# The best peak against the step's one run would count only the step's disturbances.
BEST_OF = 2
# The full and the --quick (True) measurement: interleaved_rounds' arguments per implementation
# (both warm up with an untimed call: a first NumPy call pays for fresh memory), implementations whose memory is measured (--quick skips NumPy's: its
# BetterRnnlm step takes seconds). --quick takes one round of each, well under a minute.
TIMING = {False: {"fastlstm": {"repeat": 5, "min_time": 0.2},
                  "numpy": {"repeat": 3, "min_time": 0.2},
                  "memory": IMPLEMENTATIONS},
          True: {"fastlstm": {"repeat": 1, "min_time": 0.1},
                 "numpy": {"repeat": 1, "min_time": 0.0},
                 "memory": ("fastlstm",)}}
MEMORY_METHOD = ("resident memory (RSS) in a fresh subprocess, glibc's mmap threshold fixed so freed arrays "
                 "go back to the OS: 'step' = high-water growth over one steady-state step (after a warm one), "
                 "'total' = that high water minus the RSS before the model was built")


def describe_timing(quick=False):
    """How TIMING[quick] times each implementation, in words."""
    def one(t):
        length = f"of >= {t['min_time']} s of calls" if t["min_time"] else "of one call"
        return f"{t['repeat']} round{'s' if t['repeat'] > 1 else ''}, each the best of {BEST_OF} runs {length}"
    timing = TIMING[quick]
    return (f"fastlstm: {one(timing['fastlstm'])}, NumPy: {one(timing['numpy'])}, after an untimed call; "
            f"memory: {', '.join(timing['memory'])}")


def describe_tile():
    """The recurrence's product tile (kernels/packed_product.py) and the CPU Numba compiles for
    (the host's, or NUMBA_CPU_NAME's), which chose it, in words."""
    tile = packed_product.TILE
    _, cpu, features = packed_product.cpu_target.target_context.codegen().magic_tuple()
    return (f"{tile.vector_bytes * 8}-bit vectors, {tile.rows} rows x {packed_product.PANEL_VECTORS} vectors, "
            f"for CPU {cpu}{'' if features else ' with its baseline features'}")


PAIRING = (f"each timed round just after its own peak measurement (float32 {PEAK_SIZE}^3 np.dot calls), each "
           f"the best of {BEST_OF}; tokens/s and the fraction of the limit are medians over the rounds, each "
           "round's fraction against its own peak")


def interleaved_rounds(fns, peak, repeat, min_time, settle=SETTLE, best_of=BEST_OF):
    """[[(seconds per call of fn in each run, GFLOP/s of each peak() call)] for `repeat`
    rounds] per fn of `fns`, after one untimed call of each. In each round every fn gets its
    own peak: peak() `best_of` times between two rests of `settle` seconds, then `best_of`
    runs of fn, each of calls lasting at least `min_time` seconds (one call when 0), so that a
    slow moment of the shared machine slows a fn and its peak alike and their ratio stays; the
    fns take their turns in order in even rounds and in reverse in odd ones."""
    for fn in fns:
        fn()
    rounds = [[] for _ in fns]
    for r in range(repeat):
        order = range(len(fns)) if r % 2 == 0 else range(len(fns) - 1, -1, -1)
        for i in order:
            time.sleep(settle)
            gflops = [peak() for _ in range(best_of)]
            time.sleep(settle)
            rounds[i].append(([timed_round(fns[i], min_time) for _ in range(best_of)], gflops))
    return rounds


def flop_per_token(step, vocab_size, wordvec_size, hidden_size, layers):
    """Matrix-product FLOPs per token of a training ('train') or evaluation ('eval') step.

    Per LSTM layer of input width D and width H the forward products cost 8H(D+H)
    (x @ Wx and h @ Wh, 2 FLOPs a multiply-add), the output layer 2HV; backward costs
    twice the forward (data and weight gradients): so 24H(D+H) + 6HV to train.
    Elementwise work is left out: it is memory traffic, not arithmetic.
    """
    V, D, H = vocab_size, wordvec_size, hidden_size
    lstm = H * (D + H) + (layers - 1) * H * (H + H)
    factor = {"train": 3, "eval": 1}[step]
    return factor * (8 * lstm + 2 * H * V)


def model_flop_per_token(model, step, sizes=None):
    """flop_per_token of a step of one of MODELS, at its sizes updated by `sizes`."""
    spec = MODELS[model]
    s = {**spec["sizes"], **(sizes or {})}
    return flop_per_token(step, s["vocab_size"], s["wordvec_size"], s["hidden_size"], spec["layers"])


def load_peer(name):
    """The module of peer `name` of PEERS; UserError with the install command where the package
    it needs is missing."""
    module, package, install = PEERS[name]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != package:
            raise
        raise UserError(f"the {LABELS[name]} peer needs {package}, which is not installed: {install}") from None


def make_step(model, implementation, step, sizes=None, seed=0):
    """(fn, tokens): one training or evaluation step of a freshly built float32 model, as a call.

    `implementation` is one of IMPLEMENTATIONS or of PEERS (a peer's model gets the weights
    of fastlstm's). Weights come from np.random.seed(seed) (the global generator, as in the
    book), the token ids and targets from default_rng(seed); the model is stateful as built and
    never reset, so repeated calls continue its state as truncated BPTT does. `sizes`
    overrides the book's constructor sizes (tests use tiny ones).
    """
    spec = MODELS[model]
    kwargs = {**spec["sizes"], **(sizes or {})}
    np.random.seed(seed)
    net = spec["classes"]["fastlstm" if implementation in PEERS else implementation](**kwargs, dtype=np.float32)
    N, T = STEPS[step]
    xs, ts = np.random.default_rng(seed).integers(0, kwargs["vocab_size"], size=(2, N, T))
    if implementation in PEERS:
        peer = load_peer(implementation)
        return peer.make_step(peer.from_book(net), step, xs, ts, LR, MAX_GRAD, seed), N * T
    if step == "eval":
        forward = util.evaluation_forward(net)
        return (lambda: forward(xs, ts)), N * T
    optimizer = SGD(LR)
    return (lambda: train_step(net, optimizer, xs, ts, MAX_GRAD)), N * T


class Peak:
    """The machine's float32 matrix-product speed: GFLOP/s of one size^3 np.dot, with the
    current BLAS threads, on operands made once."""

    def __init__(self, size=PEAK_SIZE):
        self.size = size
        self.a, self.b = np.random.default_rng(0).standard_normal((2, size, size), dtype=np.float32)
        self.out = np.empty((size, size), np.float32)

    def __call__(self):
        start = time.perf_counter()
        np.dot(self.a, self.b, out=self.out)
        return 2 * self.size ** 3 / (time.perf_counter() - start) / 1e9

    def best(self, calls):
        """The best over `calls` calls."""
        return max(self() for _ in range(calls))


def training_memory_floor(model, sizes=None, itemsize=4):
    """MiB that a training step of `model` cannot do without, as {"params", "grads",
    "activations", "total"}: the weights (the tied one once); the gradients as the book's
    models hold them (the tied weight has one in each of its two layers); and what backward
    needs of the forward pass: the scores (for the softmax gradient), the output layer's
    input, each LSTM's input, hidden states, cell states and gates, the dropout masks."""
    spec = MODELS[model]
    sz = {**spec["sizes"], **(sizes or {})}
    V, D, H = sz["vocab_size"], sz["wordvec_size"], sz["hidden_size"]
    N, T = STEPS["train"]
    M = N * T
    tied = "dropout_ratio" in sz  # BetterRnnlm: tied output weight, dropout before and after each LSTM
    widths = [D] + [H] * (spec["layers"] - 1)
    params = V * D + sum(d * 4 * H + H * 4 * H + 4 * H for d in widths) + (0 if tied else H * V) + V
    grads = params + (V * D if tied else 0)
    activations = M * V + M * H + sum(M * (d + 2 * H + 4 * H) for d in widths)
    if tied:
        activations += M * (D + sum(widths[1:]) + H)
    mib = {k: v * itemsize / 2**20 for k, v in
           {"params": params, "grads": grads, "activations": activations}.items()}
    mib["total"] = sum(mib.values())
    return mib


def _proc_status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_peak_rss():
    """Reset the high-water mark VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _measure_step_memory(cases, sizes):
    """In this process: {"model/implementation/step": {"step": MiB, "total": MiB}} of MEMORY_METHOD
    for each case; None for a case where the peak RSS cannot be reset. The untimed first call
    loads the kernels and touches what the model keeps from step to step."""
    for implementation in dict.fromkeys(c[1] for c in cases if c[1] in PEERS):
        load_peer(implementation)  # its library loaded before any model: its memory is no step's
    result = {}
    for model, implementation, step in cases:
        gc.collect()
        before_model = _proc_status_kib("VmRSS")
        fn, _ = make_step(model, implementation, step, sizes)
        fn()
        gc.collect()
        key = f"{model}/{implementation}/{step}"
        result[key] = None
        if _reset_peak_rss():
            before_step = _proc_status_kib("VmHWM")  # the RSS at the reset: the high water can only rise from it
            fn()
            high = _proc_status_kib("VmHWM")
            # the kernel tracks VmHWM lazily, to within a few pages: a step that adds nothing can read a hair below 0
            result[key] = {"step": max(high - before_step, 0) / 1024, "total": (high - before_model) / 1024}
        del fn
    return result


def _memory_child():
    """Entry of the memory subprocess: cases and sizes as JSON on stdin, the result as JSON on stdout."""
    spec = json.load(sys.stdin)
    print(json.dumps(_measure_step_memory([tuple(c) for c in spec["cases"]], spec["sizes"])))


def step_memory(cases, sizes=None):
    """{"model/implementation/step": {"step": MiB, "total": MiB} or None} of MEMORY_METHOD for
    (model, implementation, step) cases, measured in a fresh Python process with this process's
    thread count. RSS also counts Numba's and BLAS's allocations, which tracemalloc would miss."""
    env = {**os.environ, "FASTLSTM_NUM_THREADS": str(fastlstm.get_num_threads()),
           "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, "-c", "from fastlstm.benchmark import _memory_child; _memory_child()"],
                         input=json.dumps({"cases": [list(c) for c in cases], "sizes": sizes or {}}),
                         capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.splitlines()[-1])


def model_throughput(model_names=tuple(MODELS), quick=False, sizes=None, peak_size=PEAK_SIZE, memory=True, log=None,
                     settle=SETTLE, peers=()):
    """Rows (dicts), one per model and step ('train', 'eval'), measured by interleaved_rounds
    (float32, the thread setting in force, JIT compiled before any timing): tokens/s of
    fastlstm and of the NumPy reference, each the median over its rounds, and their ratio;
    FLOPs per token; achieved GFLOP/s; each implementation's fraction of the limit, the
    median over its rounds of the round's GFLOP/s over the peak measured just before it
    (the rounds' figures: 'fastlstm_round_tokens_per_s', 'fastlstm_peaks_gflops',
    'fastlstm_round_fractions', and NumPy's alike, each round's best on both sides; every
    run and peak call of a round in 'fastlstm_round_calls'); the median of fastlstm's peaks
    ('peak_gflops') and the limit in tokens/s it sets, peak / FLOP per token. With
    `memory`, MEMORY_METHOD's figures in MiB (None when not measured).

    Each of `peers` (names of PEERS) gets the same figures under its name, timed as fastlstm
    is, by interleaved_rounds with fastlstm's rounds (its memory too, but with --quick), and
    'speedup_<peer>_rounds': fastlstm's tokens/s over the peer's in each of those paired rounds,
    and 'speedup_<peer>' their median.

    Timing as TIMING[quick] says, with `settle` seconds of rest around each peak.
    `sizes` overrides the models' sizes, `peak_size` the side of the np.dot; `log`, a
    print-like callable, receives progress.
    """
    log = log or (lambda *a: None)
    timing = TIMING[quick]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"peers must be some of {', '.join(PEERS)}, got {', '.join(map(str, unknown))}")
    groups = [("fastlstm", *peers), ("numpy",)]  # timed together; a group of several interleaves its rounds
    warm_up()
    peak = Peak(peak_size)
    state = np.random.get_state()
    rows = []
    try:
        for model in model_names:
            for step, (N, T) in STEPS.items():
                flop = model_flop_per_token(model, step, sizes)
                row = {"model": model, "step": step, "batch": N, "time": T, "dtype": "float32",
                       "threads": fastlstm.get_num_threads(), "flop_per_token": flop}
                for group in groups:
                    log(f"{model} {step} {' and '.join(group)}, each round after a float32 {peak_size}^3 np.dot")
                    steps = [make_step(model, impl, step, sizes) for impl in group]
                    fns, tokens = [fn for fn, _ in steps], steps[0][1]
                    sides = interleaved_rounds(fns, peak, settle=settle, **timing[group[0]])
                    del steps, fns
                    for impl, rounds in zip(group, sides):
                        row.update(_round_figures(impl, rounds, tokens, flop))
                row["speedup"] = row["fastlstm_tokens_per_s"] / row["numpy_tokens_per_s"]
                for peer in peers:
                    row[f"speedup_{peer}_rounds"] = np.divide(row["fastlstm_round_tokens_per_s"],
                                                               row[f"{peer}_round_tokens_per_s"]).tolist()
                    row[f"speedup_{peer}"] = float(np.median(row[f"speedup_{peer}_rounds"]))
                row["peak_gflops"] = float(np.median(row["fastlstm_peaks_gflops"]))
                row["limit_tokens_per_s"] = row["peak_gflops"] * 1e9 / flop
                if step == "train":
                    row["floor_mib"] = training_memory_floor(model, sizes)["total"]
                rows.append(row)
    finally:
        np.random.set_state(state)
    if memory:
        log("memory, in a fresh subprocess")
        measured = (*timing["memory"], *(() if quick else peers))
        mib = step_memory([(r["model"], impl, r["step"]) for r in rows for impl in measured], sizes)
        for r in rows:
            for impl in (*IMPLEMENTATIONS, *peers):
                figures = mib.get(f"{r['model']}/{impl}/{r['step']}") or {}
                r[f"{impl}_step_mib"] = figures.get("step")
                r[f"{impl}_total_mib"] = figures.get("total")
    return rows


def _round_figures(impl, rounds, tokens, flop):
    """The figures of one implementation's rounds (interleaved_rounds), keyed as model_throughput's rows have them."""
    rates = [tokens / min(seconds) for seconds, _ in rounds]
    peaks = [max(gflops) for _, gflops in rounds]
    rate = float(np.median(rates))
    fractions = [r * flop / 1e9 / g for r, g in zip(rates, peaks)]
    return {f"{impl}_tokens_per_s": rate, f"{impl}_gflops": rate * flop / 1e9,
            f"{impl}_round_tokens_per_s": rates, f"{impl}_peaks_gflops": peaks,
            f"{impl}_round_fractions": fractions, f"{impl}_fraction": float(np.median(fractions)),
            f"{impl}_round_calls": [{"seconds": seconds, "gflops": gflops} for seconds, gflops in rounds]}


def row_implementations(row):
    """The implementations a row of model_throughput measured: IMPLEMENTATIONS, then its peers."""
    return [*IMPLEMENTATIONS, *(p for p in PEERS if f"{p}_tokens_per_s" in row)]


def row_peaks(*rows):
    """Every peak (GFLOP/s) measured for the rows of model_throughput, in order."""
    return [gflops for row in rows for impl in row_implementations(row) for gflops in row[f"{impl}_peaks_gflops"]]


def format_throughput(rows):
    """The rows of model_throughput as a fixed-width table (text): a block of columns per
    implementation, then fastlstm's ratio to each of the others."""
    def mem(r, impl):
        step, total = r.get(f"{impl}_step_mib"), r.get(f"{impl}_total_mib")
        return "n/a" if step is None else f"{step:.0f}/{total:.0f}"
    impls = row_implementations(rows[0])
    peers = impls[len(IMPLEMENTATIONS):]
    ratios = [("speedup", "NumPy")] + [(f"speedup_{p}", LABELS[p]) for p in peers]
    head = (f"{'model':7s}{'step':6s}{'N x T':>7s}{'MFLOP/tok':>10s}{'limit tok/s':>12s}"
            + "".join(f" |{LABELS[i] + ' tok/s':>15s}{'GFLOP/s':>8s}{'of lim':>7s}{'MiB':>9s}" for i in impls)
            + " |" + "".join(f"{'vs ' + label:>11s}" for _, label in ratios))
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model']:7s}{r['step']:6s}{r['batch']:>3d} x{r['time']:>3d}{r['flop_per_token'] / 1e6:10.2f}"
            f"{r['limit_tokens_per_s']:12.0f}"
            + "".join(f" |{r[f'{i}_tokens_per_s']:15.0f}{r[f'{i}_gflops']:8.1f}{r[f'{i}_fraction']:7.1%}"
                      f"{mem(r, i):>9s}" for i in impls)
            + " |" + "".join(f"{r[key]:10.2f}x" for key, _ in ratios))
    floors = [f"{r['model']} {r['floor_mib']:.0f}" for r in rows if "floor_mib" in r]
    lines.append("tok/s: median over rounds; limit: at the median peak of fastlstm's rounds; of lim: median over "
                 "rounds of the round's GFLOP/s over the peak measured just before it")
    lines.append("vs NumPy: fastlstm's tok/s over NumPy's" + "".join(
        f"; vs {LABELS[p]}: median over rounds of fastlstm's tok/s over {LABELS[p]}'s, their rounds interleaved"
        for p in peers))
    lines.append("MiB: step/total; the floor of a training step (params + grads + activations backward needs, "
                 f"training_memory_floor): {', '.join(floors)}")
    lines.append("of lim round by round (fastlstm, each round against its own peak, lowest first):")
    for r in rows:
        fractions = sorted(r["fastlstm_round_fractions"])
        lines.append(f"  {r['model']:7s}{r['step']:6s}" + " ".join(f"{f:.1%}" for f in fractions))
    for peer in peers:
        lines.append(f"fastlstm's tok/s over {LABELS[peer]}'s round by round, in the rounds' order:")
        for r in rows:
            lines.append(f"  {r['model']:7s}{r['step']:6s}" + " ".join(f"{x:.2f}x" for x in r[f"speedup_{peer}_rounds"]))
    return "\n".join(lines)


def _int_list(text):
    """argparse type of a comma-separated list of integers."""
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _shapes_command(parser, args):
    """`shapes`: the sweep of shape_sweep, its table on stdout, progress on stderr."""
    try:
        cells = shape_cells(args.layers.split(","), args.mode.split(","), args.n, args.t, args.width)
    except ValueError as e:
        parser.error(str(e))
    try:  # opened first: a path that cannot be written fails now, not after the sweep
        out = open(args.csv, "w", newline="") if args.csv else None
    except OSError as e:
        parser.error(f"--csv: {e}")
    rounds, min_time = SHAPE_TIMING[args.quick]
    rounds = args.repeat or rounds
    print(f"float32, {fastlstm.get_num_threads()} threads, {len(cells)} cells; each the median of {rounds} "
          f"paired rounds (each side >= {min_time * 1e3:g} ms of calls, which one first alternating"
          f"{f', after {SIDE_REST:g} s of rest' if fastlstm.get_num_threads() > 1 else ''})", flush=True)
    start = time.perf_counter()
    rows = shape_sweep(cells, args.quick, rounds, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_shapes(rows))
    print(f"sweep time: {time.perf_counter() - start:.0f} s")
    if out:
        with out:
            write_shapes_csv(rows, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time fastlstm against the NumPy reference layers.")
    parser.add_argument("what", choices=["layers", "chapters", "ppmi", "shapes"],
                        help="the hot layers, a training iteration of the book's chapters, chapter 2's PPMI, "
                             "or every time layer over a grid of shapes (whole models: `fastlstm bench`)")
    parser.add_argument("--threads", type=int, help="threads for Numba and BLAS (default: all cores)")
    parser.add_argument("--repeat", type=int, help="timing rounds (layers, ppmi: the best counts, default 5; "
                                                   "chapters: the median, default 5; shapes: the median, "
                                                   "default 7, --quick 3)")
    parser.add_argument("--cases", default=",".join(TRAINING_CASES),
                        help="chapters: comma-separated, of " + ", ".join(CHAPTER_CASES))
    parser.add_argument("--data", help="folder of PTB's files for the chapters (default: as fastlstm.dataset.ptb)")
    parser.add_argument("--vocab", type=int, default=400, help="ppmi: the side of the count matrix")
    shapes = parser.add_argument_group("shapes", "the sweep's grid, each comma-separated")
    shapes.add_argument("--layers", default=",".join(SHAPE_LAYERS), help="time layers (default: all)")
    shapes.add_argument("--mode", default=",".join(SHAPE_MODES),
                        help="train (forward+backward), eval (the evaluation forward), or both (default)")
    for name, sizes in SHAPE_GRID.items():
        shapes.add_argument(f"--{name}", type=_int_list, default=list(sizes),
                            help=f"default {','.join(map(str, sizes))}")
    shapes.add_argument("--quick", action="store_true", help="3 rounds of >= 2 ms a side instead of 7 of >= 20 ms")
    shapes.add_argument("--csv", help="write every cell to this CSV file")
    args = parser.parse_args(argv)
    cases = args.cases.split(",")
    if args.what == "chapters" and not set(cases) <= set(CHAPTER_CASES):
        parser.error(f"--cases takes some of {', '.join(CHAPTER_CASES)}, got {args.cases!r}")
    if args.threads:
        fastlstm.set_num_threads(args.threads)
    threads = fastlstm.get_num_threads()
    if args.what == "shapes":
        return _shapes_command(parser, args)
    args.repeat = args.repeat or 5
    if args.what == "ppmi":
        t_ref, t_fast = ppmi_speedup(args.vocab, args.repeat)
        print(f"ppmi of a {args.vocab} x {args.vocab} count matrix, {threads} threads: the book's "
              f"loop {t_ref * 1e3:.1f} ms, fastlstm {t_fast * 1e3:.3f} ms (best of {args.repeat}), "
              f"{t_ref / t_fast:.0f}x")
        return
    if args.what == "chapters":
        sides = (f"fastlstm on {threads} threads, NumPy at the better of {threads} and 1" if threads > 1
                 else "both on 1 thread")
        print(f"float32, {sides}; medians of {args.repeat} paired rounds")
        try:
            rows = chapter_speedups(cases, rounds=args.repeat, data_dir=args.data)
        except FileNotFoundError as e:  # the book's files or PTB: say where to put them, no traceback
            parser.exit(2, f"{parser.prog}: {e}\n")
    else:
        print(f"float32, {threads} threads; best of {args.repeat} rounds")
        rows = [(name, t_ref, t_fast, t_ref / t_fast) for name, t_ref, t_fast in layer_speedups(args.repeat)]
    width = max(len(row[0]) for row in rows)
    print(f"{'case':{width}s} {'NumPy ms':>9s} {'fastlstm ms':>11s} {'speed-up':>8s}")
    for name, t_ref, t_fast, ratio in rows:
        print(f"{name:{width}s} {t_ref * 1e3:9.2f} {t_fast * 1e3:11.2f} {ratio:7.2f}x")


if __name__ == "__main__":
    main()
