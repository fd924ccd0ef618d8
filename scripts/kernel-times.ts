// Kernel-only times of the fused attentions, and their peak device memory, on one device:
// the backend's own forward and backward calls (no autograd), timed by CUDA events around `reps`
// calls queued back to back (cpu: the host clock), so the host's queueing overlaps the device.
// Shapes: the paper's LMs (small: d_head 16, context 256; medium: d_head 32, context 384) and
// long contexts where the Nq x Nk matrix would not fit (peak memory is the caching allocator's
// high-water mark over the forward and backward: device memory, not the host's).
// A shape whose op throws (out of memory, a fault) is a row with a note, and the exit status is 1.
//   npx ts-node scripts/kernel-times.ts [--device cuda] [--reps 20] [--shapes paper,long|quick]
//                                       [--out kernel-times.json]
import { Command } from 'commander';
import * as fs from 'fs';
import * as ff from '../lib';
import { backendFor, Backend, checkDevice, Storage } from '../lib/native';

interface Shape {
  name: string;
  B: number;
  H: number;
  N: number;
  D: number;
  causal: boolean;
}

const SHAPES: Record<string, Shape[]> = {
  paper: [
    { name: 'small LM (B8 H8 N256 D16, causal)', B: 8, H: 8, N: 256, D: 16, causal: true },
    { name: 'medium LM (B8 H8 N384 D32, causal)', B: 8, H: 8, N: 384, D: 32, causal: true },
  ],
  long: [
    { name: 'long (B1 H8 N8192 D16, causal)', B: 1, H: 8, N: 8192, D: 16, causal: true },
    { name: 'long (B1 H8 N16384 D64, causal)', B: 1, H: 8, N: 16384, D: 64, causal: true },
  ],
  quick: [{ name: 'quick (B1 H2 N64 D16, causal)', B: 1, H: 2, N: 64, D: 16, causal: true }],
};

interface Row {
  shape: string;
  op: string;
  forward_ms: number;
  backward_ms: number;
  peak_mib: number;
  note?: string;
}

function random(b: Backend, n: number, seed: number, scale = 0.5): Storage {
  return b.fromArray(Float32Array.from(ff.reference.uniform(n, -scale, scale, seed)));
}

function measure(b: Backend, s: Shape, op: 'fourier' | 'dot', reps: number): Row {
  const n = s.B * s.H * s.N * s.D;
  const q = random(b, n, 1),
    k = random(b, n, 2),
    v = random(b, n, 3),
    dout = random(b, n, 4);
  const R = b.fromArray(new Float32Array([2]));
  const dims = [s.B, s.H, s.N, s.N, s.D, 1, 1, s.D, s.causal ? 1 : 0];
  const scale = 1 / Math.sqrt(s.D);
  const forward = (): Storage[] =>
    op === 'fourier'
      ? b.fourierAttentionForward(q, k, v, R, dims, 4, 1e-6, false)
      : b.dotAttentionForward(q, k, v, dims, scale);
  const backward = (out: Storage, stat: Storage): Storage[] =>
    op === 'fourier'
      ? b.fourierAttentionBackward(q, k, v, R, dims, 4, 1e-6, false, out, stat, dout)
      : b.dotAttentionBackward(q, k, v, dims, scale, out, stat, dout);
  const free = (xs: Storage[]) => xs.forEach((x) => b.free(x));
  // warm-up (and the allocator's blocks), then the peak of one forward + backward
  const [out, stat] = forward();
  free(backward(out, stat));
  b.synchronize();
  b.peakBytes(true);
  const [o2, s2] = forward();
  free(backward(o2, s2));
  const peak = b.peakBytes(true);
  b.timerStart();
  for (let r = 0; r < reps; r++) free(forward());
  const fwd = b.timerStop() / reps;
  b.timerStart();
  for (let r = 0; r < reps; r++) free(backward(o2, s2));
  const bwd = b.timerStop() / reps;
  free([out, stat, o2, s2, q, k, v, dout, R]);
  return { shape: s.name, op, forward_ms: fwd, backward_ms: bwd, peak_mib: peak / 2 ** 20 };
}

function main(): void {
  const opts = new Command()
    .option('--device <device>', 'cpu | cuda | cuda-emu', 'cuda')
    .option('--reps <n>', 'calls per timing', '20')
    .option('--shapes <list>', 'shape sets: paper, long, quick', 'paper,long')
    .option('--out <file>', 'JSON results')
    .parse()
    .opts();
  const device = checkDevice(opts.device);
  const b = backendFor(device);
  const reps = Number(opts.reps);
  console.log(`device ${device}: ${b.describe()}`);
  const rows: Row[] = [];
  for (const set of (opts.shapes as string).split(',')) {
    if (!SHAPES[set]) throw new Error(`--shapes: unknown set '${set}' (expected ${Object.keys(SHAPES).join(', ')})`);
    for (const s of SHAPES[set]) {
      for (const op of ['fourier', 'dot'] as const) {
        try {
          rows.push(measure(b, s, op, set === 'long' ? Math.max(1, Math.floor(reps / 4)) : reps));
        } catch (e) {
          rows.push({
            shape: s.name,
            op,
            forward_ms: NaN,
            backward_ms: NaN,
            peak_mib: NaN,
            note: (e as Error).message.split('\n')[0],
          });
        }
        const r = rows[rows.length - 1];
        console.log(
          `${r.shape} ${op}: forward ${r.forward_ms.toFixed(3)} ms, backward ${r.backward_ms.toFixed(3)} ms, peak ${r.peak_mib.toFixed(1)} MiB${r.note ? ` (${r.note})` : ''}`,
        );
      }
    }
  }
  console.log(`\n| shape | attention | forward ms | backward ms | peak device MiB |\n|---|---|---|---|---|`);
  for (const r of rows)
    console.log(
      `| ${r.shape} | ${r.op} | ${r.forward_ms.toFixed(3)} | ${r.backward_ms.toFixed(3)} | ${r.peak_mib.toFixed(1)} |`,
    );
  if (opts.out) fs.writeFileSync(opts.out, JSON.stringify({ device, describe: b.describe(), reps, rows }, null, 1));
  if (rows.some((r) => r.note !== undefined)) process.exitCode = 1;
}

main();
