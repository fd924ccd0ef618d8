#!/usr/bin/env node
// npm run prebuilds [-- cpu | cuda | mpi | --check]: the linux-x64 prebuilt addons that `npm pack` puts
// in the tarball, so that `npm install` needs no compiler.
//   prebuilds/linux-x64/fourierformer.glibc.node      the cpu addon: prebuildify --napi --strip
//       --tag-libc (one file for every Node version), built in a copy of the sources under
//       build-native/prebuild-cpu so that build/Release is left alone, with OpenBLAS linked
//       statically (binding.gyp's ff_static_openblas). node-gyp-build finds it at install and
//       load time; where it does not load, the install script builds from source.
//   prebuilds/linux-x64/cuda/fourierformer_cuda.node  the cuda addon: the cmake-js build of
//       `npm run build:cuda` (architectures: cmake/cuda.cmake's default, which this requests by
//       clearing FF_CUDA_ARCHS; a current build is not compiled again), installed by
//       `cmake --install --component prebuild --strip` (cmake-js has no install step), which
//       drops the RUNPATH to this machine's cuBLAS (lib/cublas.ts finds cuBLAS at run time). In
//       its own folder, where node-gyp-build does not look: prebuildify's file name has no tags
//       that would rank it above a second .node file beside it.
//   prebuilds/linux-x64/mpi/fourierformer_mpi.node    the MPI addon of distributed training: the
//       cmake-js build of `npm run build -- mpi` against this machine's Open MPI, installed
//       stripped (`cmake --install`, component prebuild-mpi). It links libmpi.so.40, Open MPI's
//       ABI (4.x and 5.x); with another MPI (MPICH, Intel MPI) users build it from the package's
//       sources (lib/distributed/mpi.ts says how).
// The cuda-emu addon is not shipped (it needs this distribution's Boost.Context and is a test
// tool). --check (npm's prepack) only verifies that both prebuilds exist (else exit 1) and that
// no source is newer (else exit 2). Prints each file's size and the shared libraries it needs.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const outDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const cpuStaging = path.join(root, 'build-native', 'prebuild-cpu');
const cudaStaging = path.join(root, 'build-native', 'prebuild-cuda');
const cudaFile = path.join(outDir, 'cuda', 'fourierformer_cuda.node');
const mpiStaging = path.join(root, 'build-native', 'prebuild-mpi');
const mpiFile = path.join(outDir, 'mpi', 'fourierformer_mpi.node');

function run(cmd, args, opts = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args[0]} exited with ${r.status}`);
}

function output(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

function cpuPrebuilds() {
  return fs.existsSync(outDir) ? fs.readdirSync(outDir).filter((f) => f.endsWith('.node')) : [];
}

/** Size, needed libraries and the newest glibc / libstdc++ symbol versions of a binary. */
function describe(file) {
  const needed = [...output('readelf', ['-d', file]).matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map(
    (m) => m[1],
  );
  const runpath = /\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[(.+?)\]/.exec(output('readelf', ['-d', file]));
  const versions = output('objdump', ['-T', file]).match(/GLIBC(XX)?_[0-9.]+/g) || [];
  const byVersion = (a, b) => a.localeCompare(b, 'en', { numeric: true });
  const newest = (prefix) =>
    versions
      .filter((v) => v.startsWith(prefix + '_'))
      .sort(byVersion)
      .pop();
  console.log(`  ${path.relative(root, file)}: ${(fs.statSync(file).size / 2 ** 20).toFixed(1)} MiB`);
  console.log(
    `  needs: ${needed.join(' ')}; newest symbols: ${[newest('GLIBC'), newest('GLIBCXX')].filter(Boolean).join(' ')}`,
  );
  if (runpath) console.log(`  RUNPATH: ${runpath[1]}`);
  return { needed, runpath: runpath && runpath[1] };
}

/** Loads an addon in a fresh Node and prints its describe() line. */
function checkLoads(file, env = process.env) {
  const script = `const a = require(${JSON.stringify(file)}); console.log('  loads: ' + a.backend + ': ' + a.describe())`;
  run(process.execPath, ['-e', script], { env });
}

function cpu() {
  fs.rmSync(cpuStaging, { recursive: true, force: true });
  fs.mkdirSync(path.join(cpuStaging, 'scripts'), { recursive: true });
  for (const f of ['package.json', 'binding.gyp', 'scripts/list-sources.js', 'csrc']) {
    fs.cpSync(path.join(root, f), path.join(cpuStaging, f), { recursive: true });
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(cpuStaging, 'node_modules'));
  const env = { ...process.env, GYP_DEFINES: 'ff_static_openblas=1', npm_config_jobs: process.env.JOBS || '2' };
  // node-gyp takes the headers of the running Node from its install (no download).
  const nodePrefix = path.resolve(process.execPath, '../..');
  if (!env.npm_config_nodedir && fs.existsSync(path.join(nodePrefix, 'include/node/common.gypi')))
    env.npm_config_nodedir = nodePrefix;
  const prebuildify = path.join(root, 'node_modules/prebuildify/bin.js');
  run(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', '-t', process.versions.node], {
    cwd: cpuStaging,
    env,
  });
  const built = fs.readdirSync(path.join(cpuStaging, 'prebuilds', `${process.platform}-${process.arch}`));
  fs.mkdirSync(outDir, { recursive: true });
  for (const f of cpuPrebuilds()) fs.rmSync(path.join(outDir, f));
  for (const f of built)
    fs.copyFileSync(path.join(cpuStaging, 'prebuilds', `${process.platform}-${process.arch}`, f), path.join(outDir, f));
  for (const f of built) {
    const file = path.join(outDir, f);
    const { needed } = describe(file);
    if (needed.some((l) => /openblas/.test(l)))
      throw new Error(`${f} links libopenblas dynamically; expected it static`);
    checkLoads(file);
  }
}

function cuda() {
  const env = { ...process.env };
  delete env.FF_CUDA_ARCHS;
  run(process.execPath, ['scripts/build.js', 'cuda'], { env });
  if (!fs.existsSync(path.join(root, 'build-native/cuda/fourierformer_cuda.node'))) {
    throw new Error('no cuda addon was built (no nvcc?): the cuda prebuild needs the CUDA 13 toolkit');
  }
  fs.rmSync(cudaStaging, { recursive: true, force: true });
  run('cmake', ['--install', 'build-native/cmake', '--component', 'prebuild', '--prefix', cudaStaging, '--strip']);
  fs.mkdirSync(path.dirname(cudaFile), { recursive: true });
  fs.copyFileSync(path.join(cudaStaging, 'fourierformer_cuda.node'), cudaFile);
  const { runpath } = describe(cudaFile);
  if (runpath) throw new Error(`${cudaFile} has a RUNPATH (${runpath}); expected none`);
  const fatbin = path.join(root, 'dist/cuda-fatbin.js');
  if (fs.existsSync(fatbin)) {
    const { gpuCode, describeGpuCode } = require(fatbin);
    console.log(`  GPU code: ${describeGpuCode(gpuCode(cudaFile))}`);
  }
  // This machine's cuBLAS, as the local build found it (the prebuild itself has no RUNPATH).
  const cache = fs.readFileSync(path.join(root, 'build-native/cmake/CMakeCache.txt'), 'utf8');
  const cublas = /^FF_CUBLAS:FILEPATH=(.+)$/m.exec(cache);
  const ld = [cublas && path.dirname(cublas[1]), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  checkLoads(cudaFile, { ...process.env, LD_LIBRARY_PATH: ld });
}

function mpi() {
  run(process.execPath, ['scripts/build.js', 'mpi']);
  if (!fs.existsSync(path.join(root, 'build-native/mpi/fourierformer_mpi.node'))) {
    throw new Error(
      'no MPI addon was built (no MPI?): the mpi prebuild needs Open MPI (apt-get install libopenmpi-dev)',
    );
  }
  fs.rmSync(mpiStaging, { recursive: true, force: true });
  run('cmake', ['--install', 'build-native/cmake', '--component', 'prebuild-mpi', '--prefix', mpiStaging, '--strip']);
  fs.mkdirSync(path.dirname(mpiFile), { recursive: true });
  fs.copyFileSync(path.join(mpiStaging, 'fourierformer_mpi.node'), mpiFile);
  const { needed } = describe(mpiFile);
  if (!needed.includes('libmpi.so.40'))
    throw new Error(`${mpiFile} needs ${needed.join(' ')}; expected Open MPI's libmpi.so.40`);
  checkLoads(mpiFile);
}

function check() {
  const sources = (dirs) => dirs.flatMap((d) => fs.readdirSync(path.join(root, d)).map((f) => path.join(root, d, f)));
  const newest = (files) => Math.max(...files.map((f) => fs.statSync(f).mtimeMs));
  const cpuFiles = cpuPrebuilds().map((f) => path.join(outDir, f));
  const missing = [];
  if (!cpuFiles.length) missing.push(`the cpu prebuild (${path.relative(root, outDir)}/*.node)`);
  if (!fs.existsSync(cudaFile)) missing.push(`the cuda prebuild (${path.relative(root, cudaFile)})`);
  if (!fs.existsSync(mpiFile)) missing.push(`the mpi prebuild (${path.relative(root, mpiFile)})`);
  if (missing.length) {
    console.error(`prebuilds: missing ${missing.join(' and ')}; run npm run prebuilds`);
    process.exit(1);
  }
  const stale = [
    [cpuFiles, ['csrc/common', 'csrc/binding', 'csrc/cpu']],
    [[cudaFile], ['csrc/common', 'csrc/binding', 'csrc/cuda']],
    [[mpiFile], ['csrc/common', 'csrc/mpi']],
  ].filter(([files, dirs]) => newest(sources(dirs)) > Math.min(...files.map((f) => fs.statSync(f).mtimeMs)));
  for (const [files] of stale)
    console.error(
      `prebuilds: ${files.map((f) => path.relative(root, f)).join(' ')} is older than its sources; run npm run prebuilds`,
    );
  if (stale.length) process.exit(2);
  console.log(`prebuilds: ${[...cpuFiles, cudaFile, mpiFile].map((f) => path.relative(root, f)).join(', ')}`);
}

const args = process.argv.slice(2);
if (args.includes('--check')) {
  check();
} else {
  const steps = args.length ? args : ['cpu', 'cuda', 'mpi'];
  const actions = { cpu, cuda, mpi };
  for (const s of steps) {
    if (!actions[s]) {
      console.error(`prebuilds: unknown step '${s}' (expected cpu, cuda, mpi or --check)`);
      process.exit(2);
    }
  }
  try {
    for (const s of steps) {
      console.log(`\n=== prebuild ${s} ===`);
      actions[s]();
    }
  } catch (e) {
    console.error(`prebuilds: ${e.message}`);
    process.exit(1);
  }
}
