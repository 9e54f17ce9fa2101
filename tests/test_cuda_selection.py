"""Choosing the CUDA backend, on any machine: without numba-cuda or without a GPU, `import
fastlstm` works, the CPU path is untouched, and asking for the GPU (config.GPU, or weights
on the GPU) fails with gpu.require()'s message that says what is missing. The CUDA
backend's results are tested on the simulator (test_cuda_sim_layers.py, test_backends.py)
and on a real GPU (test_gpu_real.py)."""

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from fastlstm import backends, config, gpu, time_layers
from fastlstm.models import BetterRnnlm, Rnnlm
from fastlstm.util import to_gpu

INSTALL_HINT = re.escape(gpu.INSTALL_HINT)
SIZES = dict(vocab_size=11, wordvec_size=4, hidden_size=4)


class FakeDeviceArray:
    """Looks like an array in GPU memory (CuPy's protocol), without any GPU."""

    __cuda_array_interface__ = {"shape": (11, 4), "typestr": "<f4", "data": (0, False), "version": 3}
    shape, ndim, dtype = (11, 4), 2, np.dtype(np.float32)


@pytest.fixture
def no_numba_cuda(monkeypatch):
    monkeypatch.setattr(gpu, "_numba_cuda_installed", lambda: False)


def test_import_and_cpu_path_without_numba_cuda():
    """numba_cuda hidden from the import system in a fresh interpreter."""
    code = """
import importlib.abc, importlib.util, sys

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "numba_cuda":
            raise ModuleNotFoundError(name)

sys.meta_path.insert(0, Hide())
find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: (
    None if name.partition(".")[0] == "numba_cuda" else find_spec(name, package))

import fastlstm, fastlstm.backends.cuda, fastlstm.util
from fastlstm import config
from fastlstm.models import Rnnlm

print(Rnnlm(11, 4, 4).layers[1]._backend.name)
config.GPU = True
try:
    Rnnlm(11, 4, 4)
except RuntimeError as e:
    print(e)
print("numba.cuda" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    backend, error, cuda_imported = out.strip().splitlines()
    assert backend == "cpu"
    assert re.search(f"numba-cuda, which is not installed: {INSTALL_HINT}", error)
    assert cuda_imported == "False"


def test_asking_for_the_gpu_without_numba_cuda_says_what_is_missing(no_numba_cuda, monkeypatch):
    W = np.zeros((11, 4), np.float32)
    assert not backends.wants_gpu(W, 0.5)
    assert time_layers.TimeEmbedding(W)._backend is backends.CPU
    assert time_layers.TimeDropout(0.5)._backend is backends.CPU

    assert backends.wants_gpu(W, FakeDeviceArray())
    with pytest.raises(RuntimeError, match=INSTALL_HINT):
        time_layers.TimeEmbedding(FakeDeviceArray())  # weights on the GPU select it without config.GPU
    with pytest.raises(RuntimeError, match=INSTALL_HINT):
        to_gpu(W)

    monkeypatch.setattr(config, "GPU", True)
    assert backends.wants_gpu()
    for build in (lambda: Rnnlm(**SIZES), lambda: BetterRnnlm(**SIZES), time_layers.TimeSoftmaxWithLoss,
                  time_layers.TimeDropout, lambda: time_layers.TimeAffine(W.T, np.zeros(11, np.float32))):
        with pytest.raises(RuntimeError, match=INSTALL_HINT):
            build()


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda is not installed")
def test_asking_for_the_gpu_without_a_gpu_says_so():
    """In a fresh interpreter without the simulator, which this run's numba.cuda is (tests/conftest.py)."""
    code = f"""
from fastlstm import config, gpu
from fastlstm.models import Rnnlm

if gpu.available():
    raise SystemExit("a GPU is available")
config.GPU = True
try:
    Rnnlm(**{SIZES!r})
except RuntimeError as e:
    print(e)
"""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode == 1 and "a GPU is available" in proc.stderr:
        pytest.skip("a CUDA GPU is available here")
    assert proc.returncode == 0, proc.stderr
    assert "found no usable CUDA GPU" in proc.stdout
