"""What a `fastlstm train` run's settings (fastlstm.settings) build: the model and the optimizer,
and the models that weight files hold.
"""

import numpy as np

from fastlstm import checkpoint, safe_pickle
from fastlstm.checkpoint import Checkpoint, is_view_of_earlier
from fastlstm.errors import UserError
from fastlstm.optimizer import ASGD, SGD
from fastlstm.settings import MODELS, RECIPES

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
    averaged weights are taken once its run averages (ASGD), read as data and checked whole. The kind
    and sizes come from the file; `model` ('rnnlm', 'better', 'variational' or 'awd'), when given,
    must agree."""
    saved, arrays = _read(path)
    if saved is not None:
        saved.check_settings(path)
        config = dict(saved.config, dtype=dtype or saved.config["dtype"])
        vocab_size = saved.params[0].shape[0]
        source = "checkpoint"
        if model is not None and model != config["model"]:
            raise UserError(f"{path} holds a {MODELS[config['model']].__name__}, not the --model {model} "
                            f"({MODELS[model].__name__})")
    else:
        name, vocab_size, D, H, layers = infer_architecture(arrays, path)
        if model is not None and model != name:
            try:  # better's layout is also variational's, and a 2-layer AwdRnnlm's where D = H
                name, vocab_size, D, H, layers = infer_architecture(arrays, path, model)
            except UserError:
                raise UserError(f"{path} holds a {MODELS[name].__name__}, not the --model {model} "
                                f"({MODELS[model].__name__})") from None
        config = {"model": name, "wordvec_size": D, "hidden_size": H, "dtype": dtype or "float32"}
        if name == "awd":
            config["num_layers"] = layers
        source = "book-format params"
    net = build_model(config, vocab_size)
    if saved is not None:
        checkpoint.load_params(net, saved.evaluation_params(), path)
    else:
        try:
            net.load_params(path)
        except (ValueError, FileNotFoundError) as e:
            raise UserError(str(e)) from None
    desc = (f"{type(net).__name__} (V={vocab_size}, D={config['wordvec_size']}, H={config['hidden_size']}, "
            f"{config['dtype']}) from {source} {path}")
    return net, desc


def _read(path):
    """(checkpoint, None) for a checkpoint in path (an .npz archive, or an older fastlstm's
    checkpoint.pkl), else (None, the arrays of a book-format params pickle), read as data."""
    if checkpoint.is_archive(path):
        return Checkpoint.read(path), None
    try:
        obj = safe_pickle.load(path)
        if checkpoint.is_legacy(obj):
            return Checkpoint.from_legacy(obj, path), None
        return None, safe_pickle.as_arrays(obj, path)
    except safe_pickle.Unreadable as e:
        raise UserError(f"{path} is not a readable pickle, nor a checkpoint archive ({e})") from None
    except safe_pickle.UnsafePickle as e:
        raise UserError(str(e)) from None


def check_vocab(model, vocab, path):
    """Refuse weights whose vocabulary size is not that of `vocab` (a Vocabulary)."""
    V = model.params[0].shape[0]
    if V != len(vocab):
        raise UserError(f"{path} has a vocabulary of {V} words, but {vocab.name} has {len(vocab)}")
