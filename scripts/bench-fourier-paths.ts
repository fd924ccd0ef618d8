// Fourier attention's cost by the sinc path its inputs take (csrc/cpu/fourier_attention.cpp): the
// same shapes with q and k uniform in (-r, r) for r = 0.8 (the benchmark's inputs: every |x| =
// R |q - k| within the polynomial's bound 4.25, the bounded path), 1.5 (a block's features split
// between the bounded and the general path, as in a freshly initialised model) and 4 (nearly
// every feature on the general path); R in (1.5, 2.5) per head as the benchmark has it. Prints
// fwd+bwd milliseconds (median of interleaved rounds), nanoseconds per (pair, feature) and the
// ratio to r = 0.8 in the same round, with our dot-product attention on the same inputs as the
// reference point. The bench LM's shape (B16 H8 N128 D16 causal) comes first.
//   npx ts-node --transpile-only scripts/bench-fourier-paths.ts [--threads 2] [--rounds 3]
import { Command } from 'commander';
import * as ff from '../lib';
import { attentionCase, MODEL_SHAPES, LENGTH_SHAPES, type Shape } from './bench/attention';
import { describeMachine, ourIsa } from './bench/machine';
import { median } from './bench/stats';
import { timeRuns } from './bench/timing';

const o = new Command()
  .option('--threads <n>', 'threads', '2')
  .option('--rounds <n>', 'interleaved rounds', '3')
  .parse()
  .opts();
ff.setNumThreads(Number(o.threads));
const RANGES = [0.8, 1.5, 4];
const shapes: Shape[] = [
  { name: 'bench LM', B: 16, H: 8, N: 128, D: 16, causal: true },
  ...MODEL_SHAPES.slice(0, 3),
  LENGTH_SHAPES[LENGTH_SHAPES.length - 1],
];
const budget = { targetMs: 300, minRuns: 2, maxRuns: 200 };

type Kind = 'fourier' | 'dot';

const cases = shapes.flatMap((s) => [
  ...RANGES.map((r) => ({ s, kind: 'fourier' as Kind, r })),
  { s, kind: 'dot' as Kind, r: 0.8 },
]);
const times = cases.map(() => [] as number[]);
const ratios = cases.map(() => [] as number[]);
for (let round = 0; round < Number(o.rounds); round++) {
  process.stderr.write(`round ${round + 1} of ${o.rounds}\n`);
  cases.forEach((c, i) => {
    const run = attentionCase(c.s, c.kind, 'cpu', c.r);
    times[i].push(median(timeRuns(run.run, 'cpu', budget).times_ms));
    run.dispose();
  });
  cases.forEach((c, i) => {
    const base = cases.findIndex((b) => b.s === c.s && b.kind === 'fourier' && b.r === 0.8);
    ratios[i].push(times[i][round] / times[base][round]);
  });
}

console.log(
  `${describeMachine().cpu}, cpu kernels ${ourIsa()}, ${o.threads} threads; medians of ${o.rounds} rounds (per-round ratio range)`,
);
console.log('| shape | attention, q and k in | fwd+bwd ms | ns per (pair, feature) | / Fourier at 0.8 |');
console.log('| --- | --- | ---: | ---: | ---: |');
cases.forEach((c, i) => {
  const { B, H, N, D, causal } = c.s;
  const pairs = B * H * (causal ? (N * (N + 1)) / 2 : N * N);
  const ms = median(times[i]);
  const lo = Math.min(...ratios[i]).toFixed(2),
    hi = Math.max(...ratios[i]).toFixed(2);
  const label = `${c.kind === 'fourier' ? 'Fourier' : 'dot-product'}, (-${c.r}, ${c.r})`;
  const dims = `${c.s.name} (B${B} H${H} N${N} D${D}${causal ? ' causal' : ''})`;
  console.log(
    `| ${dims} | ${label} | ${ms.toFixed(2)} | ${((ms * 1e6) / (pairs * D)).toFixed(3)} | ${median(ratios[i]).toFixed(2)}x (${lo}-${hi}) |`,
  );
});
