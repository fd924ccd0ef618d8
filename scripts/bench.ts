// `npm run bench`: every speed and memory figure of the package against PyTorch, in one run, and
// the docs generated from them (docs/benchmarks.json -> docs/benchmarks.md, docs/benchmarks.svg
// and the README's table, by scripts/bench-docs.ts).
//
//   attention  fwd+bwd at the papers' model shapes and at N = 256..4096: ours Fourier, dot and
//              Neural, PyTorch's SDPA, the paper's materialised Fourier attention and the Neural
//              Attention authors' materialised form where they fit
//   train      one training step of the bench LM, ours Fourier / dot against PyTorch's
//              materialised Fourier / SDPA (scripts/bench/train-lm.ts)
//   memory     peak resident memory growth of one fwd+bwd at N = 256..4096, each in a fresh process
//
// Fairness: PyTorch gets a fast allocator and the same thread count as ours (scripts/torch-peer.ts;
// ours is bounded by scripts/bench/threads.ts), both sides a warm-up run before every block of
// timed runs. Rounds interleave the two sides, figure by figure, alternating which goes first,
// so that a shared host's changing load reaches both alike; every run is kept in the JSON.
//   npm run bench [-- --rounds 3 --threads 2 --only attention --device cpu --batch 16 --out file.json]
import { Command, Option } from 'commander';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Device } from '../lib/native';
import {
  ALL_SHAPES,
  attentionCase,
  Case,
  dims,
  LENGTH_SHAPES,
  materialisedBytes,
  MODEL_SHAPES,
  neuralMaterialisedBytes,
  OurKind,
} from './bench/attention';
import { writeDocs } from './bench/docs';
import { describeMachine, describeOurs } from './bench/machine';
import type { Entry, Figures, MemoryEntry, Results, Skipped } from './bench/results';
import { memoryOurs, positiveInt as int, runHeader, startPeer } from './bench/run';
import { figure, median, Timed } from './bench/stats';
import { OUR_THREADS_MECHANISM, boundOurThreads } from './bench/threads';
import { Budget, timeRuns } from './bench/timing';
import { CONFIG, trainCase, TrainConfig, TrainKind } from './bench/train-lm';
import { runPeer } from './torch-peer';

type Part = 'attention' | 'train' | 'memory';
const OUR_KINDS: OurKind[] = ['fourier', 'dot', 'neural'];
const ROOT = path.resolve(__dirname, '..');

interface Options {
  device: Device;
  threads: number;
  rounds: number;
  only?: Part;
  shapes?: string;
  attentionMs: number;
  trainMs: number;
  batch: number;
  materialisedGib: number;
  peer: boolean;
  out?: string;
  docs?: boolean;
}

function parseOptions(): Options {
  return new Command()
    .description('fwd+bwd attention, training-step and memory benchmarks against PyTorch; writes the JSON and the docs')
    .addOption(
      new Option('--device <device>', 'ours: cpu, cuda or cuda-emu (PyTorch: cuda for cuda, else cpu)')
        .choices(['cpu', 'cuda', 'cuda-emu'])
        .default('cpu'),
    )
    .option(
      '--threads <n>',
      'threads of each side (default: OMP_NUM_THREADS, else every logical CPU)',
      int('--threads'),
      Number(process.env.OMP_NUM_THREADS) || os.availableParallelism(),
    )
    .option('--rounds <n>', 'rounds; each times every figure once on each side', int('--rounds'), 3)
    .addOption(new Option('--only <part>', 'one part only').choices(['attention', 'train', 'memory']))
    .option(
      '--shapes <names>',
      `attention shapes, comma-separated (default all: ${ALL_SHAPES.map((s) => s.name).join(', ')})`,
    )
    .option(
      '--attention-ms <ms>',
      'timed wall time per attention figure and round (after its warm-up run)',
      int('--attention-ms'),
      300,
    )
    .option('--train-ms <ms>', 'timed wall time per training-step figure and round', int('--train-ms'), 1000)
    .option('--batch <n>', `sequences per training step (default ${CONFIG.batch})`, int('--batch'), CONFIG.batch)
    .option(
      '--materialised-gib <gib>',
      "PyTorch's materialised Fourier attention where its fwd+bwd needs at most this (and half the free memory)",
      Number,
      4,
    )
    .option('--no-peer', 'ours only, without PyTorch')
    .option('--out <file>', 'the JSON (default: docs/benchmarks.json for a full cpu run, else bench-<device>.json)')
    .option(
      '--docs',
      'write docs/benchmarks.md, docs/benchmarks.svg and the README table from the JSON (default: for a full cpu run)',
    )
    .option('--no-docs', 'do not write the docs')
    .parse()
    .opts<Options>();
}

/** The times of one figure over the rounds, as they come. */
class Collector {
  private readonly rounds = new Map<string, Timed[]>();
  private readonly skipped = new Map<string, string>();

  add(key: string, t: Timed): void {
    this.rounds.set(key, [...(this.rounds.get(key) ?? []), t]);
  }

  skip(key: string, why: string): void {
    this.skipped.set(key, why);
  }

  entry(key: string): Entry | undefined {
    const r = this.rounds.get(key);
    if (r) return figure(r);
    const why = this.skipped.get(key);
    return why === undefined ? undefined : { skipped: why };
  }

  figures(prefix: string, names: string[]): Figures {
    const out: Figures = {};
    for (const n of names) {
      const e = this.entry(`${prefix}/${n}`);
      if (e) out[n] = e;
    }
    return out;
  }
}

const ms = (t: Timed) => median(t.times_ms);
const fmt = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

async function main(): Promise<void> {
  const opts = parseOptions();
  const started = Date.now();
  const full =
    opts.only === undefined && opts.shapes === undefined && opts.device === 'cpu' && opts.batch === CONFIG.batch;
  const config: TrainConfig = { ...CONFIG, batch: opts.batch };
  const out = path.resolve(
    opts.out ?? (full ? path.join(ROOT, 'docs', 'benchmarks.json') : `bench-${opts.device}.json`),
  );
  const docs = opts.docs ?? (full && opts.out === undefined);
  const parts: Part[] = opts.only ? [opts.only] : ['attention', 'train', 'memory'];
  const shapes = opts.shapes
    ? ALL_SHAPES.filter((s) =>
        opts
          .shapes!.split(',')
          .map((x) => x.trim())
          .includes(s.name),
      )
    : ALL_SHAPES;
  if (shapes.length === 0)
    throw new Error(`--shapes: none of ${opts.shapes} is one of ${ALL_SHAPES.map((s) => s.name).join(', ')}`);

  boundOurThreads(opts.threads);
  const machine = describeMachine();
  const ours = describeOurs(opts.device, opts.threads, OUR_THREADS_MECHANISM);
  console.log(
    `machine: ${machine.cpu}, ${machine.logical_cpus} logical CPUs, load average ${machine.loadavg_start.map((l) => l.toFixed(2)).join(' ')}`,
  );
  console.log(
    `ours: fourierformer ${ours.package} (${ours.commit}), Node ${ours.node}, ${opts.device} (${ours.backend}${ours.isa ? `; kernels: ${ours.isa}` : ''}), ${opts.threads} threads`,
  );

  const peer = await startPeer(opts.peer, opts.threads, opts.device === 'cuda' ? 'cuda' : 'cpu', opts.device);
  const proc = peer.proc;

  const budgetA: Budget = { targetMs: opts.attentionMs, minRuns: 2, maxRuns: 20 };
  const budgetT: Budget = { targetMs: opts.trainMs, minRuns: 2, maxRuns: 10 };
  // The materialised attention's memory, bounded by the option and by half of what is free.
  const maxBytes = Math.min(opts.materialisedGib * 2 ** 30, os.freemem() / 2);
  const limitGib = Number((maxBytes / 2 ** 30).toFixed(1));
  const col = new Collector();
  const tooBig = (bytes: number) => `needs about ${(bytes / 2 ** 30).toFixed(1)} GiB, over the ${limitGib} GiB limit`;
  const timeOurs = (key: string, make: () => Case, budget: Budget) => {
    const c = make();
    try {
      const t = timeRuns(c.run, opts.device, budget);
      col.add(key, t);
      return t;
    } finally {
      c.dispose();
    }
  };
  const timePeer = async (key: string, req: Record<string, unknown>, budget: Budget) => {
    const t = await proc!.request<Timed>({
      ...req,
      target_ms: budget.targetMs,
      min_runs: budget.minRuns,
      max_runs: budget.maxRuns,
    });
    col.add(key, t);
    return t;
  };
  const trainCases = new Map<TrainKind, Case>();

  for (let round = 1; round <= opts.rounds; round++) {
    const peerFirst = round % 2 === 0;
    if (parts.includes('attention')) {
      for (const s of shapes) {
        const key = `attention/${s.name}`;
        const line: string[] = [];
        const oursSide = async () => {
          for (const kind of OUR_KINDS) {
            line.push(
              `ours ${kind} ${fmt(ms(timeOurs(`${key}/ours_${kind}`, () => attentionCase(s, kind, opts.device), budgetA)))}`,
            );
          }
        };
        const peerSide = async () => {
          if (!proc) return;
          line.push(
            `SDPA ${fmt(ms(await timePeer(`${key}/torch_sdpa`, { op: 'attention', shape: s, kind: 'sdpa' }, budgetA)))}`,
          );
          for (const [name, kind, bytes] of [
            ['torch_materialised', 'materialised', materialisedBytes(s)],
            ['torch_neural', 'neural_materialised', neuralMaterialisedBytes(s)],
          ] as const) {
            if (bytes > maxBytes) col.skip(`${key}/${name}`, tooBig(bytes));
            else
              line.push(
                `${kind} ${fmt(ms(await timePeer(`${key}/${name}`, { op: 'attention', shape: s, kind }, budgetA)))}`,
              );
          }
        };
        for (const side of peerFirst ? [peerSide, oursSide] : [oursSide, peerSide]) await side();
        console.log(`round ${round}/${opts.rounds} ${s.name} (${dims(s)}), median ms: ${line.join(', ')}`);
      }
    }
    if (parts.includes('train')) {
      for (const kind of ['dot', 'fourier'] as TrainKind[]) {
        const line: string[] = [];
        const oursSide = async () => {
          if (!trainCases.has(kind)) trainCases.set(kind, trainCase(kind, opts.device, config));
          const t = timeRuns(trainCases.get(kind)!.run, opts.device, budgetT);
          col.add(`train/ours_${kind}`, t);
          line.push(`ours ${fmt(ms(t))}`);
        };
        const peerSide = async () => {
          if (!proc) return;
          line.push(
            `PyTorch ${fmt(ms(await timePeer(`train/torch_${kind}`, { op: 'train', config, kind }, budgetT)))}`,
          );
        };
        for (const side of peerFirst ? [peerSide, oursSide] : [oursSide, peerSide]) await side();
        console.log(`round ${round}/${opts.rounds} training step, ${kind} attention, median ms: ${line.join(', ')}`);
      }
    }
  }
  for (const c of trainCases.values()) c.dispose();
  proc?.close();

  let memory: MemoryEntry[] | undefined;
  if (parts.includes('memory')) {
    memory = [];
    if (opts.device !== 'cpu') console.log('memory: resident memory is a cpu figure; skipped on', opts.device);
    for (const s of opts.device === 'cpu' ? LENGTH_SHAPES.filter((x) => shapes.includes(x)) : []) {
      const mib: Record<string, number | Skipped> = {};
      for (const kind of OUR_KINDS) mib[`ours_${kind}`] = memoryOurs(s, kind);
      if (peer.found) {
        const found = peer.found;
        const peerMemory = (kind: string) =>
          runPeer<{ peak_rss_growth_mib: number }>(
            found,
            'serve.py',
            [
              { threads: opts.threads, device: 'cpu' },
              { op: 'memory', shape: s, kind },
            ],
            peer.env,
          ).peak_rss_growth_mib;
        mib.torch_sdpa = peerMemory('sdpa');
        mib.torch_materialised =
          materialisedBytes(s) > maxBytes ? { skipped: tooBig(materialisedBytes(s)) } : peerMemory('materialised');
        mib.torch_neural =
          neuralMaterialisedBytes(s) > maxBytes
            ? { skipped: tooBig(neuralMaterialisedBytes(s)) }
            : peerMemory('neural_materialised');
      }
      console.log(
        `memory ${s.name}: peak RSS growth MiB: ${Object.entries(mib)
          .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(1) : '-'}`)
          .join(', ')}`,
      );
      memory.push({ shape: s, mib });
    }
  }

  const results: Results = {
    ...runHeader('npm run bench', started, machine, ours, peer),
    settings: {
      rounds: opts.rounds,
      threads: opts.threads,
      attention_target_ms: opts.attentionMs,
      train_target_ms: opts.trainMs,
      materialised_gib: limitGib,
    },
  };
  if (parts.includes('attention')) {
    results.attention = shapes.map((s) => ({
      shape: s,
      group: MODEL_SHAPES.includes(s) ? ('model' as const) : ('length' as const),
      figures: col.figures(`attention/${s.name}`, [
        'ours_fourier',
        'ours_dot',
        'ours_neural',
        'torch_sdpa',
        'torch_materialised',
        'torch_neural',
      ]),
    }));
  }
  if (parts.includes('train'))
    results.train = {
      config,
      figures: col.figures('train', ['ours_dot', 'ours_fourier', 'torch_dot', 'torch_fourier']),
    };
  if (memory) results.memory = memory;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(results, null, 1) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), out)} (${results.duration_s} s)`);
  if (!results.comparable.ok)
    console.warn(`the ratios are marked not comparable: ${results.comparable.why.join('; ')}`);
  if (docs) for (const f of await writeDocs(results, ROOT)) console.log(`wrote ${path.relative(process.cwd(), f)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
