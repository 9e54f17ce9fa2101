"""One run per output folder: a lock that a run holds in its folder for its whole life.

The lock is an flock(2) on the file run.lock, which holds the holder's process id. The kernel
releases it when the holder's last descriptor closes, however the process ends (kill -9
included), so a lock left by a killed run is free and is taken over; its file then still
names the dead process, which the new holder reports. A run that ends cleanly empties the
file. The file is never removed: removing it while another process opens it would let two
processes lock two different files of the same name.
"""

import fcntl
import os
from contextlib import contextmanager

from fastlstm.errors import UserError

LOCK = "run.lock"


@contextmanager
def hold(folder):
    """Create `folder` if need be and hold its lock for the block; UserError naming the holder's
    process id when another process holds it."""
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        raise UserError(f"--out {folder} is a file, not a folder") from None
    path = os.path.join(folder, LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "unknown"
            raise UserError(f"{folder} is in use by another run (process {holder}, which holds {path}): wait for it "
                            "to end or stop it, or choose another --out") from None
        left = _read(fd)
        if left:
            print(f"{path}: the run of process {left} ended without releasing it (killed?); taken over")
        _write(fd, f"{os.getpid()}\n")
        try:
            yield
        finally:
            _write(fd, "")
    finally:
        os.close(fd)  # releases the lock


def _read(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 64).decode(errors="replace").strip()


def _write(fd, text):
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)
