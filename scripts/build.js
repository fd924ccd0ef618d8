#!/usr/bin/env node
// npm run build [-- step...]: builds everything this machine can, printing each step's outcome.
//   ts     the TypeScript library (tsc -> dist/)
//   cpu    the cpu addon (node-gyp -> build/Release/fourierformer_cpu.node)
//   cuda   the CUDA addon, where nvcc exists (cmake-js -> build-native/cuda/fourierformer_cuda.node)
//   emu    the cuda-emu addon (cmake-js -> build-native/cuda-emu/fourierformer_cuda_emu.node)
//   mpi    the MPI addon of distributed training, where MPI is installed (cmake-js ->
//          build-native/mpi/fourierformer_mpi.node; cmake/mpi.cmake)
// `npm run build:cuda` and `npm run build:emu` run one step. The CMake steps share the build
// directory build-native/cmake, driven by cmake-js (a devDependency): `cmake-js configure` with
// the options as --CD flags, then `cmake-js build --target <addon>`. cmake-js passes the Node-API
// headers (node-api-headers, node-addon-api: nothing is downloaded, package.json names
// binary.napi_versions) in CMAKE_JS_INC; CMakeLists.txt also configures under plain cmake. This
// script adds what cmake-js does not do: configure with CUDA where nvcc exists, without it when
// that fails; build only the addon a step names (not the emulator tests); load each built addon
// once in Node as a check; a summary of the steps. JOBS sets the parallel jobs (default 2);
// FF_CUDA_ARCHS narrows the CUDA architectures for a quicker build (e.g. FF_CUDA_ARCHS=90 on an
// H100; default: those of the npm prebuild, cmake/cuda.cmake, which `npm run prebuilds`
// copies). Exits non-zero if a step that could run failed; cuda without nvcc, and mpi without
// MPI (mpicc), are skipped.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const jobs = process.env.JOBS || '2';
const cmakeDir = path.join('build-native', 'cmake');
const ALL = ['ts', 'cpu', 'cuda', 'emu', 'mpi'];
const steps = process.argv.slice(2);
for (const s of steps) {
  if (!ALL.includes(s)) {
    console.error(`build: unknown step '${s}' (expected ${ALL.join(', ')})`);
    process.exit(2);
  }
}
const wanted = steps.length ? steps : ALL;

function run(cmd, args, opts = {}) {
  if (opts.echo !== false) console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: opts.quiet ? 'pipe' : 'inherit',
    encoding: 'utf8',
    env: process.env,
  });
  if (r.error) return { ok: false, why: r.error.message };
  return { ok: r.status === 0, why: `exit ${r.status}`, output: (r.stdout || '') + (r.stderr || '') };
}

function findNvcc() {
  const candidates = (process.env.PATH || '').split(path.delimiter).map((d) => path.join(d, 'nvcc'));
  if (process.env.CUDA_HOME) candidates.push(path.join(process.env.CUDA_HOME, 'bin', 'nvcc'));
  candidates.push('/usr/local/cuda/bin/nvcc');
  return candidates.find((p) => fs.existsSync(p));
}

// Loads an addon in a fresh Node process and prints its describe() line.
function checkLoads(file) {
  const script = `const a = require(${JSON.stringify(path.join(root, file))}); console.log(a.backend + ': ' + a.describe())`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, why: `built, but does not load: ${(r.stderr || '').trim().split('\n')[0]}` };
  console.log(`  loads: ${r.stdout.trim()}`);
  return { ok: true };
}

// cmake-js in build-native/cmake with Unix Makefiles (-m, as a plain `cmake -B` and the
// sanitizer scripts' builds get; a cached generator cannot change) and the parallel jobs.
// `configure` and `build` rather than `compile`: on a failed build `compile` wipes the
// directory and builds everything again, which fails the same way at twice the cost.
function cmakeJs(command, args, opts) {
  let bin;
  try {
    bin = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    return { ok: false, why: 'cmake-js is not installed (a devDependency): npm install' };
  }
  console.log(`$ cmake-js ${command} ${args.join(' ')}`);
  return run(process.execPath, [bin, command, '--out', cmakeDir, '--prefer-make', ...args], { ...opts, echo: false });
}

// build-native/cmake is configured with the CUDA addon on wherever nvcc exists; if that
// configure fails (no cuBLAS, say), the cuda step fails and the emu step configures without it.
let configured = null; // the FF_BUILD_CUDA value of the last successful configure
let cudaBroken = null; // why configuring with CUDA failed
function configure(cuda) {
  if (configured === cuda) return { ok: true };
  const args = [`--CDFF_BUILD_CUDA=${cuda ? 'ON' : 'OFF'}`];
  if (cuda) args.push(`--CDCMAKE_CUDA_COMPILER=${nvcc}`);
  if (cuda && process.env.FF_CUDA_ARCHS) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.FF_CUDA_ARCHS}`);
  // Without FF_CUDA_ARCHS, clear any narrower list an earlier run cached: cuda.cmake's default.
  // (A --CD flag cannot unset; what follows -- goes to cmake as it is.)
  if (cuda && !process.env.FF_CUDA_ARCHS) args.push('--', '-UCMAKE_CUDA_ARCHITECTURES');
  const r = cmakeJs('configure', args, { quiet: true });
  if (!r.ok) {
    const lines = (r.output || '')
      .split('\n')
      .filter((l) => /error|not found|not installed/i.test(l))
      .slice(0, 6);
    return { ok: false, why: `cmake-js configure failed:\n  ${lines.join('\n  ') || r.why}` };
  }
  configured = cuda;
  return { ok: true };
}

function cmakeAddon(target, file, cuda) {
  const c = configure(cuda);
  if (!c.ok) return c;
  const r = cmakeJs('build', ['--target', target, '--parallel', jobs]);
  return r.ok ? checkLoads(file) : r;
}

const nvcc = findNvcc();
const mpicc = (process.env.PATH || '')
  .split(path.delimiter)
  .map((d) => path.join(d, 'mpicc'))
  .find((p) => fs.existsSync(p));
const actions = {
  ts: () => run('npx', ['tsc', '-p', 'tsconfig.json']),
  cpu: () => {
    const r = run('npx', ['node-gyp', 'rebuild', `--jobs=${jobs}`]);
    return r.ok ? checkLoads('build/Release/fourierformer_cpu.node') : r;
  },
  cuda: () => {
    if (!nvcc) return { skipped: true, why: 'no nvcc on PATH, in CUDA_HOME or /usr/local/cuda' };
    const c = configure(true);
    if (!c.ok) {
      cudaBroken = c.why;
      return c;
    }
    return cmakeAddon('fourierformer_cuda', 'build-native/cuda/fourierformer_cuda.node', true);
  },
  emu: () => {
    let cuda = !!nvcc && !cudaBroken;
    if (cuda && !configure(true).ok) cuda = false;
    return cmakeAddon('fourierformer_cuda_emu', 'build-native/cuda-emu/fourierformer_cuda_emu.node', cuda);
  },
  mpi: () => {
    if (!mpicc) return { skipped: true, why: 'no MPI (mpicc) on PATH: apt-get install libopenmpi-dev openmpi-bin' };
    let cuda = !!nvcc && !cudaBroken;
    if (cuda && !configure(true).ok) cuda = false;
    return cmakeAddon('fourierformer_mpi', 'build-native/mpi/fourierformer_mpi.node', cuda);
  },
};

const results = [];
for (const step of wanted) {
  console.log(`\n=== build ${step} ===`);
  const start = Date.now();
  const r = actions[step]();
  results.push({ step, ...r, seconds: Math.round((Date.now() - start) / 1000) });
}

console.log('\n=== build summary ===');
let failed = false;
for (const r of results) {
  const outcome = r.skipped ? `skipped (${r.why})` : r.ok ? 'ok' : `FAILED (${r.why})`;
  console.log(`${r.step.padEnd(5)} ${outcome} [${r.seconds} s]`);
  if (!r.ok && !r.skipped) failed = true;
}
process.exit(failed ? 1 : 0);
