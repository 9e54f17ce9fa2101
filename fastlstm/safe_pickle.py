"""Reading the book's weight files (a pickled list or tuple of NumPy arrays) as data.

A pickle can name any callable and have it run while it loads. This reader first walks
the stream's opcodes and refuses it unless every global it names is one of the few that
NumPy's arrays and dtypes need, and unless it uses no opcode that builds other objects;
only then does it unpickle, through an unpickler that admits those globals alone. So a
file that would run code is refused before any object of it is built. What it can return
is data: arrays, NumPy scalars, numbers, strings, None, and lists, tuples and dicts of them
(`load`); `load_arrays` admits the book's list of arrays alone.
"""

import io
import pickle
import pickletools

import numpy as np

# What a pickled NumPy array or dtype names, from protocol 0 to 5, NumPy 1 and 2
ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"), ("__builtin__", "bytes"), ("builtins", "bytes"),  # protocols 0 to 2 write bytes so
})
# Opcodes that build objects of classes the stream names, or look them up elsewhere
_REFUSED_OPCODES = frozenset({"INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"})
_STRINGS = frozenset({"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING",
                      "SHORT_BINSTRING"})


class UnsafePickle(ValueError):
    """The file holds something other than arrays, or is not a pickle at all."""


class Unreadable(UnsafePickle):
    """The file is not a pickle, or a truncated or garbled one."""


def load(path):
    """The data pickled in `path` (arrays, numbers, strings, None, and lists, tuples and dicts of
    them); UnsafePickle for anything else, FileNotFoundError when there is no file."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        _check_opcodes(data)
        return _ArraysUnpickler(io.BytesIO(data)).load()
    except UnsafePickle as e:
        raise UnsafePickle(f"{path}: {e}") from None
    except Exception as e:  # a truncated or garbled stream raises anything from EOFError to ValueError
        raise Unreadable(f"{path} is not a readable params pickle ({type(e).__name__}: {e})") from None


def load_arrays(path):
    """The list of arrays pickled in `path` (a list or tuple of numeric NumPy arrays, the book's
    params format); UnsafePickle for anything else, FileNotFoundError when there is no file."""
    return as_arrays(load(path), path)


def as_arrays(obj, path):
    """obj, what `load(path)` returned, as the list of arrays of the book's params format;
    UnsafePickle (naming path) when it is anything else."""
    if not isinstance(obj, (list, tuple)):
        raise UnsafePickle(f"{path} does not hold a list of numpy arrays (the book's params format): it holds a "
                           f"{type(obj).__name__}")
    for i, a in enumerate(obj):
        if not isinstance(a, np.ndarray):
            raise UnsafePickle(f"{path} does not hold a list of numpy arrays (the book's params format): item {i} "
                               f"is a {type(a).__name__}")
        if a.dtype.kind not in "fiub":
            raise UnsafePickle(f"{path}: array {i} has dtype {a.dtype}, not a number type")
    return list(obj)


def _check_opcodes(data):
    """Refuse a stream that names a global outside ALLOWED_GLOBALS or uses a refused opcode,
    before anything is unpickled. STACK_GLOBAL takes its names from the two values pushed
    last, strings written just before it or fetched from the memo; anything else there is refused."""
    pushed, memo = [None, None], {}  # the last two values pushed, as far as they are strings
    for opcode, arg, _ in pickletools.genops(data):
        name = opcode.name
        if name in _REFUSED_OPCODES:
            raise UnsafePickle(f"it uses the pickle opcode {name}, which weight files never need")
        if name == "GLOBAL":
            _check_global(*arg.split(" ", 1))
        elif name == "STACK_GLOBAL":
            if not all(isinstance(s, str) for s in pushed):
                raise UnsafePickle("it names a global in a way weight files never do")
            _check_global(*pushed)
        if name == "MEMOIZE":
            memo[len(memo)] = pushed[-1]
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = pushed[-1]
        elif name != "FRAME":
            value = arg if name in _STRINGS else memo.get(arg) if name in ("GET", "BINGET", "LONG_BINGET") else None
            pushed = [pushed[-1], value]


def _check_global(module, name):
    if (module, name) not in ALLOWED_GLOBALS:
        raise UnsafePickle(f"it would call {module}.{name}: a weight file holds arrays only, and this one "
                           "would run code when loaded; refused without loading it")


class _ArraysUnpickler(pickle.Unpickler):
    """Admits the globals of ALLOWED_GLOBALS alone (a second guard behind _check_opcodes)."""

    def find_class(self, module, name):
        _check_global(module, name)
        return super().find_class(module, name)
