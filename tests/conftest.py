"""Shared test setup: PTB comes from the verified copies in ../shared/data/ptb, never from the network."""

import os
from pathlib import Path

import pytest

SHARED_PTB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptb"

os.environ.setdefault("FASTLSTM_DATA", str(SHARED_PTB))


@pytest.fixture(scope="session")
def ptb_dir():
    """The folder holding the verified ptb.{train,valid,test}.txt."""
    if not (SHARED_PTB / "ptb.train.txt").is_file():
        pytest.fail(f"PTB files not found in {SHARED_PTB}; the tests expect ../shared/data/ptb beside the repository")
    return SHARED_PTB
