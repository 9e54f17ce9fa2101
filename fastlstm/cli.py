"""The `fastlstm` command: train, evaluate and sample the book's chapter 6 language models, and their
regularised kin (variational, awd), on PTB or on a text folder of one's own.

Each subcommand is registered by a small function `add_<name>(subparsers, common)` listed in
COMMANDS: it adds its parser (with `parents=[common]` for --data and --threads) and sets
`run`, a function of the parsed arguments that returns the exit status.
"""

import argparse
import math
import os
import sys

import numpy as np

from fastlstm import generate as gen
from fastlstm import distributed, recipes, run_data, settings, training
from fastlstm.dataset import corpus, ptb
from fastlstm.errors import UserError
from fastlstm.settings import RECIPES
from fastlstm.threads import env_problem, set_num_threads
from fastlstm.util import eval_perplexity


def _number(kind, low, low_ok, high=None):
    """An argparse type: a finite kind(text) within [low or (low, high)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if not (value >= low if low_ok else value > low) or (high is not None and not value < high):
            bound = f"{'>=' if low_ok else '>'} {low}" + ("" if high is None else f" and < {high}")
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value
    return parse


positive_int = _number(int, 0, False)
nonneg_int = _number(int, 0, True)
positive_float = _number(float, 0, False)
nonneg_float = _number(float, 0, True)
dropout_ratio = _number(float, 0, True, 1)
seed_value = _number(int, 0, True, settings.SEED_LIMIT)
vocab_size = _number(int, 1, False)


def _recipe(key):
    """'(default: X)', or '(default: rnnlm X, better Y, ...)', for a setting that the recipes decide
    (over the recipes that have it)."""
    values = {name: recipe[key] for name, recipe in RECIPES.items() if recipe.get(key) is not None}
    if len(set(values.values())) == 1:
        return f"(default: {next(iter(values.values()))})"
    return "(default: " + ", ".join(f"{name} {value}" for name, value in values.items()) + ")"


# ---------------------------------------------------------------------------- train

TRAIN_SETTINGS = ("model", "epochs", "max_iters", "time_budget", "batch_size", "time_size", "lr", "max_grad",
                  "dropout", "input_dropout", "hidden_dropout", "recurrent_dropout", "embed_dropout", "weight_drop",
                  "alpha", "beta", "asgd", "weight_decay", "wordvec_size", "hidden_size", "num_layers", "lr_decay",
                  "eval_interval", "eval_iters", "save_every", "seed", "dtype", "vocab_size")


def _add_regulariser_flags(p):
    """The regularisers' flags of `fastlstm train`, in a group of their own in --help."""
    g = p.add_argument_group("regularisers (--model variational and awd)")
    g.add_argument("--input-dropout", type=dropout_ratio, metavar="RATIO",
                   help=f"locked dropout on the embedding's output, awd only {_recipe('input_dropout')}")
    g.add_argument("--hidden-dropout", type=dropout_ratio, metavar="RATIO",
                   help=f"locked dropout between the LSTMs, awd only {_recipe('hidden_dropout')}")
    g.add_argument("--recurrent-dropout", type=dropout_ratio, metavar="RATIO",
                   help="dropout on every step's h_{t-1}, one mask per sequence, variational only "
                        f"{_recipe('recurrent_dropout')}")
    g.add_argument("--embed-dropout", type=dropout_ratio, metavar="RATIO",
                   help=f"drop whole words of the embedding per batch {_recipe('embed_dropout')}")
    g.add_argument("--weight-drop", type=dropout_ratio, metavar="RATIO",
                   help=f"DropConnect on each LSTM's Wh, one mask per batch {_recipe('weight_drop')}")
    g.add_argument("--alpha", type=nonneg_float,
                   help=f"activation regularisation (AR) of the last LSTM's dropped output {_recipe('alpha')}")
    g.add_argument("--beta", type=nonneg_float,
                   help=f"temporal activation regularisation (TAR) of the last LSTM's output {_recipe('beta')}")
    g.add_argument("--asgd", type=nonneg_int, metavar="N",
                   help="switch to averaged SGD once a validation is worse than the best before the last N "
                        f"(NT-ASGD); 0 never {_recipe('asgd')}")
    g.add_argument("--weight-decay", type=nonneg_float, metavar="DECAY",
                   help=f"L2 weight decay in the SGD update {_recipe('weight_decay')}")


def add_train(subparsers, common):
    p = subparsers.add_parser(
        "train", parents=[common], help="train a language model on PTB or your own text with its recipe",
        description="Train one of the book's chapter 6 models, or a regularised one, on PTB or on a text folder "
                    "of your own: stateful truncated BPTT (the data position and the LSTM state carry on across "
                    "epochs in the rnnlm recipe and restart every epoch in the others, as in the book's scripts), "
                    "validation after every epoch keeping the best weights, the test perplexity of the best "
                    "weights at the end. --out receives checkpoint.npz (resumable), best.pkl (book format), "
                    "vocab.txt, log.csv and perplexity.png, and is held by one run at a time (run.lock). Ctrl-C, "
                    "SIGTERM and SIGHUP stop after the current step and save a checkpoint (exit status 128 + the "
                    "signal's number: 130, 143, 129); --resume continues it exactly.")
    p.add_argument("--model", choices=tuple(RECIPES),
                   help="the recipe: rnnlm = the book's Rnnlm (train_rnnlm.py), better = BetterRnnlm "
                        "(train_better_rnnlm.py), variational = BetterRnnlm with variational dropout "
                        "(VariationalRnnlm), awd = AWD-LSTM (AwdRnnlm) (default: rnnlm)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/<model>)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training over MPI, started as `mpiexec -n P fastlstm train --distributed ...`: "
                        "each of the P ranks trains on batch/P rows of every batch, one thread each unless --threads "
                        "says otherwise; rank 0 writes. Alone (P = 1) it trains as one process. Needs "
                        f"{distributed.INSTALL}")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out; its settings are kept, only --epochs, --max-iters, "
                        "--time-budget, --eval-interval and --save-every may be changed")
    p.add_argument("--epochs", type=positive_int, metavar="N", help=f"epochs to train {_recipe('epochs')}")
    p.add_argument("--max-iters", type=positive_int, metavar="N",
                   help="stop once N iterations in total are done (smoke runs; with --eval-iters they take "
                        "seconds); a stop in mid-epoch validates and tests the weights as they are; a --resume "
                        "does not keep it (default: no limit)")
    p.add_argument("--time-budget", type=positive_float, metavar="MINUTES",
                   help="stop once the run has trained for MINUTES of wall-clock time (over the runs that resumed "
                        "one another), saving a checkpoint, then validate and test the best weights, as --max-iters "
                        "does; a --resume does not keep it (default: no limit)")
    p.add_argument("--batch-size", type=positive_int, metavar="N",
                   help=f"rows of the stateful batch {_recipe('batch_size')}")
    p.add_argument("--time-size", type=positive_int, metavar="T",
                   help=f"time steps of truncated BPTT {_recipe('time_size')}")
    p.add_argument("--lr", type=positive_float, help=f"SGD learning rate {_recipe('lr')}")
    p.add_argument("--max-grad", type=nonneg_float, metavar="NORM",
                   help=f"clip the gradient norm to NORM, 0 for no clipping {_recipe('max_grad')}")
    p.add_argument("--dropout", type=dropout_ratio, metavar="RATIO",
                   help="dropout ratio: better, between all layers; variational, of its locked dropout between all "
                        f"layers; awd, of the last LSTM's output {_recipe('dropout')}")
    _add_regulariser_flags(p)
    p.add_argument("--wordvec-size", type=positive_int, metavar="D",
                   help=f"embedding width {_recipe('wordvec_size')}")
    p.add_argument("--hidden-size", type=positive_int, metavar="H",
                   help=f"LSTM width (better and variational tie the output weight to the embedding, so they "
                        f"need D = H; awd's last LSTM is D wide) {_recipe('hidden_size')}")
    p.add_argument("--num-layers", type=positive_int, metavar="L",
                   help=f"LSTM layers, awd only {_recipe('num_layers')}")
    p.add_argument("--lr-decay", action=argparse.BooleanOptionalAction,
                   help=f"divide the lr by 4 when the validation perplexity does not improve {_recipe('lr_decay')}")
    p.add_argument("--eval-interval", type=positive_int, metavar="N",
                   help=f"iterations between progress lines (default: {settings.DEFAULTS['eval_interval']})")
    p.add_argument("--eval-iters", type=positive_int, metavar="N",
                   help="validate and test on the first N batches of 10 x 35 only (smoke runs; default: the whole "
                        "split)")
    p.add_argument("--save-every", type=nonneg_int, metavar="N",
                   help=f"also write the checkpoint every N iterations, 0 for epoch ends only "
                        f"(default: {settings.DEFAULTS['save_every']})")
    p.add_argument("--seed", type=seed_value,
                   help="seed NumPy's global RNG before the model is built: the initial weights and the dropout "
                        "masks follow it (default: unseeded, as in the book)")
    p.add_argument("--dtype", choices=("float32", "float64"),
                   help="float32 as the book, or float64 as the study notebook (default: float32)")
    p.add_argument("--vocab-size", type=vocab_size, metavar="N",
                   help="a text folder only: keep the N - 1 most frequent words of train.txt (ties: the first seen) "
                        "and <unk>, which every other word becomes (default: every word of train.txt, and <unk> for "
                        "the words of valid.txt and test.txt that train.txt lacks)")
    p.set_defaults(run=_run_train)


def _run_train(args):
    options = {key: getattr(args, key) for key in TRAIN_SETTINGS if getattr(args, key) is not None}
    out = args.out or f"runs/{args.model or 'rnnlm'}"
    if not args.distributed:
        return training.Run(out, args.data, options, args.resume).run()
    if args.threads is None and (not os.environ.get("FASTLSTM_NUM_THREADS", "").strip() or env_problem()):
        set_num_threads(1)  # a rank per core: one thread each unless told otherwise
    return distributed.run(lambda ranks: training.Run(out, args.data, options, args.resume, ranks))


# ---------------------------------------------------------------------------- eval

def _add_params_flags(p):
    """--params and --model, shared by eval and generate."""
    p.add_argument("--params", required=True, metavar="FILE",
                   help="weights: a pickle in the book's format (a list of float16 arrays, as the book's "
                        "save_params and `fastlstm train`'s best.pkl write) or a fastlstm checkpoint.npz (or an "
                        "older checkpoint.pkl); read as data: a file that would run code is refused unrun")
    p.add_argument("--model", choices=tuple(RECIPES),
                   help="the model the file must hold (default: inferred from the file: 6 arrays are Rnnlm, "
                        "9 BetterRnnlm (also VariationalRnnlm's layout), 3 + 3 per layer AwdRnnlm; sizes from their "
                        "shapes)")
    p.add_argument("--vocab", metavar="FILE",
                   help="the vocabulary the weights were trained with: a run's vocab.txt, a word a line (default: "
                        "vocab.txt beside --params, else PTB's)")


def add_eval(subparsers, common):
    p = subparsers.add_parser(
        "eval", parents=[common], help="perplexity of saved weights on a split of PTB or of your own text",
        description="Print the perplexity of saved weights on a split of --data with the book's eval_perplexity "
                    "protocol (batch 10, time 35), its words read by the weights' vocabulary (--vocab); a word "
                    "outside it counts as <unk>.")
    _add_params_flags(p)
    p.add_argument("--split", choices=("test", "valid"), default="test", help="the split (default: test)")
    p.add_argument("--eval-iters", type=positive_int, metavar="N",
                   help="evaluate the first N batches of 10 x 35 only (default: the whole split)")
    p.add_argument("--dtype", choices=("float32", "float64"),
                   help="compute in this dtype (default: float32 for book files, the run's for checkpoints)")
    p.set_defaults(run=_run_eval)


def _run_eval(args):
    model, description = recipes.load_model(args.params, args.model, args.dtype)
    vocab = run_data.vocab_for(args.params, args.vocab, args.data)
    recipes.check_vocab(model, vocab, args.params)
    ids = run_data.split_ids(args.split, args.data, vocab)
    training.check_eval_split(ids, f"the {args.split} split")
    print(description)
    model.reset_state()
    ppl = eval_perplexity(model, training.eval_slice(ids, args.eval_iters), training.EVAL_BATCH, training.EVAL_TIME)
    print(f"{args.split} perplexity: {ppl:.2f}")
    return 0


# ---------------------------------------------------------------------------- generate

def add_generate(subparsers, common):
    p = subparsers.add_parser(
        "generate", parents=[common], help="sample text from saved weights",
        description="Sample text as the book's chapter 7 RnnlmGen does: one word at a time from the model's "
                    "softmax, skipping " + ", ".join(gen.SKIP_WORDS) + "; <eos> becomes a line break.")
    _add_params_flags(p)
    p.add_argument("--start", required=True, metavar="WORD", help="the first word (a word of the vocabulary)")
    p.add_argument("--length", type=positive_int, default=100, metavar="N",
                   help="words to produce, the start word included (default: 100)")
    p.add_argument("--seed", type=seed_value, help="seed NumPy's global RNG for the sampling (default: unseeded)")
    p.set_defaults(run=_run_generate)


def _run_generate(args):
    model, description = recipes.load_model(args.params, args.model)
    vocab = run_data.vocab_for(args.params, args.vocab, args.data)
    recipes.check_vocab(model, vocab, args.params)
    if args.start not in vocab.ids:
        close = gen.close_words(args.start, vocab.ids)
        hint = f"close words: {', '.join(close)}" if close else "no word in it is close"
        raise UserError(f"--start {args.start!r} is not in {vocab.title()}; {hint}")
    print(description, file=sys.stderr)
    if args.seed is not None:
        np.random.seed(args.seed)
    skip_ids = [vocab.ids[w] for w in gen.SKIP_WORDS if w in vocab.ids]
    model.reset_state()
    word_ids = gen.generate(model, vocab.ids[args.start], skip_ids, args.length)
    print(gen.to_text(word_ids, vocab.words))
    return 0


# ---------------------------------------------------------------------------- bench

def add_bench(subparsers, common):
    from fastlstm.benchmark import MODELS, PEERS, describe_timing  # imported here: only `fastlstm bench` needs it

    def model_list(text):
        names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        if not names or any(n not in MODELS for n in names):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(MODELS)}, got {text!r}")
        return names

    p = subparsers.add_parser(
        "bench", parents=[common], help="tokens/s of training and evaluation steps, fastlstm vs NumPy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure in one run the tokens/s (tokens = batch x time steps) of a whole training step\n"
                    "(forward, backward, remove_duplicate, clipping at 0.25, SGD lr 20; batch 20 x 35) and of an\n"
                    "evaluation step (the forward of eval_perplexity; batch 10 x 35) of the book's Rnnlm and\n"
                    "BetterRnnlm in float32, for fastlstm and for the plain-NumPy reference, warm; their ratio;\n"
                    "the achieved matrix-product GFLOP/s and its fraction of the limit set by this machine's\n"
                    "float32 np.dot peak (same threads), measured just before each timed round, so that each\n"
                    "round counts against the peak of its moment (each side of a round the best of two\n"
                    "measurements; tokens/s and the fraction are medians over the rounds); memory in MiB,\n"
                    "from RSS in a fresh subprocess: step = high-water growth over one step, total = with\n"
                    "the model. With --peer torch, PyTorch's CPU LSTM too (nn.LSTM, the same models, weights,\n"
                    "steps and threads), timed as fastlstm is, their rounds interleaved. --data is unused.",
        epilog="Run it as\n"
               "  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE fastlstm bench\n"
               "where those variables are set: they slow a current OpenBLAS on the development machine.")
    p.add_argument("--quick", action="store_true",
                   help=f"under a minute on 2 cores: {describe_timing(True)} (default, a few minutes: "
                        f"{describe_timing(False)})")
    p.add_argument("--models", type=model_list, default=list(MODELS), metavar="LIST",
                   help=f"comma-separated models to measure (default: {','.join(MODELS)})")
    p.add_argument("--peer", choices=list(PEERS),
                   help="also time this peer's implementation of the same steps (torch: PyTorch's CPU LSTM, "
                        "which needs `pip install torch`)")
    p.add_argument("--json", metavar="FILE", help="also write the command line and the rows as JSON to FILE")
    p.add_argument("--profile", action="store_true",
                   help="then show where the time of each model's training step goes: every product, "
                        "recurrence and kernel, the products with their GFLOP/s, each also timed alone "
                        "(python -m fastlstm.profiling)")
    p.set_defaults(run=_run_bench)


def _run_bench(args):
    import json

    import threadpoolctl

    from fastlstm import benchmark
    from fastlstm.threads import blas_num_threads, get_num_threads

    if args.json and not os.access(os.path.dirname(os.path.abspath(args.json)), os.W_OK):
        raise UserError(f"--json {args.json}: its folder does not exist or cannot be written")
    peer = benchmark.load_peer(args.peer) if args.peer else None
    peers = (args.peer,) if args.peer else ()
    command = (f"fastlstm bench{' --quick' if args.quick else ''} --threads {get_num_threads()} "
               f"--models {','.join(args.models)}" + (f" --peer {args.peer}" if peer else "")
               + (f" --json {args.json}" if args.json else "") + (" --profile" if args.profile else ""))
    blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})"
                     for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")
    print(f"command: {command}")
    print(f"threads: Numba {get_num_threads()}, BLAS {blas_num_threads()} ({blas})")
    print(f"recurrence tile: {benchmark.describe_tile()}")
    slowing = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    if slowing:
        print(f"note: {' and '.join(slowing)} set; they may slow OpenBLAS (see fastlstm bench --help)")
    print(f"timing (float32): {benchmark.describe_timing(args.quick)}; {benchmark.PAIRING}", flush=True)
    rows = benchmark.model_throughput(args.models, quick=args.quick, peers=peers,
                                      log=lambda msg: print(f"  measuring {msg}", file=sys.stderr, flush=True))
    peaks = benchmark.row_peaks(*rows)
    peak = float(np.median(peaks))
    print(f"peak: median {peak:.1f} GFLOP/s of {len(peaks)} measurements ({min(peaks):.1f} to {max(peaks):.1f}), "
          f"float32 {benchmark.PEAK_SIZE}^3 np.dot, the best of {benchmark.BEST_OF} calls before each timed round")
    print(f"memory: {benchmark.MEMORY_METHOD}")
    if peer:
        print(f"peer: {peer.describe()}")
    print(benchmark.format_throughput(rows))
    if args.profile:
        from fastlstm import profiling
        for model in args.models:
            print()
            print(profiling.format_profile(model, "train", *profiling.profile_step(model, "train"),
                                           peak=peak))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": command, **({"peer": peer.describe()} if peer else {}), "rows": rows}, f, indent=1)
    return 0


# ---------------------------------------------------------------------------- main

COMMANDS = [add_train, add_eval, add_generate, add_bench]


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", metavar="DIR",
                        help="folder holding PTB (ptb.train.txt, ptb.valid.txt, ptb.test.txt) or your own text "
                             "(train.txt, valid.txt, test.txt: UTF-8, a sentence a line, words between spaces; its "
                             "token ids are cached in DIR/fastlstm-cache) (default: PTB from $FASTLSTM_DATA, else "
                             "the user cache, else a download into it)")
    common.add_argument("--threads", type=positive_int, metavar="N",
                        help="threads for the Numba kernels and BLAS together (default: every core, or "
                             "$FASTLSTM_NUM_THREADS)")
    parser = argparse.ArgumentParser(
        prog="fastlstm", description="The LSTM language models of 'Deep Learning from Scratch 2', chapter 6, "
                                     "fast on a CPU: train, evaluate and sample them on Penn Treebank or on "
                                     "your own text.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(subparsers, common)
    return parser


def main(argv=None):
    """Run the command line argv (default sys.argv[1:]); returns the exit status: 0 done, 1 an error
    (one line on stderr, no traceback), 2 a bad command line (argparse), 128 + N stopped by signal N."""
    args = build_parser().parse_args(argv)
    try:
        if args.threads is not None:
            try:
                set_num_threads(args.threads)
            except ValueError as e:
                raise UserError(f"--threads: {e}") from None
        return args.run(args)
    except (UserError, OSError, ptb.ChecksumError, corpus.CorpusError, corpus.TextError) as e:
        # OSError includes ptb.DataNotFoundError
        print(f"fastlstm {args.command}: error: {e}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"fastlstm {args.command}: error: out of memory; choose smaller sizes", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
