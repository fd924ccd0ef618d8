// What every benchmark script (scripts/bench.ts, scripts/bench-linear.ts) does the same way
// around its own figures: read a positive integer option, start the PyTorch peer and check what
// it really runs with, measure ours' memory in a fresh process, and the header of the results
// (when, by which command, on what, and whether the ours/PyTorch ratios compare like with like).
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import type { Device } from '../../lib/native';
import type { OurKind, Shape } from './attention';
import type { Machine, Ours } from './machine';
import type { PeerInfo, RunHeader } from './results';
import {
  findAllocator,
  findPeers,
  HOW_TO_GET_A_PEER,
  NO_FAST_ALLOCATOR,
  Peer,
  PeerProcess,
  peerEnv,
} from '../torch-peer';

/** A commander option parser: a positive integer, or an error naming the option. */
export const positiveInt = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: expected a positive integer, got ${v}`);
  return n;
};

/** The PyTorch peer of a run: absent (proc undefined, info null) where none is found or it fails to start. */
export interface StartedPeer {
  /** The interpreter it runs (for one-shot runPeer calls such as the memory figures). */
  found?: Peer;
  env: NodeJS.ProcessEnv;
  proc?: PeerProcess;
  info: PeerInfo | null;
  /** Why ours/PyTorch ratios would not compare like with like (empty when they do). */
  why: string[];
}

/**
 * Starts scripts/peer/serve.py on `device` with `threads` threads and a fast allocator preloaded,
 * asks it what it runs with, and says (console) and records (why) any way it differs from ours.
 */
export async function startPeer(
  wanted: boolean,
  threads: number,
  device: 'cpu' | 'cuda',
  ourDevice: Device,
): Promise<StartedPeer> {
  const found = wanted ? findPeers() : [];
  if (wanted && found.length === 0) console.warn(`\nWARNING: ${HOW_TO_GET_A_PEER}\nThe benchmark runs ours only.\n`);
  const env = peerEnv(findAllocator(), threads);
  let proc = found.length ? new PeerProcess(found[0], { threads, device }, env) : undefined;
  let info: PeerInfo | null = null;
  const why: string[] = [];
  try {
    if (proc) info = { python: found[0].python, ...(await proc.request<Omit<PeerInfo, 'python'>>({ op: 'info' })) };
  } catch (e) {
    console.warn(
      `\nWARNING: PyTorch (${found[0].python}) cannot run on ${device}: ${(e as Error).message}\nThe benchmark runs ours only.\n`,
    );
    proc?.close();
    proc = undefined;
  }
  if (info) {
    if (info.allocator.name === 'glibc malloc')
      why.push('PyTorch ran with glibc malloc (no tcmalloc or jemalloc preloaded)');
    if (info.threads !== threads) why.push(`PyTorch ran ${info.threads} threads, ours ${threads}`);
    if (device === 'cpu' && ourDevice !== 'cpu') why.push(`ours ran on ${ourDevice}, PyTorch on cpu`);
    console.log(
      `PyTorch: ${info.torch} (${info.python}), ${info.threads} threads, ${info.device}${info.device === 'cpu' ? ` (${info.cpu_capability})` : ''}, allocator ${info.allocator.name}${info.allocator.path ? ` (${info.allocator.path})` : ''}`,
    );
    if (info.allocator.name === 'glibc malloc') console.warn(`\nWARNING: ${NO_FAST_ALLOCATOR}\n`);
  }
  return { found: info ? found[0] : undefined, env, proc, info, why };
}

/** Ours' memory figure (peak RSS growth, MiB), from a fresh Node process (scripts/bench/memory-probe.ts). */
export function memoryOurs(s: Shape, kind: OurKind): number {
  const register = require.resolve('ts-node/register/transpile-only');
  // glibc's malloc maps every block of 64 KiB and more afresh, so that memory ts-node freed
  // before the probe cannot hide the tensors' growth.
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: '65536' };
  const r = spawnSync(
    process.execPath,
    ['-r', register, path.join(__dirname, 'memory-probe.ts'), JSON.stringify({ shape: s, kind, device: 'cpu' })],
    { encoding: 'utf8', env },
  );
  if (r.status !== 0) throw new Error(`memory probe ${s.name} ${kind} failed:\n${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop() as string) as { peak_rss_growth_mib: number })
    .peak_rss_growth_mib;
}

const shellWord = (w: string) => (/^[\w./=:,@+-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`);

/** The header of a run of `npmCommand` (with this process's arguments) begun at `started` (ms);
 *  records the load average at its end in `machine`. */
export function runHeader(
  npmCommand: string,
  started: number,
  machine: Machine,
  ours: Ours,
  peer: StartedPeer,
): RunHeader {
  machine.loadavg_end = os.loadavg();
  return {
    schema: 1,
    date: new Date(started).toISOString().slice(0, 10),
    command: [npmCommand, ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2).map(shellWord)] : [])].join(
      ' ',
    ),
    duration_s: Math.round((Date.now() - started) / 1000),
    machine,
    ours,
    peer: peer.info,
    comparable: {
      ok: peer.info !== null && peer.why.length === 0,
      why: peer.info === null ? ['no PyTorch peer'] : peer.why,
    },
  };
}
