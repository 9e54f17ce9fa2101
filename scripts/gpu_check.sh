#!/usr/bin/env bash
# Real-GPU check, a few minutes on an H100/H200: every CUDA kernel against its CPU twin
# at the BetterRnnlm's sizes and both book models on the GPU layers against the CPU
# (pytest -m gpu), then the throughput of a training step, with cuBLAS when CuPy is
# installed and with the tiled numba.cuda GEMM, and of both models through the layers.
#
# Needs an NVIDIA driver and: pip install -e '.[cuda,test]'  (numba-cuda with the CUDA 12
# toolkit wheels: NVVM compiles, nvJitLink links, so any CUDA 12 driver runs the result);
# add '.[cublas]' for the cuBLAS path. PYTHON selects the interpreter (default: python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi not found"
"$PY" -c "from fastlstm import gpu; gpu.require()"

# the tests run on the simulator unless told otherwise (tests/conftest.py)
NUMBA_ENABLE_CUDASIM=0 timeout 240 "$PY" -m pytest -m gpu tests/test_gpu_real.py -q -p no:cacheprovider -W "ignore:Grid size"
timeout 90 "$PY" scripts/gpu_throughput.py --steps 20 --models
if "$PY" -c "from fastlstm.kernels import linalg_cuda as l; raise SystemExit(not l.cublas_available())"; then
    timeout 30 "$PY" scripts/gpu_throughput.py --steps 5 --no-cublas
fi
