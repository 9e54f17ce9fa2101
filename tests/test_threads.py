"""One thread setting governs Numba's kernels and every loaded BLAS together."""

import os
import subprocess
import sys

import numba
import pytest

import fastlstm
from fastlstm.threads import blas_num_threads


def test_set_num_threads_sets_numba_and_blas():
    before = fastlstm.get_num_threads()
    try:
        fastlstm.set_num_threads(1)
        assert numba.get_num_threads() == 1
        assert blas_num_threads() and set(blas_num_threads()) == {1}
        top = numba.config.NUMBA_NUM_THREADS
        fastlstm.set_num_threads(top)
        assert numba.get_num_threads() == top
        assert set(blas_num_threads()) == {top}
    finally:
        fastlstm.set_num_threads(before)


def test_environment_variable_applies_at_import():
    code = ("import fastlstm, numba; from fastlstm.threads import blas_num_threads; "
            "print(numba.get_num_threads(), sorted(set(blas_num_threads())))")
    env = dict(os.environ, FASTLSTM_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "[1]"]


@pytest.mark.parametrize("bad,error", [(0, ValueError), (10**6, ValueError), (1.5, TypeError), ("2", TypeError)])
def test_bad_thread_counts(bad, error):
    with pytest.raises(error, match="number of threads"):
        fastlstm.set_num_threads(bad)


def test_bad_environment_value():
    env = dict(os.environ, FASTLSTM_NUM_THREADS="many")
    out = subprocess.run([sys.executable, "-c", "import fastlstm"], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "FASTLSTM_NUM_THREADS must be an integer, got 'many'" in out.stderr
