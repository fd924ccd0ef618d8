// Data-parallel training under `mpirun -np 2` (lib/distributed, DistributedDataParallel, ZeRO-1,
// the trainer and CLI on several ranks), on this project's device: cpu, or cuda-emu, whose
// collectives are the cuda backend's NCCL path with NCCL emulated over MPI.
//   - 2 ranks x B/2 give the losses of 1 rank x B (1e-5 relative) and bit-identical parameters
//     on every rank after every step, with Adam and with ZeRO-1 (which equals Adam bit for bit);
//   - `fourierformer train lm` on 2 ranks: the same losses as on 1; stopped at step 5 and
//     resumed (with ZeRO-1), exactly the uninterrupted run's losses and validations;
//   - (cpu) a rank killed or hung mid-run: the job exits non-zero within 60 s naming it.
// The ranks run the built package (dist/, scripts/setup.sh builds it): run `npm run build -- ts`
// after changing lib/. Needs Open MPI's mpirun (scripts/setup.sh installs it).
// In this process (one rank, no MPI): init() gives rank 0 of 1 and collectives their input, DDP
// and ZeRO-1 change nothing, the post-accumulate-grad hooks fire once per leaf after its last use,
// and the ranks' shards of LM and image batches put together are the whole batches.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ff from '../lib';
import { ByteImageDataset } from '../lib/data/image-dataset';
import { device as defaultDevice } from './helpers/compare';

const device = defaultDevice();

const ROOT = path.join(__dirname, '..');
const STEPS = path.join(__dirname, 'fixtures', 'distributed', 'train-steps.js');
const BIN = path.join(ROOT, 'bin', 'fourierformer.js');

function mpirun(): string {
  const found = (process.env.PATH ?? '')
    .split(path.delimiter)
    .map((d) => path.join(d, 'mpirun'))
    .find((f) => fs.existsSync(f));
  if (found === undefined) throw new Error('mpirun not found: install Open MPI (bash scripts/setup.sh does)');
  return found;
}

interface Run {
  code: number | null;
  out: string;
  err: string;
  seconds: number;
}

/** Runs node with args on `ranks` ranks (mpirun) or alone (ranks 0). */
function run(ranks: number, args: string[], env: Record<string, string> = {}, timeout = 240): Run {
  const t0 = performance.now();
  const cmd = ranks === 0 ? process.execPath : mpirun();
  const argv =
    ranks === 0 ? args : ['--allow-run-as-root', '--oversubscribe', '-np', String(ranks), process.execPath, ...args];
  const r = spawnSync(cmd, argv, {
    encoding: 'utf8',
    timeout: timeout * 1000,
    env: { ...process.env, FOURIERFORMER_DEVICE: device, ...env },
  });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '', seconds: (performance.now() - t0) / 1000 };
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}:\n${r.err}\n${r.out}`);
  return r;
}

interface StepLine {
  step: number;
  loss: number;
  identical: boolean;
  buckets: number;
  partialPasses: number;
  stateShare: number;
}

function steps(r: Run): StepLine[] {
  return ok(r)
    .out.trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepLine);
}

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

describe('one process', () => {
  test('init gives rank 0 of 1; collectives return their input; bad arguments are named', () => {
    const w = ff.distributed.init({ device });
    expect([w.rank, w.worldSize, ff.distributed.rank(), ff.distributed.worldSize()]).toEqual([0, 1, 0, 1]);
    const t = ff.tensor([1, 2, 3], [3]);
    expect([...ff.distributed.allReduce(t, 'avg').toFloat32Array()]).toEqual([1, 2, 3]);
    expect([...ff.distributed.broadcast(t, 0).toFloat32Array()]).toEqual([1, 2, 3]);
    const g = ff.distributed.allGather(t);
    expect(g.shape).toEqual([1, 3]);
    expect(ff.distributed.allReduceNumbers([4, 5], 'max')).toEqual([4, 5]);
    expect(ff.distributed.allGatherObject({ a: 1 })).toEqual([{ a: 1 }]);
    ff.distributed.barrier();
    expect(() => ff.distributed.allReduce(t, 'prod' as ff.distributed.ReduceOp)).toThrow(
      /op: expected 'sum', 'avg', 'max' or 'min', got "prod"/,
    );
    expect(() => ff.distributed.broadcast(t, 1)).toThrow(/root: expected a rank from 0 to 0, got 1/);
    // Already initialised.
    expect(() => ff.distributed.init({ timeout: -1 } as ff.distributed.InitOptions)).not.toThrow();
    for (const x of [t, g]) x.dispose();
  });

  test('DDP and ZeRO-1 on one rank train exactly as the module and optimizer alone', () => {
    const make = () => new ff.nn.Linear(3, 2, { generator: new ff.Generator(1) });
    const x = ff.tensor([0.5, -1, 2, 1, 0, -0.5], [2, 3]);
    const losses = (wrap: boolean) => {
      const m = make();
      const ddp = wrap ? new ff.nn.DistributedDataParallel(m) : null;
      const opt = wrap
        ? new ff.optim.ZeroRedundancyOptimizer(m.parameters(), ff.optim.AdamW, { lr: 0.1 })
        : new ff.optim.AdamW(m.parameters(), { lr: 0.1 });
      const out = [1, 2, 3].map(() =>
        ff.tidy(() => {
          opt.zeroGrad();
          const l = ff.sum(ff.mul(m.forward(x), m.forward(x)));
          l.backward();
          opt.step();
          return l.item();
        }),
      );
      opt.dispose();
      if (ddp) ddp.dispose();
      else m.dispose();
      return out;
    };
    expect(losses(true)).toEqual(losses(false));
    expect(() => new ff.nn.DistributedDataParallel(make(), { bucketMB: 0 })).toThrow(
      /opts.bucketMB: expected a number of MiB > 0, got 0/,
    );
    expect(
      () =>
        new ff.optim.ZeroRedundancyOptimizer(
          [ff.tensor([1], [1], { requiresGrad: true })],
          3 as unknown as ff.optim.OptimizerClass<ff.optim.AdamOptions>,
        ),
    ).toThrow(/optimizer: expected an optimizer class/);
    x.dispose();
  });

  test('post-accumulate-grad hooks: once per leaf after its last use, callbacks at the end of backward', () => {
    const w = ff.tensor([1, 2], [2], { requiresGrad: true });
    const unused = ff.tensor([1], [1], { requiresGrad: true });
    const events: string[] = [];
    const hooks = [
      ff.autograd.registerPostAccumulateGradHook(w, (t) => {
        events.push(`w ${[...(t.grad as ff.Tensor).toFloat32Array()]}`);
        ff.autograd.queueCallback(() => events.push('end'));
      }),
      ff.autograd.registerPostAccumulateGradHook(unused, () => events.push('unused')),
    ];
    ff.tidy(() => ff.sum(ff.add(ff.mul(w, w), w)).backward()); // w used twice: d/dw = 2w + 1
    expect(events).toEqual(['w 3,5', 'end']);
    hooks.forEach((h) => h.remove());
    ff.tidy(() => ff.sum(w).backward());
    expect(events).toHaveLength(2);
    expect(() => ff.autograd.queueCallback(() => undefined)).toThrow(/no backward pass is running/);
    w.dispose();
    unused.dispose();
  });

  test("the ranks' shards of LM batches and image batches are the whole batches", async () => {
    const tokens = Int32Array.from({ length: 500 }, (_, i) => (i * 7) % 31);
    const whole = new ff.data.LMBatches(tokens, 4, 8).batch(3);
    const parts = [0, 1].map((r) =>
      new ff.data.LMBatches(tokens, 4, 8, { rows: { from: 2 * r, to: 2 * r + 2 } }).batch(3),
    );
    expect([...parts[0].input, ...parts[1].input]).toEqual([...whole.input]);
    expect([...parts[0].target, ...parts[1].target]).toEqual([...whole.target]);
    expect(() => new ff.data.LMBatches(tokens, 4, 8, { rows: { from: 2, to: 5 } })).toThrow(
      /rows: expected 0 <= from < to <= batchSize 4, got \[2, 5\)/,
    );

    const ds = new ByteImageDataset(
      'bytes',
      Uint8Array.from({ length: 16 * 3 * 8 * 8 }, (_, k) => (k * 37) % 256),
      Uint8Array.from({ length: 16 }, (_, i) => i % 3),
      3,
      8,
      8,
      ['a', 'b', 'c'],
    );
    const opts = {
      batchSize: 8,
      shuffle: true,
      seed: 4,
      dropLast: true,
      replicas: 4,
      prefetch: 0,
      augment: { imageSize: 8, flip: true, mixup: 0.8, labelSmoothing: 0.1 },
    };
    const first = async (shard?: { index: number; count: number }) =>
      (await new ff.data.ImageLoader(ds, { ...opts, ...(shard ? { shard } : {}) }).epoch(1).next())
        .value as ff.data.ImageBatch;
    const full = await first();
    const halves = [await first({ index: 0, count: 2 }), await first({ index: 1, count: 2 })];
    expect(halves.map((h) => h.batchSize)).toEqual([4, 4]);
    expect([...halves[0].images, ...halves[1].images]).toEqual([...full.images]);
    expect([...halves[0].labels, ...halves[1].labels]).toEqual([...full.labels]);
    expect([...(halves[0].soft as Float32Array), ...(halves[1].soft as Float32Array)]).toEqual([
      ...(full.soft as Float32Array),
    ]);
    expect(() => new ff.data.ImageLoader(ds, { ...opts, shard: { index: 0, count: 3 } })).toThrow(
      /shard: 3 shards do not divide the 4 replicas of a batch/,
    );
  });
});

describe('DistributedDataParallel on 2 ranks', () => {
  const one = () => steps(run(0, [STEPS, device, '4', '10']));
  let single: StepLine[];
  let ddp: StepLine[];
  beforeAll(() => {
    single = one();
    ddp = steps(run(2, [STEPS, device, '4', '10']));
  });

  test('2 ranks x 2 rows equal 1 rank x 4 rows for 10 steps, parameters bit-identical on both ranks after every step', () => {
    expect(single).toHaveLength(10);
    expect(ddp).toHaveLength(10);
    ddp.forEach((s, i) => {
      expect(relErr(s.loss, single[i].loss)).toBeLessThan(1e-5);
      expect(s.identical).toBe(true);
    });
    expect(ddp[0].buckets).toBeGreaterThan(1); // several buckets, reduced as backward finishes them
    expect(ddp[9].partialPasses).toBeGreaterThan(0); // some shards had no gradient for a tail cluster
  });

  test('ZeRO-1 gives the same losses bit for bit, each rank holding part of the optimizer state', () => {
    const zero = steps(run(2, [STEPS, device, '4', '10', 'zero']));
    expect(zero.map((s) => s.loss)).toEqual(ddp.map((s) => s.loss));
    for (const s of zero) expect(s.identical).toBe(true);
    expect(zero[9].stateShare).toBeGreaterThan(0.3);
    expect(zero[9].stateShare).toBeLessThan(0.7);
  });
});

describe('fourierformer train lm on 2 ranks', () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-dist-'));
  afterAll(() => fs.rmSync(data, { recursive: true, force: true }));
  const fixture = path.join(__dirname, 'fixtures', 'wikitext-tiny');
  for (const f of fs.readdirSync(fixture))
    if (f.endsWith('.tokens')) fs.copyFileSync(path.join(fixture, f), path.join(data, f));
  const args = (out: string, ...more: string[]) => [
    BIN,
    'train',
    'lm',
    '--preset',
    'wt103-small',
    '--data',
    data,
    '--attention',
    'fourier',
    '--layers',
    '1',
    '--d-model',
    '16',
    '--heads',
    '2',
    '--ff-dim',
    '32',
    '--context',
    '16',
    '--batch-size',
    '4',
    '--cutoffs',
    '200,400',
    '--dropout',
    '0',
    '--steps',
    '10',
    '--warmup',
    '2',
    '--lr',
    '0.01',
    '--eval-every',
    '5',
    '--log-every',
    '1',
    '--eval-tokens',
    '0',
    '--final-stride',
    '8',
    '--final-tokens',
    '200',
    '--quiet',
    '--out',
    path.join(data, out),
    ...more,
  ];
  const metrics = (out: string) =>
    fs
      .readFileSync(path.join(data, out, 'fourier', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; step: number; loss?: number; metrics?: Record<string, number> });

  test('the losses of 1 rank; stopped at step 5 and resumed with ZeRO-1, exactly the uninterrupted run', () => {
    ok(run(0, args('one')));
    const full = ok(run(2, args('full')));
    expect(full.err).toMatch(/2 on each of 2 ranks/);
    const single = metrics('one'),
      both = metrics('full');
    expect(both.map((m) => [m.type, m.step])).toEqual(single.map((m) => [m.type, m.step]));
    both.forEach((m, i) => {
      if (m.type === 'train') expect(relErr(m.loss as number, single[i].loss as number)).toBeLessThan(1e-5);
    });
    ok(run(2, args('resumed', '--stop-after', '5', '--zero')));
    expect(metrics('resumed').length).toBeLessThan(both.length);
    ok(run(2, args('resumed', '--resume', '--zero')));
    const strip = (ms: ReturnType<typeof metrics>) => ms.map((m) => ({ ...m, seconds: 0, rate: 0 }));
    expect(strip(metrics('resumed'))).toEqual(strip(both));
    expect(fs.readFileSync(path.join(data, 'resumed', 'results.md'), 'utf8')).toMatch(/x 2 ranks/);
  });
});

(device === 'cpu' ? describe : describe.skip)('faults (cpu: the MPI layer is the same on every device)', () => {
  test('a rank killed mid-run: the job exits non-zero within 60 s, naming it', () => {
    const r = run(2, [STEPS, device, '4', '1000'], { FAULT: 'kill', FAULT_RANK: '1', FAULT_STEP: '3' }, 120);
    expect(r.code).not.toBe(0);
    expect(r.seconds).toBeLessThan(60);
    expect(r.err + r.out).toMatch(/rank 1 with PID \d+ .* exited on signal 9/); // mpirun's own report
  });

  test('a rank killed under a launcher that lets the others run on: they time out and name it', () => {
    const env = {
      FAULT: 'kill',
      FAULT_RANK: '1',
      FAULT_STEP: '3',
      FOURIERFORMER_DIST_TIMEOUT: '8',
      OMPI_MCA_orte_enable_recovery: '1',
    };
    const r = run(2, [STEPS, device, '4', '1000'], env, 120);
    expect(r.seconds).toBeLessThan(60);
    expect(r.err).toMatch(/rank 0 \(pid \d+ on .*\): .* has waited \d+ s/);
    expect(r.err).toMatch(
      /rank 1 \(pid \d+ on .*\): no answer within \d+ s: the process is dead, stopped or unreachable/,
    );
  });

  test('a rank hung mid-run: the others give up after the timeout and name it, within 60 s', () => {
    const r = run(
      2,
      [STEPS, device, '4', '1000'],
      { FAULT: 'hang', FAULT_RANK: '1', FAULT_STEP: '3', FOURIERFORMER_DIST_TIMEOUT: '8' },
      120,
    );
    expect(r.code).not.toBe(0);
    expect(r.seconds).toBeLessThan(60);
    expect(r.err).toMatch(/rank 0 \(pid \d+ on .*\): .* has waited \d+ s/);
    expect(r.err).toMatch(
      /rank 1 \(pid \d+ on .*\): alive but has not joined it: its last collective is #\d+ .*its training loop at step 3/,
    );
  });
});
