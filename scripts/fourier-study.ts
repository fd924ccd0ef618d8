// The Fourier attention study: which member of the paper's family (a product of sinc^p over
// features with a learned R) learns on the demos' data, against dot-product attention, over seeds.
// Each variant of VARIANTS trains with `fourierformer train <task> --preset <small preset>` once per
// seed (a run per process, --jobs at a time, each with cores / jobs OpenMP threads), into
// <out>/<task>/<variant>/seed-<n>; a run that finished before is reused, so the command continues
// where it stopped. Then per task a table of mean ± std over the seeds (valid/test perplexity or
// top-1, head redundancy, row mass, rows under eps, entropy) and a plot, into <out>/<task>/ and,
// with --docs <dir>, into <dir>/fourier-study-<task>.md and .svg.
//   npm run build && npx ts-node scripts/fourier-study.ts [--tasks lm,vit] [--seeds 1,2,3] [--jobs 2]
//     [--variants dot,paper,...] [--steps n] [--out runs/fourier-study] [--docs docs]
import { spawn } from 'child_process';
import { Command } from 'commander';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { positiveInt, seedList } from '../lib/cli/options';
import type { RunResult } from '../lib/train/results-table';
import { SeedGroup, writeSeedsReport } from '../lib/train/seeds';

type Task = 'lm' | 'vit';

interface Variant {
  name: string;
  /** What it is, for the table's legend. */
  about: string;
  /** The flags of `fourierformer train` beyond --preset, --seed, --out. */
  flags: (task: Task) => string[];
}

/**
 * The paper's initial R: 2 in its language model, 1 in its ViT. Every Fourier variant names its R
 * init, so the study means the same whatever the small presets' defaults are.
 */
const PAPER_R: Record<Task, string> = { lm: '2', vit: '1' };
const fourier =
  (init: string | null, ...more: string[]) =>
  (task: Task): string[] => [
    '--attention',
    'fourier',
    '--radius',
    'feature',
    '--radius-init',
    init ?? PAPER_R[task],
    ...more,
  ];

/** The study's variants: dot-product attention, the paper's math, and one knob changed at a time. */
export const VARIANTS: Variant[] = [
  { name: 'dot', about: 'dot-product attention, softmax(q k^T / sqrt(Dh))', flags: () => ['--attention', 'dot'] },
  {
    name: 'paper',
    about: "the paper's math: R per feature [Dh], init 2 (LM) / 1 (ViT), eps 1e-6",
    flags: fourier(null),
  },
  {
    name: 'stable',
    about: 'paper, log-domain normaliser (eps = 0, no underflow)',
    flags: fourier(null, '--fourier-stable'),
  },
  { name: 'R1', about: 'paper, R init 1', flags: fourier('1') },
  { name: 'R0.5', about: 'paper, R init 0.5 (= 2 / sqrt(Dh) at Dh 16)', flags: fourier('0.5') },
  { name: 'R0.25', about: 'paper, R init 0.25', flags: fourier('0.25') },
  { name: 'stable-R0.5', about: 'stable, R init 0.5', flags: fourier('0.5', '--fourier-stable') },
  {
    name: 'refcode',
    about:
      "the reference code's effective kernel: one shared R over the first feature of each head, init 2 (LM) / 1 (ViT)",
    flags: (task) => [
      '--attention',
      'fourier',
      '--radius',
      'shared',
      '--radius-init',
      PAPER_R[task],
      '--fourier-features',
      '1',
    ],
  },
];

const PRESETS: Record<Task, string> = { lm: 'brown-small', vit: 'fashion-small' };

interface Job {
  task: Task;
  variant: Variant;
  seed: number;
  dir: string;
}

function resultOf(job: Job): RunResult | null {
  const flags = job.variant.flags(job.task);
  const kind = flags[flags.indexOf('--attention') + 1];
  const file = path.join(job.dir, kind, 'results.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as RunResult) : null;
}

function runJob(job: Job, threads: number, steps: number | undefined, bin: string): Promise<void> {
  fs.mkdirSync(job.dir, { recursive: true });
  const args = [
    bin,
    'train',
    job.task,
    '--preset',
    PRESETS[job.task],
    '--seed',
    String(job.seed),
    '--out',
    job.dir,
    '--quiet',
    ...(steps !== undefined ? ['--steps', String(steps)] : []),
    ...job.variant.flags(job.task),
  ];
  const log = fs.openSync(path.join(job.dir, 'train.log'), 'w');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', log, log],
      env: { ...process.env, OMP_NUM_THREADS: String(threads) },
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      fs.closeSync(log);
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `${job.task} ${job.variant.name} seed ${job.seed}: exit ${code} (see ${path.join(job.dir, 'train.log')})`,
          ),
        );
    });
  });
}

/** Runs the jobs `jobs` at a time; resolves when all are done, rejects at the first failure. */
async function runAll(
  pending: Job[],
  jobs: number,
  threads: number,
  steps: number | undefined,
  bin: string,
): Promise<void> {
  const t0 = performance.now();
  let done = 0;
  const next = async (): Promise<void> => {
    const job = pending.shift();
    if (job === undefined) return;
    const started = performance.now();
    await runJob(job, threads, steps, bin);
    done += 1;
    const left = pending.length;
    const perJob = (performance.now() - t0) / 1000 / done;
    process.stderr.write(
      `study: ${job.task} ${job.variant.name} seed ${job.seed} done in ${((performance.now() - started) / 60000).toFixed(1)} min; ` +
        `${done} done, ${left} queued, about ${((left * perJob) / 60).toFixed(0)} min left\n`,
    );
    return next();
  };
  await Promise.all(Array.from({ length: jobs }, next));
}

async function main(): Promise<void> {
  const program = new Command('fourier-study')
    .option('--tasks <list>', 'lm, vit or both (lm,vit)', 'lm,vit')
    .option('--seeds <list>', 'seeds of every variant', seedList, [1, 2, 3])
    .option('--variants <list>', `variants to run (default all: ${VARIANTS.map((v) => v.name).join(', ')})`)
    .option('--jobs <n>', 'runs at a time (each with cores / jobs threads)', positiveInt, 2)
    .option('--steps <n>', "optimizer steps per run (default: the preset's)", positiveInt)
    .option('--out <dir>', 'where the runs go', 'runs/fourier-study')
    .option('--docs <dir>', 'also write the tables and plots there, as fourier-study-<task>.md and .svg')
    .parse();
  const o = program.opts<{
    tasks: string;
    seeds: number[];
    variants?: string;
    jobs: number;
    steps?: number;
    out: string;
    docs?: string;
  }>();
  const tasks = o.tasks.split(',').map((t) => t.trim()) as Task[];
  if (tasks.some((t) => t !== 'lm' && t !== 'vit'))
    throw new Error(`--tasks: expected lm, vit or lm,vit, got ${o.tasks}`);
  const names = o.variants?.split(',').map((v) => v.trim()) ?? VARIANTS.map((v) => v.name);
  const unknown = names.filter((n) => !VARIANTS.some((v) => v.name === n));
  if (unknown.length > 0)
    throw new Error(
      `--variants: unknown ${unknown.join(', ')} (expected some of ${VARIANTS.map((v) => v.name).join(', ')})`,
    );
  const variants = VARIANTS.filter((v) => names.includes(v.name));
  const bin = path.join(__dirname, '..', 'bin', 'fourierformer.js');
  const all: Job[] = tasks.flatMap((task) =>
    variants.flatMap((variant) =>
      o.seeds.map((seed) => ({
        task,
        variant,
        seed,
        dir: path.join(o.out, task, variant.name, `seed-${seed}`),
      })),
    ),
  );
  const pending = all.filter((j) => resultOf(j) === null);
  const threads = Math.max(1, Math.floor(os.cpus().length / o.jobs));
  process.stderr.write(
    `study: ${all.length} runs, ${all.length - pending.length} finished before, ${pending.length} to train, ${o.jobs} at a time with ${threads} threads each\n`,
  );
  await runAll(pending, o.jobs, threads, o.steps, bin);
  for (const task of tasks) {
    const groups: SeedGroup[] = variants.map((v) => ({
      name: v.name,
      seeds: o.seeds,
      results: o.seeds.map(
        (seed) =>
          resultOf({ task, variant: v, seed, dir: path.join(o.out, task, v.name, `seed-${seed}`) }) as RunResult,
      ),
    }));
    const legend = [
      '',
      'Variants:',
      ...variants.map((v) => `- \`${v.name}\`: ${v.about} (\`${v.flags(task).join(' ')}\`).`),
      '',
      `Command: \`npx ts-node scripts/fourier-study.ts --tasks ${task} --seeds ${o.seeds.join(',')}${o.variants ? ` --variants ${o.variants}` : ''}${o.steps ? ` --steps ${o.steps}` : ''}\`; ` +
        `each run \`fourierformer train ${task} --preset ${PRESETS[task]} --seed <n>\` with the variant's flags. Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ` +
        `${os.cpus().length} cores, Node ${process.version}; ${new Date().toISOString().slice(0, 10)}.`,
    ];
    const title = `Fourier attention study, ${PRESETS[task]}`;
    const dir = path.join(o.out, task);
    const r = await writeSeedsReport(path.join(dir, 'results.md'), path.join(dir, 'seeds.svg'), groups, title, legend);
    process.stdout.write(`${r.markdown}\n`);
    if (o.docs) {
      fs.mkdirSync(o.docs, { recursive: true });
      fs.copyFileSync(r.table, path.join(o.docs, `fourier-study-${task}.md`));
      fs.copyFileSync(r.plot, path.join(o.docs, `fourier-study-${task}.svg`));
    }
  }
}

main().catch((e: Error) => {
  process.stderr.write(`fourier-study: ${e.message}\n`);
  process.exit(1);
});
