"""Running the book-style chapter files (tests/book_chXX of a fastlstm checkout: the book's
files after the import rewrite) as the book runs its scripts, on fastlstm's layers or on the
plain-NumPy reference of the book's layers: for the chapter tests and the chapters' speed
benchmark (`python -m fastlstm.benchmark chapters`). They are looked up in
$FASTLSTM_BOOK_FILES, else in the tests/ folder beside this package in a checkout (an
installed fastlstm has none: set the variable to a checkout's tests/).

The book runs a script from its chapter folder, with that folder first on the path, and the
script's `sys.path.append('..')` makes the folder above (the repository's root) importable,
so `from ch07.seq2seq import ...` works. `in_book_root` makes such a root: a folder whose
`chXX` entries link to tests/book_chXX, and a `run` folder below it to run in.

`layers("reference")` makes `fastlstm.layers` and `fastlstm.time_layers` stand, for the
imports of the book's files, for fastlstm.reference.numpy_layers (which has the names the
book's files import from `common.layers` and `common.time_layers`): the same book code then
runs on the book's NumPy layers.
"""

import contextlib
import importlib
import os
import runpy
import sys
from pathlib import Path

from fastlstm.dataset import sequence
from fastlstm.reference import numpy_layers

CHAPTERS = ("ch04", "ch05", "ch06", "ch07", "ch08")
# the book's modules that its files import by their own names (not through `chXX.`)
BOOK_MODULES = {"cbow", "skip_gram", "negative_sampling_layer", "simple_rnnlm", "rnnlm", "better_rnnlm", "seq2seq",
                "peeky_seq2seq", "rnnlm_gen", "attention_layer", "attention_seq2seq", *CHAPTERS}
LAYER_MODULES = ("fastlstm.layers", "fastlstm.time_layers")
# the seq2seq models of chapters 7 and 8: (chapter, module, data file, hidden width, questions reversed)
SEQ2SEQ = {"Seq2seq": ("ch07", "seq2seq", "addition.txt", 128, False),
           "PeekySeq2seq": ("ch07", "peeky_seq2seq", "addition.txt", 128, False),
           "AttentionSeq2seq": ("ch08", "attention_seq2seq", "date.txt", 256, True)}


def chapter_folder(chapter):
    """The folder of the book-style files of `chapter` ("ch04" ... "ch08")."""
    files = os.environ.get("FASTLSTM_BOOK_FILES") or Path(__file__).resolve().parents[2] / "tests"
    return Path(files) / f"book_{chapter}"


def book_root(folder):
    """A stand-in for the book's repository root in `folder`: chXX links to tests/book_chXX,
    and an empty `run` folder (returned) to run the scripts in, so that '..' is the root."""
    missing = [chapter_folder(c) for c in CHAPTERS if not chapter_folder(c).is_dir()]
    if missing:
        raise FileNotFoundError(f"the book-style chapter files are not in {missing[0].parent}: they are the "
                                "tests/book_chXX folders of a fastlstm checkout; set FASTLSTM_BOOK_FILES to its tests/")
    root = Path(folder) / "book"
    root.mkdir()
    for chapter in CHAPTERS:
        (root / chapter).symlink_to(chapter_folder(chapter), target_is_directory=True)
    (root / "run").mkdir()
    return root / "run"


@contextlib.contextmanager
def in_book_root(folder):
    """Within the block, the working folder is the `run` folder (yielded) of a book_root made
    in `folder`; the working folder and sys.path (the book's files append '..') are restored
    on exit."""
    cwd, path = os.getcwd(), list(sys.path)
    run = book_root(folder)
    os.chdir(run)
    importlib.invalidate_caches()  # drops the finder of '..' that another root's import left
    try:
        yield run
    finally:
        os.chdir(cwd)
        sys.path[:] = path


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
    sys.path[:0] = [str(chapter_folder(c)) for c in chapters]
    try:
        yield
    finally:
        sys.path[:] = saved


def run_script(chapter, name):
    """Run tests/book_<chapter>/<name> as `python name` from the chapter folder; returns its globals."""
    with on_path(chapter):
        return runpy.run_path(str(chapter_folder(chapter) / name), run_name="__main__")


def load(chapter, module):
    """Import the book module `module` of `chapter` (its folder first on the path)."""
    with on_path(chapter):
        __import__(module)
    return sys.modules[module]


def seq2seq_data(name):
    """((x, t), (x_test, t_test)) of the data set that the seq2seq model `name` learns, the
    questions reversed where the book reverses them."""
    _, _, file_name, _, reverse = SEQ2SEQ[name]
    (x, t), (x_test, t_test) = sequence.load_data(file_name)
    if reverse:
        x, x_test = x[:, ::-1], x_test[:, ::-1]
    return (x, t), (x_test, t_test)
