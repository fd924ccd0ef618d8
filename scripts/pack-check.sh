#!/usr/bin/env bash
# npm run pack-check: the npm tarball installs and works on a machine with no compiler.
#   1. makes the prebuilds if they are missing or older than their sources (npm run prebuilds;
#      the cuda one reuses a current CMake build), then `npm pack`: the tarball must hold both
#      prebuilds and stay under 100 MiB;
#   2. installs it into an empty folder with a PATH holding node, npm, npx, a shell, python3 (to
#      find the nvidia-cublas wheel, as a user's would) and coreutils, but no g++, gcc, cc, c++,
#      make, cmake or nvcc, in a clean environment: a source build would fail, so the install
#      must have used the prebuilds;
#   3. checks there: the cpu addon loads from the prebuild and fourierAttention (forward and
#      backward) matches the package's float64 reference (ff.reference); the cuda addon loads
#      from its prebuild and, with no GPU, says so (with a GPU it must match the reference too);
#      a missing cuBLAS gives the error naming it; the ES module entry has the same exports; the
#      MPI addon loads from its prebuild and two ranks under mpirun reduce a tensor through it;
#      `npx fourierformer info` describes the addons.
# Exits non-zero on any failure. KEEP=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

section() { echo; echo "=== pack-check: $* ==="; }
fail() { echo "pack-check: FAILED: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ff-pack-check.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then echo "pack-check: keeping $work"; else trap 'rm -rf "$work"' EXIT; fi

section "prebuilds"
if ! node scripts/prebuild.js --check; then
  npm run prebuilds
  node scripts/prebuild.js --check
fi

section "npm pack"
npm pack --loglevel warn --pack-destination "$work" | tee "$work/pack.log"
tarball="$work/$(tail -n 1 "$work/pack.log")"
[ -f "$tarball" ] || fail "npm pack made no $tarball"
tar -tvzf "$tarball" >"$work/contents.txt"
node - "$tarball" "$work/contents.txt" <<'EOF'
const fs = require('fs');
const [tarball, listing] = process.argv.slice(2);
// tar -tv lines: mode owner/group size date time path
const files = fs.readFileSync(listing, 'utf8').trim().split('\n').map((l) => {
  const f = l.trim().split(/\s+/);
  return { size: Number(f[2]), path: f.slice(5).join(' ').replace(/^package\//, '') };
});
const mib = (n) => (n / 2 ** 20).toFixed(1) + ' MiB';
const packed = fs.statSync(tarball).size;
const byTop = {};
for (const f of files) {
  const top = f.path.split('/').slice(0, f.path.startsWith('prebuilds/') ? 3 : 1).join('/');
  byTop[top] = (byTop[top] || 0) + f.size;
}
console.log(`${tarball}: ${mib(packed)} packed, ${mib(files.reduce((a, f) => a + f.size, 0))} unpacked, ${files.length} files`);
for (const [top, size] of Object.entries(byTop).sort()) console.log(`  ${top.padEnd(40)} ${mib(size)}`);
const paths = files.map((f) => f.path);
const problems = [];
if (packed >= 100 * 2 ** 20) problems.push(`the tarball is ${mib(packed)}, over 100 MiB`);
const need = [/^prebuilds\/linux-x64\/[^/]+\.node$/, /^prebuilds\/linux-x64\/cuda\/fourierformer_cuda\.node$/,
  /^prebuilds\/linux-x64\/mpi\/fourierformer_mpi\.node$/,
  /^dist\/index\.js$/, /^dist\/index\.d\.ts$/, /^esm\/index\.mjs$/, /^bin\/fourierformer\.js$/, /^binding\.gyp$/,
  /^scripts\/list-sources\.js$/, /^csrc\/cpu\//, /^CMakeLists\.txt$/];
for (const re of need) if (!paths.some((p) => re.test(p))) problems.push(`no file matches ${re}`);
for (const p of paths) if (/^(build|build-native|test|node_modules)\/|fourierformer_cuda_emu/.test(p)) problems.push(`should not ship ${p}`);
if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
EOF

section "a PATH with no compiler"
bin="$work/bin"
mkdir -p "$bin"
for tool in node npm npx sh bash env cat ls mkdir rm cp mv ln chmod readlink realpath dirname basename \
            uname grep sed tar gzip head tail sort wc tr cut mktemp touch true false; do
  p=$(command -v "$tool" || true)
  [ -n "$p" ] && ln -s "$(readlink -f "$p")" "$bin/$tool"
done
# The interpreter itself, not a version manager's shim.
python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
[ -n "$python" ] && ln -s "$python" "$bin/python3"
for tool in g++ gcc cc c++ make cmake nvcc; do
  if PATH="$bin" command -v "$tool" >/dev/null 2>&1; then fail "$tool is still on the test PATH"; fi
done
echo "PATH=$bin: $(ls "$bin" | tr '\n' ' ')"
# A clean environment: no npm_config_* of an outer npm run, no LD_LIBRARY_PATH, no FOURIERFORMER_*.
clean_env=(env -i "HOME=$HOME" "PATH=$bin" "TMPDIR=${TMPDIR:-/tmp}")
for v in npm_config_cache http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; do
  [ -n "${!v:-}" ] && clean_env+=("$v=${!v}")
done

section "npm install (no compiler)"
app="$work/app"
mkdir -p "$app"
echo '{ "name": "ff-pack-check", "version": "1.0.0", "private": true }' >"$app/package.json"
(cd "$app" && "${clean_env[@]}" npm install --no-audit --no-fund --prefer-offline "$tarball")
pkg="$app/node_modules/fourierformer"
[ -e "$pkg/build" ] && fail "the install built the cpu addon from source ($pkg/build exists)"

section "the installed package"
cat >"$app/check.js" <<'EOF'
const path = require('path');
const ff = require('fourierformer');
const pkg = path.dirname(require.resolve('fourierformer/package.json'));
const prebuilds = path.join(pkg, 'prebuilds', 'linux-x64');
const failures = [];
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures.push(what); };

const info = Object.fromEntries(ff.backends().map((b) => [b.device, b]));
check(info.cpu.available && path.dirname(info.cpu.addon || '') === prebuilds, `cpu: loads from the prebuild (${info.cpu.addon})`);
check(path.dirname(info.cuda.addon || '') === path.join(prebuilds, 'cuda'), `cuda: loads from the prebuild (${info.cuda.addon || info.cuda.detail})`);

/** fourierAttention forward and backward on a device against ff.reference, causal and not. */
function attentionMatches(device) {
  const { uniform, relErr, refArray } = ff.reference;
  const [B, H, N, D, Dv] = [2, 2, 12, 8, 8];
  const x = { q: uniform(B * H * N * D, -0.8, 0.8, 1), k: uniform(B * H * N * D, -0.8, 0.8, 2),
    v: uniform(B * H * N * Dv, -1, 1, 3), R: uniform(H, 1.5, 2.5, 4), dout: uniform(B * H * N * Dv, -1, 1, 5) };
  for (const causal of [false, true]) {
    const err = ff.tidy(() => {
      const t = { q: ff.tensor(x.q, [B, H, N, D], { device, requiresGrad: true }), k: ff.tensor(x.k, [B, H, N, D], { device, requiresGrad: true }),
        v: ff.tensor(x.v, [B, H, N, Dv], { device, requiresGrad: true }), R: ff.tensor(x.R, [H, 1], { device, requiresGrad: true }) };
      const h = ff.fourierAttention(t.q, t.k, t.v, t.R, { causal });
      h.backward(ff.tensor(x.dout, [B, H, N, Dv], { device }));
      const r = [refArray(x.q, [B, H, N, D]), refArray(x.k, [B, H, N, D]), refArray(x.v, [B, H, N, Dv]), refArray(x.R, [H, 1])];
      const g = ff.reference.fourierAttentionGradRef(...r, refArray(x.dout, [B, H, N, Dv]), { causal });
      return Math.max(relErr(h.toFloat32Array(), ff.reference.fourierAttentionRef(...r, { causal }).data),
        relErr(t.q.grad.toFloat32Array(), g.dq.data), relErr(t.k.grad.toFloat32Array(), g.dk.data),
        relErr(t.v.grad.toFloat32Array(), g.dv.data), relErr(t.R.grad.toFloat32Array(), g.dR.data));
    });
    check(err < 1e-4, `${device}: fourierAttention (causal ${causal}) out, dq, dk, dv, dR vs ff.reference: rel err ${err.toExponential(2)}`);
  }
}
attentionMatches('cpu');
if (info.cuda.available) {
  attentionMatches('cuda');
} else {
  check(/no CUDA device|driver/i.test(info.cuda.detail), `cuda: says no GPU is usable: ${info.cuda.detail}`);
  let message = '';
  try { ff.zeros([2], { device: 'cuda' }); } catch (e) { message = e.message; }
  check(/^device 'cuda' is not available: /.test(message), `cuda: a tensor on it throws: ${message}`);
}
if (failures.length) process.exit(1);
EOF
(cd "$app" && "${clean_env[@]}" node check.js)

echo
cat >"$app/check-cublas.js" <<'EOF'
const cuda = require('fourierformer').backends().find((b) => b.device === 'cuda');
const ok = /the CUDA addon needs cuBLAS 13: install a CUDA 13 toolkit or the nvidia-cublas wheel \(pip install nvidia-cublas\)/.test(cuda.detail) &&
  /libcublas\.so\.13/.test(cuda.detail);
console.log(`${ok ? 'ok  ' : 'FAIL'} cuda without cuBLAS: ${cuda.detail.split('\n')[0]}`);
process.exit(ok ? 0 : 1);
EOF
if /sbin/ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.13 '; then
  echo "skip: libcublas.so.13 is in the dynamic linker's cache, so it cannot be missing here"
else
  mkdir -p "$work/no-cublas"
  (cd "$app" && "${clean_env[@]}" FOURIERFORMER_CUBLAS_DIR="$work/no-cublas" node check-cublas.js)
fi

cat >"$app/check-esm.mjs" <<'EOF'
import * as named from 'fourierformer';
import ff from 'fourierformer';
import { createRequire } from 'module';
const cjs = createRequire(import.meta.url)('fourierformer');
const missing = Object.keys(cjs).filter((k) => !(k in named));
const ok = ff === cjs && missing.length === 0 && typeof named.fourierAttention === 'function';
console.log(`${ok ? 'ok  ' : 'FAIL'} ESM: import gives the ${Object.keys(cjs).length} CommonJS exports${missing.length ? `; missing: ${missing.join(', ')}` : ''}`);
process.exit(ok ? 0 : 1);
EOF
(cd "$app" && "${clean_env[@]}" node check-esm.mjs)

cat >"$app/check-mpi.js" <<'EOF'
const ff = require('fourierformer');
const { rank, worldSize, library } = ff.distributed.init({ device: 'cpu' });
const t = ff.distributed.allReduce(ff.tensor([rank + 1], [1]), 'sum');
if (rank === 0) {
  const ok = worldSize === 2 && t.toFloat32Array()[0] === 3;
  console.log(`${ok ? 'ok  ' : 'FAIL'} mpi: ${worldSize} ranks under mpirun reduce a tensor (${library})`);
  process.exitCode = ok ? 0 : 1;
}
EOF
mpirun_path=$(command -v mpirun || true)
if [ -n "$mpirun_path" ]; then
  # The test PATH has no ssh, and Open MPI's default launcher (plm rsh) wants an ssh or rsh
  # agent even for local ranks; the isolated launcher starts them on this host only.
  (cd "$app" && "${clean_env[@]}" OMPI_MCA_plm=isolated "$mpirun_path" --allow-run-as-root --oversubscribe -np 2 node check-mpi.js)
else
  echo "skip: no mpirun here (bash scripts/setup.sh installs Open MPI)"
fi

section "npx fourierformer info"
(cd "$app" && "${clean_env[@]}" npx --no-install fourierformer info) | tee "$work/info.txt"
(cd "$app" && "${clean_env[@]}" npx --no-install fourierformer info --json) >"$work/info.json"
node - "$work/info.json" "$pkg" <<'EOF'
const info = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const pre = require('path').join(process.argv[3], 'prebuilds', 'linux-x64');
const d = Object.fromEntries(info.devices.map((x) => [x.device, x]));
const problems = [];
if (!d.cpu.available || !d.cpu.addon.startsWith(pre + '/')) problems.push('cpu: not available from the prebuild');
if (!d.cuda.addon || !d.cuda.addon.startsWith(pre + '/cuda/')) problems.push('cuda: not loaded from the prebuild');
const code = d.cuda.gpuCode || { sass: [], ptx: [] };
for (const sm of [75, 80, 86, 89, 90]) if (!code.sass.includes(sm)) problems.push(`cuda: no sm_${sm} code`);
if (!code.ptx.length) problems.push('cuda: no PTX');
if (!d.cuda.cublas) problems.push('cuda: no cuBLAS loaded');
if (!info.distributed.available || !String(info.distributed.addon).startsWith(pre + '/mpi/')) problems.push(`mpi: not available from the prebuild: ${info.distributed.detail}`);
if (problems.length) { console.error('FAIL ' + problems.join('\nFAIL ')); process.exit(1); }
console.log(`\nok   info: cpu, cuda and mpi from the prebuilds (${info.distributed.detail}); cuda has ${code.sass.map((a) => 'sm_' + a).join(' ')} + PTX ${code.ptx.join(' ')}; cuBLAS ${d.cuda.cublas}`);
EOF

section "passed"
echo "pack-check: $(basename "$tarball") installs without a compiler and works"
