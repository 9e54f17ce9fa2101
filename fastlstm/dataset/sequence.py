"""The book's toy sequence data sets of chapters 7 and 8, a drop-in for its ``dataset/sequence.py``.

``addition.txt`` (sums such as ``16+75``) and ``date.txt`` (dates in many human formats, to
be written as ISO dates) ship inside the package, with the book's MIT licence beside them
(``data/LICENSE``), so they load offline. Each line is a question, then ``_`` and the answer,
both padded with spaces to a fixed width; the answer keeps its ``_`` as the start symbol.

As in the book, the character vocabulary is module state: every ``load_data`` call adds
the characters it has not seen, in order of first appearance, so ids stay the same whatever
is loaded next, and ``get_vocab()`` returns that state itself. ``load_data`` also seeds
NumPy's global generator with ``seed`` before it shuffles, as the book's does: the book's
training scripts draw their mini-batch order from the generator so seeded.
"""

import hashlib
import os
from pathlib import Path

import numpy

__all__ = ["load_data", "get_vocab", "DATA_DIR", "FILES"]

DATA_DIR = Path(__file__).resolve().parent / "data"
FILES = ("addition.txt", "date.txt")

id_to_char = {}
char_to_id = {}
_verified = set()  # packaged files whose SHA-256 matched SHA256SUMS in this process


def _packaged(file_name):
    """The path of a packaged file, checked once against its SHA-256 (a damaged copy would
    give arrays that differ from the book's without a word)."""
    path = DATA_DIR / file_name
    if file_name not in _verified:
        sums = dict(line.split()[::-1] for line in (DATA_DIR / "SHA256SUMS").read_text().splitlines() if line)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sums[file_name]:
            raise ValueError(f"{path} has SHA-256 {digest}, not the book's {sums[file_name]}: reinstall fastlstm")
        _verified.add(file_name)
    return path


def _path(file_name):
    """The packaged file called file_name, else file_name as a path to a file of the same format."""
    if file_name in FILES:
        return _packaged(file_name)
    path = Path(os.fspath(file_name))
    if not path.is_file():
        raise FileNotFoundError(f"no sequence file {file_name!r}: the package ships {', '.join(FILES)}; "
                                "any other name is read as the path of a file in their format")
    return path


def _char_codes(path):
    """(codes (n, L) of the characters of every line but its newline, the question's width):
    the lines must all have the same width and their first '_' in the same column."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    if not lines:
        raise ValueError(f"{path} holds no lines")
    width, split_at = len(lines[0]), lines[0].find("_")
    for number, line in enumerate(lines, 1):
        at = line.find("_")
        if at < 0:
            raise ValueError(f"{path}, line {number}: no '_' between question and answer")
        if len(line) != width or at != split_at:
            raise ValueError(f"{path}, line {number}: questions and answers must be padded to one width "
                             f"(line 1 has its '_' at {split_at} of {width} characters, this one at {at} of {len(line)})")
    codes = numpy.frombuffer("".join(lines).encode("utf-32-le"), dtype="<u4").reshape(len(lines), width)
    return codes, split_at


def _ids(codes):
    """codes mapped to character ids, after adding the characters not yet in the vocabulary
    in order of first appearance (line by line, question before answer, as the book reads them)."""
    unique, first, inverse = numpy.unique(codes, return_index=True, return_inverse=True)
    for code in unique[numpy.argsort(first)]:
        char = chr(code)
        if char not in char_to_id:
            new_id = len(char_to_id)
            char_to_id[char] = new_id
            id_to_char[new_id] = char
    ids = numpy.array([char_to_id[chr(code)] for code in unique], dtype=int)
    return ids[inverse].reshape(codes.shape)


def load_data(file_name='addition.txt', seed=1984):
    """((x_train, t_train), (x_test, t_test)): the questions x and answers t as character ids
    (int arrays, one row a line), shuffled with numpy.random.seed(seed) (no seeding when seed is
    None), the last tenth kept for test. The same arrays as the book's loader."""
    codes, split_at = _char_codes(_path(file_name))
    ids = _ids(codes)
    x, t = ids[:, :split_at], ids[:, split_at:]

    indices = numpy.arange(len(x))
    if seed is not None:
        numpy.random.seed(seed)
    numpy.random.shuffle(indices)
    x = x[indices]
    t = t[indices]

    split = len(x) - len(x) // 10
    return (x[:split], t[:split]), (x[split:], t[split:])


def get_vocab():
    """(char_to_id, id_to_char): the vocabulary of every file loaded so far (the module's own dicts)."""
    return char_to_id, id_to_char
