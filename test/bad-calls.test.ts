// Bad calls that once passed silently or failed unclearly (issue 27, items 6-9): each must throw
// an Error that names the argument, on every backend.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ff from '../lib';
import { device } from './helpers/compare';

const t = (a: number[], s: number[], g = false) => ff.tensor(a, s, { device: device(), requiresGrad: g });

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-bad-calls-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Live tensors before each test: other test files in this worker may hold some (the addon is
// loaded once per process), so each test checks that it left none of its own.
let live = 0;
beforeAll(() => ff.tensor([1], [1], { device: device() }).dispose()); // loads the backend first
beforeEach(() => {
  live = ff.memory().numTensors;
});
afterEach(() => expect(ff.memory().numTensors).toBe(live));

describe(`bad calls on ${device()}`, () => {
  test('tensor(): every value must be a number (item 6)', () => {
    expect(() => ff.tensor([1, 'x', 3, 4] as unknown as number[], [4])).toThrow(
      /^data\[1\]: expected a number, got "x"/,
    );
    expect(() => ff.tensor([1, null, 3, 4] as unknown as number[], [4])).toThrow(
      /^data\[1\]: expected a number, got null/,
    );
    expect(() => ff.tensor([1, undefined] as unknown as number[], [2])).toThrow(
      /^data\[1\]: expected a number, got undefined/,
    );
    expect(() => ff.tensor([true, 2] as unknown as number[], [2])).toThrow(/^data\[0\]: expected a number, got true/);
    expect(() =>
      ff.tensor(
        [
          [1, 2],
          [3, 4],
        ] as unknown as number[],
        [4],
      ),
    ).toThrow(/^data: has 2 values but shape \[4\] needs 4/);
    expect(() =>
      ff.tensor(
        [
          [1, 2],
          [3, 4],
        ] as unknown as number[],
        [2],
      ),
    ).toThrow(/^data\[0\]: expected a number, got an array \(nested arrays/);
    expect(() => ff.tensor(new Float64Array(2) as unknown as number[], [2])).toThrow(
      /^data: expected a Float32Array or an array of numbers, got a Float64Array/,
    );
    // NaN and Infinity are float values like any other.
    const x = ff.tensor([NaN, Infinity, -0], [3], { device: device() });
    expect(Array.from(x.toFloat32Array())).toEqual([NaN, Infinity, -0]);
    x.dispose();
  });

  test('shapes: integers, and no more elements than a tensor holds', () => {
    expect(() => ff.zeros([2 ** 20, 2 ** 20], { device: device() })).toThrow(
      /^shape: \[1048576, 1048576\] has 1099511627776 elements, more than a tensor holds/,
    );
    expect(() => ff.ones([1e300], { device: device() })).toThrow(/^shape: .* more than a tensor holds/);
    expect(() => ff.full([2, 1.5], 0, { device: device() })).toThrow(
      /^shape: expected non-negative integers, got \[2, 1.5\]/,
    );
    expect(() => ff.zeros([2, NaN], { device: device() })).toThrow(
      /^shape: expected non-negative integers, got \[2, NaN\]/,
    );
    expect(() => ff.zeros('3' as unknown as number[])).toThrow(
      /^shape: expected an array of non-negative integers, got "3"/,
    );
    expect(() => ff.full([2], '1' as unknown as number)).toThrow(/^value: expected a number, got "1"/);
  });

  test('factory options: an object, and requiresGrad a boolean (item 7)', () => {
    const dev = device();
    for (const bad of ['yes', 1, null, 0]) {
      const opts = { device: dev, requiresGrad: bad as unknown as boolean };
      expect(() => ff.tensor([1], [1], opts)).toThrow(/^opts\.requiresGrad: expected a boolean/);
      expect(() => ff.zeros([1], opts)).toThrow(/^opts\.requiresGrad: expected a boolean/);
      expect(() => ff.ones([1], opts)).toThrow(/^opts\.requiresGrad: expected a boolean/);
      expect(() => ff.full([1], 2, opts)).toThrow(/^opts\.requiresGrad: expected a boolean/);
    }
    for (const bad of [5, 'cpu', null, [], true]) {
      expect(() => ff.zeros([3], bad as never)).toThrow(/^opts: expected an object/);
      expect(() => ff.tensor([1], [1], bad as never)).toThrow(/^opts: expected an object/);
    }
    expect(() => ff.zeros([3], { device: dev, requiresgrad: true } as never)).toThrow(
      /^opts\.requiresgrad: unknown option/,
    );
    const g = ff.zeros([2], { device: dev, requiresGrad: true });
    expect(g.requiresGrad).toBe(true);
    g.dispose();
  });

  test('op options: an object with known keys and values of the right type (item 7)', () => {
    ff.tidy(() => {
      const q = t([0.1, 0.2, 0.3, 0.4], [1, 1, 2, 2]);
      const v = t([1, 2], [1, 1, 2, 1]);
      const R = t([2], [1]);
      for (const bad of [5, 'x', null, [], true]) {
        expect(() => ff.fourierMetric(q, q, R, bad as never)).toThrow(/^opts: expected an object/);
        expect(() => ff.fourierAttention(q, q, v, R, bad as never)).toThrow(/^opts: expected an object/);
        expect(() => ff.dotProductAttention(q, q, v, bad as never)).toThrow(/^opts: expected an object/);
        expect(() => ff.matmul(q, q, bad as never)).toThrow(/^opts: expected an object/);
        expect(() => ff.layerNorm(q, null, null, bad as never)).toThrow(/^opts: expected an object/);
        expect(() => ff.gelu(q, bad as never)).toThrow(/^opts: expected an object/);
        expect(() => ff.dropout(q, 0.5, bad as never)).toThrow(/^opts: expected an object/);
        expect(() => ff.crossEntropy(q, q, bad as never)).toThrow(/^opts: expected an object/);
      }
      expect(() => ff.fourierAttention(q, q, v, R, { casual: true } as never)).toThrow(
        /^opts\.casual: unknown option \(expected power, causal, eps, stable\)/,
      );
      expect(() => ff.fourierAttention(q, q, v, R, { causal: 'yes' } as never)).toThrow(
        /^causal: expected a boolean, got "yes"/,
      );
      expect(() => ff.fourierAttention(q, q, v, R, { stable: 1 } as never)).toThrow(
        /^stable: expected a boolean, got 1/,
      );
      expect(() => ff.fourierAttention(q, q, v, R, { eps: NaN })).toThrow(
        /^eps: expected a finite number >= 0, got NaN/,
      );
      expect(() => ff.dotProductAttention(q, q, v, { causal: 1 } as never)).toThrow(
        /^causal: expected a boolean, got 1/,
      );
      expect(() => ff.dotProductAttention(q, q, v, { scale: Infinity })).toThrow(
        /^scale: expected a finite number, got Infinity/,
      );
      expect(() => ff.matmul(q, q, { transB: 'no' } as never)).toThrow(/^opts\.transB: expected a boolean, got "no"/);
      expect(() => ff.dropout(q, 0.5, { training: 0 } as never)).toThrow(/^opts\.training: expected a boolean, got 0/);
      expect(() => q.backward(undefined, { retainGraph: 'yes' } as never)).toThrow(
        /^opts\.retainGraph: expected a boolean/,
      );
    });
  });

  test('module and optimizer options (item 7)', () => {
    const dev = device();
    expect(() => new ff.nn.MultiHeadAttention(8, 2, { device: dev, qkvBias: 'no' } as never)).toThrow(
      /^opts\.qkvBias: expected a boolean, got "no"/,
    );
    expect(() => new ff.nn.MultiHeadAttention(8, 2, { device: dev, causal: 1 } as never)).toThrow(
      /^opts\.causal: expected a boolean, got 1/,
    );
    expect(() => new ff.nn.MultiHeadAttention(8, 2, { device: dev, stable: 'true' } as never)).toThrow(
      /^stable: expected a boolean/,
    );
    expect(() => new ff.nn.MultiHeadAttention(8, 2, { device: dev, power: 2.5 })).toThrow(
      /^power: expected a positive integer/,
    );
    expect(() => new ff.nn.MultiHeadAttention(8, 2, 5 as never)).toThrow(/^opts: expected an object/);
    expect(() => new ff.nn.MultiHeadAttention(8, 2, null as never)).toThrow(/^opts: expected an object/);
    expect(() => new ff.nn.Linear(2, 2, { device: dev, bias: 'no' } as never)).toThrow(
      /^opts\.bias: expected a boolean, got "no"/,
    );
    expect(() => new ff.nn.LayerNorm(2, { device: dev, elementwiseAffine: 1 } as never)).toThrow(
      /^opts\.elementwiseAffine: expected a boolean/,
    );
    expect(() => new ff.nn.TransformerBlock(8, 2, { device: dev, dropout: 2 })).toThrow(
      /^opts\.dropout: expected a finite number in \[0, 1\], got 2/,
    );
    expect(() => new ff.nn.TransformerBlock(8, 2, { device: dev, qkvBias: 'no' } as never)).toThrow(
      /^opts\.qkvBias: expected a boolean/,
    );
    expect(() => new ff.nn.TransformerBlock(8, 2, { device: dev, ffdim: 4 } as never)).toThrow(
      /^opts\.ffdim: unknown option/,
    );
    expect(() => new ff.nn.Dropout(0.1, 'seed' as never)).toThrow(/^generator: expected a Generator/);
    const lin = new ff.nn.Linear(2, 2, { device: dev, bias: false });
    expect(lin.bias).toBeNull();
    expect(() => new ff.optim.AdamW(lin.parameters(), 5 as never)).toThrow(/^options: expected an object/);
    expect(() => new ff.optim.AdamW(lin.parameters(), { weight_decay: 0.1 } as never)).toThrow(
      /^options\.weight_decay: unknown option/,
    );
    expect(() => new ff.optim.SGD(lin.parameters(), null as never)).toThrow(/^options: expected an object/);
    expect(() => new ff.optim.SGD(lin.parameters(), {} as never)).toThrow(/^options\.lr: SGD needs a learning rate/);
    expect(() => new ff.optim.Adam([{ params: lin.parameters(), betas1: 0.8 }] as never)).toThrow(
      /^params\[0\]\.betas1: unknown option/,
    );
    expect(() => ff.optim.clipGradNorm_(lin.parameters(), 1, { errorIfNonfinite: 'yes' } as never)).toThrow(
      /^opts\.errorIfNonfinite: expected a boolean/,
    );
    expect(() => ff.optim.clipGradNormAsync_(lin.parameters(), 1, { errorIfNonfinite: true } as never)).toThrow(
      /^opts\.errorIfNonfinite: unknown option \(expected none\)/,
    );
    expect(() => ff.optim.clipGradNormAsync_(lin.parameters(), 1, 5 as never)).toThrow(/^opts: expected an object/);
    expect(() => lin.loadStateDict(lin.stateDict(), { strict: 'no' } as never)).toThrow(
      /^opts\.strict: expected a boolean/,
    );
    lin.dispose();
  });

  test('null is not an absent option', () => {
    ff.tidy(() => {
      const x = t([0.1, 0.2, 0.3, 0.4], [2, 2]);
      const q = t([0.1, 0.2, 0.3, 0.4], [1, 1, 2, 2]);
      expect(() => ff.crossEntropy(x, t([0, 1], [2]), { ignoreIndex: null } as never)).toThrow(
        /^opts\.ignoreIndex: expected an integer/,
      );
      expect(() => ff.fourierAttention(q, q, q, t([1], [1]), { eps: null } as never)).toThrow(
        /^eps: expected a finite number >= 0, got null/,
      );
      expect(() => ff.fourierMetric(q, q, t([1], [1]), { power: null } as never)).toThrow(
        /^power: expected a positive integer/,
      );
      expect(() => ff.dropout(x, 0.5, { generator: null } as never)).toThrow(/^opts\.generator: expected a Generator/);
    });
  });

  test('tidy() disposes what fn made when fn throws', () => {
    const before = ff.memory().numTensors;
    expect(() =>
      ff.tidy(() => {
        t([1, 2], [2]);
        ff.fourierMetric(t([1], [1]), t([1], [1]), t([1], [1]));
      }),
    ).toThrow(/^q: expected 4 dimensions/);
    expect(ff.memory().numTensors).toBe(before);
  });

  test('R may be any finite value: K depends on |R| only, R = 0 gives uniform weights (item 7)', () => {
    ff.tidy(() => {
      const q = t([0.1, -0.7, 0.3, 0.9], [1, 1, 2, 2]);
      const k = t([0.4, 0.2, -0.6, 0.5, 0.05, 0.8], [1, 1, 3, 2]);
      const v = t([1, 2, 3], [1, 1, 3, 1]);
      const Kpos = ff.fourierMetric(q, k, t([1.5, 3], [2])).toFloat32Array();
      const Kneg = ff.fourierMetric(q, k, t([-1.5, -3], [2])).toFloat32Array();
      expect(Array.from(Kneg)).toEqual(Array.from(Kpos));
      const h0 = ff.fourierAttention(q, k, v, t([0], [1]), { eps: 0 }).toFloat32Array();
      for (const x of h0) expect(x).toBeCloseTo(2, 6);
    });
  });
});

describe(`safetensors files that lie on ${device()}`, () => {
  /** A file from a header object and data bytes. */
  function craft(name: string, header: unknown, data: Uint8Array = new Uint8Array(0)): string {
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    const file = path.join(dir, `${device()}-${name}.safetensors`);
    fs.writeFileSync(file, Buffer.concat([len, json, data]));
    return file;
  }

  test('a huge shape of an unknown or known dtype is refused before anything is allocated (item 8)', () => {
    const huge = [33554432, 33554432];
    const unknown = craft(
      'unknown-dtype',
      { a: { dtype: 'Q7', shape: huge, data_offsets: [0, 8] } },
      new Uint8Array(8),
    );
    for (const read of [ff.loadSafetensors, ff.readSafetensors, ff.readSafetensorsHeader]) {
      expect(() => read(unknown)).toThrow(/: not a valid safetensors file: a: dtype "Q7" is not a safetensors dtype/);
    }
    const i64 = craft('huge-i64', { a: { dtype: 'I64', shape: huge, data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(() => ff.loadSafetensors(i64)).toThrow(
      /a: 8 bytes do not hold a I64 tensor of shape \[33554432, 33554432\]/,
    );
    const f32 = craft(
      'huge-f32',
      { a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40, 2 ** 40], data_offsets: [0, 4] } },
      new Uint8Array(4),
    );
    expect(() => ff.loadSafetensors(f32)).toThrow(/a: 4 bytes do not hold a F32 tensor/);
    const past = craft(
      'past-end',
      { a: { dtype: 'F32', shape: [2 ** 28], data_offsets: [0, 2 ** 30] } },
      new Uint8Array(4),
    );
    expect(() => ff.loadSafetensors(past)).toThrow(/a: data_offsets \[0, 1073741824\] run past the data \(4 bytes\)/);
    const known = craft('i64', { a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(ff.readSafetensorsHeader(known).tensors.a).toEqual({ dtype: 'I64', shape: [1], data_offsets: [0, 8] });
    expect(() => ff.loadSafetensors(known)).toThrow(
      /: tensor a has dtype I64; fourierformer reads F32, F64, F16, BF16/,
    );
  });

  test('empty tensors alone in a file (0 data bytes) round trip', () => {
    const file = path.join(dir, `${device()}-empty.safetensors`);
    ff.tidy(() =>
      ff.saveSafetensors(file, {
        a: ff.zeros([7, 0, 0], { device: device() }),
        b: ff.zeros([0], { device: device() }),
      }),
    );
    const back = ff.loadSafetensors(file, { device: device() });
    expect(back.a.shape).toEqual([7, 0, 0]);
    expect(back.b.shape).toEqual([0]);
    for (const x of Object.values(back)) x.dispose();
  });

  test('a directory or a missing file is an error naming the path (item 9)', () => {
    for (const read of [ff.loadSafetensors, ff.readSafetensors, ff.readSafetensorsHeader]) {
      expect(() => read(dir)).toThrow(
        new RegExp(`^path: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is a directory, not a safetensors file`),
      );
      expect(() => read(path.join(dir, 'none.safetensors'))).toThrow(/^path: cannot read .*none\.safetensors: ENOENT/);
      expect(() => read(5 as never)).toThrow(/^path: expected a file name, got 5/);
    }
    const x = ff.tensor([1], [1], { device: device() });
    expect(() => ff.saveSafetensors(dir, { x })).toThrow(/^path: .* is a directory, not a file/);
    expect(() => ff.saveSafetensors(path.join(dir, 'no', 'such', 'dir.safetensors'), { x })).toThrow(
      /^path: cannot write .*dir\.safetensors: ENOENT/,
    );
    expect(() => ff.loadSafetensors(dir, { device: 'tpu' } as never)).toThrow(/^opts\.device: unknown device "tpu"/);
    x.dispose();
  });
});
