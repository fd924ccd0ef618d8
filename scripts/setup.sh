#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine (as root, or with sudo) and builds everything it can:
#   system packages: Boost.Context (the CUDA emulator's fibers), OpenBLAS (CPU GEMM), cmake,
#   xz (npm run gpu-bundle), Fashion-MNIST (dataset-fashion-mnist: the vision default), tcmalloc
#   (libtcmalloc-minimal4: the allocator the benchmarks' PyTorch peer runs with), Open MPI
#   (openmpi-bin, libopenmpi-dev: the launcher and library of distributed training, and its tests),
#   clang-format (npm run format:check, the C++ half of CI's format check);
#   cuBLAS from the Python wheel nvidia-cublas when nvcc exists but its toolkit has no cuBLAS;
#   npm packages from package-lock.json; then `npm run build` (TypeScript, cpu, cuda, cuda-emu).
# With --torch-peer, also PyTorch's CPU build in a virtualenv, for `npm run bench` to compare
# against (scripts/torch-peer.ts finds it there): from https://download.pytorch.org/whl/cpu, or
# FOURIERFORMER_TORCH_INDEX; pip's own variables apply (PIP_RETRIES, PIP_TIMEOUT, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

torch_peer=0
for arg in "$@"; do
  case "$arg" in
    --torch-peer) torch_peer=1 ;;
    *) echo "usage: bash scripts/setup.sh [--torch-peer]" >&2; exit 2 ;;
  esac
done

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
for pkg in libboost-context-dev libopenblas-dev cmake g++ make python3 xz-utils dataset-fashion-mnist openmpi-bin libopenmpi-dev clang-format; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# Debian 13 and Ubuntu 24.04 name it libtcmalloc-minimal4t64, which apt picks for the old name.
/sbin/ldconfig -p 2>/dev/null | grep -q 'libtcmalloc_minimal\.so\.4 ' || need+=(libtcmalloc-minimal4)
if [ "$torch_peer" = 1 ]; then
  python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
fi
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

if [ "$torch_peer" = 1 ]; then
  venv=${XDG_CACHE_HOME:-$HOME/.cache}/fourierformer/torch-peer
  if ! "$venv/bin/python" -c 'import torch' >/dev/null 2>&1; then
    echo "setup: installing PyTorch (CPU build) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --index-url "${FOURIERFORMER_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" torch numpy
  fi
  echo "setup: PyTorch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') in $venv"
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
