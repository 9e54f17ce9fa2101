"""The CUDA kernels without a GPU: their results on Numba's CUDA simulator, their compilation
to real PTX, and fastlstm.gpu's messages.

The simulator must be chosen (NUMBA_ENABLE_CUDASIM=1) before numba.cuda is first imported,
and it must not leak into the CPU tests of this run, so the simulator cases (cudasim_cases.py,
and the CUDA layers' cudasim_layers.py) run in pytest subprocesses. The simulator runs
kernels as Python and never compiles them; test_kernels_compile_to_ptx compiles each one
for an H100/H200 (sm_90) with NVVM, which needs no GPU, to catch what only the real
compiler refuses.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastlstm import gpu

HERE = Path(__file__).resolve().parent
NO_NUMBA_CUDA = "numba-cuda is not installed: pip install 'fastlstm[test]' (or 'fastlstm[cuda]')"
needs_numba_cuda = pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason=NO_NUMBA_CUDA)


@needs_numba_cuda
@pytest.mark.parametrize("cases", ["cudasim_cases.py", "cudasim_layers.py"])
def test_kernels_match_cpu_on_the_cuda_simulator(cases):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / cases), "-q", "-p", "no:cacheprovider"],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=900)
    report = proc.stdout[-20000:] + proc.stderr[-5000:]
    assert proc.returncode == 0, report
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, report


def _ptx_cases(dtype):
    """(name, python function, argument types) of every CUDA kernel, for one float dtype."""
    from numba import from_dtype, types

    from fastlstm.kernels import dropout_cuda, embedding_cuda, linalg_cuda, lstm_cuda, optim_cuda, softmax_cuda

    f = from_dtype(np.dtype(dtype))
    v, m = f[:], f[:, :]  # any layout: the kernels take views
    ids = types.intp[:]
    step_forward, step_backward = lstm_cuda._step_kernels(np.dtype(dtype))
    return [
        ("gemm", linalg_cuda._gemm_kernel(16, np.dtype(dtype)), (m, m, m)),
        ("column_sums", linalg_cuda._column_sums, (m, v)),
        ("add_bias", linalg_cuda._add_bias, (m, v)),
        ("zero", linalg_cuda._zero, (m,)),
        ("swap_01", linalg_cuda._swap_01, (f[:, :, :], f[:, :, :])),
        ("lstm_step_forward", step_forward, (m, m, v, m, m, m, m)),
        ("lstm_step_backward", step_backward, (m,) * 7),
        ("softmax_forward", softmax_cuda._forward_kernel(256, np.dtype(dtype)), (m, ids, v, types.float64[:])),
        ("softmax_backward", softmax_cuda._backward, (m, ids, v, f, m)),
        ("embedding_forward", embedding_cuda._forward, (m, ids, m)),
        ("embedding_scatter_add", embedding_cuda._scatter_add, (ids, m, m)),
        ("dropout_forward", dropout_cuda._forward, (v, types.uint64, types.float64, types.float64, v, v)),
        ("dropout_backward", dropout_cuda._backward, (v, v, v)),
        ("sum_squares", optim_cuda._sum_squares_kernel(256), (v, types.float64[:])),
        ("scale", optim_cuda._scale, (v, f)),
        ("sgd", optim_cuda._sgd, (v, v, f)),
    ]


@needs_numba_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_compile_to_ptx(dtype):
    if gpu.simulated():
        pytest.skip("NUMBA_ENABLE_CUDASIM is set in this process: the simulator has no compiler")
    from numba import cuda
    from numba.cuda.cudadrv import nvvm

    if not nvvm.is_available():
        pytest.skip("libNVVM not found: pip install 'numba-cuda[cu12]' brings it")
    for name, kernel, argtypes in _ptx_cases(dtype):
        ptx, _ = cuda.compile_ptx(kernel.py_func, argtypes, cc=(9, 0))
        assert ".visible .entry" in ptx, name


def test_importing_fastlstm_does_not_import_numba_cuda():
    code = "import sys, fastlstm, fastlstm.gpu, fastlstm.time_layers; print('numba.cuda' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_gpu_helpers_without_numba_cuda(monkeypatch):
    monkeypatch.setattr(gpu, "_numba_cuda_installed", lambda: False)
    assert not gpu.available()
    for call in (gpu.require, lambda: gpu.to_device(np.zeros(3))):
        with pytest.raises(RuntimeError, match=re.escape("pip install 'fastlstm[cuda]'")):
            call()
    x = np.arange(3.0)
    assert not gpu.is_device_array(x)
    assert gpu.to_host(x) is x


@needs_numba_cuda
def test_require_says_no_gpu_was_found():
    if gpu.available():
        pytest.skip("a CUDA GPU (or the simulator) is available here")
    with pytest.raises(RuntimeError, match="found no usable CUDA GPU"):
        gpu.require()
