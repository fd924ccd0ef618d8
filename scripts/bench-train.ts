// Training-step benchmark of the bench LM (issue 4): vocab 10000, d_model 128, 4 post-LN layers,
// 8 heads, FF 512, context 128, batch 16, full softmax, dropout 0.1, clipping 0.25, AdamW; with
// 'dot' and 'fourier' attention. In the same run, the same model in PyTorch (every peer found,
// scripts/torch-peer.ts; scripts/peer/train_peer.py): SDPA for 'dot', the paper's materialised
// Fourier attention for 'fourier'. The measurements alternate over several rounds (ours, then
// PyTorch's, each round), so that a busy shared machine slows both sides alike; the mean and the
// best step of all rounds are kept. Prints tokens/s and the ratios, and the machine's load average
// at the start and end (a shared machine's load moves both sides' times); writes JSON.
//   npx ts-node scripts/bench-train.ts [--device cpu] [--rounds 3] [--steps 4] [--torch-fourier-steps 1] [--out bench-train.json]
import { Command } from 'commander';
import * as fs from 'fs';
import * as os from 'os';
import * as ff from '../lib';
import { findPeers, runPeer } from './torch-peer';

export const CONFIG = { vocab: 10000, d_model: 128, layers: 4, heads: 8, ff: 512, context: 128, batch: 16, dropout: 0.1, lr: 2.5e-4, clip: 0.25 };
type Kind = ff.nn.AttentionKind;

function sinusoids(n: number, d: number): Float32Array {
  const pe = new Float32Array(n * d);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < d; i += 2) {
      const angle = p * Math.exp(-i * Math.log(10000) / d);
      pe[p * d + i] = Math.sin(angle);
      pe[p * d + i + 1] = Math.cos(angle);
    }
  }
  return pe;
}

/** The model of train_peer.py: embedding + sinusoidal positions, post-LN ReLU blocks, untied head. */
export class BenchLM extends ff.nn.Module {
  readonly embed: ff.nn.Embedding;
  readonly pos: ff.Tensor;
  readonly drop: ff.nn.Dropout;
  readonly blocks: ff.nn.ModuleList<ff.nn.TransformerBlock>;
  readonly head: ff.nn.Linear;

  constructor(kind: Kind, device: ff.Device) {
    super();
    const c = CONFIG;
    const generator = new ff.Generator(0);
    this.embed = this.registerModule('embed', new ff.nn.Embedding(c.vocab, c.d_model, { device, generator }));
    this.pos = this.registerBuffer('pos', ff.tensor(sinusoids(c.context, c.d_model), [c.context, c.d_model], { device }));
    this.drop = this.registerModule('drop', new ff.nn.Dropout(c.dropout, generator));
    this.blocks = this.registerModule('blocks', new ff.nn.ModuleList(Array.from({ length: c.layers }, () => new ff.nn.TransformerBlock(c.d_model, c.heads, {
      device, generator, attention: kind, causal: true, norm: 'post', activation: 'relu', ffDim: c.ff, dropout: c.dropout, radius: 'feature', radiusInit: 2,
    }))));
    this.head = this.registerModule('head', new ff.nn.Linear(c.d_model, c.vocab, { device, generator }));
  }

  loss(ids: ff.Tensor, targets: ff.Tensor): ff.Tensor {
    let x = this.drop.forward(ff.add(this.embed.forward(ids), this.pos));
    for (const b of this.blocks) x = b.forward(x);
    return ff.crossEntropy(this.head.forward(x), targets);
  }
}

interface Timing {
  step_ms: number;
  best_ms: number;
  tokens_per_s: number;
  steps: number;
}

function summarise(times: number[]): Timing {
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return { step_ms: mean, best_ms: Math.min(...times), tokens_per_s: (CONFIG.batch * CONFIG.context) / (mean / 1e3), steps: times.length };
}

/** The times (ms) of `steps` training steps after `warmup` untimed ones. */
function timeOurs(kind: Kind, device: ff.Device, steps: number, warmup: number): number[] {
  const c = CONFIG;
  const model = new BenchLM(kind, device);
  const opt = new ff.optim.AdamW(model.parameters(), { lr: c.lr, weightDecay: 0.01 });
  const data = new ff.Generator(1).uint32(c.batch * (c.context + 1));
  const ids: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < c.batch; b++) {
    for (let t = 0; t < c.context; t++) {
      ids.push(data[b * (c.context + 1) + t] % c.vocab);
      targets.push(data[b * (c.context + 1) + t + 1] % c.vocab);
    }
  }
  const idsT = ff.tensor(ids, [c.batch, c.context], { device });
  const targetsT = ff.tensor(targets, [c.batch, c.context], { device });
  const step = () => ff.tidy(() => {
    opt.zeroGrad();
    const loss = model.loss(idsT, targetsT);
    loss.backward();
    ff.optim.clipGradNormAsync_(model.parameters(), c.clip);
    opt.step();
    return loss.item();
  });
  for (let i = 0; i < warmup; i++) step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  opt.dispose();
  model.dispose();
  idsT.dispose();
  targetsT.dispose();
  return times;
}

interface PeerResult {
  torch: string;
  threads: number;
  results: Record<Kind, { times_ms: number[] }>;
}

function main(): void {
  const opts = new Command()
    .description('training-step benchmark of the bench LM against PyTorch, in one run')
    .option('--device <device>', 'cpu | cuda | cuda-emu', 'cpu')
    .option('--rounds <n>', 'rounds of measurements, ours and PyTorch alternating', '3')
    .option('--steps <n>', 'timed steps per round and kind (after 2 warm-up steps)', '4')
    .option('--torch-fourier-steps <n>', "timed steps per round of PyTorch's materialised Fourier step (slow)", '1')
    .option('--kinds <list>', 'attention kinds', 'dot,fourier')
    .option('--batch <n>', 'sequences per step (a quick run on cuda-emu: 1)', String(CONFIG.batch))
    .option('--out <file>', 'JSON results', 'bench-train.json')
    .parse()
    .opts();
  const device = opts.device as ff.Device;
  CONFIG.batch = Number(opts.batch);
  const rounds = Number(opts.rounds);
  const steps = Number(opts.steps);
  const kinds = (opts.kinds as string).split(',') as Kind[];
  const peers = findPeers();
  const peerDevice = device === 'cuda' ? 'cuda' : 'cpu';  // PyTorch on the same GPU, else its cpu
  console.log(`device ${device}: ${ff.backends().find((b) => b.device === device)?.detail}`);
  console.log(`model: ${JSON.stringify(CONFIG)}`);
  console.log(peers.length ? `peers: ${peers.map((p) => `torch ${p.torch} (${p.python})`).join(', ')}` : 'peers: none found (set FOURIERFORMER_TORCH_PYTHON)');
  const loadStart = os.loadavg();
  const ourTimes: Record<string, number[]> = {};
  const peerTimes: Record<string, number[]>[] = peers.map(() => ({}));
  for (let r = 1; r <= rounds; r++) {
    for (const kind of kinds) {
      process.stdout.write(`round ${r}/${rounds}: ours, ${kind} ...\n`);
      (ourTimes[kind] ??= []).push(...timeOurs(kind, device, steps, 2));
    }
    peers.forEach((p, i) => {
      process.stdout.write(`round ${r}/${rounds}: torch ${p.torch} ...\n`);
      const res = runPeer<PeerResult>(p, 'train_peer.py', {
        ...CONFIG, kinds, threads: 2, warmup: 2, steps: { dot: steps, fourier: Number(opts.torchFourierSteps) }, device: peerDevice,
      });
      for (const kind of kinds) (peerTimes[i][kind] ??= []).push(...res.results[kind].times_ms);
    });
  }
  const loadEnd = os.loadavg();
  const ours = Object.fromEntries(kinds.map((k) => [k, summarise(ourTimes[k])])) as Record<Kind, Timing>;
  const peerResults = peers.map((p, i) => ({ torch: p.torch, results: Object.fromEntries(kinds.map((k) => [k, summarise(peerTimes[i][k])])) as Record<Kind, Timing> }));
  const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(x < 10 ? 2 : 1));
  const head = ['attention', 'ours ms/step', 'ours tokens/s'];
  for (const p of peerResults) head.push(`torch ${p.torch} ms/step`, `torch tokens/s`, 'ours / torch same kind', 'ours / torch dot');
  console.log(`\ntraining step, batch ${CONFIG.batch} x context ${CONFIG.context} = ${CONFIG.batch * CONFIG.context} tokens, mean over ${rounds} rounds (best step in brackets), ${device}\n`);
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const kind of kinds) {
    const o = ours[kind];
    const cells = [kind, `${f(o.step_ms)} (${f(o.best_ms)})`, f(o.tokens_per_s)];
    for (const p of peerResults) {
      const t = p.results[kind];
      cells.push(`${f(t.step_ms)} (${f(t.best_ms)})`, f(t.tokens_per_s), `${(o.tokens_per_s / t.tokens_per_s).toFixed(2)}x`, `${(o.tokens_per_s / p.results.dot?.tokens_per_s).toFixed(2)}x`);
    }
    console.log(`| ${cells.join(' | ')} |`);
  }
  const loads = (l: number[]) => l.map((v) => v.toFixed(2)).join(', ');
  console.log(`\nload average (1, 5, 15 min) of ${os.cpus().length} cpus: ${loads(loadStart)} at the start, ${loads(loadEnd)} at the end`);
  fs.writeFileSync(opts.out, JSON.stringify({ device, config: CONFIG, rounds, steps, loadavg: { start: loadStart, end: loadEnd }, ours, ourTimes, peers: peerResults, peerTimes }, null, 2));
  console.log(`\nwrote ${opts.out}`);
}

if (require.main === module) main();
