// The fuzz runner: cases [0, cases) of a seeded run, in child processes of `chunk` cases each
// (test/fuzz/worker.ts), so that a crash, a hang or an out-of-memory kill is caught, reported
// with its seed, index and case, and the run goes on from the next case in a fresh process.
import { ChildProcess, fork } from 'child_process';
import * as path from 'path';
import type * as ff from '../../lib';
import { caseSeed, drawCase, pick } from './run-case';
import type { CaseResult } from './run-case';
import type { Job, WorkerMessage } from './worker';

export interface FuzzOptions {
  seed: number;
  cases: number;
  devices: ff.Device[];
  /** Cases per child process. */
  chunk?: number;
  /** Child processes at once. */
  jobs?: number;
  /** A case running longer than this is a hang: its process is killed. */
  caseTimeoutMs?: number;
  /** Time fast-check may spend shrinking one failure. */
  shrinkMs?: number;
  /** Only these properties (names, or name prefixes before ':'). */
  only?: string[];
  /** First case index (to replay one: first = i, cases = i + 1). */
  first?: number;
  /** The device other than each one under test that mixed-device cases may use, or null. */
  otherOf?: (d: ff.Device) => ff.Device | null;
  /** Called as results arrive (progress, live failure reports). */
  onResult?: (device: ff.Device, r: CaseResult) => void;
}

export interface Failure {
  device: ff.Device;
  index: number;
  property: string;
  kind: 'mismatch' | 'crash' | 'hang';
  message: string;
  case?: unknown;
  shrunk?: unknown;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  /** Per device and property: cases run and failed, and the slowest case's milliseconds. */
  counts: Record<string, Record<string, { run: number; failed: number; maxMs: number }>>;
  failures: Failure[];
  ms: number;
}

const WORKER = path.join(__dirname, 'worker.ts');

/** ts-node in transpile-only mode: children start in a second or two, with no type-check. */
function spawnWorker(job: Job): ChildProcess {
  return fork(WORKER, [], {
    execArgv: ['-r', require.resolve('ts-node/register/transpile-only')],
    env: {
      ...process.env,
      FF_FUZZ_JOB: JSON.stringify(job),
      FOURIERFORMER_DEVICE: job.device,
      TS_NODE_PROJECT: path.join(__dirname, '..', 'tsconfig.json'),
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
}

/** Runs cases [start, end) on one device in one child; resolves where it stopped, and why. */
function runChunk(
  job: Job,
  o: Required<Pick<FuzzOptions, 'caseTimeoutMs'>> & FuzzOptions,
  report: FuzzReport,
): Promise<number> {
  return new Promise((resolve) => {
    const child = spawnWorker(job);
    let current = -1;
    let done = false;
    let timer: NodeJS.Timeout | null = null;
    let hung = false;
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4000);
    });
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, o.caseTimeoutMs);
    };
    arm();
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'start') {
        current = m.index;
        arm();
      } else if (m.type === 'result') {
        record(report, job.device, m.result);
        o.onResult?.(job.device, m.result);
      } else if (m.type === 'done') done = true;
    });
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (done && code === 0) return resolve(job.end);
      const index = current >= 0 ? current : job.start;
      const how = hung
        ? `no result after ${o.caseTimeoutMs} ms (killed)`
        : signal
          ? `killed by ${signal}`
          : `exited with code ${code}`;
      // The case is drawn again here (drawing is deterministic) to print it.
      const p = pick(job.seed, index, job.only);
      const c = drawCase(p, caseSeed(job.seed, index), { device: job.device, other: job.other, tmp: '' });
      const f: Failure = {
        device: job.device,
        index,
        property: p.name,
        kind: hung ? 'hang' : 'crash',
        case: c,
        message: `the process ${how} during case ${index}${stderr ? `; its last output:\n${stderr.trim()}` : ''}`,
      };
      report.failures.push(f);
      tally(report, job.device, p.name, false, 0);
      o.onResult?.(job.device, {
        index,
        property: p.name,
        caseSeed: caseSeed(job.seed, index),
        ok: false,
        case: c,
        error: f.message,
        ms: 0,
      });
      resolve(index + 1);
    });
  });
}

function tally(report: FuzzReport, device: string, property: string, ok: boolean, ms: number): void {
  const d = (report.counts[device] ??= {});
  const c = (d[property] ??= { run: 0, failed: 0, maxMs: 0 });
  c.run++;
  if (!ok) c.failed++;
  c.maxMs = Math.max(c.maxMs, ms);
}

function record(report: FuzzReport, device: ff.Device, r: CaseResult): void {
  tally(report, device, r.property, r.ok, r.ms);
  if (!r.ok) {
    report.failures.push({
      device,
      index: r.index,
      property: r.property,
      kind: 'mismatch',
      message: r.error ?? '',
      case: r.case,
      shrunk: r.shrunk,
    });
  }
}

/** Runs the fuzz cases on every device; crash and hang reports name the case that was running. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const o = { chunk: 200, jobs: 1, caseTimeoutMs: 120_000, shrinkMs: 20_000, first: 0, ...options };
  const report: FuzzReport = { seed: o.seed, cases: o.cases - o.first, counts: {}, failures: [], ms: 0 };
  const t0 = Date.now();
  // The work: per device, chunks of cases; a crash re-queues the rest of its chunk.
  const queue: Job[] = [];
  for (const device of o.devices) {
    for (let start = o.first; start < o.cases; start += o.chunk) {
      queue.push({
        device,
        other: o.otherOf?.(device) ?? null,
        seed: o.seed,
        start,
        end: Math.min(o.cases, start + o.chunk),
        shrinkMs: o.shrinkMs,
        only: o.only,
      });
    }
  }
  const workers = Array.from({ length: Math.max(1, o.jobs) }, async () => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      const stopped = await runChunk(job, o, report);
      if (stopped < job.end) queue.unshift({ ...job, start: stopped });
    }
  });
  await Promise.all(workers);
  report.failures.sort((a, b) => a.device.localeCompare(b.device) || a.index - b.index);
  report.ms = Date.now() - t0;
  return report;
}

/** A failure as text: what failed, and how to replay it. */
export function formatFailure(f: Failure, seed: number): string {
  const lines = [
    `[${f.device}] case ${f.index} (${f.property}, ${f.kind}): ${f.message}`,
    `  replay: npm run fuzz -- --seed ${seed} --device ${f.device} --case ${f.index}`,
  ];
  if (f.case !== undefined) lines.push(`  case: ${JSON.stringify(f.case)}`);
  if (f.shrunk !== undefined) lines.push(`  shrunk: ${JSON.stringify(f.shrunk)}`);
  return lines.join('\n');
}

export function formatReport(r: FuzzReport): string {
  const lines = [`fuzz: seed ${r.seed}, ${r.cases} cases per device, ${(r.ms / 1000).toFixed(1)} s`];
  for (const [device, props] of Object.entries(r.counts)) {
    const run = Object.values(props).reduce((s, c) => s + c.run, 0);
    const failed = Object.values(props).reduce((s, c) => s + c.failed, 0);
    lines.push(`  ${device}: ${run} cases, ${failed} failed`);
    for (const [name, c] of Object.entries(props).sort()) {
      lines.push(
        `    ${name.padEnd(34)} ${String(c.run).padStart(6)} run ${String(c.failed).padStart(5)} failed   slowest ${c.maxMs} ms`,
      );
    }
  }
  return lines.join('\n');
}
