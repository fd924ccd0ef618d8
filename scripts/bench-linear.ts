// `npm run bench:linear`: linear attention (FAVOR+: ff.performerAttention, and FLT's attention on
// its extended rows) against PyTorch's SDPA and our fused Fourier attention, fwd+bwd time and
// peak memory from N = 256 to N = 16384 (one sequence of the small LM's heads, B1 H8 D16,
// causal), with the same fairness as `npm run bench` (scripts/bench.ts: PyTorch with tcmalloc
// and our thread count, a warm-up before every block of timed runs, rounds interleaving the two
// sides figure by figure, first side alternating). Writes docs/linear-attention.json and, from
// it, docs/linear-attention.md (scripts/bench/linear-docs.ts).
//   npm run bench:linear [-- --rounds 2 --max-n 16384 --threads 2 --no-peer --out file.json]
import { Command } from 'commander';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { attentionCase, dims, OurKind, Shape } from './bench/attention';
import { LINEAR_KINDS, LinearResults, writeLinearDocs } from './bench/linear-docs';
import { describeMachine, describeOurs } from './bench/machine';
import type { Entry, Skipped } from './bench/results';
import { memoryOurs, positiveInt as int, runHeader, startPeer } from './bench/run';
import { figure, median, Timed } from './bench/stats';
import { boundOurThreads, OUR_THREADS_MECHANISM } from './bench/threads';
import { Budget, timeRuns } from './bench/timing';
import { runPeer } from './torch-peer';

const ROOT = path.resolve(__dirname, '..');
const LENGTHS = [256, 512, 1024, 2048, 4096, 8192, 16384];

interface Options {
  threads: number;
  rounds: number;
  maxN: number;
  attentionMs: number;
  peer: boolean;
  memory: boolean;
  out?: string;
}

function parseOptions(): Options {
  return new Command()
    .description(
      'linear attention (Performer, FLT) against SDPA and Fourier attention, N = 256 to 16384: fwd+bwd time and peak memory',
    )
    .option(
      '--threads <n>',
      'threads of each side (default: OMP_NUM_THREADS, else every logical CPU)',
      int('--threads'),
      Number(process.env.OMP_NUM_THREADS) || os.availableParallelism(),
    )
    .option('--rounds <n>', 'rounds; each times every figure once on each side', int('--rounds'), 2)
    .option('--max-n <n>', 'the longest sequence', int('--max-n'), 16384)
    .option(
      '--attention-ms <ms>',
      'timed wall time per figure and round (after its warm-up run)',
      int('--attention-ms'),
      300,
    )
    .option('--no-peer', 'ours only, without PyTorch')
    .option('--no-memory', 'times only')
    .option('--out <file>', 'the JSON (default: docs/linear-attention.json, and the docs from it)')
    .parse()
    .opts<Options>();
}

const fmt = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const ms = (t: Timed) => median(t.times_ms);

async function main(): Promise<void> {
  const opts = parseOptions();
  const started = Date.now();
  const out = path.resolve(opts.out ?? path.join(ROOT, 'docs', 'linear-attention.json'));
  const shapes: Shape[] = LENGTHS.filter((N) => N <= opts.maxN).map((N) => ({
    name: `N ${N}`,
    B: 1,
    H: 8,
    N,
    D: 16,
    causal: true,
  }));
  boundOurThreads(opts.threads);
  const machine = describeMachine();
  const ours = describeOurs('cpu', opts.threads, OUR_THREADS_MECHANISM);
  console.log(
    `machine: ${machine.cpu}, ${machine.logical_cpus} logical CPUs, load average ${machine.loadavg_start.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const peer = await startPeer(opts.peer, opts.threads, 'cpu', 'cpu');
  const proc = peer.proc;

  const budget: Budget = { targetMs: opts.attentionMs, minRuns: 2, maxRuns: 20 };
  const rounds = new Map<string, Timed[]>();
  const add = (key: string, t: Timed) => rounds.set(key, [...(rounds.get(key) ?? []), t]);
  for (let round = 1; round <= opts.rounds; round++) {
    for (const s of shapes) {
      const line: string[] = [];
      const oursSide = async () => {
        for (const kind of ['performer', 'flt', 'fourier'] as OurKind[]) {
          const c = attentionCase(s, kind, 'cpu');
          try {
            const t = timeRuns(c.run, 'cpu', budget);
            add(`${s.name}/ours_${kind}`, t);
            line.push(`ours ${kind} ${fmt(ms(t))}`);
          } finally {
            c.dispose();
          }
        }
      };
      const peerSide = async () => {
        if (!proc) return;
        const t = await proc.request<Timed>({
          op: 'attention',
          shape: s,
          kind: 'sdpa',
          target_ms: budget.targetMs,
          min_runs: budget.minRuns,
          max_runs: budget.maxRuns,
        });
        add(`${s.name}/torch_sdpa`, t);
        line.push(`SDPA ${fmt(ms(t))}`);
      };
      for (const side of round % 2 === 0 ? [peerSide, oursSide] : [oursSide, peerSide]) await side();
      console.log(`round ${round}/${opts.rounds} ${s.name} (${dims(s)}), median ms: ${line.join(', ')}`);
    }
  }
  proc?.close();

  const memory: LinearResults['memory'] = [];
  if (opts.memory) {
    for (const s of shapes) {
      const mib: Record<string, number | Skipped> = {};
      for (const kind of ['performer', 'flt', 'fourier'] as OurKind[]) mib[`ours_${kind}`] = memoryOurs(s, kind);
      if (peer.found)
        mib.torch_sdpa = runPeer<{ peak_rss_growth_mib: number }>(
          peer.found,
          'serve.py',
          [
            { threads: opts.threads, device: 'cpu' },
            { op: 'memory', shape: s, kind: 'sdpa' },
          ],
          peer.env,
        ).peak_rss_growth_mib;
      console.log(
        `memory ${s.name}: peak RSS growth MiB: ${Object.entries(mib)
          .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(1) : '-'}`)
          .join(', ')}`,
      );
      memory.push({ shape: s, mib });
    }
  }
  const results: LinearResults = {
    ...runHeader('npm run bench:linear', started, machine, ours, peer),
    settings: { rounds: opts.rounds, threads: opts.threads, attention_target_ms: opts.attentionMs },
    lengths: shapes.map((s) => {
      const figures: Record<string, Entry> = {};
      for (const k of LINEAR_KINDS) {
        const r = rounds.get(`${s.name}/${k}`);
        if (r) figures[k] = figure(r);
      }
      return { shape: s, figures };
    }),
    memory,
  };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(results, null, 1) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), out)} (${results.duration_s} s)`);
  if (opts.out === undefined)
    for (const f of writeLinearDocs(results, ROOT)) console.log(`wrote ${path.relative(process.cwd(), f)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
