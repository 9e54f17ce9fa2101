"""The settings of a `fastlstm train` run: the book's two recipes, the defaults, what a --resume
may change, and the one check of a run's settings, given on the command line or read from a
checkpoint (`check`), done before the run writes anything."""

import math
import numbers

from fastlstm.errors import UserError

# the book's ch06 train_rnnlm.py and train_better_rnnlm.py
RECIPES = {
    "rnnlm": dict(wordvec_size=100, hidden_size=100, dropout=None, epochs=4, batch_size=20, time_size=35,
                  lr=20.0, max_grad=0.25, lr_decay=False, continuous_epochs=True),
    "better": dict(wordvec_size=650, hidden_size=650, dropout=0.5, epochs=40, batch_size=20, time_size=35,
                   lr=20.0, max_grad=0.25, lr_decay=True, continuous_epochs=False),
}
DEFAULTS = dict(eval_interval=20, eval_iters=None, save_every=200, seed=None, dtype="float32", max_iters=None,
                vocab_size=None)
# settings newer than the checkpoint format: the values that a checkpoint written without them ran with
LATER = dict(vocab_size=None)
RESUME_MAY_CHANGE = ("epochs", "max_iters", "eval_interval", "save_every")  # none changes the arithmetic
SEED_LIMIT = 2**32  # NumPy's global RNG takes seeds below it

# what each setting must be: (test, description)
_POSITIVE_INT = (lambda v: is_int(v) and v > 0, "an integer > 0")
_RULES = {
    "model": (lambda v: v in RECIPES, f"one of {', '.join(RECIPES)}"),
    "epochs": _POSITIVE_INT, "batch_size": _POSITIVE_INT, "time_size": _POSITIVE_INT,
    "wordvec_size": _POSITIVE_INT, "hidden_size": _POSITIVE_INT, "eval_interval": _POSITIVE_INT,
    "eval_iters": (lambda v: v is None or is_int(v) and v > 0, "an integer > 0, or unset"),
    "max_iters": (lambda v: v is None or is_int(v) and v > 0, "an integer > 0, or unset"),
    "vocab_size": (lambda v: v is None or is_int(v) and v > 1, "an integer > 1, or unset"),
    "save_every": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "seed": (lambda v: v is None or is_int(v) and 0 <= v < SEED_LIMIT, f"an integer in [0, {SEED_LIMIT}), or unset"),
    "lr": (lambda v: is_real(v) and math.isfinite(v) and v > 0, "a finite number > 0"),
    "max_grad": (lambda v: is_real(v) and math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "dropout": (lambda v: v is None or is_real(v) and 0 <= v < 1, "a number in [0, 1)"),
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


def resolve(options, saved=None):
    """The run's settings: the recipe of options['model'] updated by the options given; on resume the
    saved settings, of which only RESUME_MAY_CHANGE may be given other values."""
    if saved is None:
        name = options.get("model", "rnnlm")
        config = {"model": name, **RECIPES.get(name, {}), **DEFAULTS, **options}
        check(config)
        return config
    config = dict(completed(saved), max_iters=options.get("max_iters"))  # a limit of this invocation only
    for key, value in options.items():
        if key in RESUME_MAY_CHANGE:
            config[key] = value
        elif value != config[key]:
            raise UserError(f"{flag(key)} {value} differs from the checkpoint's {config[key]}; a resumed run keeps "
                            f"its settings (only {', '.join(map(flag, RESUME_MAY_CHANGE))} may change)")
    check(config)
    return config


def completed(config):
    """A checkpoint's settings with those it may lack (LATER) filled in."""
    return {**LATER, **config}


def check(config, source=None):
    """Refuse (UserError) settings that are missing, unknown, of the wrong type or out of range, or
    that do not fit together; `source` names the file they were read from, if any."""
    where = "" if source is None else f"{source}: "
    if not isinstance(config, dict):
        raise UserError(f"{where}the settings are a {type(config).__name__}, not a dict")
    config = completed(config)
    missing, unknown = sorted(set(_RULES) - set(config)), sorted(map(str, set(config) - set(_RULES)))
    if missing or unknown:
        parts = ([f"lack {', '.join(missing)}"] if missing else []) + ([f"have unknown {', '.join(unknown)}"] if unknown else [])
        raise UserError(f"{where}the settings {' and '.join(parts)}")
    for key, (valid, description) in _RULES.items():
        if not valid(config[key]):
            raise UserError(f"{where}{flag(key)} must be {description}, got {config[key]!r}")
    if config["model"] == "better":
        if config["dropout"] is None:
            raise UserError(f"{where}--dropout must be set for --model better")
        if config["wordvec_size"] != config["hidden_size"]:
            raise UserError(f"{where}--model better ties the output weight to the embedding, so it needs "
                            f"--wordvec-size = --hidden-size, got {config['wordvec_size']} and {config['hidden_size']}")
    elif config["dropout"] is not None:
        raise UserError(f"{where}--dropout applies to --model better only: Rnnlm has no dropout layers")
