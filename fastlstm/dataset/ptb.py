"""Penn Treebank, a drop-in for the book's ``dataset/ptb.py``.

``load_data`` returns what the book's loader returns. The files are found, in order: the
``data_dir`` argument; the folder named by ``FASTLSTM_DATA``; the user cache folder;
else they are downloaded into that cache from the location the book's loader uses.
Every file is checked against its SHA-256 before use, so a damaged or different copy
never yields numbers that cannot be compared with the book's.
"""

import hashlib
import http.client
import os
import sys
import urllib.request
from pathlib import Path

import numpy as np

from fastlstm.files import atomic_write, sha256_of, user_cache_dir

__all__ = ["load_data", "load_vocab", "cache_dir", "ChecksumError", "DataNotFoundError", "URL_BASE"]

URL_BASE = "https://raw.githubusercontent.com/tomsercu/lstm/master/data/"
ENV_VAR = "FASTLSTM_DATA"
TIMEOUT_S = 30

KEY_FILE = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}
SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
# of PTB's vocabulary written as a vocab.txt (fastlstm.dataset.vocabulary): how a run's vocab.txt is known as PTB's
VOCAB_SHA256 = "643ed39b30b86d8d866d211f553d6efbb1bca21703bf1ae464e5430c6e5f91fc"

_CHUNK = 1 << 16
_verified = {}  # resolved file path -> (size, mtime_ns) of the copy whose SHA-256 matched
_vocabs = {}    # resolved folder -> (word_to_id, id_to_word)
_corpora = {}   # (resolved folder, data_type) -> corpus


class ChecksumError(ValueError):
    """A PTB file whose SHA-256 is not the published one."""


class DataNotFoundError(FileNotFoundError):
    """The PTB files are neither where they were said to be nor obtainable by download."""


def cache_dir():
    """The user cache folder for PTB: ``$XDG_CACHE_HOME/fastlstm/ptb``, else ``~/.cache/fastlstm/ptb``."""
    return user_cache_dir() / "ptb"


def load_vocab(data_dir=None):
    """``(word_to_id, id_to_word)``: ids in order of first appearance in ptb.train.txt, as in the book."""
    word_to_id, id_to_word = _vocab(data_dir)
    return dict(word_to_id), dict(id_to_word)


def load_data(data_type="train", data_dir=None):
    """``(corpus, word_to_id, id_to_word)`` of one split, exactly as the book's ``ptb.load_data``.

    data_type: 'train', 'val' (same as 'valid'), 'valid' or 'test'.
    data_dir: folder holding ptb.{train,valid,test}.txt; None looks in ``FASTLSTM_DATA``,
    then the user cache, then downloads. corpus is an int64 array of word ids.
    """
    if data_type == "val":
        data_type = "valid"
    if data_type not in KEY_FILE:
        raise ValueError(f"data_type must be 'train', 'val', 'valid' or 'test', not {data_type!r}")
    word_to_id, id_to_word = _vocab(data_dir)
    path = _locate(KEY_FILE[data_type], data_dir)
    key = (path.parent.resolve(), data_type)
    if key not in _corpora:
        words = _words(path)
        _corpora[key] = np.fromiter(map(word_to_id.__getitem__, words), dtype=np.int64, count=len(words))
    return _corpora[key].copy(), dict(word_to_id), dict(id_to_word)


def _vocab(data_dir):
    """The cached vocabulary of the train file that ``data_dir`` resolves to."""
    path = _locate(KEY_FILE["train"], data_dir)
    folder = path.parent.resolve()
    if folder not in _vocabs:
        word_to_id = {word: i for i, word in enumerate(dict.fromkeys(_words(path)))}
        _vocabs[folder] = word_to_id, {i: word for word, i in word_to_id.items()}
    return _vocabs[folder]


def _words(path):
    """The book's tokens: every newline becomes '<eos>', then split on whitespace."""
    with open(path, encoding="utf-8") as f:
        return f.read().replace("\n", "<eos>").strip().split()


def _locate(file_name, data_dir):
    """Path of a verified copy of ``file_name``, downloading it into the cache if it is found nowhere."""
    if data_dir is not None:
        folder, source = Path(data_dir), "the data_dir argument"
    elif os.environ.get(ENV_VAR):
        folder, source = Path(os.environ[ENV_VAR]), f"the {ENV_VAR} environment variable"
    else:
        folder, source = None, None
    if folder is not None:
        path = folder / file_name
        if not path.is_file():
            raise DataNotFoundError(
                f"{path} not found: {source} names {folder}, which must hold "
                f"{', '.join(SHA256)}"
            )
    else:
        path = cache_dir() / file_name
        if not path.is_file():
            _download(file_name, path)
    _verify(path)
    return path


def _verify(path):
    """Refuse a file whose SHA-256 is not the published one; hash each copy once per process."""
    stat = path.stat()
    key, stamp = str(path.resolve()), (stat.st_size, stat.st_mtime_ns)
    if _verified.get(key) == stamp:
        return
    _check_sum(path.name, sha256_of(path), str(path))
    _verified[key] = stamp


def _check_sum(file_name, actual, where):
    """Raise ChecksumError naming ``where`` unless ``actual`` is the published SHA-256 of ``file_name``."""
    expected = SHA256[file_name]
    if actual != expected:
        raise ChecksumError(
            f"{where}: SHA-256 mismatch for {file_name}, expected {expected}, got {actual}; "
            "the copy is damaged or is not the Penn Treebank file the book uses; replace it with a good copy"
        )


def _download(file_name, path):
    """Fetch ``file_name`` into ``path`` through a temporary file that only a verified download replaces."""
    url = URL_BASE + file_name
    path.parent.mkdir(parents=True, exist_ok=True)

    def fetch_verified(out):
        try:
            actual = _fetch(url, out, file_name)
        except (OSError, http.client.HTTPException) as e:
            raise DataNotFoundError(_not_found_message(file_name, url, e)) from e
        _check_sum(file_name, actual, f"{url} (download discarded)")

    atomic_write(path, fetch_verified)


def _fetch(url, out, file_name):
    """Copy ``url`` into the open file ``out`` with a progress line on stderr; return the SHA-256."""
    digest = hashlib.sha256()
    done = 0
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        total = response.length
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            shown = f"{done:,}/{total:,} bytes ({100 * done // total}%)" if total else f"{done:,} bytes"
            print(f"\rDownloading {file_name}: {shown}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    if total is not None and done != total:
        raise OSError(f"connection closed after {done:,} of {total:,} bytes")
    return digest.hexdigest()


def _not_found_message(file_name, url, error):
    """Why the files are missing, and the three ways to provide them."""
    return (
        f"Penn Treebank file {file_name} is not on this machine and downloading {url} failed ({error}).\n"
        f"Provide {', '.join(SHA256)} in one of three ways:\n"
        "  1. name their folder: load_data(..., data_dir=FOLDER), or the --data FOLDER option of the fastlstm command;\n"
        f"  2. set the environment variable {ENV_VAR}=FOLDER;\n"
        f"  3. put them in the cache folder {cache_dir()}."
    )
