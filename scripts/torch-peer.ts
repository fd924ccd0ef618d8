// The PyTorch peer the benchmarks compare against, run as PyTorch's CPU performance guide says:
// with a fast allocator preloaded and a bounded thread count.
//
// Which python: FOURIERFORMER_TORCH_PYTHON (colon-separated for several), else the virtualenv
// that `bash scripts/setup.sh --torch-peer` makes (PEER_VENV), else `python3` on PATH; each kept
// only if it imports torch. Which allocator (LD_PRELOAD): FOURIERFORMER_PEER_MALLOC (a library
// path, or 'none' for glibc's malloc), else an allocator LD_PRELOAD already names, else the
// first of tcmalloc (Debian: libtcmalloc-minimal4, which setup.sh installs), jemalloc found on
// the system. PyTorch's default glibc malloc makes its materialised attention many times slower
// (multi-GiB temporaries, returned to the system and faulted in again on every call), so a
// ratio against it is not a comparison: the peer reports the allocator it really mapped, and
// the benchmark marks such ratios as not comparable.
import { ChildProcessWithoutNullStreams, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';

export interface Peer {
  python: string;
  torch: string;
}

export interface Allocator {
  name: string;
  /** The library to preload; null: glibc's malloc. */
  path: string | null;
}

/** Where `scripts/setup.sh --torch-peer` installs PyTorch (CPU build) in a virtualenv. */
export const PEER_VENV = path.join(
  process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'),
  'fourierformer',
  'torch-peer',
);

export const HOW_TO_GET_A_PEER = [
  'no python with PyTorch found (tried FOURIERFORMER_TORCH_PYTHON, ' +
    path.join(PEER_VENV, 'bin/python') +
    ', python3).',
  'To compare against PyTorch: `bash scripts/setup.sh --torch-peer` (a virtualenv with the CPU build of torch, from',
  'https://download.pytorch.org/whl/cpu), or set FOURIERFORMER_TORCH_PYTHON to a python that imports torch.',
].join('\n');

export function findPeers(): Peer[] {
  const named = process.env.FOURIERFORMER_TORCH_PYTHON;
  const candidates = named ? named.split(':').filter(Boolean) : [path.join(PEER_VENV, 'bin', 'python'), 'python3'];
  const peers: Peer[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) peers.push({ python, torch: r.stdout.trim() });
    else if (named) console.warn(`peer ${python}: cannot import torch, skipped`);
    if (!named && peers.length > 0) break;
  }
  return peers;
}

const ALLOCATORS: Allocator[] = [
  { name: 'tcmalloc', path: 'libtcmalloc_minimal.so.4' },
  { name: 'tcmalloc', path: 'libtcmalloc.so.4' },
  { name: 'jemalloc', path: 'libjemalloc.so.2' },
];

/** The dynamic linker's cache (ldconfig -p): library file name -> path. */
function linkerCache(): Map<string, string> {
  const found = new Map<string, string>();
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      const out = execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      for (const m of out.matchAll(/^\s*(\S+) \(([^)]*)\) => (\S+)$/gm))
        if (m[2].includes('x86-64') || !found.has(m[1])) found.set(m[1], m[3]);
      return found;
    } catch {
      // try the next name
    }
  }
  return found;
}

const allocatorName = (file: string) =>
  /jemalloc|mimalloc|tcmalloc/.exec(path.basename(file))?.[0] ?? path.basename(file);

export function findAllocator(): Allocator {
  const wanted = process.env.FOURIERFORMER_PEER_MALLOC;
  if (wanted === 'none') return { name: 'glibc malloc', path: null };
  if (wanted) {
    if (!fs.existsSync(wanted))
      throw new Error(`FOURIERFORMER_PEER_MALLOC: ${wanted} does not exist (a library path, or 'none')`);
    return { name: allocatorName(wanted), path: wanted };
  }
  const preloaded = (process.env.LD_PRELOAD ?? '').split(/[:\s]+/).find((p) => /tcmalloc|jemalloc|mimalloc/.test(p));
  if (preloaded) return { name: allocatorName(preloaded), path: preloaded };
  const cache = linkerCache();
  for (const a of ALLOCATORS) {
    const file =
      cache.get(a.path as string) ??
      ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib']
        .map((d) => path.join(d, a.path as string))
        .find((p) => fs.existsSync(p));
    if (file) return { name: a.name, path: file };
  }
  return { name: 'glibc malloc', path: null };
}

export const NO_FAST_ALLOCATOR =
  'PyTorch runs with glibc malloc: no tcmalloc or jemalloc found (Debian: apt-get install libtcmalloc-minimal4, as scripts/setup.sh does). Its times are NOT comparable; the ratios are marked so.';

/** The peer's environment: the allocator preloaded, OpenMP and MKL bounded to `threads`. */
export function peerEnv(allocator: Allocator, threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const others = (process.env.LD_PRELOAD ?? '')
    .split(/[:\s]+/)
    .filter((p) => p && !/tcmalloc|jemalloc|mimalloc/.test(p));
  const preload = [...(allocator.path ? [allocator.path] : []), ...others];
  if (preload.length) env.LD_PRELOAD = preload.join(':');
  else delete env.LD_PRELOAD;
  return env;
}

/** Runs scripts/peer/<script> once with JSON arguments; returns its last line of output as JSON. */
export function runPeer<T>(
  peer: Peer,
  script: string,
  args: unknown[],
  env: NodeJS.ProcessEnv = peerEnv(findAllocator(), os.availableParallelism()),
): T {
  const file = path.join(__dirname, 'peer', script);
  const r = spawnSync(peer.python, [file, ...args.map((a) => JSON.stringify(a))], {
    encoding: 'utf8',
    env,
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`peer ${peer.python} ${script} failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as T & { error?: string };
  if (out.error) throw new Error(`peer ${script}: ${out.error}`);
  return out;
}

/** scripts/peer/serve.py as a long-lived process: one JSON request, one JSON reply, in turn. */
export class PeerProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  constructor(
    readonly peer: Peer,
    config: unknown,
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(peer.python, [path.join(__dirname, 'peer', 'serve.py'), JSON.stringify(config)], { env });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async request<T>(req: unknown): Promise<T> {
    this.child.stdin.write(JSON.stringify(req) + '\n');
    const next = await this.lines.next();
    if (next.done) throw new Error(`peer ${this.peer.python} serve.py exited:\n${this.stderr}`);
    const out = JSON.parse(next.value) as T & { error?: string };
    if (out.error) throw new Error(`peer serve.py ${JSON.stringify(req)}: ${out.error}`);
    return out;
  }

  close(): void {
    this.child.stdin.end();
  }
}
