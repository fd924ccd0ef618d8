#!/usr/bin/env bash
# The whole test suite, as CI runs it (after scripts/setup.sh has built everything):
#   1. lint (eslint) and the format check (prettier, clang-format; docs/contributing.md), type-check
#      the library, tests and scripts, and check that lib/ has no import circle;
#   2. the CUDA emulator's own tests, and the kernels under AddressSanitizer (+ bounds) in fiber
#      mode and ThreadSanitizer in thread-pool mode (scripts/emu-sanitize.sh);
#   3. ptxas: 0 bytes spilled for every CUDA kernel at sm_80 and sm_90 (where nvcc exists);
#   4. the jest suite once per backend: cpu and cuda-emu (FOURIERFORMER_TEST_DEVICES overrides),
#      then the cpu attention tests again on each narrower SIMD path this CPU has (the suite ran
#      the widest: AVX-512, else AVX2), down to the portable scalar one;
#   5. pack-check: the npm tarball (with the prebuilds, made from the build above) installs and
#      works in an empty folder with no compiler on PATH (scripts/pack-check.sh);
#   6. the GPU check's dry run: `npm run gpu-bundle`, then every step of scripts/gpu-check.sh on
#      cuda-emu from that bundle, which must leave the working tree as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
export FOURIERFORMER_TEST_DEVICES=${FOURIERFORMER_TEST_DEVICES:-cpu,cuda-emu}

section() { echo; echo "=== $* ==="; }

section "lint and format"
npm run --silent lint
npm run --silent format:check

section "type-check"
npx tsc -p tsconfig.json --noEmit
npx tsc -p test/tsconfig.json
npm run --silent check:circles

section "emulator tests and sanitizers"
bash scripts/emu-sanitize.sh

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  section "ptxas spills"
  bash scripts/check-spills.sh
else
  echo "no nvcc: the spill check is skipped"
fi

section "jest on $FOURIERFORMER_TEST_DEVICES"
results=$(mktemp)
set +e
npx jest --ci --json --outputFile="$results"
rc=$?
set -e
summary=$(node -e "
const r = JSON.parse(require('fs').readFileSync('$results', 'utf8'));
console.log('jest: ' + r.numPassedTests + ' passed, ' + r.numFailedTests + ' failed, ' + r.numPendingTests + ' skipped');
")
echo "$summary"
rm -f "$results"

# The cpu kernels pick the widest SIMD path at run time (csrc/cpu/simd.h); FOURIERFORMER_CPU_ISA
# lowers it. Each path is its own code, so the attention tests run on every one this CPU has.
if [[ ",$FOURIERFORMER_TEST_DEVICES," == *",cpu,"* ]]; then
  paths=(scalar)
  if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then paths=(avx2 "${paths[@]}"); fi
  if grep -qw avx512f /proc/cpuinfo; then paths=(avx512 "${paths[@]}"); fi
  section "cpu attention tests on the SIMD paths: ${paths[*]} (${paths[0]} in the run above)"
  for isa in "${paths[@]:1}"; do
    echo "--- FOURIERFORMER_CPU_ISA=$isa"
    FOURIERFORMER_TEST_DEVICES=cpu FOURIERFORMER_CPU_ISA=$isa npx jest --ci \
      test/fourier-attention.test.ts test/fourier-attention-regimes.test.ts test/dot-attention.test.ts || rc=1
  done
fi

section "pack-check"
bash scripts/pack-check.sh || rc=1

section "gpu-check --dry-run"
before=$(git status --porcelain 2>/dev/null || true)
gpu_out=$(mktemp -d)
if npm run --silent gpu-bundle && bash scripts/gpu-check.sh --dry-run --out "$gpu_out"; then
  [ "$(git status --porcelain 2>/dev/null || true)" = "$before" ] ||
    { echo "gpu-check --dry-run changed the working tree"; git status --short; rc=1; }
else
  rc=1
fi
rm -rf "$gpu_out"

echo
echo "$summary"  # the suite's count, last
exit $rc
