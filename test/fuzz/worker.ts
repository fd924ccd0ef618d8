// The child process of the fuzz runner: runs the cases [start, end) of one run on one device and
// reports each over IPC before and after it runs, so the parent knows which case was running
// when a crash (a segfault, an abort, an out-of-memory kill) took this process down.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ff from '../../lib';
import { runIndexed } from './run-case';
import type { Env } from './property';

export interface Job {
  device: ff.Device;
  other: ff.Device | null;
  seed: number;
  start: number;
  end: number;
  shrinkMs: number;
  only?: string[];
}

export type WorkerMessage =
  { type: 'start'; index: number } | { type: 'result'; result: import('./run-case').CaseResult } | { type: 'done' };

function send(m: WorkerMessage): Promise<void> {
  return new Promise((resolve) =>
    (process.send as NonNullable<typeof process.send>)(m, undefined, {}, () => resolve()),
  );
}

async function main(): Promise<void> {
  const job = JSON.parse(process.env.FF_FUZZ_JOB as string) as Job;
  ff.setDefaultDevice(job.device);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-fuzz-'));
  const env: Env = { device: job.device, other: job.other, tmp };
  try {
    for (let i = job.start; i < job.end; i++) {
      // Waiting for the message to leave makes it reach the parent even if the case crashes.
      await send({ type: 'start', index: i });
      await send({ type: 'result', result: runIndexed(job.seed, i, env, job.shrinkMs, job.only) });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  await send({ type: 'done' });
  process.disconnect();
}

main().catch((e) => {
  process.stderr.write(`fuzz worker: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(2);
});
