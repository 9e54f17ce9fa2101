"""Vocabularies: the words of a training text ranked by frequency, and vocab.txt, the plain-text file
that holds one (UTF-8, a word a line, line i the word of id i) in a corpus cache and in a run's folder."""

from fastlstm.dataset.tokens import UNK, TextError, decode
from fastlstm.files import atomic_write

FILE = "vocab.txt"


class Vocabulary:
    """Words by id (`words`), ids by word (`ids`), and `name`, what the messages call it ("PTB", a path)."""

    def __init__(self, words, name):
        self.words, self.name = list(words), str(name)
        self.ids = {word: i for i, word in enumerate(self.words)}

    def __len__(self):
        return len(self.words)

    def title(self):
        """'PTB's vocabulary', or 'the vocabulary of <path>'."""
        return f"{self.name}'s vocabulary" if self.name == "PTB" else f"the vocabulary of {self.name}"


def full_size(counts):
    """The size of the vocabulary of every word counted: <unk> is one more when the text lacks it."""
    return len(counts) + (UNK not in counts)


def from_counts(counts, size=None):
    """Words by id: <unk> and the size - 1 most frequent other words of `counts` (a Counter filled in
    the text's order), ranked by count, ties by first appearance, <unk> at its own count's rank
    (last when the text lacks it). size None: every word (full_size). ValueError for a size outside
    [2, full_size(counts)]."""
    largest = full_size(counts)
    if size is None:
        size = largest
    if size > largest:
        raise ValueError(f"--vocab-size {size} is larger than the vocabulary of the training text: {largest:,} "
                         f"words{'' if UNK in counts else ', <unk> included'}")
    if size < 2:
        raise ValueError(f"--vocab-size must be at least 2 (<unk> and a word), got {size}")
    ranked = sorted(counts, key=counts.__getitem__, reverse=True)  # a stable sort: ties stay in text order
    kept = set([word for word in ranked if word != UNK][:size - 1])
    words = [word for word in ranked if word in kept or word == UNK]
    return words if UNK in counts else words + [UNK]


def text(words):
    """The bytes of the vocab.txt of `words`."""
    return "".join(f"{word}\n" for word in words).encode()


def write(path, words):
    """Write vocab.txt atomically (fastlstm.files.atomic_write)."""
    atomic_write(path, lambda f: f.write(text(words)))


def read(path):
    """The Vocabulary in a vocab.txt; TextError (naming path) for a file that is not one: not UTF-8,
    an empty line, a word holding whitespace, a word twice, no word."""
    with open(path, "rb") as f:
        data = f.read()
    return parse(data, path)


def parse(data, path):
    """The Vocabulary of the bytes of a vocab.txt read from `path`; TextError when they are not one."""
    lines = decode(data, path).split("\n")
    if lines[-1] == "":
        lines.pop()
    for i, word in enumerate(lines):
        if word.split() != [word]:
            raise TextError(f"{path}: line {i + 1} is {'empty' if not word.strip() else 'not one word'}: not a "
                            "vocabulary (a word a line)")
    if not lines:
        raise TextError(f"{path} holds no word: not a vocabulary")
    vocab = Vocabulary(lines, path)
    if len(vocab.ids) != len(lines):
        twice = next(word for i, word in enumerate(lines) if vocab.ids[word] != i)
        raise TextError(f"{path}: {twice!r} is there twice: not a vocabulary")
    return vocab
