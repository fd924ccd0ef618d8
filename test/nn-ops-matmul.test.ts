// matmul and linear on the test device against the float64 reference (lib/reference/nn-ops.ts),
// by finite differences, and with bad arguments.
import * as ff from '../lib';
import { device, gradOf, randomPair, relErr, uniform } from './helpers/compare';
import { centralDiff, directionalCheck } from './helpers/nn-ops';

const { matmulRef, matmulGradRef, linearRef, linearGradRef, refArray } = ff.reference;

describe(`matmul on ${device()}`, () => {
  const M = 5,
    K = 7,
    N = 3;
  const cases: [string, number[], number[], boolean, boolean][] = [
    ['2-D', [M, K], [K, N], false, false],
    ['2-D, a transposed', [K, M], [K, N], true, false],
    ['2-D, b transposed', [M, K], [N, K], false, true],
    ['2-D, both transposed', [K, M], [N, K], true, true],
    ['batched', [2, 3, M, K], [2, 3, K, N], false, false],
    ['batched, both transposed', [4, K, M], [4, N, K], true, true],
    ['batch of a against one b (one folded GEMM)', [2, 3, M, K], [K, N], false, false],
    ['batch of a, transposed, against one b', [3, K, M], [N, K], true, true],
    ['one a against a batch of b', [M, K], [3, K, N], false, false],
    ['one a, transposed, against a batch of b, transposed', [1, K, M], [3, N, K], true, true],
    // one row of output: a GEMV on cpu, in every layout of a and b
    ['one row', [1, K], [K, N], false, false],
    ['one row, a transposed', [K, 1], [K, N], true, false],
    ['one row, b transposed', [1, K], [N, K], false, true],
    ['one row, both transposed', [K, 1], [N, K], true, true],
    ['a batch of single rows', [4, 1, K], [4, N, K], false, true],
  ];
  for (const [name, aShape, bShape, transA, transB] of cases) {
    test(`${name} matches the reference, forward and backward`, () => {
      const a = randomPair(aShape, -1, 1, 1);
      const b = randomPair(bShape, -1, 1, 2);
      const c = ff.matmul(a.t, b.t, { transA, transB });
      const ref = matmulRef(a.ref, b.ref, transA, transB);
      expect(c.shape).toEqual(ref.shape);
      expect(relErr(c.toFloat32Array(), ref.data)).toBeLessThan(1e-5);
      const dC = randomPair([...c.shape], -1, 1, 3, false);
      c.backward(dC.t);
      const g = matmulGradRef(a.ref, b.ref, dC.ref, transA, transB);
      expect(relErr(gradOf(a.t), g.da.data)).toBeLessThan(1e-5);
      expect(relErr(gradOf(b.t), g.db.data)).toBeLessThan(1e-5);
      for (const t of [a.t, b.t, c, dC.t]) t.dispose();
    });
  }

  test('the reference gradients agree with float64 central differences', () => {
    const a = refArray(uniform(2 * 3 * 4, -1, 1, 4), [2, 4, 3]);
    const b = refArray(uniform(5 * 4, -1, 1, 5), [5, 4]);
    const dC = refArray(uniform(2 * 3 * 5, -1, 1, 6), [2, 3, 5]);
    const loss = () => matmulRef(a, b, true, true).data.reduce((s, v, i) => s + v * dC.data[i], 0);
    const g = matmulGradRef(a, b, dC, true, true);
    expect(relErr(g.da.data, centralDiff(loss, a))).toBeLessThan(1e-7);
    expect(relErr(g.db.data, centralDiff(loss, b))).toBeLessThan(1e-7);
  });

  test('native gradients agree with finite differences of the native forward', () => {
    const [fd, analytic] = directionalCheck(
      ([a, b]) => ff.matmul(a, b, { transB: true }),
      [
        { values: uniform(2 * 4 * 6, -1, 1, 7), shape: [2, 4, 6] },
        { values: uniform(2 * 3 * 6, -1, 1, 8), shape: [2, 3, 6] },
      ],
      9,
    );
    expect(Math.abs(fd - analytic)).toBeLessThan(1e-3 * Math.max(1, Math.abs(analytic)));
  });

  test('a larger product (threaded BLAS) matches', () => {
    const a = randomPair([96, 80], -1, 1, 10);
    const b = randomPair([80, 112], -1, 1, 11);
    const c = ff.matmul(a.t, b.t);
    expect(relErr(c.toFloat32Array(), matmulRef(a.ref, b.ref).data)).toBeLessThan(1e-5);
  });

  test('bad arguments throw errors naming them', () => {
    const a = ff.zeros([2, 3]);
    expect(() => ff.matmul(a, ff.zeros([4, 2]))).toThrow(/a, b: inner dimensions differ/);
    expect(() => ff.matmul(ff.zeros([3]), a)).toThrow(/^a: expected at least 2 dimensions/);
    expect(() => ff.matmul(a, ff.zeros([3]))).toThrow(/^b: expected at least 2 dimensions/);
    expect(() => ff.matmul(ff.zeros([2, 2, 3]), ff.zeros([3, 3, 4]))).toThrow(/^a, b: shapes/);
    expect(() => ff.matmul(ff.zeros([2, 1, 2, 3]), ff.zeros([1, 3, 3, 4]))).toThrow(/batch dims/);
    expect(() => ff.matmul(a, ff.zeros([3, 2]), { transA: 1 as unknown as boolean })).toThrow(/^opts.transA/);
    expect(() => ff.matmul(a, 'b' as unknown as ff.Tensor)).toThrow(/^b: expected a Tensor/);
  });
});

describe(`linear on ${device()}`, () => {
  for (const withBias of [true, false]) {
    test(`x [2, 3, 6] W [4, 6]${withBias ? ' + b' : ''} matches the reference, forward and backward`, () => {
      const x = randomPair([2, 3, 6], -1, 1, 21);
      const W = randomPair([4, 6], -1, 1, 22);
      const b = withBias ? randomPair([4], -1, 1, 23) : null;
      const y = ff.linear(x.t, W.t, b?.t);
      expect(y.shape).toEqual([2, 3, 4]);
      expect(relErr(y.toFloat32Array(), linearRef(x.ref, W.ref, b?.ref ?? null).data)).toBeLessThan(1e-5);
      const dy = randomPair([2, 3, 4], -1, 1, 24, false);
      y.backward(dy.t);
      const g = linearGradRef(x.ref, W.ref, dy.ref);
      expect(relErr(gradOf(x.t), g.dx.data)).toBeLessThan(1e-5);
      expect(relErr(gradOf(W.t), g.dW.data)).toBeLessThan(1e-5);
      if (b) expect(relErr(gradOf(b.t), g.db.data)).toBeLessThan(1e-5);
    });
  }

  test('only the gradients that are needed are computed', () => {
    const x = randomPair([5, 3], -1, 1, 25, false);
    const W = randomPair([2, 3], -1, 1, 26);
    const b = randomPair([2], -1, 1, 27, false);
    ff.linear(x.t, W.t, b.t).backward(ff.ones([5, 2]));
    expect(x.t.grad).toBeNull();
    expect(b.t.grad).toBeNull();
    expect(relErr(gradOf(W.t), linearGradRef(x.ref, W.ref, refArrayOnes([5, 2])).dW.data)).toBeLessThan(1e-5);
  });

  test('many rows (the bias gradient is summed by several threads) match', () => {
    const x = randomPair([300, 17], -1, 1, 28);
    const W = randomPair([230, 17], -1, 1, 29);
    const b = randomPair([230], -1, 1, 30);
    const y = ff.linear(x.t, W.t, b.t);
    expect(relErr(y.toFloat32Array(), linearRef(x.ref, W.ref, b.ref).data)).toBeLessThan(1e-5);
    const dy = randomPair([300, 230], -1, 1, 31, false);
    y.backward(dy.t);
    const g = linearGradRef(x.ref, W.ref, dy.ref);
    expect(relErr(gradOf(b.t), g.db.data)).toBeLessThan(1e-5);
    expect(relErr(gradOf(W.t), g.dW.data)).toBeLessThan(1e-5);
  });

  test('products cut into several GEMM blocks per thread (rows, then columns) match at the block edges', () => {
    // 2 * 1024 * 256 * 640 flops: blocks of 256 rows on cpu; 2 * 512 * 256 * 2048: blocks of columns.
    const d = { device: device() };
    for (const [rows, inF, out] of [
      [1024, 256, 640],
      [512, 256, 2048],
    ]) {
      const xv = uniform(rows * inF, -1, 1, 40),
        wv = uniform(out * inF, -1, 1, 41),
        bv = uniform(out, -1, 1, 42);
      const y = ff.tidy(() =>
        ff
          .linear(ff.tensor(xv, [rows, inF], d), ff.tensor(wv, [out, inF], d), ff.tensor(bv, [out], d))
          .toFloat32Array(),
      );
      const checked = [0, 170, 171, 255, 256, 341, 342, 511, 512, 767, 768, rows - 1].filter((r) => r < rows);
      const got: number[] = [],
        want: number[] = [];
      for (const r of checked) {
        for (let o = 0; o < out; o++) {
          let s = bv[o];
          for (let i = 0; i < inF; i++) s += xv[r * inF + i] * wv[o * inF + i];
          got.push(y[r * out + o]);
          want.push(s);
        }
      }
      expect(relErr(got, want)).toBeLessThan(1e-5);
    }
  });

  test('one row (a token at a time): a GEMV, split into blocks of columns when wide, matches with its bias', () => {
    // 2 * 512 * 8192 flops: two threads' blocks of columns on cpu
    const d = { device: device() };
    for (const [inF, out] of [
      [6, 9],
      [512, 8192],
    ]) {
      const xv = uniform(inF, -1, 1, 43),
        wv = uniform(out * inF, -1, 1, 44),
        bv = uniform(out, -1, 1, 45);
      const y = ff.tidy(() =>
        ff.linear(ff.tensor(xv, [1, inF], d), ff.tensor(wv, [out, inF], d), ff.tensor(bv, [out], d)).toFloat32Array(),
      );
      const want = Array.from({ length: out }, (_, o) => {
        let sum = bv[o];
        for (let i = 0; i < inF; i++) sum += xv[i] * wv[o * inF + i];
        return sum;
      });
      expect(relErr(y, want)).toBeLessThan(1e-5);
    }
  });

  test('native gradients agree with finite differences of the native forward', () => {
    const [fd, analytic] = directionalCheck(
      ([x, W, b]) => ff.linear(x, W, b),
      [
        { values: uniform(4 * 5, -1, 1, 32), shape: [4, 5] },
        { values: uniform(3 * 5, -1, 1, 33), shape: [3, 5] },
        { values: uniform(3, -1, 1, 34), shape: [3] },
      ],
      35,
    );
    expect(Math.abs(fd - analytic)).toBeLessThan(1e-3 * Math.max(1, Math.abs(analytic)));
  });

  test('bad arguments throw errors naming them', () => {
    const W = ff.zeros([4, 6]);
    expect(() => ff.linear(ff.zeros([2, 5]), W)).toThrow(/^x: expected shape \[\.\.\., 6\]/);
    expect(() => ff.linear(ff.zeros([2, 6]), ff.zeros([6]))).toThrow(/^weight: expected 2 dimensions/);
    expect(() => ff.linear(ff.zeros([2, 6]), W, ff.zeros([3]))).toThrow(/^bias: expected shape \[4\]/);
  });
});

function refArrayOnes(shape: number[]): ff.reference.RefArray {
  return refArray(new Float64Array(shape.reduce((a, b) => a * b, 1)).fill(1), shape);
}
