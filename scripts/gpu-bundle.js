#!/usr/bin/env node
// npm run gpu-bundle: writes gpu-bundle/ (git-ignored, at most 64 MiB), all that a GPU machine
// with no package registry needs besides the working tree to run scripts/gpu-check.sh:
//   node.xz            this machine's node binary
//   package.tar.xz     the built package: lib/ and the kernel and op tests compiled to JavaScript
//                      (tsc), the check scripts (kernel-times, count-syncs, bench with
//                      scripts/bench/, and their PyTorch peers), the jest shim that runs the
//                      tests on node:test (scripts/gpu-checks/jest-shim.js), the cpu addon's npm
//                      prebuild (OpenBLAS linked in), the CUDA and binding sources with their
//                      CMake files (built there for the GPU found), and the production
//                      node_modules plus the Node-API headers the build needs
//   MANIFEST.json      the commit, node version, files, sizes and the bundled tests
// A current node.xz (same node version) is kept. Exits non-zero if the bundle exceeds 64 MiB.
//   npm run gpu-bundle [-- --out gpu-bundle]
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const outArg = process.argv.indexOf('--out');
const out = path.resolve(root, outArg > 0 ? process.argv[outArg + 1] : 'gpu-bundle');
const LIMIT = 64 * 2 ** 20;

// The tests that run on the GPU: kernels and ops against the float64 reference (they import only
// the library and test/helpers).
const TESTS = [
  'attention-causal-grids',
  'autograd',
  'device-checks',
  'dot-attention',
  'errors',
  'fourier-attention',
  'fourier-metric',
  'kernels-extreme',
  'nn-modules',
  'nn-ops-adaptive',
  'nn-ops-dropout',
  'nn-ops-embedding',
  'nn-ops-loss',
  'nn-ops-matmul',
  'nn-ops-norm',
  'optim',
  'tensor-ops-elementwise',
  'tensor-ops-layout',
  'tensor-ops-reduce',
];
const SCRIPTS = ['kernel-times', 'count-syncs', 'bench', 'torch-peer'];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: opts.capture ? 'pipe' : 'inherit',
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    ...opts,
  });
  if (r.status !== 0) {
    console.error(`gpu-bundle: ${cmd} ${args.join(' ')} failed (exit ${r.status})${r.stderr ? `:\n${r.stderr}` : ''}`);
    process.exit(1);
  }
  return r.stdout;
}

function copy(rel, stage) {
  fs.cpSync(path.join(root, rel), path.join(stage, rel), { recursive: true, dereference: true });
}

// Whether `file` is missing or older than any file under the given sources.
function olderThanSources(file, sources) {
  if (!fs.existsSync(file)) return true;
  const built = fs.statSync(file).mtimeMs;
  const newer = (p) =>
    fs.statSync(p).isDirectory()
      ? fs.readdirSync(p).some((f) => newer(path.join(p, f)))
      : fs.statSync(p).mtimeMs > built;
  return sources.some((s) => newer(path.join(root, s)));
}

function main() {
  const start = Date.now();
  fs.mkdirSync(out, { recursive: true });
  const stage = fs.mkdtempSync(path.join(out, '.stage-'));
  try {
    // 1. lib, tests and scripts as JavaScript (CommonJS), paths as in the repository
    const tsconfig = path.join(stage, 'tsconfig.json');
    fs.writeFileSync(
      tsconfig,
      JSON.stringify({
        extends: path.join(root, 'tsconfig.json'),
        compilerOptions: {
          rootDir: root,
          outDir: path.join(stage, 'pkg'),
          declaration: false,
          sourceMap: false,
          noEmit: false,
          types: ['node', 'jest'],
        },
        include: [
          path.join(root, 'lib/**/*.ts'),
          path.join(root, 'test/helpers/*.ts'),
          ...TESTS.map((t) => path.join(root, `test/${t}.test.ts`)),
          ...SCRIPTS.map((s) => path.join(root, `scripts/${s}.ts`)),
        ],
      }),
    );
    run('npx', ['tsc', '-p', tsconfig]);
    const pkg = path.join(stage, 'pkg');
    for (const t of TESTS) {
      const file = path.join(pkg, 'test', `${t}.test.js`);
      fs.writeFileSync(file, `require('../scripts/gpu-checks/jest-shim.js');\n${fs.readFileSync(file, 'utf8')}`);
    }
    // 2. sources to build the cuda addon there, the peers, the shim, package.json
    for (const rel of [
      'csrc',
      'cmake',
      'CMakeLists.txt',
      'binding.gyp',
      'package.json',
      'scripts/list-sources.js',
      'scripts/peer',
      'scripts/gpu-checks',
    ])
      copy(rel, pkg);
    // 3. the cpu addon's npm prebuild (static OpenBLAS): made when missing or stale
    const prebuild = path.join('prebuilds', 'linux-x64', 'fourierformer.glibc.node');
    if (olderThanSources(path.join(root, prebuild), ['csrc/cpu', 'csrc/common', 'csrc/binding', 'binding.gyp'])) {
      run(process.execPath, ['scripts/prebuild.js', 'cpu']);
    }
    copy(prebuild, pkg);
    // 4. production node_modules, and the headers the CMake build asks node for
    const prod = run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { capture: true })
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.includes(`${path.sep}node_modules${path.sep}`));
    const extra = ['node-api-headers', 'node-addon-api'].map((m) => path.join(root, 'node_modules', m));
    for (const dir of new Set([...prod, ...extra])) {
      const rel = path.relative(root, dir);
      if (fs.existsSync(dir) && !fs.existsSync(path.join(pkg, rel))) copy(rel, pkg);
    }
    // 5. archives
    const tarball = path.join(out, 'package.tar.xz');
    run('tar', ['-C', pkg, '-cf', `${tarball}.tmp`, '-I', 'xz -T2 -3', '.']);
    fs.renameSync(`${tarball}.tmp`, tarball);
    const nodeXz = path.join(out, 'node.xz');
    const manifestPath = path.join(out, 'MANIFEST.json');
    const old = fs.existsSync(manifestPath) ? JSON.parse(fs.readFileSync(manifestPath, 'utf8')) : {};
    if (!fs.existsSync(nodeXz) || old.node !== process.version) {
      run('bash', ['-c', `xz -T2 -2 -c "${process.execPath}" > "${nodeXz}.tmp" && mv "${nodeXz}.tmp" "${nodeXz}"`]);
    }
    const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
    const dirty =
      spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
        cwd: root,
        encoding: 'utf8',
      }).stdout.trim() !== '';
    const files = Object.fromEntries(
      ['node.xz', 'package.tar.xz'].map((f) => [f, fs.statSync(path.join(out, f)).size]),
    );
    const total = Object.values(files).reduce((a, b) => a + b, 0);
    const manifest = {
      commit: commit + (dirty ? '+changes' : ''),
      created: new Date().toISOString(),
      node: process.version,
      files,
      total_bytes: total,
      tests: TESTS,
      scripts: SCRIPTS,
    };
    fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 1));
    const mib = (b) => (b / 2 ** 20).toFixed(1);
    console.log(
      `gpu-bundle: ${out}: node.xz ${mib(files['node.xz'])} MiB, package.tar.xz ${mib(files['package.tar.xz'])} MiB, ` +
        `${mib(total)} MiB in all (limit 64), ${TESTS.length} test files, in ${Math.round((Date.now() - start) / 1000)} s`,
    );
    if (total > LIMIT) {
      console.error(`gpu-bundle: ${mib(total)} MiB is over the 64 MiB limit`);
      process.exit(1);
    }
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

main();
