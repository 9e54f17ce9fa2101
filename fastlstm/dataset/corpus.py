"""A text corpus of one's own: a folder holding train.txt, valid.txt and test.txt in Penn Treebank's
convention (fastlstm.dataset.tokens), its token ids built once and cached as memory-mapped files.

`load(folder, vocab_size)` gives each split's token ids, a read-only memory-mapped int32 array,
and the Vocabulary (vocabulary.from_counts over train.txt: every word, or <unk> and the
vocab_size - 1 most frequent others; a word of valid.txt or test.txt outside it is <unk>, as is
a dropped word of train.txt). A cache entry holds them:

    <folder>/fastlstm-cache/vocab-<vocab_size, or all>/
        train.npy valid.npy test.npy   the ids, int32 .npy, read with np.load(mmap_mode="r", allow_pickle=False)
        vocab.txt                      the vocabulary, a word a line
        manifest.json                  the SHA-256 of the three text files and the vocab_size it was built
                                       for, and the token count and SHA-256 of each file above

An entry is used only when the manifest names the text files' present SHA-256 and every file
matches it; otherwise (the text changed, or the entry is damaged or truncated) it is built again.
Where the folder cannot be written the entry lies in the user cache instead, under
corpora/<SHA-256 of the folder's path> (fastlstm.files.user_cache_dir), which a line on stderr says.

A build reads the text twice, a block of lines at a time, with a progress line on stderr: it counts
the words, then writes each split's ids to its .npy, whose header holds the count from the first
pass, a block at a time. The text and its ids are never in memory whole. Files are written
atomically (fastlstm.files.atomic_write); the manifest is removed first and written last, so an
entry a build left half-made is never used.
"""

import hashlib
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from fastlstm.dataset import tokens, vocabulary
from fastlstm.dataset.tokens import EOS, UNK, TextError
from fastlstm.files import atomic_write, sha256_of, user_cache_dir

__all__ = ["Corpus", "CorpusError", "TextError", "load", "encode", "is_text_folder", "text_files", "SPLITS"]

SPLITS = ("train", "valid", "test")
CACHE = "fastlstm-cache"
MANIFEST = "manifest.json"
FORMAT, VERSION = "fastlstm-corpus-cache", 1
DTYPE = np.dtype("<i4")


class CorpusError(ValueError):
    """A text folder that cannot be used, said in one line (the text's own faults are TextError)."""


class _Unusable(Exception):
    """A cache entry of other text, or whose files do not match its manifest: the reason."""


@dataclass
class Corpus:
    """The token ids of each split (memory-mapped, read-only) and the vocabulary, from cache entry `cache`."""

    splits: dict
    vocab: vocabulary.Vocabulary
    cache: Path


def is_text_folder(folder):
    """Whether `folder` holds a train.txt: a corpus of one's own rather than PTB."""
    return folder is not None and (Path(folder) / "train.txt").is_file()


def text_files(folder):
    """{split: path of its .txt}; CorpusError when one is missing."""
    paths = {split: Path(folder) / f"{split}.txt" for split in SPLITS}
    for path in paths.values():
        if not path.is_file():
            raise CorpusError(f"{path} not found: a text folder holds train.txt, valid.txt and test.txt")
    return paths


def load(folder, vocab_size=None):
    """The Corpus of `folder` (see the module's docstring), from its cache entry, built when there is none
    for the present text; CorpusError or TextError for text that cannot be used."""
    folder = Path(folder)
    paths = text_files(folder)
    sources = {split: sha256_of(path) for split, path in paths.items()}
    name = f"vocab-{vocab_size or 'all'}"
    for entry in (folder / CACHE / name, _elsewhere(folder) / name):
        try:
            found = _cached(entry, vocab_size, sources)
        except _Unusable as e:
            print(f"{entry} is not used: {e}", file=sys.stderr)
            found = None
        if found is not None:
            return found
    entry = _writable_entry(folder, name)
    print(f"building the token ids of {folder} in {entry}", file=sys.stderr)
    _build(paths, sources, vocab_size, entry)
    return _cached(entry, vocab_size, sources)


def encode(path, vocab):
    """The token ids of the text file at `path` by `vocab` (a Vocabulary), an int32 array; a word outside
    it is <unk>. For evaluating a run's weights on a text: two passes, count then fill."""
    count = sum(len(block) for block in tokens.blocks(path))
    ids, done = np.empty(count, DTYPE), 0
    for block in _id_blocks(path, vocab):
        if done + len(block) > count:
            break
        ids[done:done + len(block)] = block
        done += len(block)
    if done != count:
        raise _changed(path)
    return ids


def _id_blocks(path, vocab, digest=None, progress=None):
    """The ids of the tokens of `path`, an int32 array per block of lines; a word outside vocab is <unk>."""
    unk = vocab.ids.get(UNK, -1)
    for block in tokens.blocks(path, digest, progress):
        ids = np.fromiter(map(vocab.ids.get, block, repeat(unk)), DTYPE, len(block))
        if unk < 0 and len(ids) and ids.min() < 0:
            word = block[int(np.argmin(ids))]
            raise CorpusError(f"{path}: {word!r} is not in {vocab.title()}, which has no {UNK}")
        yield ids


def _elsewhere(folder):
    """Where the cache of a folder that cannot be written lies: the user cache, by the folder's path."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return user_cache_dir() / "corpora" / key


def _writable_entry(folder, name):
    """The entry folder to build: beside the data, else (with a line on stderr) in the user cache."""
    entry = folder / CACHE / name
    try:
        entry.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=entry):
            pass
        return entry
    except OSError as e:
        other = _elsewhere(folder) / name
        other.mkdir(parents=True, exist_ok=True)
        print(f"cannot write in {folder / CACHE} ({e.strerror or e}): the token ids are cached in {other}",
              file=sys.stderr)
        return other


# ---------------------------------------------------------------------------- reading an entry

def _cached(entry, vocab_size, sources):
    """The Corpus in `entry`, built for these sources and vocab_size; None when there is no entry;
    _Unusable when it was built from other text or its files do not match its manifest."""
    try:
        manifest = json.loads((entry / MANIFEST).read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as e:
        raise _Unusable(f"its {MANIFEST} cannot be read ({e})") from None
    if not isinstance(manifest, dict) or (manifest.get("format"), manifest.get("version")) != (FORMAT, VERSION):
        raise _Unusable(f"its {MANIFEST} is not that of a fastlstm corpus cache of version {VERSION}")
    if manifest.get("sources") != sources or manifest.get("vocab_size") != vocab_size:
        raise _Unusable("the text changed since it was built")
    try:
        vocab_bytes = (entry / vocabulary.FILE).read_bytes()
        _match(vocab_bytes, manifest["vocab"], vocabulary.FILE)
        vocab = vocabulary.parse(vocab_bytes, entry / vocabulary.FILE)
        splits = {split: _ids(entry / f"{split}.npy", manifest["ids"][split]) for split in SPLITS}
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        raise _Unusable(f"it is damaged ({type(e).__name__}: {e})") from None
    return Corpus(splits, vocab, entry)


def _ids(path, expected):
    """The memory-mapped ids in `path`, checked against the manifest's record of them (ValueError)."""
    ids = np.load(path, mmap_mode="r", allow_pickle=False)
    if ids.dtype != DTYPE or ids.shape != (expected["tokens"],):
        raise ValueError(f"{path.name} holds {ids.dtype} {ids.shape}, not the manifest's {expected['tokens']} int32")
    _match(ids.data, expected, path.name)
    return ids


def _match(data, expected, name):
    """ValueError unless the SHA-256 of data (bytes, or a buffer) is the manifest's."""
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise ValueError(f"{name} does not match its SHA-256 in {MANIFEST}")


# ---------------------------------------------------------------------------- building one

def _build(paths, sources, vocab_size, entry):
    """Count, rank, encode: write the entry's files, the manifest last."""
    counts, sizes = _count(paths, sources)
    try:
        vocab = vocabulary.Vocabulary(vocabulary.from_counts(counts, vocab_size), entry / vocabulary.FILE)
    except ValueError as e:
        raise CorpusError(f"{paths['train']}: {e}") from None
    (entry / MANIFEST).unlink(missing_ok=True)
    vocabulary.write(entry / vocabulary.FILE, vocab.words)
    ids = {split: _write_ids(path, sources[split], sizes[split], vocab, entry / f"{split}.npy")
           for split, path in paths.items()}
    manifest = {"format": FORMAT, "version": VERSION, "vocab_size": vocab_size, "sources": sources,
                "vocab": {"words": len(vocab), "sha256": sha256_of(entry / vocabulary.FILE)}, "ids": ids}
    atomic_write(entry / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=1).encode()))


def _count(paths, sources):
    """(Counter of train.txt's tokens in order of first appearance, {split: token count}): the first pass."""
    counts, sizes = Counter(), {}
    for split, path in paths.items():
        digest, progress = hashlib.sha256(), tokens.Progress("counting the words of", path)
        size = eos = 0
        for block in tokens.blocks(path, digest, progress):
            if split == "train":
                counts.update(block)
            size += len(block)
            eos += block.count(EOS)
        progress.done()
        _unchanged(path, digest, sources[split])
        if size == eos:
            raise CorpusError(f"{path} holds no words{' (only empty lines)' if size else ''}")
        sizes[split] = size
    return counts, sizes


def _write_ids(path, source, size, vocab, out):
    """Write the ids of the text file `path` (SHA-256 `source`, `size` tokens) to the .npy `out`, a block at
    a time; the manifest's record of them."""
    digest, written = hashlib.sha256(), hashlib.sha256()
    progress = tokens.Progress("writing the token ids of", path)

    def write(f):
        np.lib.format.write_array_header_1_0(f, {"descr": DTYPE.str, "fortran_order": False, "shape": (size,)})
        done = 0
        for ids in _id_blocks(path, vocab, digest, progress):
            done += len(ids)
            if done > size:
                break
            f.write(ids.data)
            written.update(ids.data)
        if done != size:
            raise _changed(path)
        _unchanged(path, digest, source)

    atomic_write(out, write)
    progress.done()
    return {"tokens": size, "sha256": written.hexdigest()}


def _unchanged(path, digest, source):
    """CorpusError when the bytes just read are not those hashed at the start."""
    if digest.hexdigest() != source:
        raise _changed(path)


def _changed(path):
    return CorpusError(f"{path} changed while it was read; try again")

