"""Writing files so that a killed process never leaves a broken one, clearing what a killed write
left, and the user cache folder."""

import hashlib
import os
import re
import uuid
from contextlib import suppress
from pathlib import Path

_READ = 1 << 20  # bytes hashed at a time
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")  # the names atomic_write gives its temporary files


def user_cache_dir():
    """fastlstm's folder in the user cache: ``$XDG_CACHE_HOME/fastlstm``, else ``~/.cache/fastlstm``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastlstm"


def sha256_of(path):
    """The SHA-256 of the file at `path`, as hex, read a block at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_READ), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path, write):
    """Call write(f) on a temporary binary file beside `path`, then rename it to `path`.

    A reader sees the old file or the complete new one, never a partial one; when
    write raises (or the process is interrupted) the temporary file is removed. The file
    and then its folder are flushed to the disk, so the new name survives a power cut too.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Flush a folder's entries (a rename in it) to the disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a system that cannot open folders (Windows) keeps renames without it
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the rename stands all the same
        pass
    finally:
        os.close(fd)


def remove_temporary_files(folder):
    """Remove the temporary files that writes killed in the middle (kill -9, a power cut) left in
    `folder`; returns their names. Call it only where no other process writes into the folder."""
    removed = []
    for name in sorted(os.listdir(folder)):
        if _TEMPORARY.fullmatch(name):
            with suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))
                removed.append(name)
    return removed
