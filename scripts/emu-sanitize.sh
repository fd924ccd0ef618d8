#!/usr/bin/env bash
# The CUDA emulator's own tests (test/emu: the emulator, reduce.h, the cuda backend's memory and
# metric kernels against the cpu backend), built three ways, and proof that the sanitizer builds
# catch what they are for:
#   release  fiber mode                                      build-native/cmake (scripts/build.js's)
#   asan     fiber mode, AddressSanitizer + -fsanitize=bounds build-native/emu-asan
#   tsan     thread mode (an OS thread per CUDA thread), TSan build-native/emu-tsan
# Planted bugs (test/emu/planted_test.cpp), each expected to FAIL with the sanitizer's report:
#   asan: an overflow of a static __shared__ array in a template (caught by -fsanitize=bounds),
#         an overflow of dynamic shared memory (caught by ASan);
#   tsan: a missing __syncthreads between shared-memory writes and reads (a data race).
# Then, in the asan and tsan modes, the jest suite's kernels through the sanitized cuda-emu addon
# (scripts/sanitize-addon.sh: every csrc/cuda/*.cu file, with its own planted bugs).
# Exits non-zero if any test fails or any planted bug goes unnoticed.
#   bash scripts/emu-sanitize.sh [release|asan|tsan ...]     (default: all three)
# JOBS: parallel build jobs and jest workers (default 2). FF_BUILD_LOCK: a file to flock around
# builds (a machine shared by several people).
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(release asan tsan)
failures=()
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

with_lock() {
  if [ -n "${FF_BUILD_LOCK:-}" ]; then flock "$FF_BUILD_LOCK" "$@"; else "$@"; fi
}

# build <dir> <sanitizer>: configures (once) and builds the test binary.
build() {
  local dir=$1 sanitize=$2 start=$SECONDS
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    local extra=()
    [ "$sanitize" = none ] || extra=(-DFF_BUILD_CUDA=OFF)
    with_lock cmake -S . -B "$dir" -DFF_EMU_SANITIZE="$sanitize" "${extra[@]}" >"$log_dir/configure.log" 2>&1 ||
      { cat "$log_dir/configure.log"; return 1; }
  fi
  with_lock cmake --build "$dir" -j"$JOBS" --target ff_emu_tests >"$log_dir/build.log" 2>&1 ||
    { tail -50 "$log_dir/build.log"; return 1; }
  echo "built $dir/ff_emu_tests in $((SECONDS - start)) s"
}

# run_tests <mode> <binary>: the tests must all pass (and the sanitizer stay silent).
run_tests() {
  local mode=$1 bin=$2 start=$SECONDS
  if "$bin"; then
    echo "$mode: tests passed in $((SECONDS - start)) s"
  else
    failures+=("$mode: tests")
  fi
}

# expect_caught <mode> <binary> <test> <pattern>: the planted bug must fail with the report.
expect_caught() {
  local mode=$1 bin=$2 name=$3 pattern=$4 out="$log_dir/$3.log"
  "$bin" "$name" >"$out" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$pattern" "$out"; then
    echo "$mode: $name caught as expected: $(grep -m1 -- "$pattern" "$out" | sed 's/^[= 0-9]*//')"
  else
    echo "$mode: $name was NOT caught (exit $rc, no '$pattern' in the output):"
    tail -20 "$out"
    failures+=("$mode: $name not caught")
  fi
}

for mode in "${modes[@]}"; do
  echo "=== emulator tests: $mode ==="
  case $mode in
    release)
      build build-native/cmake none || { failures+=("release: build"); continue; }
      run_tests release build-native/cmake/ff_emu_tests
      ;;
    asan)
      build build-native/emu-asan address || { failures+=("asan: build"); continue; }
      export ASAN_OPTIONS=detect_stack_use_after_return=0:abort_on_error=0
      run_tests asan build-native/emu-asan/ff_emu_tests
      expect_caught asan build-native/emu-asan/ff_emu_tests planted_shared_oob "out of bounds for type 'float \[64\]'"
      expect_caught asan build-native/emu-asan/ff_emu_tests planted_dynamic_shared_oob "heap-buffer-overflow"
      unset ASAN_OPTIONS
      bash scripts/sanitize-addon.sh asan || failures+=("asan: the suite's kernels through the addon")
      ;;
    tsan)
      build build-native/emu-tsan thread || { failures+=("tsan: build"); continue; }
      run_tests tsan build-native/emu-tsan/ff_emu_tests
      expect_caught tsan build-native/emu-tsan/ff_emu_tests planted_missing_syncthreads "ThreadSanitizer: data race"
      bash scripts/sanitize-addon.sh tsan || failures+=("tsan: the suite's kernels through the addon")
      ;;
    *)
      echo "unknown mode $mode (release, asan or tsan)"
      failures+=("$mode: unknown")
      ;;
  esac
done

echo
if [ ${#failures[@]} -eq 0 ]; then
  echo "emu-sanitize: all passed (${modes[*]})"
else
  printf 'emu-sanitize: FAILED: %s\n' "${failures[@]}"
  exit 1
fi
