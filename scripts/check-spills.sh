#!/usr/bin/env bash
# ptxas's report for every CUDA kernel: compiles each csrc/cuda/*.cu for sm_80 and sm_90 with
# -Xptxas -v (the flags of the cuda addon's build) and prints one row per kernel and arch:
# registers, stack frame and spill bytes. Fails if any kernel spills. Needs nvcc, not a GPU.
#   bash scripts/check-spills.sh [file.cu ...]        JOBS=2 by default
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$NVCC" ] || { echo "check-spills: no nvcc (set NVCC)"; exit 1; }
JOBS=${JOBS:-2}

# cuBLAS headers: the toolkit's, else the nvidia-cublas wheel's (as cmake/cuda.cmake finds them).
includes=()
pip_include=$(python3 -c "import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], 'cu13', 'include'))" 2>/dev/null || true)
[ -n "$pip_include" ] && [ -d "$pip_include" ] && includes+=(-I"$pip_include")

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(csrc/cuda/*.cu)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

compile() {  # compile <file.cu> <log>: both architectures, ptxas verbose
  "$NVCC" -std=c++20 -O3 --expt-relaxed-constexpr "${includes[@]}" -Xptxas -v \
    -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
    -c "$1" -o /dev/null >"$2" 2>&1
}
status=0
pids=()
for f in "${files[@]}"; do
  log="$out/$(basename "$f").log"
  compile "$f" "$log" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
if [ $status -ne 0 ]; then
  for f in "${files[@]}"; do
    log="$out/$(basename "$f").log"
    grep -q -i "error" "$log" && { echo "== $f failed to compile:"; grep -i -A3 "error" "$log" | head -30; }
  done
  exit 1
fi

# ptxas prints, per kernel: "Compiling entry function 'NAME' for 'sm_XX'", then "N bytes stack
# frame, S bytes spill stores, L bytes spill loads", then "Used R registers".
demangle=$(command -v cu++filt || command -v c++filt || echo cat)
python3 - "$demangle" "$out" "${files[@]}" <<'PY'
import os, re, subprocess, sys
demangle, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
for f in files:
    name = arch = None
    for line in open(os.path.join(out, os.path.basename(f) + '.log')):
        m = re.search(r"Compiling entry function '([^']+)' for '(sm_\w+)'", line)
        if m:
            name, arch, frame = m.group(1), m.group(2), (0, 0, 0)
            continue
        m = re.search(r'(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads', line)
        if m and name:
            frame = tuple(int(x) for x in m.groups())
        m = re.search(r'Used (\d+) registers', line)
        if m and name:
            rows.append((os.path.basename(f), name, arch, int(m.group(1))) + frame)
            name = None
names = subprocess.run([demangle], input='\n'.join(r[1] for r in rows), capture_output=True, text=True).stdout.split('\n')
def short(n):
    n = re.sub(r'^void ', '', n.replace('(anonymous namespace)::', ''))
    n = re.sub(r'\bff::(cuda::|backend::)?(attention::)?', '', n)
    return n.split('(')[0]
print(f"{'file':22} {'kernel':64} {'arch':6} {'regs':>4} {'stack':>5} {'spill-st':>8} {'spill-ld':>8}")
spills = 0
for r, n in zip(rows, names):
    f, _, arch, regs, stack, st, ld = r
    print(f"{f:22} {short(n)[:64]:64} {arch:6} {regs:4} {stack:5} {st:8} {ld:8}")
    spills += (st > 0 or ld > 0)
if not rows:
    print('check-spills: ptxas reported no kernels'); sys.exit(1)
if spills:
    print(f'check-spills: {spills} kernel/arch pairs spill registers (spill-st / spill-ld above)'); sys.exit(1)
print(f'check-spills: {len(rows)} kernel/arch pairs, none spills (sm_80, sm_90)')
PY
