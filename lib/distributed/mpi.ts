// Loads the MPI addon (csrc/mpi): from FOURIERFORMER_ADDON_DIR, a local build (build-native/mpi,
// `npm run build -- mpi`), or the package's prebuild (prebuilds/linux-x64/mpi, for Open MPI's
// libmpi.so.40), the first that exists. It is loaded only when a launcher started several
// ranks, so that single-process use needs no MPI at all; where it is missing or its libmpi is,
// the error says what to install.
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../native';

const FILE = 'fourierformer_mpi.node';

export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

export interface MpiWorld {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  /** Seconds a collective may wait before the job is aborted with a report. */
  timeout: number;
  /** The MPI library, e.g. "Open MPI v4.1.4". */
  library: string;
  /** Per rank: its process id and host name. */
  pids: number[];
  hosts: string[];
}

/** The MPI addon's exports (csrc/mpi/addon.cpp). */
export interface MpiAddon {
  readonly backend: 'mpi';
  describe(): string;
  init(timeoutSeconds: number): MpiWorld;
  allReduceF64(values: Float64Array, op: ReduceOp, what: string): void;
  broadcastBytes(data: Uint8Array, root: number, what: string): void;
  /** data holds worldSize equal blocks; block r <- rank r's. */
  allGatherBytes(data: Uint8Array, what: string): void;
  barrier(what: string): void;
  setMarker(marker: string): void;
  counters(reset: boolean): { busySeconds: number; collectives: number; bytes: number };
  /** osu_allreduce's loop on host buffers of `count` floats: seconds per MPI_Allreduce, mean over ranks. */
  benchAllReduce(count: number, iterations: number): number;
  /** The communicator table for the backend addons (an External). */
  commApi(): unknown;
  finalize(): void;
  abort(code: number, message: string): never;
}

let addon: MpiAddon | null = null;

function candidates(): string[] {
  const out = [
    path.join(packageRoot, 'build-native', 'mpi', FILE),
    path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, 'mpi', FILE),
  ];
  if (process.env.FOURIERFORMER_ADDON_DIR) out.unshift(path.join(process.env.FOURIERFORMER_ADDON_DIR, FILE));
  return out;
}

const INSTALL =
  'install MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) and build the addon: npm run build -- mpi in a clone, or ' +
  'cmake -S node_modules/fourierformer -B build-mpi -DFF_BUILD_EMU=OFF -DFF_BUILD_CUDA=OFF && cmake --build build-mpi --target fourierformer_mpi in a project';

/** The MPI addon, loaded on first use. */
export function mpiAddon(): MpiAddon {
  if (addon !== null) return addon;
  const tried = candidates();
  const found = tried.find((p) => fs.existsSync(p));
  if (found === undefined) {
    throw new Error(
      `distributed training needs the MPI addon ${FILE}, which is not built: ${INSTALL}. Looked in:\n  ${tried.join('\n  ')}`,
    );
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an addon found at run time
    addon = require(found) as MpiAddon;
  } catch (e) {
    const message = (e as Error).message;
    const lib = /(libmpi[^:]*\.so[.\d]*): cannot open shared object file/.exec(message);
    if (lib)
      throw new Error(`distributed training: ${found} needs ${lib[1]}, which is not installed: ${INSTALL}`, {
        cause: e,
      });
    throw new Error(`distributed training: cannot load ${found}: ${message}`, { cause: e });
  }
  return addon;
}

/** Where the MPI addon would load from, for `fourierformer info`. */
export function mpiAddonPath(): string | undefined {
  return candidates().find((p) => fs.existsSync(p));
}
