// `npm run bench:distributed`: data parallelism on this machine, over Open MPI (docs/distributed.md
// holds the figures and how they were taken).
//   step       the bench LM's training step (scripts/bench/train-lm.ts: 2048 tokens, AdamW,
//              clipping): 1 rank x T threads against T ranks x 1 thread (mpirun, each rank
//              2048 / T tokens, DistributedDataParallel): tokens/s, and the share of the step
//              spent on communication: waiting at the end of backward for reductions still
//              running (not hidden behind the backward), and the time the MPI thread spent in
//              collectives at all (hidden or not);
//   allreduce  bus bandwidth (2 (n-1)/n x bytes / time, NCCL-tests' convention) of the gradient
//              all-reduce as DistributedDataParallel runs it (ff.distributed.allReduce of a cpu
//              tensor: the MPI thread's nonblocking MPI_Iallreduce, polled) against MPI's own
//              figure for the same sizes: osu_allreduce's loop of blocking MPI_Allreduce on host
//              buffers, in C (the MPI addon's benchAllReduce).
// Rounds interleave the configurations, alternating which goes first; the output gives the
// median and the range over rounds. A busy host shows in the ranges: report them.
//   npx ts-node --transpile-only scripts/bench-distributed.ts [--rounds 3] [--threads 2] [--steps 8]
//     [--only step|allreduce]
import { spawnSync } from 'child_process';
import { Command } from 'commander';
import * as os from 'os';
import * as ff from '../lib';
import { mpiAddon } from '../lib/distributed/mpi';
import { BenchLM, benchBatch, CONFIG } from './bench/train-lm';

const SIZES = [4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20];

interface StepResult {
  ranks: number;
  threads: number;
  tokensPerSecond: number;
  exposedShare: number;
  busyShare: number;
  secondsPerStep: number;
}
interface ReduceResult {
  bytes: number;
  ours: number;
  mpi: number;
}

/** A rank of the step benchmark: warm-up steps, then `steps` timed ones; rank 0 prints the result. */
function stepRole(steps: number): void {
  const { rank, worldSize } = ff.distributed.init({ device: 'cpu' });
  const c = CONFIG;
  const model = new BenchLM('fourier', 'cpu');
  const ddp = worldSize > 1 ? new ff.nn.DistributedDataParallel(model) : null;
  const opt = new ff.optim.AdamW(model.parameters(), { lr: c.lr, weightDecay: 0.01 });
  const rows = c.batch / worldSize,
    n = rows * c.context;
  const { ids, targets } = benchBatch();
  const idsT = ff.tensor(ids.slice(rank * n, (rank + 1) * n), [rows, c.context]);
  const targetsT = ff.tensor(targets.slice(rank * n, (rank + 1) * n), [rows, c.context]);
  const step = () =>
    ff.tidy(() => {
      opt.zeroGrad();
      const loss = model.loss(idsT, targetsT);
      loss.backward();
      ff.optim.clipGradNorm_(model.parameters(), c.clip);
      opt.step();
      ff.distributed.allReduceNumbers([loss.item()]); // the trainer's one small all-reduce per step
    });
  for (let i = 0; i < 2; i++) step();
  ff.distributed.barrier();
  const wait0 = ddp?.stats.waitSeconds ?? 0;
  ff.distributed.commCounters(true);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const seconds = (performance.now() - t0) / 1000;
  const busy = ff.distributed.commCounters().busySeconds;
  const exposed = (ddp?.stats.waitSeconds ?? 0) - wait0;
  const [slowest, waited, inMpi] = [
    ff.distributed.allReduceNumbers([seconds], 'max')[0],
    ff.distributed.allReduceNumbers([exposed], 'avg')[0],
    ff.distributed.allReduceNumbers([busy], 'avg')[0],
  ];
  if (rank === 0) {
    const result: StepResult = {
      ranks: worldSize,
      threads: ff.getNumThreads(),
      tokensPerSecond: (steps * c.batch * c.context) / slowest,
      exposedShare: waited / slowest,
      busyShare: inMpi / slowest,
      secondsPerStep: slowest / steps,
    };
    console.log(JSON.stringify(result));
  }
}

/** A rank of the all-reduce benchmark: each size through ours and through MPI's own loop. */
function allReduceRole(): void {
  const { rank, worldSize } = ff.distributed.init({ device: 'cpu' });
  const mpi = mpiAddon();
  for (const bytes of SIZES) {
    const count = bytes / 4;
    const iterations = Math.max(5, Math.min(200, Math.floor(2e8 / bytes)));
    const t = ff.zeros([count]);
    let total = 0;
    for (let i = 0; i < iterations + 3; i++) {
      const t0 = performance.now();
      ff.distributed.allReduce(t, 'sum');
      if (i >= 3) total += (performance.now() - t0) / 1000;
      ff.distributed.barrier();
    }
    t.dispose();
    const ours = ff.distributed.allReduceNumbers([total / iterations], 'avg')[0];
    const own = mpi.benchAllReduce(count, iterations);
    const factor = (2 * (worldSize - 1)) / worldSize;
    if (rank === 0)
      console.log(
        JSON.stringify({
          bytes,
          ours: (factor * bytes) / ours / 1e9,
          mpi: (factor * bytes) / own / 1e9,
        } satisfies ReduceResult),
      );
  }
}

function spawnRanks(ranks: number, threads: number, args: string[]): string {
  const script = ['-r', 'ts-node/register/transpile-only', __filename, ...args];
  const env = { ...process.env, FOURIERFORMER_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const r =
    ranks === 1
      ? spawnSync(process.execPath, script, { encoding: 'utf8', env })
      : spawnSync(
          'mpirun',
          ['--allow-run-as-root', '--oversubscribe', '-np', String(ranks), process.execPath, ...script],
          { encoding: 'utf8', env },
        );
  if (r.status !== 0) throw new Error(`${ranks} ranks: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs: number[], f: (x: number) => string) =>
  `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;

function main(): void {
  const program = new Command()
    .option('--role <role>', 'internal: run as a rank (step | allreduce)')
    .option('--rounds <n>', 'rounds', (v) => Number(v), 3)
    .option('--threads <n>', 'cores to share: 1 rank x n threads against n ranks x 1 thread', (v) => Number(v), 2)
    .option('--steps <n>', 'timed steps per run', (v) => Number(v), 8)
    .option('--only <part>', 'step or allreduce')
    .parse();
  const o = program.opts<{ role?: string; rounds: number; threads: number; steps: number; only?: string }>();
  if (o.role === 'step') return stepRole(o.steps);
  if (o.role === 'allreduce') return allReduceRole();
  const load = () => os.loadavg()[0].toFixed(1);
  console.log(
    `# ${os.cpus()[0]?.model} (${os.cpus().length} logical CPUs), load average ${load()} at the start; ${new Date().toISOString()}`,
  );
  if (o.only !== 'allreduce') {
    const runs: Record<string, StepResult[]> = { single: [], ranks: [] };
    for (let round = 0; round < o.rounds; round++) {
      const order = round % 2 === 0 ? ['single', 'ranks'] : ['ranks', 'single'];
      for (const which of order) {
        const out =
          which === 'single'
            ? spawnRanks(1, o.threads, ['--role', 'step', '--steps', String(o.steps)])
            : spawnRanks(o.threads, 1, ['--role', 'step', '--steps', String(o.steps)]);
        runs[which].push(JSON.parse(out.trim().split('\n').pop() as string) as StepResult);
      }
    }
    console.log(
      `\nThe bench LM's training step (${CONFIG.batch * CONFIG.context} tokens, Fourier attention), ${o.steps} steps per run, median (range) over ${o.rounds} interleaved rounds:\n`,
    );
    console.log(
      '| configuration | tokens/s | ms per step | waiting for reductions at the end of backward | MPI thread busy in collectives |',
    );
    console.log('|---|---:|---:|---:|---:|');
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    for (const [which, label] of [
      ['single', `1 rank x ${o.threads} threads`],
      ['ranks', `${o.threads} ranks x 1 thread`],
    ] as const) {
      const rs = runs[which];
      console.log(
        `| ${label} | ${range(
          rs.map((r) => r.tokensPerSecond),
          (x) => x.toFixed(0),
        )} | ${range(
          rs.map((r) => 1000 * r.secondsPerStep),
          (x) => x.toFixed(0),
        )} | ${
          which === 'single'
            ? '-'
            : range(
                rs.map((r) => r.exposedShare),
                pct,
              )
        } | ${
          which === 'single'
            ? '-'
            : range(
                rs.map((r) => r.busyShare),
                pct,
              )
        } |`,
      );
    }
  }
  if (o.only !== 'step') {
    const runs: ReduceResult[][] = [];
    for (let round = 0; round < o.rounds; round++)
      runs.push(
        spawnRanks(o.threads, 1, ['--role', 'allreduce'])
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as ReduceResult),
      );
    console.log(
      `\nAll-reduce (sum, float32) on ${o.threads} ranks, bus bandwidth in GB/s, median (range) over ${o.rounds} rounds:\n`,
    );
    console.log(
      '| message | ff.distributed.allReduce (MPI thread, MPI_Iallreduce) | MPI_Allreduce, osu-style loop | ours / MPI |',
    );
    console.log('|---:|---:|---:|---:|');
    SIZES.forEach((bytes, i) => {
      const ours = runs.map((r) => r[i].ours),
        mpi = runs.map((r) => r[i].mpi);
      const size = bytes >= 1 << 20 ? `${bytes >> 20} MiB` : `${bytes >> 10} KiB`;
      console.log(
        `| ${size} | ${range(ours, (x) => x.toFixed(2))} | ${range(mpi, (x) => x.toFixed(2))} | ${(median(ours) / median(mpi)).toFixed(2)} |`,
      );
    });
  }
  console.log(`\nload average ${load()} at the end`);
}

if (require.main === module) main();
