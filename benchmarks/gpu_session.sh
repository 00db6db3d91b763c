#!/usr/bin/env bash
# Everything issue #6 needs from one lease of a GPU machine, in one call:
#   the test suite on CUDA, compute-sanitizer on the GPU kernel tests, the GPU benchmarks.
# Usage (on the GPU machine, from the repository root): OUT=/some/dir benchmarks/gpu_session.sh
# The machine has CuPy, PyTorch and nvcc but no internet: gpugrad is used from the checkout.
set -uo pipefail
OUT="${OUT:-benchmarks/results/gpu-session}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -m gpugrad info
  python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" || true
} 2>&1 | tee "$OUT/machine.txt"

# 1. the whole suite with CUDA (CUDA cases run instead of skipping); skipped reasons listed by -ra
python3 -m pytest -q -ra -p no:cacheprovider 2>&1 | tee "$OUT/pytest.txt" | tail -40

# 2. compute-sanitizer: memcheck on the kernel and optimizer GPU tests, racecheck on the row reductions
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 9 python3 -m pytest -q -x -p no:cacheprovider \
      tests/test_kernels_gpu.py tests/test_optim.py -k "cuda or gpu" 2>&1 | tail -15 | tee "$OUT/memcheck.txt"
  compute-sanitizer --tool racecheck --error-exitcode 9 python3 -m pytest -q -x -p no:cacheprovider \
      tests/test_kernels_gpu.py -k "softmax or logsumexp or cross_entropy" 2>&1 | tail -15 | tee "$OUT/racecheck.txt"
else
  echo "compute-sanitizer not found" | tee "$OUT/memcheck.txt"
fi

# 3. benchmarks on the GPU (tables printed; JSON written into $OUT)
python3 benchmarks/run.py kernels --device cuda --out "$OUT" --overwrite 2>&1 | tee "$OUT/kernels.txt" | tail -40
python3 benchmarks/run.py train --device cuda --out "$OUT" --overwrite 2>&1 | tee "$OUT/train.txt" | tail -12
