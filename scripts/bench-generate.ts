// Generation benchmark (issue 20): the key-value cache against recomputing the window, for the
// language models of a training output folder (or one checkpoint). Per model:
//   last position   the time of the token at the last position of the context: with the cache,
//                   one step [1, 1] against context - 1 cached tokens (before each timed step,
//                   untimed: the causal pass over context - 2 tokens, then the step of the token
//                   before, as in generation), through the blocks' fused decoding step (one native
//                   call per block, csrc/binding/decode_step.cpp) and op by op (fusedStep: false);
//                   without, the causal pass over the whole window [1, context], output layer on
//                   its last row only (logProbs with last: true, as generate does);
//   whole window    tokens/s of LanguageModel.generate from one token ('<eos>') until the window
//                   is full (context - 1 tokens): the cache with the fused step, the cache op by
//                   op, and no cache, sampling as `fourierformer generate` does (temperature 0.8,
//                   top-k 40, top-p 0.95, seed 1);
//   step repeated   (--repeat n) the fused and the op-by-op step at the last position, each n
//                   times in a row over the same cache (the step's time with less timer noise);
//   attention op    the fused op alone at the decoding shape [1, H, 1, Dh] against Nk = context - 1
//                   keys, and at the prompt's [1, H, context, Dh] causal (what the cpu kernel's
//                   threads over (b, h) get at B = 1: compare runs under OMP_NUM_THREADS=1 and 2).
// The sides alternate within each round, so that a busy shared machine slows both alike;
// the median and the range over the rounds are printed, with the load average, and written as
// JSON. Each time is read twice: the wall clock, and the process's CPU time (process.cpuUsage:
// user + system), which a machine shared with other jobs inflates far less than the wall clock
// (it does not count the time the process waits for a core). With OMP_NUM_THREADS=1 the CPU time
// is the work itself; with more threads it also counts the threads' spinning at barriers.
//   npx ts-node scripts/bench-generate.ts --checkpoint runs/ctx256 [--device cpu] [--rounds 5]
//     [--generations 2] [--repeat 0] [--out bench-generate.json]
import { Command } from 'commander';
import * as fs from 'fs';
import * as os from 'os';
import * as ff from '../lib';
import type { LanguageModel } from '../lib/models/language-model';
import { TEXT_SAMPLING } from '../lib/train/lm-text';
import { checkpointsIn } from '../lib/train/run-folder';
import { loadLMForText } from '../lib/train/run-lm';

interface Stat {
  median: number;
  min: number;
  max: number;
}

function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
}

const fmt = (s: Stat, digits = 2) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;

/** Wall and CPU milliseconds. */
interface Time {
  wall: number;
  cpu: number;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** The wall and CPU milliseconds of fn (which reads its result back: every backend finished). */
function timed(fn: () => void): Time {
  const t0 = performance.now();
  const c0 = cpuMs();
  fn();
  return { wall: performance.now() - t0, cpu: cpuMs() - c0 };
}

const scaled = (t: Time, k: number): Time => ({ wall: t.wall * k, cpu: t.cpu * k });

/** A window of token ids (the corpus's frequent words, cycling), deterministic. */
const windowIds = (n: number, V: number) => Array.from({ length: n }, (_, i) => (i * 7 + 1) % Math.min(V, 500));

type Step = 'fused' | 'ops';

function lastPosition(
  model: LanguageModel,
  ids: number[],
  repeat: number,
): { cached: Record<Step, Time>; repeated: Record<Step, Time>; full: Time } {
  const device = model.device;
  const C = ids.length;
  const cached = { fused: { wall: 0, cpu: 0 }, ops: { wall: 0, cpu: 0 } };
  const repeated = { fused: { wall: 0, cpu: 0 }, ops: { wall: 0, cpu: 0 } };
  for (const step of ['fused', 'ops'] as Step[]) {
    const fusedStep = step === 'fused';
    const cache = new ff.nn.KVCache(model.blocks.length);
    ff.noGrad(() => {
      // as generation meets it: the step before it ran just before (not the causal pass)
      ff.tidy(() =>
        model.logProbs(ff.tensor(ids.slice(0, C - 2), [1, C - 2], { device }), { cache, last: true }).toFloat32Array(),
      );
      ff.tidy(() =>
        model.logProbs(ff.tensor([ids[C - 2]], [1, 1], { device }), { cache, last: true, fusedStep }).toFloat32Array(),
      );
      const last = () =>
        ff.tidy(() =>
          model
            .logProbs(ff.tensor([ids[C - 1]], [1, 1], { device }), { cache, last: true, fusedStep })
            .toFloat32Array(),
        );
      cached[step] = timed(last);
      if (repeat > 0) {
        // the same position again: the cache cropped back to the tokens before it
        repeated[step] = scaled(
          timed(() => {
            for (let i = 0; i < repeat; i++) {
              cache.crop(C - 1);
              last();
            }
          }),
          1 / repeat,
        );
      }
    });
    cache.dispose();
  }
  const full = ff.noGrad(() =>
    timed(() => ff.tidy(() => model.logProbs(ff.tensor(ids, [1, C], { device }), { last: true }).toFloat32Array())),
  );
  return { cached, repeated, full };
}

function attentionOp(model: LanguageModel, rows: number, keys: number): Time {
  const attn = model.blocks.at(0).attn;
  const [H, Dh] = [attn.numHeads, attn.headDim];
  const device = model.device;
  return ff.noGrad(() =>
    ff.tidy(() => {
      const u = (n: number, seed: number) => ff.tensor(ff.reference.uniform(n, -1, 1, seed), undefined, { device });
      const q = u(H * rows * Dh, 1).reshape([1, H, rows, Dh]);
      const k = u(H * keys * Dh, 2).reshape([1, H, keys, Dh]);
      const v = u(H * keys * Dh, 3).reshape([1, H, keys, Dh]);
      const causal = rows === keys;
      const run = () =>
        (attn.R !== null
          ? ff.fourierAttention(q, k, v, attn.R, { causal })
          : ff.dotProductAttention(q, k, v, { causal })
        ).toFloat32Array();
      run();
      const n = 20;
      return scaled(
        timed(() => {
          for (let i = 0; i < n; i++) run();
        }),
        1 / n,
      );
    }),
  );
}

async function main(): Promise<void> {
  const opts = new Command()
    .requiredOption('--checkpoint <path>', 'a checkpoint, a run folder, or an output folder of runs')
    .option('--device <device>', 'cpu, cuda or cuda-emu', process.env.FOURIERFORMER_DEVICE || 'cpu')
    .option('--rounds <n>', 'rounds of measurements', (v) => Number(v), 5)
    .option('--generations <n>', 'rounds that also time a whole window of generation, each way', (v) => Number(v), 2)
    .option(
      '--repeat <n>',
      'times the step at the last position is also repeated in a row, each way (0: not)',
      (v) => Number(v),
      0,
    )
    .option('--out <file>', 'JSON results', 'bench-generate.json')
    .parse()
    .opts<{
      checkpoint: string;
      device: ff.Device;
      rounds: number;
      generations: number;
      repeat: number;
      out: string;
    }>();
  const threads = process.env.OMP_NUM_THREADS ?? `${os.cpus().length} (all cores)`;
  const loadStart = os.loadavg();
  console.log(
    `device ${opts.device}, OMP_NUM_THREADS ${threads}, ${os.cpus()[0]?.model} x ${os.cpus().length}, load average ${loadStart.map((x) => x.toFixed(1)).join(' ')}`,
  );
  const results: Record<string, unknown>[] = [];
  for (const file of checkpointsIn(opts.checkpoint)) {
    const { model, vocab, record } = loadLMForText(file, { device: opts.device, log: (l) => console.log(l) });
    const cfg = model.config;
    const ids = windowIds(cfg.context, cfg.vocabSize);
    const cached: Record<Step, Time[]> = { fused: [], ops: [] },
      repeated: Record<Step, Time[]> = { fused: [], ops: [] };
    const full: Time[] = [],
      opDecode: Time[] = [],
      opPrompt: Time[] = [];
    const rate: Record<'fused' | 'ops' | 'recomputed', Time[]> = { fused: [], ops: [], recomputed: [] };
    const n = cfg.context - 1;
    lastPosition(model, ids, opts.repeat); // warm-up
    for (let r = 0; r < opts.rounds; r++) {
      const t = lastPosition(model, ids, opts.repeat);
      for (const step of ['fused', 'ops'] as Step[]) {
        cached[step].push(t.cached[step]);
        repeated[step].push(t.repeated[step]);
      }
      full.push(t.full);
      opDecode.push(attentionOp(model, 1, cfg.context - 1));
      opPrompt.push(attentionOp(model, cfg.context, cfg.context));
      if (r < opts.generations) {
        for (const way of ['fused', 'ops', 'recomputed'] as const) {
          const ms = timed(() =>
            model.generate([vocab.eosId], {
              ...TEXT_SAMPLING,
              seed: 1,
              maxNewTokens: n,
              useCache: way !== 'recomputed',
              fusedStep: way === 'fused',
            }),
          );
          rate[way].push({ wall: n / (ms.wall / 1000), cpu: n / (ms.cpu / 1000) });
        }
      }
    }
    const both = (ts: Time[]) => ({ wall: stat(ts.map((t) => t.wall)), cpu: stat(ts.map((t) => t.cpu)) });
    const ratio = (ts: Time[], which: keyof Time) => stat(full.map((f, i) => f[which] / ts[i][which]));
    const speedup = (ts: Time[]) => ({ wall: ratio(ts, 'wall'), cpu: ratio(ts, 'cpu') });
    const line = {
      checkpoint: file,
      attention: record.attention,
      context: cfg.context,
      dModel: cfg.dModel,
      layers: cfg.numLayers,
      heads: cfg.numHeads,
      vocab: cfg.vocabSize,
      lastPositionMs: {
        fused: both(cached.fused),
        ops: both(cached.ops),
        recomputed: both(full),
        speedupFused: speedup(cached.fused),
        speedupOps: speedup(cached.ops),
        repeatedFused: opts.repeat > 0 ? both(repeated.fused) : null,
        repeatedOps: opts.repeat > 0 ? both(repeated.ops) : null,
      },
      tokensPerSecond: { fused: both(rate.fused), ops: both(rate.ops), recomputed: both(rate.recomputed) },
      attentionOpMs: { decodeRow: both(opDecode), promptCausal: both(opPrompt) },
    };
    results.push(line);
    const L = line.lastPositionMs,
      R = line.tokensPerSecond,
      O = line.attentionOpMs;
    console.log(
      `\n${record.attention} (${file}): context ${cfg.context}, d_model ${cfg.dModel}, ${cfg.numLayers} layers, ${cfg.numHeads} heads, vocabulary ${cfg.vocabSize}`,
    );
    console.log('  median (range) over the rounds          wall clock                          CPU time');
    const row = (label: string, w: Stat, c: Stat, digits = 2) =>
      console.log(`  ${label.padEnd(40)}${fmt(w, digits).padEnd(36)}${fmt(c, digits)}`);
    row('last position, cache fused (ms)', L.fused.wall, L.fused.cpu, 3);
    row('last position, cache op by op (ms)', L.ops.wall, L.ops.cpu, 3);
    row('last position, recomputed (ms)', L.recomputed.wall, L.recomputed.cpu);
    row('last position, speed-up fused (x)', L.speedupFused.wall, L.speedupFused.cpu, 1);
    row('last position, speed-up op by op (x)', L.speedupOps.wall, L.speedupOps.cpu, 1);
    if (L.repeatedFused !== null && L.repeatedOps !== null) {
      row(`step x ${opts.repeat} in a row, fused (ms)`, L.repeatedFused.wall, L.repeatedFused.cpu, 3);
      row(`step x ${opts.repeat} in a row, op by op (ms)`, L.repeatedOps.wall, L.repeatedOps.cpu, 3);
    }
    if (R.fused.cpu.median > 0) {
      row(`${n} tokens, cache fused (tokens/s)`, R.fused.wall, R.fused.cpu, 1);
      row(`${n} tokens, cache op by op (tokens/s)`, R.ops.wall, R.ops.cpu, 1);
      row(`${n} tokens, recomputed (tokens/s)`, R.recomputed.wall, R.recomputed.cpu, 1);
    }
    row(`attention op, 1 row x ${n} keys (ms)`, O.decodeRow.wall, O.decodeRow.cpu, 3);
    row(`attention op, causal ${cfg.context} rows (ms)`, O.promptCausal.wall, O.promptCausal.cpu, 3);
    model.dispose();
  }
  const loadEnd = os.loadavg();
  console.log(`\nload average at the end ${loadEnd.map((x) => x.toFixed(1)).join(' ')}`);
  fs.writeFileSync(
    opts.out,
    JSON.stringify({ device: opts.device, threads, loadStart, loadEnd, results }, null, 2) + '\n',
  );
  console.log(`written ${opts.out}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
