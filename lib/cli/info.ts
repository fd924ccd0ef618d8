// `fourierformer info [--json]`: the package and runtime versions, the default device, and for
// each device whether it works here (or why not), the addon file it loaded, and for cuda the GPU
// code that file holds and the cuBLAS library it runs with; and whether distributed training
// works here: the MPI addon and its MPI library, and the NCCL a cuda rank would load.
import { Command } from 'commander';
import * as fs from 'fs';
import { describeGpuCode, gpuCode, GpuCode } from '../cuda-fatbin';
import { getDefaultDevice } from '../device';
import { mpiAddon, mpiAddonPath } from '../distributed/mpi';
import { findNccl } from '../distributed/nccl';
import { backends, BackendInfo } from '../info';
import { packageRoot } from '../native';
import { packageJson } from './package-json';

export interface DeviceReport extends BackendInfo {
  /** cuda: the SASS and PTX architectures in the addon. */
  gpuCode?: GpuCode;
  /** cuda: the cuBLAS library loaded in this process. */
  cublas?: string;
}

export interface InfoReport {
  package: { name: string; version: string; root: string };
  node: string;
  napi: string;
  platform: string;
  /** The default device, or why FOURIERFORMER_DEVICE is wrong. */
  defaultDevice: string;
  devices: DeviceReport[];
  /**
   * mpirun -np N fourierformer ...: the MPI addon (its MPI library, or why it does not load) and
   * the NCCL file for cuda ranks.
   */
  distributed: { available: boolean; detail: string; addon?: string; nccl: string };
}

function distributedInfo(): InfoReport['distributed'] {
  let nccl: string;
  try {
    nccl = findNccl() || "libnccl.so.2 from the dynamic linker's path, if it is there";
  } catch (e) {
    nccl = (e as Error).message;
  }
  try {
    return { available: true, detail: mpiAddon().describe(), addon: mpiAddonPath(), nccl };
  } catch (e) {
    return { available: false, detail: (e as Error).message, nccl };
  }
}

/** The first library mapped into this process whose path matches, from /proc/self/maps. */
function mappedLibrary(name: RegExp): string | undefined {
  if (!fs.existsSync('/proc/self/maps')) return undefined;
  const lines = fs.readFileSync('/proc/self/maps', 'utf8').split('\n');
  const line = lines.find((l) => name.test(l));
  return line ? line.slice(line.indexOf('/')) : undefined;
}

export function collectInfo(): InfoReport {
  const devices: DeviceReport[] = backends().map((b) => {
    if (b.device !== 'cuda' || !b.addon) return b;
    return { ...b, gpuCode: gpuCode(b.addon), cublas: mappedLibrary(/\/libcublas\.so/) };
  });
  let defaultDevice: string;
  try {
    defaultDevice = getDefaultDevice();
  } catch (e) {
    defaultDevice = (e as Error).message;
  }
  const pkg = packageJson();
  return {
    package: { name: pkg.name, version: pkg.version, root: packageRoot },
    node: process.version,
    napi: process.versions.napi ?? 'unknown',
    platform: `${process.platform}-${process.arch}`,
    defaultDevice,
    devices,
    distributed: distributedInfo(),
  };
}

export function formatInfo(info: InfoReport): string {
  const out = [
    `${info.package.name} ${info.package.version} (${info.package.root})`,
    `node ${info.node}, N-API ${info.napi}, ${info.platform}`,
    `default device: ${info.defaultDevice}`,
  ];
  const indent = ' '.repeat(10);
  for (const d of info.devices) {
    out.push('', `${d.device.padEnd(10)}${d.available ? 'available' : 'not available'}`);
    out.push(...d.detail.split('\n').map((l) => indent + l));
    if (d.addon) out.push(`${indent}addon: ${d.addon}`);
    if (d.gpuCode) out.push(`${indent}GPU code: ${describeGpuCode(d.gpuCode)}`);
    if (d.cublas) out.push(`${indent}cuBLAS: ${d.cublas}`);
  }
  const m = info.distributed;
  out.push(
    '',
    `${'mpi'.padEnd(10)}${m.available ? 'available' : 'not available'} (distributed training: mpirun -np N fourierformer train ...)`,
  );
  out.push(...m.detail.split('\n').map((l) => indent + l));
  if (m.addon) out.push(`${indent}addon: ${m.addon}`);
  out.push(`${indent}NCCL for cuda ranks: ${m.nccl}`);
  return out.join('\n');
}

export function infoCommand(): Command {
  return new Command('info')
    .description('show the versions, and for each device whether it works here and which addon it loaded')
    .option('--json', 'print the report as JSON')
    .action((opts: { json?: boolean }) => {
      const info = collectInfo();
      console.log(opts.json ? JSON.stringify(info, null, 2) : formatInfo(info));
    });
}
