#!/usr/bin/env bash
# The checks that need a CUDA device, in one run: the cuda-marked tests, the
# population benchmark's GPU tables, then the whole test suite with the default
# device ("auto", so the GPU wherever a test does not name the CPU).
#
#     bash benchmarks/run_gpu_checks.sh [OUTPUT_DIR]    # about 6 minutes on one GPU
#
# Logs and the benchmark's JSON go to OUTPUT_DIR (default benchmarks/results).
# Each stage has its own time limit, so that a slow stage cannot starve the next.
set -u
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu_nvidia_smi.txt"
python3 -c "import torch, sklearn, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'sklearn', sklearn.__version__, 'numpy', numpy.__version__)"

echo "== cuda-marked tests"
timeout 60 python3 -m pytest -m cuda -v -p no:cacheprovider tests 2>&1 | tee "$out/gpu_tests_cuda.log"

echo "== whole test suite, default device"
# In parallel where pytest-xdist is installed (the lent machine reaches no registry).
parallel=""
python3 -c "import xdist" 2>/dev/null && parallel="-n 12"
timeout 240 python3 -m pytest -v -p no:cacheprovider $parallel -m "not slow" -rfE tests 2>&1 \
    > "$out/gpu_tests_all.log"
grep -E "FAILED|ERROR|passed|failed" "$out/gpu_tests_all.log" | tail -30

echo "== bench_orthonormalize (Householder against CholeskyQR2, CPU and GPU)"
timeout 90 python3 benchmarks/bench_orthonormalize.py \
    --out "$out/bench_orthonormalize_gpu.json" 2>&1 | tee "$out/gpu_bench_orthonormalize.log"

echo "== bench_population --gpu-only"
timeout 150 python3 benchmarks/bench_population.py --gpu-only \
    --out "$out/bench_population_gpu.json" 2>&1 | tee "$out/gpu_bench_population.log"
