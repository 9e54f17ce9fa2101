"""One training iteration of the book's chapters 4, 7 and 8 at the book's sizes, on fastlstm's
layers against the same book-style files on the plain-NumPy reference of the book's layers
(tests/book_files.py), side by side in one process.

Each round times one iteration of each side back to back (in turns, which goes first), each
side the best of its calls over at least `--min-time` seconds; the figure is the median over
the rounds of the ratio reference / fastlstm (above 1: fastlstm is faster). The sizes are the
book's scripts': chapter 4 CBOW, window 5, hidden 100, batch 100 on PTB, Adam; chapter 7
Seq2seq and PeekySeq2seq, wordvec 16, hidden 128, batch 128, Adam, clipping at 5, addition.txt;
chapter 8 AttentionSeq2seq, wordvec 16, hidden 256, batch 128, Adam, clipping at 5, date.txt
reversed. The reference side plays the book's code: the chapter's files on the reference
layers, and the book's training step and Adam in NumPy (fastlstm.reference.training); fastlstm
runs the same files on its layers, with its train_step and Adam. `--generate` also times the
greedy decoding of one test question (eval_seq2seq's generate) for the seq2seq models.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/bench_chapters.py --threads 2
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import book_files  # noqa: E402
import fastlstm  # noqa: E402
from fastlstm.dataset import ptb, sequence  # noqa: E402
from fastlstm import optimizer, training_step  # noqa: E402
from fastlstm.reference import training as book_training  # noqa: E402
from fastlstm.util import create_contexts_target  # noqa: E402


def cbow_case():
    corpus, word_to_id, _ = ptb.load_data("train")
    contexts, target = create_contexts_target(corpus, 5)
    idx = np.random.default_rng(0).permutation(len(target))[:100]
    cbow = book_files.load("ch04", "cbow")
    return (lambda: cbow.CBOW(len(word_to_id), 100, 5, corpus)), contexts[idx], target[idx], None


def seq2seq_case(chapter, module, cls, file_name, hidden, reverse):
    def case():
        (x, t), (x_test, t_test) = sequence.load_data(file_name)
        if reverse:
            x, x_test = x[:, ::-1], x_test[:, ::-1]
        vocab = len(sequence.get_vocab()[0])
        model_cls = getattr(book_files.load(chapter, module), cls)
        idx = np.random.default_rng(0).permutation(len(x))[:128]
        return (lambda: model_cls(vocab, 16, hidden)), x[idx], t[idx], (x_test[[0]], t_test[[0]])
    return case


CASES = {
    "ch04 CBOW": ("ch04", cbow_case),
    "ch07 Seq2seq": ("ch07", seq2seq_case("ch07", "seq2seq", "Seq2seq", "addition.txt", 128, False)),
    "ch07 PeekySeq2seq": ("ch07", seq2seq_case("ch07", "peeky_seq2seq", "PeekySeq2seq", "addition.txt", 128, False)),
    "ch08 AttentionSeq2seq": ("ch08", seq2seq_case("ch08", "attention_seq2seq", "AttentionSeq2seq", "date.txt", 256,
                                                   True)),
}


def steps(case, kit, generate):
    """(training iteration, greedy decoding of one question or None) of a case on a kit."""
    chapter, make = CASES[case]
    with book_files.layers(kit):
        np.random.seed(0)
        build, x, t, question = make()
        model = build()
    max_grad = None if chapter == "ch04" else 5.0
    step, adam = ((training_step.train_step, optimizer.Adam()) if kit == "fastlstm"
                  else (book_training.train_step, book_training.Adam()))

    def train():
        step(model, adam, x, t, max_grad)

    decode = None
    if generate and question is not None:
        q, correct = question
        decode = lambda: model.generate(q, correct[0, 0], correct.shape[1] - 1)  # noqa: E731
    return train, decode


def best(fn, min_time):
    """Best seconds per call of fn over calls lasting at least min_time."""
    times, start = [], time.perf_counter()
    while not times or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def paired(fns, rounds, min_time, threads):
    """{kit: [seconds per round]}, the kits timed back to back in turns, after one untimed call
    each; the reference at the better of one thread and `threads` in each round."""
    runs = [("fastlstm", threads), ("reference", threads)] + ([("reference", 1)] if threads > 1 else [])
    for kit, n in runs:
        fastlstm.set_num_threads(n)
        fns[kit]()
    out = {kit: [] for kit in fns}
    for r in range(rounds):
        best_of_round = {}
        for kit, n in (runs if r % 2 == 0 else runs[::-1]):
            fastlstm.set_num_threads(n)
            seconds = best(fns[kit], min_time)
            best_of_round[kit] = min(seconds, best_of_round.get(kit, seconds))
        for kit, seconds in best_of_round.items():
            out[kit].append(seconds)
    fastlstm.set_num_threads(threads)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="threads for Numba, the lanes and BLAS (default: all cores)")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds; the median ratio counts")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of calls per side and round")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES))
    parser.add_argument("--generate", action="store_true", help="also time the greedy decoding of one question")
    args = parser.parse_args(argv)
    threads = args.threads or fastlstm.get_num_threads()
    fastlstm.set_num_threads(threads)
    os.chdir(book_files.book_root(tempfile.mkdtemp()))  # where the book's files find each other
    print(f"float32, fastlstm on {threads} threads, the reference at the better of 1 and {threads}; {args.rounds} "
          f"paired rounds, each side the best of >= {args.min_time} s of calls; ratio = reference / fastlstm, "
          "median over the rounds")
    print(f"{'case':32s}{'reference ms':>13s}{'fastlstm ms':>12s}{'ratio':>7s}  ratios by round")
    for case in args.cases.split(","):
        pairs = {kit: steps(case, kit, args.generate) for kit in ("reference", "fastlstm")}
        for what, index in (("train", 0), ("generate", 1)):
            fns = {kit: pair[index] for kit, pair in pairs.items()}
            if None in fns.values():
                continue
            times = paired(fns, args.rounds, args.min_time, threads)
            ratios = [r / f for r, f in zip(times["reference"], times["fastlstm"])]
            print(f"{case + ' ' + what:32s}{statistics.median(times['reference']) * 1e3:13.2f}"
                  f"{statistics.median(times['fastlstm']) * 1e3:12.2f}{statistics.median(ratios):6.2f}x  "
                  + " ".join(f"{r:.2f}" for r in ratios), flush=True)


if __name__ == "__main__":
    main()
