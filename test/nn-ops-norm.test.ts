// layerNorm, softmax and logSoftmax on the test device against the float64 reference, by finite
// differences, at the numeric edges, and with bad arguments.
import * as ff from '../lib';
import { device, gradOf, randomPair, relErr, uniform } from './helpers/compare';
import { centralDiff, directionalCheck } from './helpers/nn-ops';

const { layerNormRef, layerNormGradRef, softmaxRef, softmaxGradRef, refArray } = ff.reference;

describe(`layerNorm on ${device()}`, () => {
  const affine: [string, boolean, boolean][] = [
    ['weight and bias', true, true],
    ['no weight or bias', false, false],
    ['weight only', true, false],
    ['bias only', false, true],
  ];
  for (const [name, hasW, hasB] of affine) {
    test(`${name}: matches the reference, forward and backward`, () => {
      const x = randomPair([3, 4, 10], -2, 2, 1);
      const w = hasW ? randomPair([10], 0.5, 1.5, 2) : null;
      const b = hasB ? randomPair([10], -1, 1, 3) : null;
      const y = ff.layerNorm(x.t, w?.t, b?.t, { eps: 1e-5 });
      expect(relErr(y.toFloat32Array(), layerNormRef(x.ref, w?.ref ?? null, b?.ref ?? null, 1e-5).data)).toBeLessThan(
        1e-5,
      );
      const dy = randomPair([3, 4, 10], -1, 1, 4, false);
      y.backward(dy.t);
      const g = layerNormGradRef(x.ref, w?.ref ?? null, dy.ref, 1e-5);
      expect(relErr(gradOf(x.t), g.dx.data)).toBeLessThan(1e-4);
      if (w) expect(relErr(gradOf(w.t), g.dw.data)).toBeLessThan(1e-5);
      if (b) expect(relErr(gradOf(b.t), g.db.data)).toBeLessThan(1e-5);
    });
  }

  test('many rows and a long row (threads, chunked parameter gradients) match', () => {
    const rows = device() === 'cuda-emu' ? 70 : 300;
    const x = randomPair([rows, 333], -3, 3, 5);
    const w = randomPair([333], 0.5, 1.5, 6);
    const b = randomPair([333], -1, 1, 7);
    const y = ff.layerNorm(x.t, w.t, b.t, { eps: 1e-6 });
    expect(relErr(y.toFloat32Array(), layerNormRef(x.ref, w.ref, b.ref, 1e-6).data)).toBeLessThan(1e-5);
    const dy = randomPair([rows, 333], -1, 1, 8, false);
    y.backward(dy.t);
    const g = layerNormGradRef(x.ref, w.ref, dy.ref, 1e-6);
    expect(relErr(gradOf(x.t), g.dx.data)).toBeLessThan(1e-4);
    expect(relErr(gradOf(w.t), g.dw.data)).toBeLessThan(1e-5);
    expect(relErr(gradOf(b.t), g.db.data)).toBeLessThan(1e-5);
  });

  test('the reference gradients agree with float64 central differences', () => {
    const x = refArray(uniform(2 * 5, -1, 1, 9), [2, 5]);
    const w = refArray(uniform(5, 0.5, 1.5, 10), [5]);
    const dy = refArray(uniform(2 * 5, -1, 1, 11), [2, 5]);
    const loss = () => layerNormRef(x, w, null, 1e-3).data.reduce((s, v, i) => s + v * dy.data[i], 0);
    const g = layerNormGradRef(x, w, dy, 1e-3);
    expect(relErr(g.dx.data, centralDiff(loss, x))).toBeLessThan(1e-7);
    expect(relErr(g.dw.data, centralDiff(loss, w))).toBeLessThan(1e-7);
  });

  test('native gradients agree with finite differences of the native forward', () => {
    const [fd, analytic] = directionalCheck(
      ([x, w, b]) => ff.layerNorm(x, w, b),
      [
        { values: uniform(3 * 8, -1, 1, 12), shape: [3, 8] },
        { values: uniform(8, 0.5, 1.5, 13), shape: [8] },
        { values: uniform(8, -1, 1, 14), shape: [8] },
      ],
      15,
      1e-3,
    );
    expect(Math.abs(fd - analytic)).toBeLessThan(2e-3 * Math.max(1, Math.abs(analytic)));
  });

  test('a constant row gives beta (x - mean = 0) and finite gradients', () => {
    const x = ff.tensor([2, 2, 2, 2], [1, 4], { requiresGrad: true });
    const b = ff.tensor([1, 2, 3, 4], [4]);
    const y = ff.layerNorm(x, null, b);
    expect(Array.from(y.toFloat32Array())).toEqual([1, 2, 3, 4]);
    y.backward(ff.tensor([1, -1, 2, 0], [1, 4]));
    expect(gradOf(x).every(Number.isFinite)).toBe(true);
  });

  test('bad arguments throw errors naming them', () => {
    const x = ff.zeros([2, 4]);
    expect(() => ff.layerNorm(x, ff.zeros([3]))).toThrow(/^weight: expected shape \[4\]/);
    expect(() => ff.layerNorm(x, null, ff.zeros([4, 1]))).toThrow(/^bias: expected shape \[4\]/);
    expect(() => ff.layerNorm(x, null, null, { eps: -1 })).toThrow(/^opts.eps/);
    expect(() => ff.layerNorm(ff.zeros([0, 4]))).toThrow(/^x: expected a non-empty tensor/);
  });
});

describe(`softmax and logSoftmax on ${device()}`, () => {
  for (const log of [false, true]) {
    const name = log ? 'logSoftmax' : 'softmax';
    const op = log ? ff.logSoftmax : ff.softmax;
    test(`${name} matches the reference, forward and backward`, () => {
      const x = randomPair([4, 3, 9], -4, 4, 21);
      const y = op(x.t);
      expect(relErr(y.toFloat32Array(), softmaxRef(x.ref, log).data)).toBeLessThan(1e-5);
      const dy = randomPair([4, 3, 9], -1, 1, 22, false);
      y.backward(dy.t);
      expect(relErr(gradOf(x.t), softmaxGradRef(x.ref, dy.ref, log).data)).toBeLessThan(1e-5);
    });

    test(`${name}: the reference gradient agrees with float64 central differences`, () => {
      const x = refArray(uniform(2 * 6, -2, 2, 23), [2, 6]);
      const dy = refArray(uniform(2 * 6, -1, 1, 24), [2, 6]);
      const loss = () => softmaxRef(x, log).data.reduce((s, v, i) => s + v * dy.data[i], 0);
      expect(relErr(softmaxGradRef(x, dy, log).data, centralDiff(loss, x))).toBeLessThan(1e-7);
    });

    test(`${name}: native gradients agree with finite differences of the native forward`, () => {
      const [fd, analytic] = directionalCheck(
        ([x]) => op(x),
        [{ values: uniform(5 * 7, -2, 2, 25), shape: [5, 7] }],
        26,
        1e-3,
      );
      expect(Math.abs(fd - analytic)).toBeLessThan(2e-3 * Math.max(1, Math.abs(analytic)));
    });

    test(`${name} is stable at large logits and a long row`, () => {
      const C = 2000;
      const v = uniform(2 * C, -1, 1, 27).map((z, i) => z + (i < C ? 1000 : -1000));
      const y = op(ff.tensor(v, [2, C])).toFloat32Array();
      expect(y.every(Number.isFinite)).toBe(true);
      expect(relErr(y, softmaxRef(refArray(v, [2, C]), log).data)).toBeLessThan(1e-5);
    });
  }

  test('logSoftmax keeps log(sum) at logits ~1e9, where max + log(sum) would round it away', () => {
    const v = Float32Array.of(2 ** 30, 2 ** 30, 2 ** 30 - 1, -(2 ** 30), -(2 ** 30) + 2, 5);
    const y = ff.logSoftmax(ff.tensor(v, [2, 3])).toFloat32Array();
    expect(relErr(y, softmaxRef(refArray(v, [2, 3]), true).data)).toBeLessThan(1e-6);
  });

  test('softmax rows sum to 1 and a -inf logit gets probability 0', () => {
    const y = ff.softmax(ff.tensor([0, -Infinity, 1, 2, 3, 4], [2, 3])).toFloat32Array();
    expect(y[1]).toBe(0);
    expect(y[0] + y[1] + y[2]).toBeCloseTo(1, 6);
    expect(y[3] + y[4] + y[5]).toBeCloseTo(1, 6);
  });

  test('bad arguments throw errors naming them', () => {
    expect(() => ff.softmax(ff.zeros([2, 3]), 0)).toThrow(/^axis: only the last axis/);
    expect(() => ff.logSoftmax(ff.zeros([0]))).toThrow(/^x: expected a non-empty tensor/);
  });
});
