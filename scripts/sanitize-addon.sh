#!/usr/bin/env bash
# Every CUDA kernel of csrc/cuda/*.cu under the sanitizers, with no C++ test per op: the cuda-emu
# addon itself is built with each sanitizer and the jest suite's cuda-emu project runs against it
# (lib/native.ts loads the addon from FOURIERFORMER_ADDON_DIR), in a node with the sanitizer's
# runtime preloaded (LD_PRELOAD; node and V8 are not instrumented, the addon is):
#   asan  build-native/cuda-emu-asan: ASan + -fsanitize=bounds, fiber mode. The kernel test files
#         of TSAN_KERNEL_TESTS plus ASAN_EXTRA_FILES below, every test in them.
#   tsan  build-native/cuda-emu-tsan: TSan, thread mode (one OS thread per CUDA thread, ~10-50x
#         slower than fibers): the test files of TSAN_KERNEL_TESTS below, which name one for
#         every .cu file, less the slow tests of TSAN_SKIPPED_TESTS.
# First, in each mode, the addon's plantedBug(name) (test/sanitize) is called through
# lib/native.ts in the same node setup, and the sanitizer's report is required: proof that a
# kernel bug reached through node is reported and fails the stage. Then the suite: a failed test
# or any sanitizer report fails it.
# Runtime options, and why (no suppressions; every report from our code counts):
#   ASan detect_leaks=0: node does not free its heap at exit.
#   TSan ignore_noninstrumented_modules=1: calls into the TSan runtime made by node itself (V8's
#        platform threads freeing their jobs under locks TSan cannot see) are not checked, as
#        node's own memory accesses are not; every access and sync of the addon still is.
# On 2 shared cores: about 1 minute for asan and 4-5 for tsan, plus ~1 minute to build each addon.
#   bash scripts/sanitize-addon.sh [asan|tsan ...]     (default: both)
# JOBS: parallel build jobs and jest workers (default 2). FF_BUILD_LOCK: a file to flock around
# builds (a machine shared by several people).
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(asan tsan)
failures=()
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

# ASan runs the kernel test files (TSAN_KERNEL_TESTS) and these, which drive the same kernels
# through the autograd, modules, argument checks and the adaptive softmax, and at extreme inputs
# (the attentions' slow paths of tiny sinc products, D and Dv up to 256), and the attentions'
# causal grids with their row blocks paired (csrc/cuda/attention_blocks.h; child processes, which
# inherit the sanitizer), the fused decoding step (csrc/binding/decode_step.cpp: cache rows
# written and read in place). Training loops, data and CLI tests reach no kernel the op tests do
# not, and take minutes under the emulator.
ASAN_EXTRA_FILES=(test/autograd.test.ts test/errors.test.ts test/nn-modules.test.ts test/nn-ops-adaptive.test.ts
  test/kernels-extreme.test.ts test/attention-causal-grids.test.ts test/generate-fused.test.ts)

# TSan: the test file that runs each .cu file's kernels (one file may serve several .cu files),
# blocks with several warps included. A .cu file missing here fails the stage: name a test file
# that reaches its kernels, and keep the stage's time in mind (scripts/sanitize-addon.sh tsan).
declare -A TSAN_KERNEL_TESTS=(
  [memory.cu]=test/tensor-ops-elementwise.test.ts
  [elementwise.cu]=test/tensor-ops-elementwise.test.ts
  [binary.cu]=test/tensor-ops-elementwise.test.ts
  [unary.cu]=test/tensor-ops-elementwise.test.ts
  [reduce.cu]=test/tensor-ops-reduce.test.ts
  [layout.cu]=test/tensor-ops-layout.test.ts
  [blas.cu]=test/nn-ops-matmul.test.ts
  [matmul.cu]=test/nn-ops-matmul.test.ts
  [linear.cu]=test/nn-ops-matmul.test.ts
  [layernorm.cu]=test/nn-ops-norm.test.ts
  [softmax.cu]=test/nn-ops-norm.test.ts
  [cross_entropy.cu]=test/nn-ops-loss.test.ts
  [embedding.cu]=test/nn-ops-embedding.test.ts
  [dropout.cu]=test/nn-ops-dropout.test.ts
  [adamw.cu]=test/optim.test.ts
  [sgd.cu]=test/optim.test.ts
  [grad_norm.cu]=test/optim.test.ts
  [fourier_metric.cu]=test/fourier-metric.test.ts
  [fourier_attention.cu]=test/fourier-attention.test.ts
  [dot_attention.cu]=test/dot-attention.test.ts
  [favor_attention.cu]=test/performer-attention.test.ts
  # no kernel: the thread count; the file runs ops from worker threads at the same time (the
  # binding's per-environment state, the emulator's runtime and launch lock, between JS threads)
  [host_threads.cu]=test/workers.test.ts
  [neural_attention.cu]=test/neural-attention.test.ts
  # device-side argument checks (the flag kernels and their read-back)
  [checks.cu]=test/device-checks.test.ts
)
# .cu files with no kernel and nothing a one-process test reaches: the NCCL collectives' host code
# (comm.cu) and its loader (nccl.cu). On cuda-emu they run over MPI between processes, which the
# jest suite checks under `mpirun -np 2` (test/distributed.test.ts), not under the sanitizers.
TSAN_NO_KERNEL_FILES=(comm.cu nccl.cu)
# Tests of those files that TSan skips for time (regex fragments of test names). Each still runs
# under ASan; what it would add under TSan, which sees races inside a block only (thread mode
# runs one block at a time), is noted:
TSAN_SKIPPED_TESTS=(
  # ~40 s: one long launch on one thread while the worker is terminated; and the order in which
  # fresh processes load the addons: no two threads run ops at once in either
  'terminated during a long op|devices are its own'
  # ~2 min: 2048 keys; the same kernels and block shapes as the file's shorter sequences
  'a sequence of 2048'
  # ~2 min (2 x 2100 blocks): the only test of bitonic_step_kernel, the sort's cross-tile steps,
  # which use no shared memory or barrier (a thread compare-exchanges one pair in global memory)
  'the gradient sums repeated ids in order'
  # large elementwise kernels and copies: no shared memory or barrier
  'large tensors \(threads, vector tails\)|slice \[300,250\]|a large concat'
  # Adam and the momentum variants of SGD: the kernels that AdamW and plain SGD run
  'Adam matches|"momentum":0\.[1-9]'
  # powers 1-3: power is a kernel argument; power 4 runs every R shape
  'reference: R .*, power [123]$'
)

with_lock() {
  if [ -n "${FF_BUILD_LOCK:-}" ]; then flock "$FF_BUILD_LOCK" "$@"; else "$@"; fi
}

# build <dir> <sanitizer>: configures (once) and builds the sanitized addon.
build() {
  local dir=$1 sanitize=$2 start=$SECONDS
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    with_lock cmake -S . -B "$dir" -DFF_EMU_SANITIZE="$sanitize" -DFF_BUILD_CUDA=OFF >"$log_dir/configure.log" 2>&1 ||
      { cat "$log_dir/configure.log"; return 1; }
  fi
  with_lock cmake --build "$dir" -j"$JOBS" --target fourierformer_cuda_emu >"$log_dir/build.log" 2>&1 ||
    { tail -50 "$log_dir/build.log"; return 1; }
  echo "built the $sanitize addon in $((SECONDS - start)) s"
}

# sanitized <mode> <report dir> <command...>: runs the command (node) as the suite runs: the
# sanitizer preloaded, its reports written to files in <report dir>, the addon of <mode>.
sanitized() {
  local mode=$1 reports=$2
  shift 2
  mkdir -p "$reports"
  case $mode in
    asan)
      env LD_PRELOAD="$(g++ -print-file-name=libasan.so)" \
        ASAN_OPTIONS="detect_leaks=0:detect_stack_use_after_return=0:log_path=$reports/asan" \
        UBSAN_OPTIONS="print_stacktrace=1" \
        FOURIERFORMER_ADDON_DIR="$PWD/build-native/cuda-emu-asan" "$@"
      ;;
    tsan)
      env LD_PRELOAD="$(g++ -print-file-name=libtsan.so)" \
        TSAN_OPTIONS="ignore_noninstrumented_modules=1:log_path=$reports/tsan" \
        FOURIERFORMER_ADDON_DIR="$PWD/build-native/cuda-emu-tsan" "$@"
      ;;
  esac
}

# The sanitizer reports of a run: its output (UBSan writes there) and its report files.
REPORT_PATTERN='ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|ERROR: ThreadSanitizer'
collect_reports() {
  local out=$1 reports=$2
  cat "$reports"/* 2>/dev/null >>"$out"
  grep -Eq "$REPORT_PATTERN" "$out"
}

# expect_caught <mode> <planted bug> <pattern>: plantedBug(name), called through lib/native.ts,
# must fail with the sanitizer's report.
expect_caught() {
  local mode=$1 name=$2 pattern=$3 out="$log_dir/$mode-$2.log" reports="$log_dir/$mode-$2"
  sanitized "$mode" "$reports" node -r ts-node/register/transpile-only \
    -e "require('./lib/native').loadAddon('cuda-emu').plantedBug('$name')" >"$out" 2>&1
  local rc=$?
  collect_reports "$out" "$reports"
  if [ $rc -ne 0 ] && grep -q -- "$pattern" "$out"; then
    echo "$mode: planted $name caught through node: $(grep -m1 -- "$pattern" "$out" | sed 's/^[= 0-9]*//')"
  else
    echo "$mode: planted $name was NOT caught (exit $rc, no '$pattern' in the output):"
    tail -20 "$out"
    failures+=("$mode: planted $name not caught")
  fi
}

# run_suite <mode> <jest arguments...>: the cuda-emu project of jest on the sanitized addon.
run_suite() {
  local mode=$1 start=$SECONDS out="$log_dir/$mode-jest.log" reports="$log_dir/$mode-jest"
  shift
  sanitized "$mode" "$reports" env FOURIERFORMER_TEST_DEVICES=cuda-emu \
    node node_modules/jest/bin/jest.js --ci --maxWorkers="$JOBS" "$@" >"$out" 2>&1
  local rc=$?
  grep -E '^(PASS|FAIL) |^Tests:' "$out"
  if collect_reports "$out" "$reports"; then
    echo "$mode: sanitizer reports during the suite (count, summary; then the first in full):"
    grep -E 'SUMMARY: |runtime error:' "$out" | sort | uniq -c | sort -rn | head -20
    grep -m1 -E -A60 "$REPORT_PATTERN" "$out"
    failures+=("$mode: sanitizer reports")
  fi
  if [ $rc -ne 0 ]; then
    grep -E -B2 -A25 '●.*›' "$out" | head -80
    failures+=("$mode: jest failed (exit $rc)")
  fi
  echo "$mode: the suite took $((SECONDS - start)) s"
}

# The TSan test files: one per .cu file, every .cu file named.
tsan_tests() {
  local cu name missing=0
  for cu in csrc/cuda/*.cu; do
    name=$(basename "$cu")
    [[ " ${TSAN_NO_KERNEL_FILES[*]} " == *" $name "* ]] && continue
    if [ -z "${TSAN_KERNEL_TESTS[$name]:-}" ]; then
      echo "tsan: $cu has no test file in TSAN_KERNEL_TESTS (scripts/sanitize-addon.sh)" >&2
      missing=1
    fi
  done
  printf '%s\n' "${TSAN_KERNEL_TESTS[@]}" | sort -u
  return $missing
}

for mode in "${modes[@]}"; do
  echo "=== cuda-emu addon under $mode ==="
  case $mode in
    asan)
      build build-native/emu-asan address || { failures+=("asan: build"); continue; }
      expect_caught asan heap_overflow "AddressSanitizer: use-after-poison"
      expect_caught asan shared_oob "out of bounds for type 'float \[64\]'"
      # shellcheck disable=SC2046
      run_suite asan --runTestsByPath $(printf '%s\n' "${TSAN_KERNEL_TESTS[@]}" "${ASAN_EXTRA_FILES[@]}" | sort -u)
      ;;
    tsan)
      tests=$(tsan_tests) || failures+=("tsan: a .cu file without a test file")
      build build-native/emu-tsan thread || { failures+=("tsan: build"); continue; }
      expect_caught tsan missing_syncthreads "ThreadSanitizer: data race"
      skipped=$(IFS='|'; echo "${TSAN_SKIPPED_TESTS[*]}")
      # shellcheck disable=SC2086
      run_suite tsan -t "^(?!.*($skipped))" --runTestsByPath $tests
      ;;
    *)
      echo "unknown mode $mode (asan or tsan)"
      failures+=("$mode: unknown")
      ;;
  esac
done

echo
if [ ${#failures[@]} -eq 0 ]; then
  echo "sanitize-addon: all passed (${modes[*]})"
else
  printf 'sanitize-addon: FAILED: %s\n' "${failures[@]}"
  exit 1
fi
