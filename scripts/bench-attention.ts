// Attention fwd+bwd benchmark at the paper's shapes: our fused Fourier and dot-product kernels,
// the pure-TS reference (the small shape only), and in the same run PyTorch (every peer found:
// see scripts/torch-peer.ts) with its fused SDPA and the paper's materialised Fourier attention.
// Best of several runs. Prints a markdown table with ratios and writes JSON.
//   npx ts-node scripts/bench-attention.ts [--device cpu] [--runs 10] [--out bench-attention.json]
import { spawnSync } from 'child_process';
import { Command } from 'commander';
import * as fs from 'fs';
import * as ff from '../lib';
import { findPeers, runPeer } from './torch-peer';

interface Shape {
  name: string; B: number; H: number; N: number; D: number; causal: boolean;
}

const SHAPES: Shape[] = [
  { name: 'small LM', B: 8, H: 8, N: 256, D: 16, causal: true },
  { name: 'medium LM', B: 4, H: 8, N: 384, D: 32, causal: true },
  { name: 'DeiT-tiny', B: 8, H: 3, N: 197, D: 64, causal: false },
  { name: 'long 2048', B: 1, H: 8, N: 2048, D: 16, causal: true },
  { name: 'long 4096', B: 1, H: 8, N: 4096, D: 16, causal: true },
];

function bestMs(fn: () => void, runs: number): number {
  fn();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** fwd+bwd of one attention on fresh leaves, then synchronize: PyTorch's side does the same. */
function timeOurs(s: Shape, device: ff.Device, kind: 'fourier' | 'dot', runs: number): number {
  const { uniform } = ff.reference;
  const n = s.B * s.H * s.N * s.D;
  const [qv, kv, vv] = [uniform(n, -0.8, 0.8, 1), uniform(n, -0.8, 0.8, 2), uniform(n, -1, 1, 3)];
  return ff.tidy(() => {
    const shape = [s.B, s.H, s.N, s.D];
    const q = ff.tensor(qv, shape, { device, requiresGrad: true });
    const k = ff.tensor(kv, shape, { device, requiresGrad: true });
    const v = ff.tensor(vv, shape, { device, requiresGrad: true });
    const R = ff.tensor(uniform(s.H, 1.5, 2.5, 4), [s.H, 1], { device, requiresGrad: true });
    const dout = ff.ones(shape, { device });
    return bestMs(() => ff.tidy(() => {
      for (const t of [q, k, v, R]) {
        t.grad?.dispose();
        t.grad = null;
      }
      const h = kind === 'fourier' ? ff.fourierAttention(q, k, v, R, { causal: s.causal }) : ff.dotProductAttention(q, k, v, { causal: s.causal });
      h.backward(dout);
      ff.synchronize(device);
    }), runs);
  });
}

function timeReference(s: Shape): number {
  const { uniform, refArray, fourierAttentionRef, fourierAttentionGradRef } = ff.reference;
  const n = s.B * s.H * s.N * s.D;
  const shape = [s.B, s.H, s.N, s.D];
  const [q, k, v, g] = [1, 2, 3, 5].map((seed) => refArray(uniform(n, -0.8, 0.8, seed), shape));
  const R = refArray(uniform(s.H, 1.5, 2.5, 4), [s.H, 1]);
  const t0 = performance.now();
  fourierAttentionRef(q, k, v, R, { causal: s.causal });
  fourierAttentionGradRef(q, k, v, R, g, { causal: s.causal });
  return performance.now() - t0;
}

/**
 * Peak resident memory growth (MiB) of one fused Fourier fwd+bwd, measured in a fresh child
 * process (this process's peak already includes the other benchmarks).
 */
function memoryGrowthMiB(s: Shape, device: ff.Device): number {
  const r = spawnSync(process.execPath, [...process.execArgv, __filename, '--memory-probe', s.name, '--device', device], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`memory probe failed: ${r.stderr}`);
  return Number(r.stdout.trim().split('\n').pop());
}

function memoryProbe(name: string, device: ff.Device): void {
  const s = SHAPES.find((x) => x.name === name)!;
  const before = process.resourceUsage().maxRSS;
  timeOurs(s, device, 'fourier', 0);
  console.log(((process.resourceUsage().maxRSS - before) / 1024).toFixed(1));
}

interface PeerResult {
  torch: string;
  results: Record<string, { sdpa_ms: number; fourier_materialised_ms?: number }>;
}

function main(): void {
  const opts = new Command()
    .description('fwd+bwd attention benchmark against the TS reference and PyTorch, in one run')
    .option('--device <device>', 'cpu | cuda | cuda-emu', 'cpu')
    .option('--runs <n>', 'timed runs per measurement (best is kept)', '10')
    .option('--rounds <n>', 'rounds of PyTorch then ours (best of all is kept; a shared host drifts)', '2')
    .option('--shapes <names>', 'comma-separated subset of: ' + SHAPES.map((s) => s.name).join(', '))
    .option('--no-reference', 'skip the pure-TS reference')
    .option('--out <file>', 'JSON results', 'bench-attention.json')
    .option('--memory-probe <shape>', '(internal) print the peak RSS growth of one fwd+bwd')
    .parse()
    .opts();
  const device = opts.device as ff.Device;
  if (opts.memoryProbe) return memoryProbe(opts.memoryProbe as string, device);
  const runs = Number(opts.runs);
  const shapes = opts.shapes ? SHAPES.filter((s) => (opts.shapes as string).split(',').includes(s.name)) : SHAPES;
  const peers = findPeers();
  console.log(`device ${device}: ${ff.backends().find((b) => b.device === device)?.detail}`);
  console.log(peers.length ? `peers: ${peers.map((p) => `torch ${p.torch} (${p.python})`).join(', ')}` : 'peers: none found (set FOURIERFORMER_TORCH_PYTHON)');
  const peerDevice = device === 'cuda' ? 'cuda' : 'cpu';
  // Rounds alternate PyTorch and ours, so a change in the host's load reaches both sides; each
  // measurement keeps its best over all rounds. The materialised Fourier attention (seconds a
  // run) is timed in the first round only.
  const rounds = Math.max(1, Number(opts.rounds));
  const peerResults: PeerResult[] = peers.map((p) => ({ torch: p.torch, results: {} }));
  const ours = new Map<string, { fourier: number; dot: number }>();
  for (let round = 1; round <= rounds; round++) {
    peers.forEach((p, i) => {
      process.stdout.write(`round ${round}/${rounds}: torch ${p.torch} ...\n`);
      const r = runPeer<PeerResult>(p, 'attention_peer.py', {
        shapes: shapes.map((s) => ({ ...s, runs })), threads: 2, device: peerDevice, ...(round > 1 ? { materialise_bytes: 0 } : {}),
      });
      const best = peerResults[i].results;
      for (const [name, res] of Object.entries(r.results)) {
        const b = best[name];
        best[name] = b === undefined ? res : { ...b, sdpa_ms: Math.min(b.sdpa_ms, res.sdpa_ms) };
      }
    });
    for (const s of shapes) {
      process.stdout.write(`round ${round}/${rounds}: timing ${s.name} ...\n`);
      const o = ours.get(s.name) ?? { fourier: Infinity, dot: Infinity };
      o.fourier = Math.min(o.fourier, timeOurs(s, device, 'fourier', runs));
      o.dot = Math.min(o.dot, timeOurs(s, device, 'dot', runs));
      ours.set(s.name, o);
    }
  }
  const rows: Record<string, unknown>[] = [];
  for (const s of shapes) {
    const row: Record<string, unknown> = { shape: s.name, dims: `B${s.B} H${s.H} N${s.N} D${s.D}${s.causal ? ' causal' : ''}` };
    row.fourier_ms = ours.get(s.name)!.fourier;
    row.dot_ms = ours.get(s.name)!.dot;
    if (opts.reference && s.name === 'small LM') row.reference_ms = timeReference(s);
    if (s.name.startsWith('long')) row.fourier_peak_rss_growth_mib = memoryGrowthMiB(s, device);
    peerResults.forEach((p) => {
      const r = p.results[s.name];
      row[`torch${p.torch}_sdpa_ms`] = r.sdpa_ms;
      if (r.fourier_materialised_ms !== undefined) row[`torch${p.torch}_fourier_ms`] = r.fourier_materialised_ms;
    });
    rows.push(row);
  }
  const f = (x: unknown) => (typeof x === 'number' ? x.toFixed(x < 10 ? 2 : 1) : '-');
  const ratio = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' ? `${(a / b).toFixed(2)}x` : '-');
  const head = ['shape', 'ours Fourier ms', 'ours dot ms', 'TS reference ms'];
  for (const p of peerResults) head.push(`torch ${p.torch} SDPA ms`, `torch ${p.torch} Fourier ms`, `ours Fourier / SDPA`, `ours dot / SDPA`, `torch Fourier / ours`);
  console.log(`\nfwd+bwd, best of ${runs} runs x ${rounds} rounds, ${device}\n`);
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const r of rows) {
    const cells = [`${r.shape} (${r.dims})`, f(r.fourier_ms), f(r.dot_ms), f(r.reference_ms)];
    for (const p of peerResults) {
      const sd = r[`torch${p.torch}_sdpa_ms`];
      const fm = r[`torch${p.torch}_fourier_ms`];
      cells.push(f(sd), f(fm), ratio(r.fourier_ms, sd), ratio(r.dot_ms, sd), ratio(fm, r.fourier_ms));
    }
    console.log(`| ${cells.join(' | ')} |`);
  }
  for (const r of rows.filter((x) => x.fourier_peak_rss_growth_mib !== undefined)) {
    console.log(`${r.shape}: one fused Fourier fwd+bwd grows peak resident memory by ${f(r.fourier_peak_rss_growth_mib)} MiB (inputs included)`);
  }
  fs.writeFileSync(opts.out, JSON.stringify({ device, runs, rounds, peers: peerResults.map((p) => p.torch), rows }, null, 2));
  console.log(`\nwrote ${opts.out}`);
}

main();
