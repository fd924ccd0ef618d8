// worker_threads: every thread runs each device on that device's own backend, whatever the order
// in which threads and devices are first used; workers running ops at once get the main thread's
// results bit for bit; a worker terminated in the middle of an op leaves no native memory and a
// healthy process; thread counts are per thread. Workers run test/fixtures/workers/*.js, which
// require the built package (dist/): a worker cannot load the TypeScript sources.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as ff from '../lib';
import { available, device } from './helpers/compare';

type Results = Record<string, Float32Array>;
interface Ops {
  compute(lib: typeof ff, device: ff.Device): Results;
  differences(a: Results, b: Results): string[];
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS fixture the workers load too
const ops = require('./fixtures/workers/ops.js') as Ops;

const fixtures = path.join(__dirname, 'fixtures', 'workers');
const dev = device();
const other: ff.Device = dev === 'cpu' ? 'cuda-emu' : 'cpu';
const both = available(other);
const withBoth = both ? test : test.skip;

/** What worker.js posts (fixtures/workers/worker.js): one of these fields per message. */
interface WorkerMessage {
  rounds?: Record<string, Results>[];
  started?: boolean;
  memory?: ReturnType<typeof ff.memory>;
  finished?: boolean;
  threads?: number;
  error?: string;
}

/** Runs worker.js with workerData; resolves with its messages once it has exited. */
function runWorker(workerData: object, env?: NodeJS.ProcessEnv): Promise<{ messages: WorkerMessage[]; code: number }> {
  return new Promise((resolve, reject) => {
    const messages: WorkerMessage[] = [];
    const w = new Worker(path.join(fixtures, 'worker.js'), { workerData, env: env ?? process.env });
    w.on('message', (m) => messages.push(m));
    w.once('error', reject);
    w.once('exit', (code) => resolve({ messages, code }));
  });
}

describe('worker threads', () => {
  // The reproducer, extended to every op of compute(): the main thread uses `dev` then
  // `other`; the worker the reverse (the case), or the same order; the worker starts
  // after the main thread has loaded both addons, or before it loads any.
  const orders: Array<[ff.Device[], ff.Device[], string]> = [
    [[dev, other], [other, dev], 'main-first'],
    [[dev, other], [other, dev], 'worker-first'],
    [[dev, other], [dev, other], 'worker-first'],
  ];
  for (const [main, worker, first] of orders) {
    withBoth(
      `a worker's devices are its own: main ${main.join(' then ')}, worker ${worker.join(' then ')}, ${first}`,
      () => {
        const r = spawnSync(
          process.execPath,
          [path.join(fixtures, 'reproducer.js'), main.join(','), worker.join(','), first],
          {
            encoding: 'utf8',
            timeout: 100000,
          },
        );
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        const out = JSON.parse(r.stdout);
        // The two backends differ in some bits, so a worker running the wrong one would be seen.
        expect(out.betweenDevices.length).toBeGreaterThan(0);
        expect(out.differences).toEqual({ [main[0]]: [], [main[1]]: [] });
        expect(out.describe.worker).toEqual(out.describe.main);
      },
    );
  }

  withBoth('4 workers mixing devices at once give the main thread results bit for bit', async () => {
    const expected = { [dev]: ops.compute(ff, dev), [other]: ops.compute(ff, other) };
    const runs = await Promise.all(
      [0, 1, 2, 3].map((k) => runWorker({ task: 'compute', devices: k % 2 ? [other, dev] : [dev, other], rounds: 2 })),
    );
    for (const { messages, code } of runs) {
      expect(code).toBe(0);
      for (const round of messages[0].rounds ?? []) {
        expect(ops.differences(round[dev], expected[dev])).toEqual([]);
        expect(ops.differences(round[other], expected[other])).toEqual([]);
      }
    }
  });

  test('a worker terminated during a long op frees its memory, and the process stays healthy', async () => {
    const expected = ops.compute(ff, dev);
    // What other threads hold: the process's tensors less this thread's, read in one call. This
    // thread's own count may drop at any time (its finalizers free unreferenced tensors when V8
    // collects them), so the checks below compare only what other threads hold; the workers of
    // the tests before have exited, but wait for their teardown to have freed their tensors.
    const others = () => {
      const m = ff.memory();
      return { numTensors: m.process.numTensors - m.numTensors, numBytes: m.process.numBytes - m.numBytes };
    };
    for (let waited = 0; others().numTensors !== 0 && waited < 10000; waited += 50)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(others()).toEqual({ numTensors: 0, numBytes: 0 });
    const floats = 1 << 22;
    // Long enough that the termination lands inside the op: ~1 s here on cpu and on cuda-emu.
    const shape = dev === 'cuda-emu' ? [1, 2, 640, 16] : [1, 8, 4096, 16];
    const w = new Worker(path.join(fixtures, 'worker.js'), {
      workerData: { task: 'long', device: dev, floats, shape },
    });
    const messages: WorkerMessage[] = [];
    const started = new Promise<WorkerMessage>((resolve, reject) => {
      w.on('message', (m) => {
        messages.push(m);
        if (m.started) resolve(m);
      });
      w.once('error', reject);
    });
    const memory = (await started).memory!;
    // The worker's tensors count in the process (and in its own memory(), not in this thread's).
    expect(others().numBytes).toBeGreaterThanOrEqual(4 * floats);
    expect(memory.numBytes).toBeGreaterThanOrEqual(4 * floats);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await w.terminate()).toBe(1);
    expect(messages.some((m) => m.finished)).toBe(false);
    expect(others()).toEqual({ numTensors: 0, numBytes: 0 });
    expect(ops.differences(ops.compute(ff, dev), expected)).toEqual([]);
    const after = await runWorker({ task: 'compute', devices: [dev], rounds: 1 });
    expect(after.code).toBe(0);
    expect(ops.differences(after.messages[0].rounds![0][dev], expected)).toEqual([]);
    expect(others()).toEqual({ numTensors: 0, numBytes: 0 });
  });
});

describe('setNumThreads', () => {
  test('sets the calling thread count; a worker starts from the default or FOURIERFORMER_NUM_THREADS', async () => {
    const initial = ff.getNumThreads();
    expect(initial).toBeGreaterThanOrEqual(1);
    try {
      ff.setNumThreads(1);
      expect(ff.getNumThreads()).toBe(1);
      const worker = await runWorker({ task: 'threads' });
      expect(worker.messages[0].threads).toBe(initial);
      const env = { ...process.env, FOURIERFORMER_NUM_THREADS: '3' };
      const bounded = await runWorker({ task: 'threads' }, env);
      expect(bounded.messages[0].threads).toBe(3);
    } finally {
      ff.setNumThreads(initial);
    }
    expect(ff.getNumThreads()).toBe(initial);
  });

  test('bad counts throw an error naming the argument', async () => {
    for (const n of [0, -1, 1.5, NaN, 1025, '2' as unknown as number]) {
      expect(() => ff.setNumThreads(n)).toThrow(/^setNumThreads: n: expected an integer from 1 to 1024/);
    }
    const bad = await runWorker({ task: 'threads' }, { ...process.env, FOURIERFORMER_NUM_THREADS: 'four' });
    expect(bad.messages[0].error).toMatch(/^FOURIERFORMER_NUM_THREADS: expected an integer from 1 to 1024, got "four"/);
  });

  test('a worker at FOURIERFORMER_NUM_THREADS=1 gives the results of this thread at setNumThreads(1)', async () => {
    const initial = ff.getNumThreads();
    const atDefault = ops.compute(ff, dev);
    let one: Results;
    try {
      ff.setNumThreads(1);
      one = ops.compute(ff, dev);
    } finally {
      ff.setNumThreads(initial);
    }
    const env = { ...process.env, FOURIERFORMER_NUM_THREADS: '1' };
    const worker = await runWorker({ task: 'compute', devices: [dev], rounds: 1 }, env);
    expect(ops.differences(worker.messages[0].rounds![0][dev], one)).toEqual([]);
    // The emulator's blocks are independent: its results never depend on the count. (The cpu's
    // attention gradients sum per-thread partial sums, so there the count may change low bits.)
    if (dev === 'cuda-emu') expect(ops.differences(one, atDefault)).toEqual([]);
  });
});
