"""The models `fastlstm train` trains and their recipes: the settings of a run, the model and
the optimizer they build, and the models that weight files hold.

rnnlm and better are the book's chapter 6 scripts (train_rnnlm.py, train_better_rnnlm.py).
variational is BetterRnnlm with variational dropout, with the dropout ratios that Gal's
released PTB script found best (locked dropout 0.5 on the LSTMs' inputs and output,
recurrent dropout 0.3, word dropout 0.3) and the book's schedule. awd is AWD-LSTM with
the settings of the salesforce/awd-lstm-lm README's PTB command and its main.py defaults.
docs/design.md gives the sources.
"""

import numpy as np

from fastlstm.checkpoint import Checkpoint, is_checkpoint, is_view_of_earlier, load_params, read_pickle
from fastlstm.errors import UserError
from fastlstm.models import AwdRnnlm, BetterRnnlm, Rnnlm, VariationalRnnlm
from fastlstm.optimizer import ASGD, SGD

MODELS = {"rnnlm": Rnnlm, "better": BetterRnnlm, "variational": VariationalRnnlm, "awd": AwdRnnlm}
# A setting that a model does not take is None in its recipe.
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
DEFAULTS = dict(eval_interval=20, eval_iters=None, save_every=200, seed=None, dtype="float32", max_iters=None,
                time_budget=None)
RESUME_MAY_CHANGE = ("epochs", "max_iters", "time_budget", "eval_interval", "save_every")  # no arithmetic changes
PER_INVOCATION = ("max_iters", "time_budget")  # limits of one invocation: a resumed run does not keep them
# Model constructor arguments and the settings they come from.
ARGUMENTS = {
    "rnnlm": {},
    "better": {"dropout_ratio": "dropout"},
    "variational": {"dropout_ratio": "dropout", "recurrent_dropout": "recurrent_dropout",
                    "embed_dropout": "embed_dropout", "weight_drop": "weight_drop", "alpha": "alpha", "beta": "beta"},
    "awd": {"num_layers": "num_layers", "dropout": "dropout", "hidden_dropout": "hidden_dropout",
            "input_dropout": "input_dropout", "embed_dropout": "embed_dropout", "weight_drop": "weight_drop",
            "alpha": "alpha", "beta": "beta"},
}


def flag(key):
    """The command-line flag of a setting: 'max_grad' -> '--max-grad'."""
    return "--" + key.replace("_", "-")


def takes(name, key):
    """Whether the model `name` has the setting `key`."""
    return key in DEFAULTS or RECIPES[name].get(key) is not None


def resolve_config(options, saved=None):
    """The run's settings: the recipe of options['model'] updated by the options given; on resume the
    saved settings, of which only RESUME_MAY_CHANGE may be given other values."""
    if saved is None:
        name = options.get("model", "rnnlm")
        for key in options:
            if key != "model" and not takes(name, key):
                models = [m for m in RECIPES if takes(m, key)]
                also = f" (and to {', '.join(models[1:])})" if len(models) > 1 else ""
                raise UserError(f"{flag(key)} applies to --model {models[0]} only{also}: {MODELS[name].__name__} "
                                "has no such setting")
        return {"model": name, **RECIPES[name], **DEFAULTS, **options}
    config = {**DEFAULTS, **saved, **{key: options.get(key) for key in PER_INVOCATION}}
    for key, value in options.items():
        if key in RESUME_MAY_CHANGE:
            config[key] = value
        elif value != config.get(key):
            raise UserError(f"{flag(key)} {value} differs from the checkpoint's {config.get(key)}; a resumed run keeps "
                            f"its settings (only {', '.join(map(flag, RESUME_MAY_CHANGE))} may change)")
    return config


def build_model(config, vocab_size):
    """A fresh model of config's kind and sizes (weights drawn from NumPy's global RNG, as in the book);
    settings that config lacks (a file's, or an older run's) are the recipe's."""
    c = {**RECIPES[config["model"]], **config}
    kwargs = {argument: c[key] for argument, key in ARGUMENTS[c["model"]].items()}
    return MODELS[c["model"]](vocab_size, c["wordvec_size"], c["hidden_size"], dtype=np.dtype(c["dtype"]).type,
                              **kwargs)


def build_optimizer(config):
    """SGD at the run's lr; ASGD (SGD with weight decay, then averaging) where the run averages or decays."""
    if config.get("asgd") or config.get("weight_decay"):
        return ASGD(config["lr"], nonmono=config.get("asgd") or 0, weight_decay=config.get("weight_decay") or 0.0)
    return SGD(config["lr"])


def distinct_params(params):
    """params without the views of earlier ones (the tied embed_W.T): the list an optimizer updates."""
    return [p for i, p in enumerate(params) if not is_view_of_earlier(params, i)]


def _expected_shapes(name, arrays):
    """(the shapes of a model `name` whose embedding is arrays[0] and whose first Wh is
    arrays[2], or None where it cannot have len(arrays) params; its (D, H, layers))."""
    n = len(arrays)
    (V, D), H = arrays[0].shape, arrays[2].shape[0]
    lstm = [(D, 4 * H), (H, 4 * H), (4 * H,)]
    if name == "rnnlm":
        return ([(V, D), *lstm, (H, V), (V,)] if n == 6 else None), (D, H, 1)
    if name in ("better", "variational"):
        return ([(V, D), *lstm, (H, 4 * H), (H, 4 * H), (4 * H,), (D, V), (V,)] if n == 9 else None), (D, H, 2)
    layers = (n - 3) // 3
    if n % 3:
        return None, (D, H, layers)
    shapes = [(V, D)]
    for i in range(layers):
        width_in, width = (D if i == 0 else H), (D if i == layers - 1 else H)
        shapes += [(width_in, 4 * width), (width, 4 * width), (4 * width,)]
    return shapes + [(D, V), (V,)], (D, H, layers)


def infer_architecture(arrays, path, model=None):
    """(model name, V, D, H, layers) from the shapes of a book-format params list: 6 arrays are the
    book's Rnnlm, 9 its BetterRnnlm (with the output weight tied to the embedding), 3 + 3L an
    AwdRnnlm of L layers; `model`, when given, is the one they must fit."""
    n = len(arrays)
    if n < 6 or arrays[0].ndim != 2 or arrays[2].ndim != 2:
        raise UserError(f"{path} holds {n} arrays of shapes {[a.shape for a in arrays]}: not the params of the "
                        "book's Rnnlm (6 arrays), BetterRnnlm (9 arrays) or an AwdRnnlm (3 + 3 per layer)")
    candidates = [model] if model is not None else ["rnnlm"] if n == 6 else ["better", "awd"]
    shapes = [a.shape for a in arrays]
    for name in candidates:
        expected, (D, H, layers) = _expected_shapes(name, arrays)
        if shapes == expected:
            return name, arrays[0].shape[0], D, H, layers
    raise UserError(f"{path}: shapes {shapes} do not fit the {MODELS[candidates[0]].__name__} they would be "
                    f"(expected {expected})")


def load_model(path, model=None, dtype=None):
    """(model, description) of the weights in path: a book-format params pickle (float16 list, as written
    by the book's save_params or by `fastlstm train` as best.pkl) or a fastlstm checkpoint, whose
    averaged weights are taken once its run averages (ASGD). The kind and sizes come from the file;
    `model` ('rnnlm', 'better', 'variational' or 'awd'), when given, must agree."""
    obj = read_pickle(path)
    if is_checkpoint(obj):
        obj = Checkpoint.from_dict(obj, path)
        config = dict(obj.config, dtype=dtype or obj.config["dtype"])
        vocab_size = next(a for a in obj.params if a is not None).shape[0]
        source = "checkpoint"
        if model is not None and model != config["model"]:
            raise UserError(f"{path} holds a {MODELS[config['model']].__name__}, not the --model {model} "
                            f"({MODELS[model].__name__})")
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(a, np.ndarray) for a in obj):
        name, vocab_size, D, H, layers = infer_architecture(obj, path)
        if model is not None and model != name:
            try:  # better's layout is also variational's, and a 2-layer AwdRnnlm's where D = H
                name, vocab_size, D, H, layers = infer_architecture(obj, path, model)
            except UserError:
                raise UserError(f"{path} holds a {MODELS[name].__name__}, not the --model {model} "
                                f"({MODELS[model].__name__})") from None
        config = {"model": name, "wordvec_size": D, "hidden_size": H, "dtype": dtype or "float32"}
        if name == "awd":
            config["num_layers"] = layers
        source = "book-format params"
    else:
        raise UserError(f"{path} is neither params in the book's format (a list of arrays) nor a fastlstm checkpoint")
    net = build_model(config, vocab_size)
    if source == "checkpoint":
        load_params(net, obj.evaluation_params(), path)
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
