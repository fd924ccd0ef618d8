// Finding NCCL for the cuda backend's data-parallel collectives, as lib/cublas.ts finds cuBLAS:
// FOURIERFORMER_NCCL_DIR when set; else the first libnccl.so.2 in the CUDA toolkits under
// CUDA_HOME or /usr/local and in python3's site-packages (the nvidia-nccl-cu13 wheel:
// nvidia/nccl/lib); else '' so that the addon's dlopen searches the dynamic linker's path
// (LD_LIBRARY_PATH, ldconfig: a system libnccl2). The addon says what to install when that fails.
import * as fs from 'fs';
import * as path from 'path';
import { pythonSitePackages } from '../cublas';

const SONAME = 'libnccl.so.2';

/** The folders searched, most specific first. */
export function ncclSearchDirs(): string[] {
  if (process.env.FOURIERFORMER_NCCL_DIR) return [process.env.FOURIERFORMER_NCCL_DIR];
  const roots: string[] = [];
  for (const v of ['CUDA_HOME', 'CUDA_PATH', 'CUDA_ROOT']) if (process.env[v]) roots.push(process.env[v] as string);
  roots.push('/usr/local/cuda');
  const dirs = roots.flatMap((r) => [`${r}/lib64`, `${r}/targets/x86_64-linux/lib`]);
  for (const site of pythonSitePackages())
    dirs.push(path.join(site, 'nvidia', 'nccl', 'lib'), path.join(site, 'nvidia', 'cu13', 'lib'));
  return [...new Set(dirs)];
}

/** The NCCL library to load: a path, or '' for the dynamic linker's search. */
export function findNccl(): string {
  const dirs = ncclSearchDirs();
  const found = dirs.map((d) => path.join(d, SONAME)).find((f) => fs.existsSync(f));
  if (found !== undefined) return found;
  if (process.env.FOURIERFORMER_NCCL_DIR) {
    throw new Error(`FOURIERFORMER_NCCL_DIR: ${process.env.FOURIERFORMER_NCCL_DIR} holds no ${SONAME}`);
  }
  return '';
}
