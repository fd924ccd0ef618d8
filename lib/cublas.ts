// Loads the cuda addon, finding cuBLAS for it. The addon links libcublas.so.<major> by name; a
// local build carries its cuBLAS folder as RUNPATH, the npm prebuild carries none. Where the
// dynamic linker cannot find the library, this looks in the usual places
// (FOURIERFORMER_CUBLAS_DIR, CUDA_HOME and the CUDA toolkits under /usr/local, the nvidia-cublas
// wheel of python3) and loads it first, kept resident (RTLD_NODELETE), so that the addon's
// dependency resolves by its soname. Otherwise the error says what is missing and how to
// install it.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const MISSING_CUBLAS = /(libcublas(?:Lt)?\.so\.(\d+)): cannot open shared object file/;
/** glibc's and musl's value; os.constants.dlopen does not list it. */
const RTLD_NODELETE = 0x1000;

/** The folders that may hold the CUDA libraries of a major version, most specific first. */
function searchDirs(major: string): string[] {
  if (process.env.FOURIERFORMER_CUBLAS_DIR) return [process.env.FOURIERFORMER_CUBLAS_DIR];
  const roots: string[] = [];
  for (const v of ['CUDA_HOME', 'CUDA_PATH', 'CUDA_ROOT']) if (process.env[v]) roots.push(process.env[v] as string);
  const local = fs.existsSync('/usr/local') ? fs.readdirSync('/usr/local') : [];
  const versioned = local
    .filter((d) => new RegExp(`^cuda-${major}(\\.\\d+)*$`).test(d))
    .sort()
    .reverse();
  roots.push(...versioned.map((d) => `/usr/local/${d}`), '/usr/local/cuda');
  const dirs = roots.flatMap((r) => [`${r}/lib64`, `${r}/targets/x86_64-linux/lib`]);
  for (const site of pythonSitePackages()) {
    dirs.push(path.join(site, 'nvidia', `cu${major}`, 'lib'), path.join(site, 'nvidia', 'cublas', 'lib'));
  }
  return [...new Set(dirs)];
}

/** The site-packages folders of python3 on PATH (where `pip install nvidia-cublas` puts cuBLAS). */
export function pythonSitePackages(): string[] {
  const script =
    'import site, sys; print("\\n".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))';
  const r = spawnSync('python3', ['-c', script], { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0 || !r.stdout) return [];
  return r.stdout.split('\n').filter((p) => p.endsWith('-packages'));
}

function wheelName(major: string): string {
  return major === '13' ? 'nvidia-cublas' : `nvidia-cublas-cu${major}`;
}

/** Loads a shared library (not an addon) and keeps it loaded for later addons to link against. */
function preload(file: string): void {
  const flags = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE;
  try {
    process.dlopen({ exports: {} }, file, flags);
  } catch (e) {
    // A plain library loads, then fails Node's addon check: the library stays (RTLD_NODELETE).
    if (
      (e as NodeJS.ErrnoException).code !== 'ERR_DLOPEN_FAILED' ||
      !/did not self-register/.test((e as Error).message)
    )
      throw e;
  }
}

/** Loads a library the addon needs, and first any cuBLAS library that one needs in turn. */
function findAndPreload(soname: string, major: string, depth: number): void {
  const dirs = searchDirs(major);
  const found = dirs.map((d) => path.join(d, soname)).find((f) => fs.existsSync(f));
  if (!found) {
    throw new Error(
      `the CUDA addon needs cuBLAS ${major}: install a CUDA ${major} toolkit or the ${wheelName(major)} wheel ` +
        `(pip install ${wheelName(major)}), or set FOURIERFORMER_CUBLAS_DIR to the folder holding ${soname}. ` +
        `${soname} is not on the dynamic linker's path (LD_LIBRARY_PATH, ldconfig) nor in:\n  ${dirs.join('\n  ')}`,
    );
  }
  try {
    preload(found);
  } catch (e) {
    const m = MISSING_CUBLAS.exec((e as Error).message);
    if (!m || depth > 2) throw new Error(`cannot load ${found}: ${(e as Error).message}`, { cause: e });
    findAndPreload(m[1], m[2], depth + 1);
    preload(found);
  }
}

/** require() of the cuda addon, finding cuBLAS where the dynamic linker alone does not. */
export function requireCudaAddon(file: string): unknown {
  for (let depth = 0; ; depth++) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- an addon found at run time
      return require(file);
    } catch (e) {
      const m = MISSING_CUBLAS.exec((e as Error).message);
      if (!m || depth > 2) throw e;
      findAndPreload(m[1], m[2], 0);
    }
  }
}
