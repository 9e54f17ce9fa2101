"""What the tests on Numba's CUDA simulator share (test_cuda_sim_kernels.py,
test_cuda_sim_layers.py, test_backends.py): tiny blocks, tolerances, random arrays, and a
quick matrix product for whole models. tests/conftest.py turns the simulator on."""

import numpy as np
import pytest

NOT_SIMULATED = ("needs Numba's CUDA simulator: numba-cuda installed ('pip install fastlstm[test]') and "
                 "NUMBA_ENABLE_CUDASIM=1, which tests/conftest.py sets unless it is set otherwise")
DTYPES = [np.float32, np.float64]


@pytest.fixture
def tiny_blocks(monkeypatch):
    """8 threads a block and 4x4 GEMM tiles, so that small, odd shapes span many blocks."""
    from fastlstm.kernels import linalg_cuda

    monkeypatch.setattr(linalg_cuda, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(linalg_cuda, "TILE", 4)


@pytest.fixture
def quick_simulator(monkeypatch):
    """Whole models' tests in seconds rather than minutes: matrix products by NumPy on the
    simulator's arrays (the GEMM kernel is tested in test_cuda_sim_kernels.py, in every
    layout), and the sum of squares in one block."""
    from fastlstm.kernels import linalg_cuda, optim_cuda

    def matmul(a, b, out):
        np.matmul(np.asarray(a), np.asarray(b), out=np.asarray(out))  # simulated arrays: views, no copies

    monkeypatch.setattr(linalg_cuda, "matmul", matmul)
    monkeypatch.setattr(optim_cuda, "MAX_BLOCKS", 1)


def tol(dtype):
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def host(d):
    return d.copy_to_host()
