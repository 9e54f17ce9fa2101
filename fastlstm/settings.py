"""The settings of a `fastlstm train` run: the recipes, the defaults, what a --resume may
change, and the one check of a run's settings, given on the command line or read from a
checkpoint (`check`), done before the run writes anything.

rnnlm and better are the book's chapter 6 scripts (train_rnnlm.py, train_better_rnnlm.py).
variational is BetterRnnlm with variational dropout, with the dropout ratios that Gal's
released PTB script found best (locked dropout 0.5 on the LSTMs' inputs and output,
recurrent dropout 0.3, word dropout 0.3) and the book's schedule. awd is AWD-LSTM with
the settings of the salesforce/awd-lstm-lm README's PTB command and its main.py defaults.
docs/design.md gives the sources.
"""

import math
import numbers

from fastlstm.errors import UserError
from fastlstm.models import AwdRnnlm, BetterRnnlm, Rnnlm, VariationalRnnlm

MODELS = {"rnnlm": Rnnlm, "better": BetterRnnlm, "variational": VariationalRnnlm, "awd": AwdRnnlm}
# A setting that a model does not take is None in its recipe, or absent from it.
RECIPES = {
    "rnnlm": dict(wordvec_size=100, hidden_size=100, dropout=None, epochs=4, batch_size=20, time_size=35,
                  lr=20.0, max_grad=0.25, lr_decay=False, continuous_epochs=True),
    "better": dict(wordvec_size=650, hidden_size=650, dropout=0.5, epochs=40, batch_size=20, time_size=35,
                   lr=20.0, max_grad=0.25, lr_decay=True, continuous_epochs=False),
    "variational": dict(wordvec_size=650, hidden_size=650, dropout=0.5, recurrent_dropout=0.3, embed_dropout=0.3,
                        weight_drop=0.0, alpha=0.0, beta=0.0, asgd=0, weight_decay=0.0, epochs=40, batch_size=20,
                        time_size=35, lr=20.0, max_grad=0.25, lr_decay=True, continuous_epochs=False),
    "awd": dict(wordvec_size=400, hidden_size=1150, num_layers=3, dropout=0.4, hidden_dropout=0.25, input_dropout=0.4,
                embed_dropout=0.1, weight_drop=0.5, alpha=2.0, beta=1.0, asgd=5, weight_decay=1.2e-6, epochs=500,
                batch_size=20, time_size=70, lr=30.0, max_grad=0.25, lr_decay=False, continuous_epochs=False),
}
TIED = ("better", "variational")  # the models whose output weight is the embedding's, D = H
# ranks: the processes of a data-parallel run (fastlstm.distributed), not a flag: the run sets it
DEFAULTS = dict(eval_interval=20, eval_iters=None, save_every=200, seed=None, dtype="float32", max_iters=None,
                time_budget=None, vocab_size=None, ranks=1)
RESUME_MAY_CHANGE = ("epochs", "max_iters", "time_budget", "eval_interval", "save_every")  # no arithmetic changes
# Limits of one invocation: a resumed run does not keep them, and a checkpoint written before
# one existed lacks it.
PER_INVOCATION = ("max_iters", "time_budget")
# settings newer than the checkpoint format: the values that a checkpoint written without them ran with
LATER = dict(vocab_size=None, ranks=1)
SEED_LIMIT = 2**32  # NumPy's global RNG takes seeds below it

# what each setting must be: (test, description)
_POSITIVE_INT = (lambda v: is_int(v) and v > 0, "an integer > 0")
_RATIO = (lambda v: is_real(v) and 0 <= v < 1, "a number in [0, 1)")
_NONNEGATIVE = (lambda v: is_real(v) and math.isfinite(v) and v >= 0, "a finite number >= 0")
_RULES = {
    "model": (lambda v: isinstance(v, str) and v in RECIPES, f"one of {', '.join(RECIPES)}"),
    "epochs": _POSITIVE_INT, "batch_size": _POSITIVE_INT, "time_size": _POSITIVE_INT,
    "wordvec_size": _POSITIVE_INT, "hidden_size": _POSITIVE_INT, "eval_interval": _POSITIVE_INT, "ranks": _POSITIVE_INT,
    "eval_iters": (lambda v: v is None or is_int(v) and v > 0, "an integer > 0, or unset"),
    "max_iters": (lambda v: v is None or is_int(v) and v > 0, "an integer > 0, or unset"),
    "vocab_size": (lambda v: v is None or is_int(v) and v > 1, "an integer > 1, or unset"),
    "save_every": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "seed": (lambda v: v is None or is_int(v) and 0 <= v < SEED_LIMIT, f"an integer in [0, {SEED_LIMIT}), or unset"),
    "lr": (lambda v: is_real(v) and math.isfinite(v) and v > 0, "a finite number > 0"),
    "time_budget": (lambda v: v is None or is_real(v) and math.isfinite(v) and v > 0,
                    "a finite number > 0 (minutes), or unset"),
    "max_grad": _NONNEGATIVE,
    "dropout": _RATIO, "input_dropout": _RATIO, "hidden_dropout": _RATIO, "recurrent_dropout": _RATIO,
    "embed_dropout": _RATIO, "weight_drop": _RATIO,
    "alpha": _NONNEGATIVE, "beta": _NONNEGATIVE, "weight_decay": _NONNEGATIVE,
    "asgd": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "num_layers": _POSITIVE_INT,
    "lr_decay": (lambda v: isinstance(v, bool), "true or false"),
    "continuous_epochs": (lambda v: isinstance(v, bool), "true or false"),
    "dtype": (lambda v: v in ("float32", "float64"), "float32 or float64"),
}


def is_int(v):
    """Whether v is an integer (bool is not)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_real(v):
    """Whether v is a real number (bool is not)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def flag(key):
    """The command-line flag of a setting: 'max_grad' -> '--max-grad'."""
    return "--" + key.replace("_", "-")


def takes(name, key):
    """Whether the model `name` has the setting `key`."""
    return key == "model" or key in DEFAULTS or RECIPES[name].get(key) is not None


def resolve(options, saved=None):
    """The run's settings, checked: the recipe of options['model'] updated by the options given; on
    resume the saved settings, of which only RESUME_MAY_CHANGE may be given other values."""
    if saved is None:
        name = options.get("model", "rnnlm")
        config = {"model": name, **RECIPES.get(name, {}), **DEFAULTS, **options}
        check(config)
        return config
    config = {**completed(saved), **{key: options.get(key) for key in PER_INVOCATION}}
    for key, value in options.items():
        if key in RESUME_MAY_CHANGE:
            config[key] = value
        elif value != config.get(key):
            raise UserError(f"{flag(key)} {value} differs from the checkpoint's {config.get(key)}; a resumed run keeps "
                            f"its settings (only {', '.join(map(flag, RESUME_MAY_CHANGE))} may change)")
    check(config)
    return config


def completed(config):
    """A checkpoint's settings with those it may lack (LATER) filled in."""
    return {**LATER, **config}


def check(config, source=None):
    """Refuse (UserError) settings that are missing, unknown, of the wrong type or out of range, or
    that do not fit together or the model; `source` names the file they were read from, if any."""
    where = "" if source is None else f"{source}: "
    if not isinstance(config, dict):
        raise UserError(f"{where}the settings are a {type(config).__name__}, not a dict")
    config = completed(config)
    name = config.get("model")
    valid, description = _RULES["model"]
    if not valid(name):
        raise UserError(f"{where}--model must be {description}, got {name!r}")
    for key, value in config.items():
        if key in _RULES and value is not None and not takes(name, key):
            models = [m for m in RECIPES if takes(m, key)]
            also = f" (and to {', '.join(models[1:])})" if len(models) > 1 else ""
            raise UserError(f"{where}{flag(key)} applies to --model {models[0]} only{also}: {MODELS[name].__name__} "
                            "has no such setting")
    missing = sorted(key for key in _RULES if takes(name, key) and key not in config and key not in PER_INVOCATION)
    unknown = sorted(map(str, set(config) - set(_RULES)))
    if missing or unknown:
        parts = ([f"lack {', '.join(missing)}"] if missing else []) + ([f"have unknown {', '.join(unknown)}"] if unknown else [])
        raise UserError(f"{where}the settings {' and '.join(parts)}")
    for key, (valid, description) in _RULES.items():
        if takes(name, key) and not valid(config.get(key)):
            raise UserError(f"{where}{flag(key)} must be {description}, got {config.get(key)!r}")
    if name in TIED and config["wordvec_size"] != config["hidden_size"]:
        raise UserError(f"{where}--model {name} ties the output weight to the embedding, so it needs "
                        f"--wordvec-size = --hidden-size, got {config['wordvec_size']} and {config['hidden_size']}")
