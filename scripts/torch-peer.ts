// Finds the PyTorch interpreters a benchmark compares against, in the same run: the pythons
// named in FOURIERFORMER_TORCH_PYTHON (colon-separated), else `python3` on PATH, each kept only
// if it imports torch. Benchmarks skip the peer columns when none is found.
import { spawnSync } from 'child_process';
import * as path from 'path';

export interface Peer {
  python: string;
  torch: string;
}

export function findPeers(): Peer[] {
  const named = process.env.FOURIERFORMER_TORCH_PYTHON;
  const candidates = named ? named.split(':').filter(Boolean) : ['python3'];
  const peers: Peer[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) peers.push({ python, torch: r.stdout.trim() });
    else if (named) console.warn(`peer ${python}: cannot import torch, skipped`);
  }
  return peers;
}

/** Runs scripts/peer/<script> with one JSON argument; returns its JSON output. */
export function runPeer<T>(peer: Peer, script: string, config: unknown): T {
  const file = path.join(__dirname, 'peer', script);
  const r = spawnSync(peer.python, [file, JSON.stringify(config)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`peer ${peer.python} ${script} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as T;
}
