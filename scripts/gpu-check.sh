#!/usr/bin/env bash
# On any machine with an NVIDIA GPU: builds the CUDA addon, runs the whole test suite on the
# real GPU (FOURIERFORMER_DEVICE=cuda), runs the benchmarks on it, and prints one markdown
# report to paste into an issue (also written to gpu-report.md).
#   bash scripts/gpu-check.sh            (set FOURIERFORMER_TORCH_PYTHON to a python with PyTorch CUDA to compare)
set -uo pipefail
cd "$(dirname "$0")/.."
report=gpu-report.md
log() { echo "$@" | tee -a "$report"; }
: > "$report"

log "# fourierformer gpu-check, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
log ''
log '```'
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | tee -a "$report"
echo "node $(node --version); nvcc: $(nvcc --version 2>/dev/null | tail -1)" | tee -a "$report"
log '```'

status=0
step() {
  local name=$1; shift
  log ''
  log "## $name"
  log ''
  log '```'
  local start=$SECONDS
  "$@" > >(tee -a "$report") 2>&1
  local rc=$?
  log '```'
  log "$name: $([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - start)) s"
  [ $rc = 0 ] || status=1
}

[ -f build-native/cuda/fourierformer_cuda.node ] || step build npm run build
step "backends" node -r ts-node/register/transpile-only -e "const ff=require('./lib'); for (const b of ff.backends()) console.log(b.device, b.available ? 'ok' : 'unavailable', '-', b.detail)"
step "test suite on cuda" env FOURIERFORMER_DEVICE=cuda npx jest --ci
step "benchmarks on cuda" npm run -s bench -- --device cuda --out bench-cuda.json

log ''
log "gpu-check: $([ $status = 0 ] && echo 'all steps passed' || echo 'some steps FAILED')"
exit $status
