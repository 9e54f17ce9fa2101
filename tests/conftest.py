"""Shared test setup: PTB comes from the verified copies in ../shared/data/ptb, never from the
network; the CUDA kernels and layers run on Numba's CUDA simulator.

NUMBA_ENABLE_CUDASIM=1 is set here, before anything imports numba.cuda (it must be set
before that first import), for the whole run: it switches numba.cuda alone, so the CPU
kernels compile and run as ever, and the simulator tests (test_cuda_sim_*.py,
test_backends.py) are ordinary items of the run. On a machine with a GPU, set
NUMBA_ENABLE_CUDASIM=0 to run the real-GPU tests (`pytest -m gpu`, scripts/gpu_check.sh).
"""

import os
from pathlib import Path

import pytest

SHARED_PTB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptb"

os.environ.setdefault("FASTLSTM_DATA", str(SHARED_PTB))
# the book-style chapter files beside this file, also where fastlstm is imported from an install
os.environ.setdefault("FASTLSTM_BOOK_FILES", str(Path(__file__).resolve().parent))
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")


@pytest.fixture(scope="session")
def ptb_dir():
    """The folder holding the verified ptb.{train,valid,test}.txt."""
    if not (SHARED_PTB / "ptb.train.txt").is_file():
        pytest.fail(f"PTB files not found in {SHARED_PTB}; the tests expect ../shared/data/ptb beside the repository")
    return SHARED_PTB


@pytest.fixture(scope="module")
def one_thread():
    """One thread for a module's tests: kernels this small run fastest so, above all on a busy machine."""
    import fastlstm
    threads = fastlstm.get_num_threads()
    fastlstm.set_num_threads(1)
    yield
    fastlstm.set_num_threads(threads)


@pytest.fixture
def no_display(monkeypatch):
    """No display, as on a server: matplotlib's Agg backend; plots must be saved, not shown."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
