#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine (as root, or with sudo) and builds everything it can:
#   system packages: Boost.Context (the CUDA emulator's fibers), OpenBLAS (CPU GEMM), cmake,
#   xz (npm run gpu-bundle), Fashion-MNIST (dataset-fashion-mnist: the vision default);
#   cuBLAS from the Python wheel nvidia-cublas when nvcc exists but its toolkit has no cuBLAS;
#   npm packages from package-lock.json; then `npm run build` (TypeScript, cpu, cuda, cuda-emu).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
for pkg in libboost-context-dev libopenblas-dev cmake g++ make python3 xz-utils dataset-fashion-mnist; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -n "$NVCC" ]; then
  cuda_root=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
  if ! ls "$cuda_root"/lib64/libcublas.so* "$cuda_root"/targets/*/lib/libcublas.so* >/dev/null 2>&1 &&
     ! python3 -c 'import nvidia.cu13, os, sys; sys.exit(0 if os.path.exists(os.path.join(list(nvidia.cu13.__path__)[0], "include", "cublas_v2.h")) else 1)' 2>/dev/null; then
    echo "setup: the CUDA toolkit has no cuBLAS; installing the nvidia-cublas wheel"
    python3 -m pip install -q --retries 0 --timeout 3 nvidia-cublas
  fi
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
