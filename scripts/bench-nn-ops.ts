// Forward + backward of the neural-network ops at training sizes, ours against PyTorch CPU in the
// same run (scripts/peer/nn_ops_peer.py; found and run as scripts/torch-peer.ts says: a fast allocator
// preloaded, as many threads as this machine has CPUs).
//   npx ts-node scripts/bench-nn-ops.ts [--device cpu] [--reps 20] [--rounds 3]
// Ours and each peer take turns for `rounds` rounds (a shared machine's load then hits both
// alike); each side keeps its best per-round median. Prints one line per case: ms (ours, each
// peer) and the speed ratio peer / ours.
import { Command } from 'commander';
import * as ff from '../lib';
import { findPeers, runPeer } from './torch-peer';

interface Case {
  op: 'linear' | 'layernorm' | 'softmax' | 'cross_entropy';
  rows: number;
  in?: number;
  out?: number;
  C?: number;
  labelSmoothing?: number;
}

const CASES: Case[] = [
  { op: 'linear', rows: 16 * 128, in: 128, out: 512 },
  { op: 'linear', rows: 16 * 128, in: 512, out: 128 },
  { op: 'layernorm', rows: 2048, C: 10000 },
  { op: 'layernorm', rows: 16 * 128, C: 128 },
  { op: 'softmax', rows: 2048, C: 10000 },
  { op: 'cross_entropy', rows: 2048, C: 10000 },
  { op: 'cross_entropy', rows: 2048, C: 10000, labelSmoothing: 0.1 },
];

function label(c: Case): string {
  const size = c.op === 'linear' ? `[${c.rows}, ${c.in}] -> ${c.out}` : `[${c.rows}, ${c.C}]`;
  return `${c.op}${c.labelSmoothing ? ` (smoothing ${c.labelSmoothing})` : ''} ${size}`;
}

/** One forward + backward of a case on `device`, inside tidy (nothing outlives it). */
function step(c: Case, device: ff.Device): () => void {
  const rand = (n: number, seed: number) => ff.reference.uniform(n, 0, 1, seed);
  if (c.op === 'linear') {
    const rows = c.rows,
      inF = c.in as number,
      out = c.out as number;
    const x = ff.tensor(rand(rows * inF, 1), [rows, inF], { device, requiresGrad: true });
    const W = ff.tensor(rand(out * inF, 2), [out, inF], { device, requiresGrad: true });
    const b = ff.tensor(rand(out, 3), [out], { device, requiresGrad: true });
    const dy = ff.tensor(rand(rows * out, 4), [rows, out], { device });
    return () => ff.tidy(() => ff.linear(x, W, b).backward(dy));
  }
  const C = c.C as number;
  const x = ff.tensor(rand(c.rows * C, 5), [c.rows, C], { device, requiresGrad: true });
  const dy = ff.tensor(rand(c.rows * C, 6), [c.rows, C], { device });
  if (c.op === 'layernorm') {
    const w = ff.ones([C], { device, requiresGrad: true });
    const b = ff.zeros([C], { device, requiresGrad: true });
    return () => ff.tidy(() => ff.layerNorm(x, w, b).backward(dy));
  }
  if (c.op === 'softmax') return () => ff.tidy(() => ff.softmax(x).backward(dy));
  const t = ff.tensor(
    rand(c.rows, 7).map((v) => Math.floor(v * C)),
    [c.rows],
    { device },
  );
  return () => ff.tidy(() => ff.crossEntropy(x, t, { labelSmoothing: c.labelSmoothing ?? 0 }).backward());
}

function medianMs(fn: () => void, reps: number, device: ff.Device): number {
  const sync = () => ff.synchronize(device);
  fn();
  fn();
  sync();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    sync();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

function main(): void {
  const opts = new Command()
    .option('--device <device>', 'cpu | cuda | cuda-emu', 'cpu')
    .option('--reps <n>', 'timed repetitions per case (median reported)', '20')
    .option('--rounds <n>', 'alternations of ours and the peers (best round kept)', '3')
    .parse()
    .opts();
  const device = opts.device as ff.Device;
  const reps = Number(opts.reps);
  const rounds = Number(opts.rounds);
  console.log(`ours: ${device} (${ff.backends().find((b) => b.device === device)?.detail ?? ''})`);
  const steps = CASES.map((c) => step(c, device));
  const found = findPeers();
  const ours = CASES.map(() => Infinity);
  const peers = found.map((p) => ({ ...p, threads: 0, ms: CASES.map(() => Infinity) }));
  for (let r = 0; r < rounds; r++) {
    steps.forEach((s, i) => (ours[i] = Math.min(ours[i], medianMs(s, reps, device))));
    for (const p of peers) {
      const got = runPeer<{ threads: number; ms: number[] }>(p, 'nn_ops_peer.py', [{ cases: CASES, reps }]);
      p.threads = got.threads;
      got.ms.forEach((ms, i) => (p.ms[i] = Math.min(p.ms[i], ms)));
    }
  }
  for (const p of peers) console.log(`peer: torch ${p.torch} (${p.python}), ${p.threads} threads`);
  CASES.forEach((c, i) => {
    const cols = peers.map((p) => `torch ${p.ms[i].toFixed(2)} ms (${(p.ms[i] / ours[i]).toFixed(2)}x)`);
    console.log(`${label(c).padEnd(44)} ours ${ours[i].toFixed(2)} ms   ${cols.join('   ')}`);
  });
}

main();
