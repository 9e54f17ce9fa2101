"""Every class and function that the book's `common` and `dataset` modules define exists in the
fastlstm module of the same name, with the book's parameters (names, order, defaults; fastlstm
may add parameters after them, with defaults) and methods. The lists are the book's, module
by module, as its repository (oreilly-japan/deep-learning-from-scratch-2) defines them."""

import importlib
import inspect

import pytest

LAYER = {"forward": "x", "backward": "dout"}
LOSS = {"forward": "x, t", "backward": "dout=1"}
TIME = {"forward": "xs", "backward": "dhs"}
OPTIMIZER = {"update": "params, grads"}

# module: {name: "parameters" of a function, or {method: "parameters"} of a class ("__init__" its constructor)}
BOOK = {
    "functions": {"sigmoid": "x", "relu": "x", "softmax": "x", "cross_entropy_error": "y, t"},
    "layers": {
        "MatMul": {"__init__": "W", **LAYER},
        "Affine": {"__init__": "W, b", **LAYER},
        "Softmax": {"__init__": "", **LAYER},
        "SoftmaxWithLoss": {"__init__": "", **LOSS},
        "Sigmoid": {"__init__": "", **LAYER},
        "SigmoidWithLoss": {"__init__": "", **LOSS},
        "Dropout": {"__init__": "dropout_ratio=0.5", "forward": "x, train_flg=True", "backward": "dout"},
        "Embedding": {"__init__": "W", "forward": "idx", "backward": "dout"},
    },
    "time_layers": {
        "RNN": {"__init__": "Wx, Wh, b", "forward": "x, h_prev", "backward": "dh_next"},
        "TimeRNN": {"__init__": "Wx, Wh, b, stateful=False", **TIME, "set_state": "h", "reset_state": ""},
        "LSTM": {"__init__": "Wx, Wh, b", "forward": "x, h_prev, c_prev", "backward": "dh_next, dc_next"},
        "TimeLSTM": {"__init__": "Wx, Wh, b, stateful=False", **TIME, "set_state": "h, c=None", "reset_state": ""},
        "TimeEmbedding": {"__init__": "W", "forward": "xs", "backward": "dout"},
        "TimeAffine": {"__init__": "W, b", "forward": "x", "backward": "dout"},
        "TimeSoftmaxWithLoss": {"__init__": "", "forward": "xs, ts", "backward": "dout=1"},
        "TimeDropout": {"__init__": "dropout_ratio=0.5", "forward": "xs", "backward": "dout"},
        "TimeBiLSTM": {"__init__": "Wx1, Wh1, b1, Wx2, Wh2, b2, stateful=False", **TIME},
        "TimeSigmoidWithLoss": {"__init__": "", "forward": "xs, ts", "backward": "dout=1"},
        "GRU": {"__init__": "Wx, Wh", "forward": "x, h_prev", "backward": "dh_next"},
        "TimeGRU": {"__init__": "Wx, Wh, stateful=False", **TIME, "set_state": "h", "reset_state": ""},
        "Simple_TimeSoftmaxWithLoss": {"__init__": "", "forward": "xs, ts", "backward": "dout=1"},
        "Simple_TimeAffine": {"__init__": "W, b", "forward": "xs", "backward": "dout"},
    },
    "optimizer": {
        "SGD": {"__init__": "lr=0.01", **OPTIMIZER},
        "Momentum": {"__init__": "lr=0.01, momentum=0.9", **OPTIMIZER},
        "Nesterov": {"__init__": "lr=0.01, momentum=0.9", **OPTIMIZER},
        "AdaGrad": {"__init__": "lr=0.01", **OPTIMIZER},
        "RMSprop": {"__init__": "lr=0.01, decay_rate=0.99", **OPTIMIZER},
        "Adam": {"__init__": "lr=0.001, beta1=0.9, beta2=0.999", **OPTIMIZER},
    },
    "trainer": {
        "Trainer": {"__init__": "model, optimizer",
                    "fit": "x, t, max_epoch=10, batch_size=32, max_grad=None, eval_interval=20", "plot": "ylim=None"},
        "RnnlmTrainer": {"__init__": "model, optimizer", "get_batch": "x, t, batch_size, time_size",
                         "fit": "xs, ts, max_epoch=10, batch_size=20, time_size=35, max_grad=None, eval_interval=20",
                         "plot": "ylim=None"},
        "remove_duplicate": "params, grads",
    },
    "util": {
        "preprocess": "text",
        "cos_similarity": "x, y, eps=1e-8",
        "most_similar": "query, word_to_id, id_to_word, word_matrix, top=5",
        "convert_one_hot": "corpus, vocab_size",
        "create_co_matrix": "corpus, vocab_size, window_size=1",
        "ppmi": "C, verbose=False, eps=1e-8",
        "create_contexts_target": "corpus, window_size=1",
        "to_cpu": "x",
        "to_gpu": "x",
        "clip_grads": "grads, max_norm",
        "eval_perplexity": "model, corpus, batch_size=10, time_size=35",
        "eval_seq2seq": "model, question, correct, id_to_char, verbos=False, is_reverse=False",
        "analogy": "a, b, c, word_to_id, id_to_word, word_matrix, top=5, answer=None",
        "normalize": "x",
    },
    "base_model": {"BaseModel": {"__init__": "", "forward": "*args", "backward": "*args",
                                "save_params": "file_name=None", "load_params": "file_name=None"}},
    "dataset.ptb": {"load_vocab": "", "load_data": "data_type='train'"},
    "dataset.sequence": {"load_data": "file_name='addition.txt', seed=1984", "get_vocab": ""},
    "dataset.spiral": {"load_data": "seed=1984"},
}
# module-level names that are not classes or functions: the book's models and scripts use them
BOOK_NAMES = {"np": ["np", "GPU"], "config": ["GPU"], "layers": ["np", "GPU"], "time_layers": ["np", "softmax", "sigmoid"],
              "dataset.sequence": ["char_to_id", "id_to_char"]}
# the recurrent layers, which the book's common/time_layers.py defines besides the LSTM's
RECURRENT = {"RNN", "TimeRNN", "LSTM", "TimeBiLSTM", "GRU", "TimeGRU"}


def book_parameters(spec):
    """The inspect.Parameters of a "parameters" string."""
    namespace = {}
    exec(f"def f({spec}): pass", namespace)
    return list(inspect.signature(namespace["f"]).parameters.values())


def assert_accepts(function, spec, where):
    """function takes the book's parameters first, by the same names and defaults; any more have defaults."""
    ours = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    book = book_parameters(spec)
    assert [(p.name, p.kind, p.default) for p in ours[:len(book)]] == [(p.name, p.kind, p.default) for p in book], where
    for extra in ours[len(book):]:
        assert extra.default is not inspect.Parameter.empty or extra.kind in (extra.VAR_POSITIONAL, extra.VAR_KEYWORD), \
            f"{where}: {extra.name} needs a default"


CASES = [(module, name) for module, names in BOOK.items() for name in names]


@pytest.mark.parametrize("module, name", CASES)
def test_book_name(module, name):
    where = f"fastlstm.{module}.{name}"
    obj = getattr(importlib.import_module(f"fastlstm.{module}"), name)
    spec = BOOK[module][name]
    if isinstance(spec, str):
        assert inspect.isfunction(obj), f"{where} is not a function"
        assert_accepts(obj, spec, where)
        return
    assert inspect.isclass(obj), f"{where} is not a class"
    for method, parameters in spec.items():
        assert callable(getattr(obj, method, None)), f"{where} has no {method}"
        assert_accepts(getattr(obj, method), parameters, f"{where}.{method}")


@pytest.mark.parametrize("module, name", [(m, n) for m, names in BOOK_NAMES.items() for n in names])
def test_book_module_names(module, name):
    assert hasattr(importlib.import_module(f"fastlstm.{module}"), name)


def test_the_list_is_whole():
    assert sum(len(names) for names in BOOK.values()) == 4 + 8 + 14 + 6 + 3 + 14 + 1 + 2 + 2 + 1
    assert set(BOOK["time_layers"]) >= RECURRENT
