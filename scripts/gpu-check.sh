#!/usr/bin/env bash
# One bounded call that gives a full verdict of the CUDA backend on a GPU machine, cold: no
# package registry, no node_modules, only the working tree and gpu-bundle/ (`npm run gpu-bundle`
# on a developer's machine: the node binary, the built package, the CUDA sources, the tests as
# JavaScript run by node:test). The bundle is unpacked and built in a scratch folder (--work, by
# default a fresh one under $TMPDIR, removed at the end): the working tree is left as it is.
#   bash scripts/gpu-check.sh --out DIR [--bundle gpu-bundle] [--budget 540] [--work DIR] [--dry-run]
# (--budget: 540 s by default, 1200 s for a dry run)
# Steps, in this order (each under its own timeout, all within --budget seconds; a step that no
# longer fits, or follows a step the others need, is skipped and the report says why):
#   unpack     node and the package from the bundle
#   device     nvidia-smi: the GPU, its compute capability, the driver
#   build      the cuda addon for that compute capability only, with all cores (cmake + nvcc)
#   backends   the cuda backend loads and sees the GPU; if not, the check stops here
#   tests      the kernel and op tests on cuda (CUDA_LAUNCH_BLOCKING=1: a fault names its kernel)
#   syncs      host synchronisations per training step of the bench LM (fails above 1, the loss)
#   kernels    kernel-only times (CUDA events) of the fused attentions at the paper's shapes and
#              long contexts, with peak device memory (scripts/kernel-times.ts)
#   train      the training-step figures of the benchmark (scripts/bench.ts --only train), and
#              PyTorch's on the same GPU where python3 imports torch with CUDA
#   torch      PyTorch's SDPA and the paper's materialised Fourier attention on the same GPU
#              against ours (scripts/bench.ts --only attention), where python3 imports torch
#              with CUDA
#   memcheck, racecheck, synccheck
#              compute-sanitizer over the attention, metric and embedding tests, where it exists
#              and runs on this machine (a one-op probe first), with FF_CUDA_NO_CACHING=1 so that
#              every tensor is its own exact-size cudaMalloc; last, as the slowest steps
# Writes to DIR three files (few, so that a machine handing back a handful of files returns
# them all): gpu-report.md (the verdict table, then each step's log tail), gpu-check.json (the
# steps and every benchmark's JSON) and gpu-check-logs.tar.gz (the full logs and JSON). Prints
# the verdict table last. Exit 0 when every step that ran passed.
# --dry-run (a machine without a GPU, as CI runs it): the same steps on cuda-emu, from the same
# bundle, with small sizes; the build step configures the bundle's CMake project and takes this
# checkout's cuda-emu addon (after checking the bundle's native sources are the checkout's);
# nvidia-smi, compute-sanitizer and PyTorch on CUDA are skipped.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out='' bundle="$repo/gpu-bundle" budget='' dry=0 work=''
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:-}; shift 2 ;;
    --bundle) bundle=$(cd "${2:-}" && pwd) || exit 2; shift 2 ;;
    --budget) budget=${2:-}; shift 2 ;;
    --work) work=${2:-}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    *) echo "gpu-check: unknown argument $1 (see the header of $0)"; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "gpu-check: --out DIR is required (the report goes there, not into the repository)"; exit 2; }
# 540 s leaves a minute of a 10-minute call for the machine's start and the transfers; cuda-emu
# on 2 busy cores is slower.
[ -n "$budget" ] || { [ $dry = 1 ] && budget=1200 || budget=540; }
[[ $budget =~ ^[0-9]+$ ]] || { echo "gpu-check: --budget takes seconds, got '$budget'"; exit 2; }
mkdir -p "$out" && out=$(cd "$out" && pwd)
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
  trap 'rm -rf "$work"' EXIT
else
  mkdir -p "$work" && work=$(cd "$work" && pwd)
fi
logs="$work/logs" results="$work/steps.tsv" data="$work/data"
mkdir -p "$logs" "$data"
: > "$results"
start=$SECONDS
device=cuda
[ $dry = 1 ] && device=cuda-emu
status=0
stopped=''
cores=$(nproc 2>/dev/null || echo 2)

left() { echo $((budget - (SECONDS - start))); }

# step <name> <timeout s> <command...>: runs it under `timeout` (capped by the budget left),
# logs to logs/<name>.log, records ok / FAILED / TIMEOUT / skipped.
step() {
  local name=$1 limit=$2; shift 2
  local remaining; remaining=$(left)
  if [ -n "$stopped" ]; then skip "$name" "$stopped"; return 1; fi
  if [ "$remaining" -lt 20 ]; then skip "$name" "the budget of $budget s ran out"; return 1; fi
  [ "$limit" -gt $((remaining - 10)) ] && limit=$((remaining - 10))
  echo "=== $name (timeout ${limit} s) ==="
  local t0=$SECONDS rc
  # (through bash, so that the exported functions below run too)
  timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@" > "$logs/$name.log" 2>&1
  rc=$?
  tail -n 30 "$logs/$name.log"
  local verdict=ok
  if [ $rc = 124 ] || [ $rc = 137 ]; then verdict="TIMEOUT after ${limit} s"; status=1
  elif [ $rc != 0 ]; then verdict="FAILED (exit $rc)"; status=1; fi
  printf '%s\t%s\t%s\t\n' "$name" "$verdict" $((SECONDS - t0)) >> "$results"
  echo "--- $name: $verdict in $((SECONDS - t0)) s"
  [ $rc = 0 ]
}

skip() { printf '%s\tskipped\t0\t%s\n' "$1" "$2" >> "$results"; echo "=== $1: skipped ($2) ==="; }

# --- unpack ---
unxz_to() {  # unxz_to <file.xz> <dest>: xz, or python3's lzma where xz is missing
  if command -v xz >/dev/null 2>&1; then xz -dc "$1" > "$2"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
unpack() {
  [ -f "$bundle/package.tar.xz" ] && [ -f "$bundle/node.xz" ] || { echo "no bundle at $bundle: run npm run gpu-bundle first"; return 1; }
  cat "$bundle/MANIFEST.json"; echo
  rm -rf "$work/bin" "$work/pkg" && mkdir -p "$work/bin" "$work/pkg"
  unxz_to "$bundle/node.xz" "$work/bin/node" && chmod +x "$work/bin/node" &&
    unxz_to "$bundle/package.tar.xz" "$work/package.tar" && tar -C "$work/pkg" -xf "$work/package.tar" &&
    rm -f "$work/package.tar" && "$work/bin/node" --version
}
pkg="$work/pkg"
export repo out work bundle pkg device cores logs data
export -f unxz_to unpack
step unpack 300 unpack || stopped='the bundle could not be unpacked'
export PATH="$work/bin:$PATH"
cd "$pkg" 2>/dev/null || cd "$work"

# --- device ---
cc=''
if [ $dry = 1 ]; then
  skip device 'dry run: no GPU (cuda-emu)'
elif command -v nvidia-smi >/dev/null 2>&1; then
  step device 30 nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
else
  skip device 'no nvidia-smi'
fi

# --- build ---
build_cuda() {
  local nvcc; nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  [ -x "$nvcc" ] || { echo "no nvcc on PATH or in /usr/local/cuda/bin"; return 1; }
  command -v cmake >/dev/null 2>&1 || { echo "no cmake on PATH"; return 1; }
  [ -n "$cc" ] || { echo "no compute capability from nvidia-smi"; return 1; }
  echo "nvcc: $("$nvcc" --version | tail -1); building for sm_$cc with $cores jobs"
  cmake -S "$pkg" -B "$work/cmake" -DFF_BUILD_EMU=OFF -DFF_BUILD_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$cc-real" &&
    cmake --build "$work/cmake" -j "$cores" --target fourierformer_cuda
}
build_dry() {
  # Compiling the emulator addon again would take 10-20 minutes on 2 cores: configure the
  # bundle's CMake project (what a GPU machine runs first), check that its native sources are
  # the checkout's, and take the checkout's cuda-emu addon, built from them.
  cmake -S "$pkg" -B "$work/cmake" -DFF_BUILD_EMU=ON -DFF_BUILD_CUDA=OFF || return 1
  local d
  for d in csrc cmake CMakeLists.txt; do
    diff -r -q "$repo/$d" "$pkg/$d" || { echo "the bundle's $d differs from the checkout's: npm run gpu-bundle again"; return 1; }
  done
  local emu="$repo/build-native/cuda-emu/fourierformer_cuda_emu.node"
  [ -f "$emu" ] || { echo "no $emu: npm run build:emu first"; return 1; }
  mkdir -p "$pkg/build-native/cuda-emu" && cp "$emu" "$pkg/build-native/cuda-emu/" &&
    echo "the bundle's sources are the checkout's; its cuda-emu addon taken from $emu"
}
export cc
export -f build_cuda build_dry
if [ $dry = 1 ]; then step build 300 build_dry; else step build 360 build_cuda; fi ||
  stopped=${stopped:-'the build failed'}

# --- backends ---
backends() {
  node -e "
    const ff = require('./lib');
    for (const b of ff.backends()) console.log(b.device, b.available ? 'available' : 'unavailable', '-', b.detail);
    const d = ff.backends().find((b) => b.device === '$device');
    if (!d || !d.available) { console.log('$device is not available: stopping'); process.exit(1); }"
}
export -f backends
step backends 60 backends || stopped=${stopped:-"$device is not available"}

# --- tests ---
tests() {
  FF_CHECK_DEVICE=$device node --test --test-concurrency=1 --test-reporter=spec "$@"
}
export -f tests
test_files=$(ls test/*.test.js 2>/dev/null | tr '\n' ' ')
# shellcheck disable=SC2086
CUDA_LAUNCH_BLOCKING=1 step tests $([ $dry = 1 ] && echo 600 || echo 240) tests $test_files

# --- host syncs, kernel times, training step, torch ---
torch_py=''
if [ $dry = 0 ]; then
  named=${FOURIERFORMER_TORCH_PYTHON:-}
  for py in ${named//:/ } python3; do
    command -v "$py" >/dev/null 2>&1 && "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null &&
      { torch_py=$(command -v "$py"); break; }
  done
fi
# scripts/bench.ts compares with the python in FOURIERFORMER_TORCH_PYTHON, else python3; the GPU
# check gives it the one with CUDA torch, or none (a bare name that is no program: it finds no
# peer and times ours only) rather than PyTorch on the host's CPU.
export FOURIERFORMER_TORCH_PYTHON=${torch_py:-no-torch-with-cuda}
if [ $dry = 1 ]; then
  # (generous timeouts: cuda-emu on 2 shared cores; the sync count does not depend on the batch)
  step syncs 300 node scripts/count-syncs.js --device $device --batch 1 --steps 1 --max 1 --out "$data/count-syncs.json"
  step kernels 300 node scripts/kernel-times.js --device $device --shapes quick --reps 2 --out "$data/kernel-times.json"
  step train 300 node scripts/bench.js --device $device --only train --rounds 1 --train-ms 1 --batch 1 --no-docs --out "$data/bench-train.json"
else
  step syncs 60 node scripts/count-syncs.js --device $device --batch 16 --steps 2 --max 1 --out "$data/count-syncs.json"
  step kernels 90 node scripts/kernel-times.js --device $device --shapes paper,long --reps 20 --out "$data/kernel-times.json"
  step train 120 node scripts/bench.js --device $device --only train --rounds 2 --no-docs --out "$data/bench-train.json"
fi
if [ $dry = 1 ]; then skip torch 'dry run: PyTorch on CUDA needs a GPU'
elif [ -n "$stopped" ]; then skip torch "$stopped"
elif [ -z "$torch_py" ]; then skip torch 'no python with CUDA torch'
else
  step torch 120 node scripts/bench.js --device $device --only attention --rounds 1 --no-docs --out "$data/bench-attention.json"
fi

# --- compute-sanitizer ---
sanitized='test/fourier-attention.test.js test/fourier-metric.test.js test/nn-ops-embedding.test.js'
cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
cs_skip=''
if [ $dry = 1 ]; then cs_skip='dry run: compute-sanitizer needs a GPU'
elif [ -n "$stopped" ]; then cs_skip=$stopped
elif [ -z "$cs" ]; then cs_skip='no compute-sanitizer'
elif [ "$(left)" -lt 90 ]; then cs_skip="the budget of $budget s ran out"
else
  # One op under memcheck first: some sandboxes refuse the tool ("Device not supported").
  timeout 60 "$cs" --tool memcheck node -e "
    const ff = require('./lib'); const t = ff.tensor([1, 2, 3], [3], { device: 'cuda' });
    console.log('probe:', t.mul(t).sum().item())" > "$logs/sanitizer-probe.log" 2>&1
  if grep -q -i -E 'not supported|unable to|error 999' "$logs/sanitizer-probe.log"; then
    cs_skip="compute-sanitizer cannot run here: $(grep -m1 -i -E 'not supported|unable to|error 999' "$logs/sanitizer-probe.log" | cut -c1-120)"
  fi
fi
for tool in memcheck racecheck synccheck; do
  if [ -n "$cs_skip" ]; then skip $tool "$cs_skip"
  else
    # shellcheck disable=SC2086
    step $tool 150 env FF_CHECK_DEVICE=$device FF_CUDA_NO_CACHING=1 "$cs" --tool $tool --target-processes all \
      --error-exitcode 1 node --test --test-concurrency=1 $sanitized
  fi
done

# --- report ---
elapsed=$((SECONDS - start))
commit=$(node -p "require('$bundle/MANIFEST.json').commit" 2>/dev/null || echo '?')
table() {
  echo '| step | result | seconds | note |'
  echo '|---|---|---|---|'
  while IFS=$'\t' read -r name verdict secs note; do echo "| $name | $verdict | $secs | $note |"; done < "$results"
}
{
  echo "# fourierformer gpu-check$([ $dry = 1 ] && echo ' (dry run on cuda-emu)')"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), bundle $commit, $elapsed s of a ${budget} s budget"
  echo
  table
  # the logs in the order the steps ran (the sanitizer probe before the sanitizers)
  for name in $(cut -f1 "$results" | sed 's/^memcheck$/sanitizer-probe memcheck/'); do
    [ -f "$logs/$name.log" ] || continue
    echo; echo "## $name"; echo; echo '```'; tail -n 60 "$logs/$name.log"; echo '```'
  done
} > "$out/gpu-report.md"
node -e "
  const fs = require('fs'), path = require('path');
  const steps = fs.readFileSync('$results', 'utf8').trim().split('\n').filter(Boolean).map((l) => {
    const [name, result, seconds, note] = l.split('\t');
    return { name, result, seconds: Number(seconds), note: note || undefined };
  });
  const results = {};
  for (const f of fs.readdirSync('$data')) results[path.basename(f, '.json')] = JSON.parse(fs.readFileSync(path.join('$data', f), 'utf8'));
  fs.writeFileSync('$out/gpu-check.json', JSON.stringify({ dry_run: $dry === 1, device: '$device', bundle: '$commit',
    budget_s: $budget, seconds: $elapsed, passed: $status === 0, steps, results }, null, 1));" 2>/dev/null ||
  echo "gpu-check: could not write gpu-check.json (no node)"
tar -C "$work" -czf "$out/gpu-check-logs.tar.gz" logs data steps.tsv
passed=$(grep -c $'\tok\t' "$results"); failed=$(grep -c -E $'\t(FAILED|TIMEOUT)' "$results"); skipped=$(grep -c $'\tskipped\t' "$results")
echo
table
echo
echo "gpu-check: $passed passed, $failed failed, $skipped skipped in $elapsed s; $out: gpu-report.md, gpu-check.json, gpu-check-logs.tar.gz"
exit $status
