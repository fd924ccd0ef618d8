// safetensors files (format, round trip, conversions, rejection of bad files, atomic writes) and
// training checkpoints (weights + optimizer + scheduler + RNG state + step + config).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ff from '../lib';
import { device, uniform } from './helpers/compare';
import { TinyLM, trainStep, windows } from './helpers/tiny-lm';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-checkpoint-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const file = (name: string) => path.join(dir, `${device()}-${name}`);

/** A file from a header object and raw data bytes, padded as the format asks. */
function handMade(header: unknown, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

describe(`safetensors on ${device()}`, () => {
  test('round trip keeps every bit (NaN, -0, infinities), shapes including [] and [0, 3], and metadata', () => {
    const special = new Float32Array([NaN, -0, 0, Infinity, -Infinity, 1e-45, 3.4e38, -1.5]);
    const tensors = {
      'layers.0.weight': ff.tensor(uniform(12, -1, 1, 1), [3, 4]),
      special: ff.tensor(special, [2, 4]),
      scalar: ff.tensor([7], []),
      empty: ff.tensor([], [0, 3]),
    };
    ff.saveSafetensors(file('round.safetensors'), tensors, { note: 'hello', json: '{"a":1}' });
    const { tensors: back, metadata } = ff.readSafetensors(file('round.safetensors'));
    expect(metadata).toEqual({ note: 'hello', json: '{"a":1}' });
    expect(Object.keys(back).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      expect(back[name].shape).toEqual(t.shape);
      expect(back[name].device).toBe(device());
      expect(bits(back[name].toFloat32Array())).toEqual(bits(t.toFloat32Array()));
    }
    for (const t of [...Object.values(tensors), ...Object.values(back)]) t.dispose();
  });

  test('the file follows the specification: u64 LE header length, padded JSON, contiguous F32 data', () => {
    const a = ff.tensor([1, 2, 3], [3]);
    const b = ff.tensor([4, 5], [2, 1]);
    ff.saveSafetensors(file('layout.safetensors'), { b, a }, { k: 'v' });
    const bytes = fs.readFileSync(file('layout.safetensors'));
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    expect(header).toEqual({
      __metadata__: { k: 'v' },
      a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      b: { dtype: 'F32', shape: [2, 1], data_offsets: [12, 20] },
    });
    const data = bytes.subarray(8 + n);
    expect(data.length).toBe(20);
    expect(Array.from({ length: 5 }, (_, i) => data.readFloatLE(4 * i))).toEqual([1, 2, 3, 4, 5]);
    // Same inputs, same bytes.
    ff.saveSafetensors(file('layout2.safetensors'), { a, b }, { k: 'v' });
    expect(fs.readFileSync(file('layout2.safetensors')).equals(bytes)).toBe(true);
    expect(ff.readSafetensorsHeader(file('layout.safetensors')).tensors.b.shape).toEqual([2, 1]);
    a.dispose();
    b.dispose();
  });

  test('reads F64, F16 and BF16 as float32', () => {
    const f64 = new Float64Array([1.5, -2.25]);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00]); // 1, -2, 2^-24, inf
    const bf16 = new Uint16Array([0x3f80, 0xc040]); // 1, -3
    const data = Buffer.concat([Buffer.from(f64.buffer), Buffer.from(f16.buffer), Buffer.from(bf16.buffer)]);
    fs.writeFileSync(
      file('dtypes.safetensors'),
      handMade(
        {
          d: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
          h: { dtype: 'F16', shape: [2, 2], data_offsets: [16, 24] },
          b: { dtype: 'BF16', shape: [2], data_offsets: [24, 28] },
        },
        data,
      ),
    );
    const t = ff.loadSafetensors(file('dtypes.safetensors'));
    expect(Array.from(t.d.toFloat32Array())).toEqual([1.5, -2.25]);
    expect(Array.from(t.h.toFloat32Array())).toEqual([1, -2, 2 ** -24, Infinity]);
    expect(Array.from(t.b.toFloat32Array())).toEqual([1, -3]);
    for (const x of Object.values(t)) x.dispose();
  });

  test('rejects malformed files with a reason', () => {
    const write = (name: string, bytes: Uint8Array) => {
      fs.writeFileSync(file(name), bytes);
      return () => ff.loadSafetensors(file(name));
    };
    const four = new Uint8Array(4);
    expect(write('short', new Uint8Array(5))).toThrow(/shorter than the 8-byte header length/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1000n);
    expect(write('huge', huge)).toThrow(/runs past the end of the file/);
    expect(write('json', handMade('x', four).fill(0x7b, 8, 11))).toThrow(/not UTF-8 JSON|not a JSON object/);
    expect(
      write('hole', handMade({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8))),
    ).toThrow(/cover 4 of 8 data bytes/);
    expect(
      write(
        'overlap',
        handMade(
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            b: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
          },
          four,
        ),
      ),
    ).toThrow(/hole or an overlap/);
    expect(write('size', handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, four))).toThrow(
      /4 bytes do not hold a F32 tensor of shape \[2\]/,
    );
    expect(
      write('dtype', handMade({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8))),
    ).toThrow(/dtype I64/);
    expect(write('meta', handMade({ __metadata__: { a: 1 } }, new Uint8Array(0)))).toThrow(
      /__metadata__\.a is not a string/,
    );
  });

  test('bad arguments name themselves', () => {
    const t = ff.tensor([1], [1]);
    expect(() => ff.saveSafetensors(file('x'), { a: t }, { n: 1 as unknown as string })).toThrow(
      /metadata\.n: expected a string/,
    );
    expect(() => ff.saveSafetensors(file('x'), { __metadata__: t })).toThrow(/reserved/);
    expect(() => ff.saveSafetensors(file('x'), { a: 'no' as unknown as ff.Tensor })).toThrow(
      /tensors\.a: expected a Tensor/,
    );
    t.dispose();
    expect(() => ff.saveSafetensors(file('x'), { a: t })).toThrow(/tensors\.a: the tensor \[1\] has been disposed/);
    expect(fs.existsSync(file('x'))).toBe(false);
  });

  test('writes are atomic: a failure part-way leaves the old file and no temporary file', () => {
    const target = file('atomic.safetensors');
    const a = ff.tensor([1, 2], [2]);
    ff.saveSafetensors(target, { a });
    const before = fs.readFileSync(target);
    const b = ff.tensor([3], [1]);
    b.toFloat32Array = () => {
      throw new Error('device lost');
    };
    expect(() => ff.saveSafetensors(target, { a, b })).toThrow(/device lost/);
    expect(fs.readFileSync(target).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    a.dispose();
    b.dispose();
  });
});

/** A module of two parameters (no ops needed): enough to check what a checkpoint holds. */
class TwoParams extends ff.nn.Module {
  readonly w: ff.Tensor;
  readonly b: ff.Tensor;
  constructor(seed: number) {
    super();
    const g = new ff.Generator(seed);
    this.w = this.registerParameter('w', ff.tensor(g.normal(6), [2, 3], { device: device() }));
    this.b = this.registerParameter('b', ff.tensor(g.normal(3), [3], { device: device() }));
  }
}

describe(`checkpoints on ${device()}`, () => {
  /** n optimizer steps with gradients drawn from `gen` (standing in for data and dropout). */
  function train(
    m: TwoParams,
    opt: ff.optim.AdamW,
    sched: ff.optim.LRScheduler,
    gen: ff.Generator,
    n: number,
  ): number[][] {
    const seen: number[][] = [];
    for (let i = 0; i < n; i++) {
      for (const p of m.parameters()) p.grad = ff.tensor(gen.normal(p.size), p.shape, { device: device() });
      ff.optim.clipGradNorm_(m.parameters(), 1);
      opt.step();
      sched.step();
      opt.zeroGrad();
      seen.push(Array.from(m.w.toFloat32Array()));
    }
    return seen;
  }

  function setup(seed: number) {
    const m = new TwoParams(seed);
    const opt = new ff.optim.AdamW(m.parameters(), { lr: 0.05 });
    const sched = new ff.optim.LRScheduler(opt, ff.optim.warmupCosine({ warmupSteps: 2, totalSteps: 10 }));
    return { m, opt, sched };
  }

  test('resuming from a checkpoint continues exactly as the uninterrupted run', () => {
    const full = setup(1);
    const genFull = new ff.Generator(5);
    const reference = train(full.m, full.opt, full.sched, genFull, 6);

    const first = setup(1);
    const gen = new ff.Generator(5);
    train(first.m, first.opt, first.sched, gen, 3);
    ff.saveCheckpoint(file('run.ckpt.safetensors'), {
      model: first.m,
      optimizer: first.opt,
      scheduler: first.sched,
      generator: gen,
      step: 3,
      config: { dModel: 3, name: 'two' },
      extra: { epoch: 0 },
    });
    gen.normal(100); // the interrupted process drew more; the checkpoint must not care

    const resumed = setup(99); // different initial weights: all of them come from the file
    const gen2 = new ff.Generator(1234);
    const info = ff.loadCheckpoint(file('run.ckpt.safetensors'), {
      model: resumed.m,
      optimizer: resumed.opt,
      scheduler: resumed.sched,
      generator: gen2,
    });
    expect(info.step).toBe(3);
    expect(info.config).toEqual({ dModel: 3, name: 'two' });
    expect(info.extra).toEqual({ epoch: 0 });
    expect(resumed.sched.lastStep).toBe(3);
    const continued = train(resumed.m, resumed.opt, resumed.sched, gen2, 3);
    expect(continued).toEqual(reference.slice(3));
    expect(ff.readCheckpointInfo(file('run.ckpt.safetensors')).rng).toEqual(info.rng);
    for (const s of [full, first, resumed]) {
      s.opt.dispose();
      s.m.dispose();
    }
  });

  test('the weights are plain safetensors entries under model.<name>', () => {
    const { m, opt, sched } = setup(2);
    train(m, opt, sched, new ff.Generator(3), 1);
    ff.saveCheckpoint(file('plain.safetensors'), { model: m, optimizer: opt, step: 1 });
    const h = ff.readSafetensorsHeader(file('plain.safetensors'));
    expect(Object.keys(h.tensors).sort()).toEqual([
      'model.b',
      'model.w',
      'optimizer.0.exp_avg',
      'optimizer.0.exp_avg_sq',
      'optimizer.1.exp_avg',
      'optimizer.1.exp_avg_sq',
    ]);
    expect(h.tensors['model.w']).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(JSON.parse(h.metadata.optimizer).numbers).toEqual({ 0: { step: 1 }, 1: { step: 1 } });
    expect(() => ff.loadCheckpoint(file('plain.safetensors'), { model: m, scheduler: sched })).toThrow(
      /holds no scheduler state/,
    );
    opt.dispose();
    m.dispose();
  });

  test('loading into a model of other shapes, or a file that is not a checkpoint, fails clearly', () => {
    const { m, opt } = setup(4);
    ff.saveCheckpoint(file('shape.safetensors'), { model: m, step: 0 });
    class Other extends ff.nn.Module {
      constructor() {
        super();
        this.registerParameter('w', ff.zeros([3, 2], { device: device() }));
        this.registerParameter('b', ff.zeros([3], { device: device() }));
      }
    }
    const other = new Other();
    expect(() => ff.loadCheckpoint(file('shape.safetensors'), { model: other })).toThrow(
      /dict\.w: shape \[2, 3\] does not match the module's \[3, 2\]/,
    );
    ff.saveSafetensors(file('notckpt.safetensors'), { w: m.w });
    expect(() => ff.loadCheckpoint(file('notckpt.safetensors'), { model: m })).toThrow(
      /not a fourierformer checkpoint/,
    );
    expect(() => ff.saveCheckpoint(file('bad'), { model: m, step: -1 })).toThrow(/contents\.step/);
    other.dispose();
    opt.dispose();
    m.dispose();
  });

  for (const attention of ['fourier', 'dot'] as const) {
    test(`a tiny LM (${attention}, dropout 0.1, its own generator) resumed from a checkpoint reproduces the uninterrupted losses bit for bit`, () => {
      const context = 6;
      const data = windows('a checkpoint holds weights, moments, the step and the generator. ', context);
      const config = { vocab: data.vocab, context, dModel: 16, heads: 2, layers: 2, attention, dropout: 0.1, seed: 3 };
      const run = (model: TinyLM) => {
        const opt = new ff.optim.AdamW(ff.optim.weightDecayGroups(model, 0.01), { lr: 3e-3 });
        const sched = new ff.optim.LRScheduler(opt, ff.optim.warmupCosine({ warmupSteps: 2, totalSteps: 8 }));
        const ids = ff.tensor(data.ids, [data.count, context], { device: device() });
        const targets = ff.tensor(data.targets, [data.count, context], { device: device() });
        const steps = (n: number) =>
          Array.from({ length: n }, () => {
            const loss = trainStep(model, opt, ids, targets);
            sched.step();
            return loss;
          });
        const dispose = () => {
          opt.dispose();
          model.dispose();
          ids.dispose();
          targets.dispose();
        };
        return { opt, sched, steps, dispose };
      };
      const whole = run(new TinyLM(config, device()));
      const reference = whole.steps(8);
      whole.dispose();

      const firstModel = new TinyLM(config, device());
      const first = run(firstModel);
      first.steps(4);
      ff.saveCheckpoint(file(`lm-${attention}.safetensors`), {
        model: firstModel,
        optimizer: first.opt,
        scheduler: first.sched,
        generator: firstModel.generator,
        step: 4,
        config,
      });
      first.dispose();

      const resumedModel = new TinyLM({ ...config, seed: 77 }, device());
      const resumed = run(resumedModel);
      const info = ff.loadCheckpoint(file(`lm-${attention}.safetensors`), {
        model: resumedModel,
        optimizer: resumed.opt,
        scheduler: resumed.sched,
        generator: resumedModel.generator,
      });
      expect(info.config).toEqual(config);
      expect(resumed.steps(4)).toEqual(reference.slice(4));
      resumed.dispose();
    });
  }
});
