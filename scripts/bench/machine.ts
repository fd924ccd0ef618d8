// What a benchmark result was measured on and with: the CPU, our package and the ISA path its
// cpu kernels take, the host's load. Recorded in every result so that a figure is never read
// apart from its conditions.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { backendFor, Device, loadAddon, packageRoot } from '../../lib/native';

export interface Machine {
  cpu: string;
  logical_cpus: number;
  os: string;
  /** Load average (1, 5, 15 min) when the run started and when it ended. */
  loadavg_start: number[];
  loadavg_end?: number[];
}

export interface Ours {
  package: string;
  commit: string;
  node: string;
  device: Device;
  /** The backend's own description (CPU threads and SIMD, or the GPU). */
  backend: string;
  /** The SIMD path of the cpu kernels (csrc/cpu/simd.h cpu_isa()); null off the cpu device. */
  isa: string | null;
  threads: number;
  threads_mechanism: string;
  allocator: string;
}

function cpuInfo(): { model: string; flags: Set<string> } {
  let text = '';
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return { model: os.cpus()[0]?.model ?? 'unknown', flags: new Set() };
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1].trim();
  return {
    model: field('model name') ?? os.cpus()[0]?.model ?? 'unknown',
    flags: new Set((field('flags') ?? '').split(/\s+/)),
  };
}

/**
 * The ISA the cpu kernels run, decided as csrc/cpu/simd.h's cpu_isa() decides it: the widest
 * the CPU offers (avx512f; avx2 with fma; else scalar), lowered by FOURIERFORMER_CPU_ISA.
 */
export function ourIsa(): string {
  const { flags } = cpuInfo();
  let isa = flags.has('avx2') && flags.has('fma') ? 'avx2' : 'scalar';
  if (isa === 'avx2' && flags.has('avx512f')) isa = 'avx512';
  const want = process.env.FOURIERFORMER_CPU_ISA;
  if (want === 'scalar') isa = 'scalar';
  if (want === 'avx2' && isa === 'avx512') isa = 'avx2';
  return isa;
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, {
      cwd: packageRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

/** The commit, and whether sources differed from it (the generated docs aside). */
function commit(): string {
  const head = git(['rev-parse', '--short=10', 'HEAD']);
  if (head === undefined) return 'unknown (not a git clone)';
  const changed = (git(['status', '--porcelain', '--untracked-files=no']) ?? '')
    .split('\n')
    .filter((l) => l.trim() && !/ (docs\/benchmarks\.|README\.md$)/.test(l));
  return changed.length ? `${head} with uncommitted changes` : head;
}

export function describeMachine(): Machine {
  return {
    cpu: cpuInfo().model,
    logical_cpus: os.cpus().length,
    os: `${os.type()} ${os.release()}`,
    loadavg_start: os.loadavg(),
  };
}

export function describeOurs(device: Device, threads: number, threadsMechanism: string): Ours {
  loadAddon(device);
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return {
    package: pkg.version,
    commit: commit(),
    node: process.version,
    device,
    backend: backendFor(device).describe(),
    isa: device === 'cpu' ? ourIsa() : null,
    threads,
    threads_mechanism: threadsMechanism,
    allocator:
      device === 'cpu'
        ? "glibc malloc; tensors of 512 bytes and more from the addon's caching allocator"
        : "the addon's caching allocator",
  };
}
