// add / sub / mul / div with broadcasting, scale / addScalar / neg, biasAdd and the activations
// on the test device, against the float64 reference (lib/reference/tensor-ops.ts) and by
// central differences; edge values and bad input.
import * as ff from '../lib';
import * as R from '../lib/reference/tensor-ops';
import { device, relErr, uniform } from './helpers/compare';
import { directionalError, forward, input, ref, runOp } from './helpers/tensor-ops';

const OPS: R.BinaryRefOp[] = ['add', 'sub', 'mul', 'div'];
const FNS = { add: ff.add, sub: ff.sub, mul: ff.mul, div: ff.div };

// Pairs of shapes that broadcast, covering each fast path and the general walk.
const SHAPES: [string, number[], number[]][] = [
  ['same shape', [3, 5], [3, 5]],
  ['bias row [..., F] + [F]', [2, 3, 7], [7]],
  ['column [M, 1]', [4, 6], [4, 1]],
  ['outer product [M, 1] x [1, N]', [5, 1], [1, 6]],
  ['scalar tensor', [4, 3], []],
  ['scalar on the left', [1], [2, 5]],
  ['middle broadcast', [2, 3, 4], [2, 1, 4]],
  ['6 alternating dims', [2, 3, 2, 2, 3, 2], [3, 1, 2, 1, 2]],
  ['size-0 dim', [0, 3], [3]],
];

describe(`elementwise ops on ${device()}`, () => {
  for (const [name, aShape, bShape] of SHAPES) {
    for (const op of OPS) {
      test(`${op}, ${name}: forward and both gradients match the reference`, () => {
        const a = input(aShape, -2, 2, 1);
        const b = input(bShape, 0.5, 2, 2); // away from 0 for div
        const r = runOp(FNS[op], [a, b]);
        const out = R.binaryRef(op, ref(a), ref(b));
        expect(r.shape).toEqual(out.shape);
        expect(relErr(r.out, out.data)).toBeLessThan(1e-6);
        const g = R.binaryGradRef(op, ref(a), ref(b), ff.reference.refArray(r.grad, r.shape));
        expect(relErr(r.grads[0], g.da.data)).toBeLessThan(1e-5);
        expect(relErr(r.grads[1], g.db.data)).toBeLessThan(1e-5);
      });
    }
  }

  test('large tensors (threads, vector tails): bias add, row scale and same-shape div', () => {
    const x = input([300, 131], -1, 1, 3);
    for (const [b, op] of [
      [input([131], -1, 1, 4), 'add'],
      [input([300, 1], 0.5, 1.5, 5), 'mul'],
      [input([300, 131], 0.5, 1.5, 6), 'div'],
    ] as const) {
      const r = runOp(FNS[op], [x, b]);
      expect(relErr(r.out, R.binaryRef(op, ref(x), ref(b)).data)).toBeLessThan(1e-6);
      const g = R.binaryGradRef(op, ref(x), ref(b), ff.reference.refArray(r.grad, r.shape));
      expect(relErr(r.grads[0], g.da.data)).toBeLessThan(1e-5);
      expect(relErr(r.grads[1], g.db.data)).toBeLessThan(1e-5);
    }
  });

  test('gradients agree with central differences of the forward (broadcast both ways)', () => {
    const a = input([3, 1, 4], -1, 1, 11);
    const b = input([2, 1], 0.5, 1.5, 12);
    for (const op of OPS) expect(directionalError(FNS[op], [a, b])).toBeLessThan(2e-3);
  });

  test('a number operand: add, sub, mul, div, scale, addScalar, neg', () => {
    const x = input([2, 5], -2, 2, 21);
    const cases: [(t: ff.Tensor) => ff.Tensor, (v: number) => number, number][] = [
      [(t) => ff.add(t, 1.5), (v) => v + 1.5, 1],
      [(t) => t.sub(0.25), (v) => v - 0.25, 1],
      [(t) => t.mul(-3), (v) => -3 * v, -3],
      [(t) => t.div(4), (v) => v / 4, 0.25],
      [(t) => t.scale(0.5), (v) => 0.5 * v, 0.5],
      [(t) => ff.addScalar(t, -2), (v) => v - 2, 1],
      [(t) => t.neg(), (v) => -v, -1],
    ];
    for (const [fn, f, slope] of cases) {
      const r = runOp(fn, [x]);
      expect(relErr(r.out, Array.from(x.values, f))).toBeLessThan(1e-6);
      expect(
        relErr(
          r.grads[0],
          Array.from(r.grad, (g) => g * slope),
        ),
      ).toBeLessThan(1e-6);
    }
  });

  test('the same tensor on both sides: x * x and x - x', () => {
    const x = input([6], -2, 2, 31);
    const sq = runOp((t) => t.mul(t), [x]);
    expect(
      relErr(
        sq.grads[0],
        Array.from(x.values, (v, i) => 2 * v * sq.grad[i]),
      ),
    ).toBeLessThan(1e-6);
    const zero = runOp((t) => t.sub(t), [x]);
    expect(Array.from(zero.out)).toEqual(new Array(6).fill(0));
    expect(Array.from(zero.grads[0])).toEqual(new Array(6).fill(0));
  });

  test('biasAdd: x [..., F] + b [F], and its checks', () => {
    const x = input([2, 3, 4], -1, 1, 41);
    const b = input([4], -1, 1, 42);
    const r = runOp(ff.biasAdd, [x, b]);
    expect(relErr(r.out, R.binaryRef('add', ref(x), ref(b)).data)).toBeLessThan(1e-6);
    const g = R.binaryGradRef('add', ref(x), ref(b), ff.reference.refArray(r.grad, r.shape));
    expect(relErr(r.grads[1], g.db.data)).toBeLessThan(1e-6);
    ff.tidy(() => {
      const t = ff.tensor(x.values, x.shape);
      expect(() => ff.biasAdd(t, ff.zeros([3]))).toThrow(/^bias: expected shape \[F\]/);
      expect(() => ff.biasAdd(t, ff.zeros([1, 4]))).toThrow(/^bias:/);
    });
  });
});

const UNARY: [R.UnaryRefOp, (t: ff.Tensor) => ff.Tensor, number, number][] = [
  ['gelu_erf', (t) => t.gelu(), -6, 6],
  ['gelu_tanh', (t) => t.gelu({ approximate: 'tanh' }), -6, 6],
  ['relu', (t) => t.relu(), -3, 3],
  ['exp', (t) => t.exp(), -10, 10],
  ['log', (t) => t.log(), 0.01, 100],
  ['tanh', (t) => t.tanh(), -5, 5],
];

describe(`activations on ${device()}`, () => {
  for (const [op, fn, lo, hi] of UNARY) {
    test(`${op}: forward and gradient match the reference`, () => {
      for (const shape of [
        [7, 9],
        [70, 131],
      ]) {
        const x = input(shape, lo, hi, 51);
        const r = runOp(fn, [x]);
        expect(relErr(r.out, R.unaryRef(op, ref(x)).data)).toBeLessThan(2e-6);
        expect(
          relErr(r.grads[0], R.unaryGradRef(op, ref(x), ff.reference.refArray(r.grad, r.shape)).data),
        ).toBeLessThan(1e-5);
      }
    });

    test(`${op}: gradient agrees with central differences of the forward`, () => {
      const x = input([3, 8], op === 'log' ? 0.5 : -2, 2, 61);
      // relu has a kink at 0: keep inputs away from it
      if (op === 'relu') x.values.forEach((v, i) => (x.values[i] = Math.abs(v) < 0.1 ? v + 0.3 : v));
      expect(directionalError(fn, [x], op === 'relu' ? 1e-3 : 1e-2)).toBeLessThan(2e-3);
    });
  }

  test('the reference derivatives agree with float64 central differences', () => {
    const xs = [-4, -1.3, -0.2, 0.01, 0.7, 2.5, 5];
    for (const op of ['gelu_erf', 'gelu_tanh', 'tanh'] as const) {
      const { f, df } = R.UNARY_REF[op];
      for (const x of xs) {
        const h = 1e-6;
        expect(Math.abs(df(x) - (f(x + h) - f(x - h)) / (2 * h))).toBeLessThan(1e-8);
      }
    }
    expect(R.erfRef(0.5)).toBeCloseTo(0.5204998778130465, 15);
    expect(R.erfRef(-2)).toBeCloseTo(-0.9953222650189527, 15);
  });

  test('edge values: overflow, underflow, infinities and NaN', () => {
    const x = Float32Array.from([-200, -90, 0, 89, 100, Infinity, -Infinity, NaN]);
    const run = (fn: (t: ff.Tensor) => ff.Tensor) => forward(fn, [{ values: x, shape: [8] }]);
    const e = run((t) => t.exp());
    // e^-90 is a float subnormal: 0 or that subnormal; e^89 is past FLT_MAX
    expect(e[0]).toBe(0);
    expect(e[1]).toBeLessThanOrEqual(Math.fround(Math.exp(-90)));
    expect(Array.from(e.subarray(2, 7))).toEqual([1, Infinity, Infinity, Infinity, 0]);
    expect(e[7]).toBeNaN();
    const t = run((v) => v.tanh());
    expect(Array.from(t.subarray(0, 7))).toEqual([-1, -1, 0, 1, 1, 1, -1]);
    expect(t[7]).toBeNaN();
    const r = run((v) => v.relu());
    expect(Array.from(r.subarray(0, 7))).toEqual([0, 0, 0, 89, 100, Infinity, 0]);
    expect(r[7]).toBeNaN();
    for (const approximate of ['none', 'tanh'] as const) {
      const g = run((v) => v.gelu({ approximate }));
      expect(Array.from(g.subarray(0, 5)).map((v) => v + 0)).toEqual([0, 0, 0, 89, 100]);
      expect(g[5]).toBe(Infinity);
      expect(g[7]).toBeNaN();
    }
    const l = forward((v) => v.log(), [{ values: Float32Array.from([0, -1, 1, Infinity]), shape: [4] }]);
    expect(l[0]).toBe(-Infinity);
    expect(l[1]).toBeNaN();
    expect(l[2]).toBe(0);
    expect(l[3]).toBe(Infinity);
  });
});

describe(`elementwise bad input on ${device()}`, () => {
  test('errors name the argument', () => {
    ff.tidy(() => {
      const a = ff.zeros([2, 3]);
      expect(() => ff.add(a, ff.zeros([4]))).toThrow(/^a, b: shapes \[2, 3\] and \[4\] do not broadcast/);
      expect(() => ff.mul(a, 'x' as unknown as number)).toThrow(/^b: expected a Tensor/);
      expect(() => ff.sub(a, NaN)).toThrow(/^b: expected a finite number/);
      expect(() => ff.scale(a, Infinity)).toThrow(/^alpha: expected a finite number/);
      expect(() => ff.add(null as unknown as ff.Tensor, a)).toThrow(/^a: expected a Tensor/);
      expect(() => ff.gelu(a, { approximate: 'fast' as 'tanh' })).toThrow(/^opts.approximate:/);
      const d = ff.zeros([2]);
      d.dispose();
      expect(() => ff.relu(d)).toThrow(/^x: the tensor \[2\] has been disposed/);
      // 7 dims that cannot merge: more than the kernels take
      expect(() => ff.add(ff.zeros([2, 2, 2, 2, 2, 2, 2]), ff.zeros([2, 1, 2, 1, 2, 1, 2]))).toThrow(
        /^a, b: needs 7 dimensions/,
      );
    });
  });

  test('the native functions check their arguments', () => {
    ff.tidy(() => {
      const b = ff.zeros([2, 3]).backend;
      const s = ff.zeros([6]).storage();
      expect(() => b.binary('pow' as 'add', s, [6], s, [6])).toThrow(/^op: expected 'add'/);
      expect(() => b.binary('add', s, [2, 4], s, [6])).toThrow(/^a: expected 8 elements, got 6/);
      expect(() => b.binary('add', s, [6], s, [-1] as number[])).toThrow(
        /^bShape: dim 0 must be a non-negative integer/,
      );
      expect(() => b.unary('relu', {} as typeof s)).toThrow(/^x: expected a tensor storage/);
      expect(() => b.unaryBackward('exp', s, ff.zeros([5]).storage())).toThrow(/^grad: expected 6 elements/);
      expect(() => b.affine(s, 'a' as unknown as number, 0)).toThrow(/^alpha: expected a number/);
    });
  });

  test("backward(grad) never writes, keeps or frees the caller's grad, though add passes it on uncopied", () => {
    const before = ff.memory().numTensors;
    const a = ff.tensor([1, 2, 3], [3], { requiresGrad: true });
    const b = ff.tensor([4, 5, 6], [3], { requiresGrad: true });
    const g = ff.tensor([0.5, 1, 2], [3]);
    ff.tidy(() => {
      ff.add(a, b).backward(g); // add hands g itself to both leaves
      ff.add(a, b).backward(g); // the second pass accumulates into the leaves' own grads
      ff.add(ff.mul(a, 2), a).backward(g); // a sum of two gradients arriving at one leaf
      const h = ff.mul(a, 2);
      ff.add(h, h).backward(g); // ... and at one op's output (a sum into g's slot must copy it)
    });
    const c = ff.tensor([1, 1, 1], [3], { requiresGrad: true });
    c.backward(g); // a leaf root
    expect(g.isDisposed).toBe(false);
    expect(Array.from(g.toFloat32Array())).toEqual([0.5, 1, 2]);
    for (const t of [a, b, c]) expect(t.grad).not.toBe(g);
    expect(Array.from(a.grad!.toFloat32Array())).toEqual([4.5, 9, 18]);
    expect(Array.from(b.grad!.toFloat32Array())).toEqual([1, 2, 4]);
    expect(Array.from(c.grad!.toFloat32Array())).toEqual([0.5, 1, 2]);
    for (const t of [a, b, c, g]) t.dispose();
    expect(ff.memory().numTensors).toBe(before);
  });

  test('no tensors are left behind by forward + backward inside tidy', () => {
    const before = ff.memory().numTensors;
    const x = ff.tensor(uniform(12, -1, 1, 71), [3, 4], { requiresGrad: true });
    const b = ff.tensor(uniform(4, -1, 1, 72), [4], { requiresGrad: true });
    ff.tidy(() => {
      const y = ff.biasAdd(x, b).gelu().mul(x).div(b.add(3)).sub(1).sum();
      y.backward();
    });
    x.dispose();
    b.dispose();
    expect(ff.memory().numTensors).toBe(before);
  });
});
