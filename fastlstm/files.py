"""Writing files so that a killed process never leaves a broken one."""

import os
import uuid
from contextlib import suppress


def atomic_write(path, write):
    """Call write(f) on a temporary binary file beside `path`, then rename it to `path`.

    A reader sees the old file or the complete new one, never a partial one; when
    write raises (or the process is interrupted) the temporary file is removed.
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
