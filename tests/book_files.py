"""Running the book-style chapter files of tests/book_chXX as the book runs its scripts, on
fastlstm's layers or on the plain-NumPy reference of the book's layers.

The book runs a script from its chapter folder, with that folder first on the path, and the
script's `sys.path.append('..')` makes the folder above (the repository's root) importable,
so `from ch07.seq2seq import ...` works. `book_root` makes such a root: a folder whose
`chXX` entries link to tests/book_chXX, and a `run` folder below it to run in.

`layers("reference")` makes `fastlstm.layers` and `fastlstm.time_layers` stand, for the
imports of the book's files, for fastlstm.reference.numpy_layers (which has the names the
book's files import from `common.layers` and `common.time_layers`): the same book code then
runs on the book's NumPy layers, the yardstick of the tests and of scripts/bench_chapters.py.
"""

import contextlib
import runpy
import sys
from pathlib import Path

from fastlstm.reference import numpy_layers

TESTS = Path(__file__).resolve().parent
CHAPTERS = {f"ch0{n}": TESTS / f"book_ch0{n}" for n in (4, 6, 7, 8)}
# the book's modules that its files import by their own names (not through `chXX.`)
BOOK_MODULES = {"cbow", "skip_gram", "negative_sampling_layer", "rnnlm", "better_rnnlm", "seq2seq",
                "peeky_seq2seq", "rnnlm_gen", "attention_layer", "attention_seq2seq", *CHAPTERS}
LAYER_MODULES = ("fastlstm.layers", "fastlstm.time_layers")


def book_root(folder):
    """A stand-in for the book's repository root in `folder`: chXX links to tests/book_chXX,
    and an empty `run` folder (returned) to run the scripts in, so that '..' is the root."""
    root = Path(folder) / "book"
    root.mkdir()
    for chapter, path in CHAPTERS.items():
        (root / chapter).symlink_to(path, target_is_directory=True)
    (root / "run").mkdir()
    return root / "run"


def forget_book_modules():
    """Drop the book's modules from sys.modules, so the next import reads them afresh."""
    for name in list(sys.modules):
        if name.split(".")[0] in BOOK_MODULES:
            del sys.modules[name]


@contextlib.contextmanager
def layers(kit):
    """Within the block, the book's files import their layers from fastlstm ("fastlstm") or
    from the plain-NumPy reference ("reference"); their modules are read afresh on entry and
    forgotten on exit."""
    if kit not in ("fastlstm", "reference"):
        raise ValueError(f"kit must be 'fastlstm' or 'reference', got {kit!r}")
    saved = {name: sys.modules[name] for name in LAYER_MODULES}
    forget_book_modules()
    try:
        if kit == "reference":
            for name in LAYER_MODULES:
                sys.modules[name] = numpy_layers
        yield
    finally:
        sys.modules.update(saved)
        forget_book_modules()


@contextlib.contextmanager
def on_path(*chapters):
    """Within the block, the chapter folders are first on sys.path (restored on exit)."""
    saved = list(sys.path)
    sys.path[:0] = [str(CHAPTERS[c]) for c in chapters]
    try:
        yield
    finally:
        sys.path[:] = saved


def run_script(chapter, name):
    """Run tests/book_<chapter>/<name> as `python name` from the chapter folder; returns its globals."""
    with on_path(chapter):
        return runpy.run_path(str(CHAPTERS[chapter] / name), run_name="__main__")


def load(chapter, module):
    """Import the book module `module` of `chapter` (its folder first on the path)."""
    with on_path(chapter):
        __import__(module)
    return sys.modules[module]
