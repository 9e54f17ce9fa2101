"""The CUDA kernels without a GPU: their compilation to real PTX, and fastlstm.gpu's messages.

Their results on Numba's CUDA simulator are ordinary tests of this run
(test_cuda_sim_kernels.py, test_cuda_sim_layers.py). The simulator runs kernels as Python
and never compiles them; test_kernels_compile_to_ptx compiles each one for an H100/H200
(sm_90) with NVVM, which needs no GPU, to catch what only the real compiler refuses. That
and the "no GPU" messages need numba.cuda without the simulator, which this run's
numba.cuda is (tests/conftest.py), so they run in a fresh interpreter with
NUMBA_ENABLE_CUDASIM=0.
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


def without_simulator(code):
    """The stdout of `code` run by a fresh interpreter whose numba.cuda is the real one."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    proc = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return proc.stdout


def _ptx_cases(dtype):
    """(name, python function, argument types) of every CUDA kernel, for one float dtype."""
    from numba import from_dtype, types

    from fastlstm.kernels import (dropout_cuda, embedding_cuda, gru_cuda, linalg_cuda, lstm_cuda, optim_cuda,
                                  regularisers_cuda, rnn_cuda, softmax_cuda)

    f = from_dtype(np.dtype(dtype))
    v, m = f[:], f[:, :]  # any layout: the kernels take views
    ids = types.intp[:]
    step_forward, step_backward = lstm_cuda._step_kernels(np.dtype(dtype))
    rnn_forward, rnn_backward = rnn_cuda._step_kernels(np.dtype(dtype))
    gru_gates, gru_hidden, gru_backward_hidden, gru_backward_gates = gru_cuda._step_kernels(np.dtype(dtype))
    return [
        ("gemm", linalg_cuda._gemm_kernel(16, np.dtype(dtype)), (m, m, m)),
        ("column_sums", linalg_cuda._column_sums, (m, v)),
        ("add_bias", linalg_cuda._add_bias, (m, v)),
        ("zero", linalg_cuda._zero, (m,)),
        ("swap_01", linalg_cuda._swap_01, (f[:, :, :], f[:, :, :])),
        ("lstm_step_forward", step_forward, (m, m, v, m, m, m, m)),
        ("lstm_step_backward", step_backward, (m,) * 7),
        ("rnn_step_forward", rnn_forward, (m, m, v, m)),
        ("rnn_step_backward", rnn_backward, (m,) * 4),
        ("gru_step_gates", gru_gates, (m,) * 4),
        ("gru_step_hidden", gru_hidden, (m,) * 4),
        ("gru_step_backward_hidden", gru_backward_hidden, (m,) * 6),
        ("gru_step_backward_gates", gru_backward_gates, (m,) * 5),
        ("time_copy", linalg_cuda._time_copy, (f[:, :, :], f[:, :, :], types.boolean, types.boolean)),
        ("softmax_forward", softmax_cuda._forward_kernel(256, np.dtype(dtype)), (m, ids, v, types.float64[:])),
        ("softmax_backward", softmax_cuda._backward, (m, ids, v, f, m)),
        ("embedding_forward", embedding_cuda._forward, (m, ids, m)),
        ("embedding_scatter_add", embedding_cuda._scatter_add, (ids, m, m)),
        ("dropout_forward", dropout_cuda._forward, (v, types.uint64, types.float64, types.float64, v, v)),
        ("dropout_backward", dropout_cuda._backward, (v, v, v)),
        ("dropout_mask", dropout_cuda._mask, (types.uint64, types.float64, types.float64, v)),
        ("locked_apply", dropout_cuda._locked, (f[:, :, :], m, f[:, :, :])),
        ("multiply", dropout_cuda._multiply, (m, m, m)),
        ("embedding_forward_scaled", embedding_cuda._forward_scaled, (m, ids, v, m)),
        ("embedding_scale_rows", embedding_cuda._scale_rows, (m, v)),
        ("temporal_sum_squares", regularisers_cuda._temporal_kernel(256), (f[:, :, :], types.float64[:])),
        ("add_scaled", regularisers_cuda._add_scaled, (v, v, f)),
        ("add_temporal_gradient", regularisers_cuda._add_temporal, (f[:, :, :], f[:, :, :], f)),
        ("sum_squares", optim_cuda._sum_squares_kernel(256), (v, types.float64[:])),
        ("scale", optim_cuda._scale, (v, f)),
        ("sgd", optim_cuda._sgd, (v, v, f)),
    ]


COMPILE_TO_PTX = """
import numpy as np
from numba import cuda
from numba.cuda.cudadrv import nvvm

from test_cuda_kernels import _ptx_cases

if not nvvm.is_available():
    print("no NVVM")
    raise SystemExit
for dtype in (np.float32, np.float64):
    for name, kernel, argtypes in _ptx_cases(dtype):
        ptx, _ = cuda.compile_ptx(kernel.py_func, argtypes, cc=(9, 0))
        print(np.dtype(dtype).name, name, ".visible .entry" in ptx)
"""


@needs_numba_cuda
def test_kernels_compile_to_ptx():
    out = without_simulator(COMPILE_TO_PTX)
    if out.strip() == "no NVVM":
        pytest.skip("libNVVM not found: pip install 'numba-cuda[cu12]' brings it")
    names = [name for name, _, _ in _ptx_cases(np.float32)]
    want = [f"{dtype} {name} True" for dtype in ("float32", "float64") for name in names]
    assert out.splitlines() == want


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


NO_GPU = """
from fastlstm import gpu

try:
    gpu.require()
except RuntimeError as e:
    print(e)
else:
    print("a GPU is available")
"""


@needs_numba_cuda
def test_require_says_no_gpu_was_found():
    out = without_simulator(NO_GPU).strip()
    if out == "a GPU is available":
        pytest.skip("a CUDA GPU is available here")
    assert "found no usable CUDA GPU" in out and "NUMBA_ENABLE_CUDASIM=1" in out
