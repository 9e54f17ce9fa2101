"""Run `python -m fastlstm ARGS...` while recording every write, rename, removal and new folder under
FOLDER (Python's audit hooks), then save the list as JSON to RECORD:

    python write_audit.py RECORD FOLDER ARGS...

tests/test_distributed.py starts a rank of a distributed run so, to check that it writes nothing."""

import atexit
import json
import os
import runpy
import sys

record, folder = sys.argv[1], os.path.realpath(sys.argv[2])
sys.argv = ["fastlstm", *sys.argv[3:]]
writes = []
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
CHANGES = {"os.rename", "os.replace", "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "shutil.rmtree"}


def _under(path):
    try:
        return os.path.realpath(os.fsdecode(path)).startswith(folder)
    except TypeError:  # a file descriptor
        return False


def _hook(event, args):
    if event == "open" and args[0] is not None and _under(args[0]):
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (isinstance(flags, int) and flags & WRITE_FLAGS):
            writes.append([event, os.fsdecode(args[0])])
    elif event in CHANGES and any(isinstance(a, (str, bytes)) and _under(a) for a in args):
        writes.append([event, *[os.fsdecode(a) for a in args if isinstance(a, (str, bytes))]])


def _save():
    with open(record, "w") as f:
        json.dump(writes, f)


atexit.register(_save)
sys.addaudithook(_hook)
runpy.run_module("fastlstm", run_name="__main__", alter_sys=True)
