// How ours is timed, as scripts/peer/serve.py times PyTorch: one warm-up run, then about
// `targetMs` of timed runs (runsFor, the same rule on both sides), each ended by a
// synchronisation of the device; the process's CPU time over the wall time comes with them.
import * as ff from '../../lib';
import type { Timed } from './stats';

export interface Budget {
  /** Wall time to spend on timed runs per block (after the warm-up). */
  targetMs: number;
  minRuns: number;
  maxRuns: number;
}

/** How many runs to time after a warm-up run of `warmMs`. */
export function runsFor(warmMs: number, b: Budget): number {
  return Math.max(b.minRuns, Math.min(b.maxRuns, Math.ceil(b.targetMs / Math.max(warmMs, 1e-3))));
}

export function timeRuns(run: () => void, device: ff.Device, budget: Budget): Timed {
  const t0 = performance.now();
  run();
  ff.synchronize(device);
  const runs = runsFor(performance.now() - t0, budget);
  const times: number[] = [];
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    run();
    ff.synchronize(device);
    times.push(performance.now() - t);
  }
  const wall = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  return { times_ms: times, cpu_per_wall: wall > 0 ? (cpu.user + cpu.system) / 1e3 / wall : null };
}
