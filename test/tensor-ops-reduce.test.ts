// sum and mean over axes on the test device against the float64 reference, by central
// differences, on the kernel's paths (inner / outer reductions, split across threads or
// chunks), and bad input.
import * as ff from '../lib';
import * as R from '../lib/reference/tensor-ops';
import { device, relErr } from './helpers/compare';
import { directionalError, input, ref, runOp } from './helpers/tensor-ops';

/** Checks sum or mean of x over axes (undefined: all) against the reference, forward and backward. */
function check(shape: number[], axes: number[] | undefined, keepDims: boolean, mean: boolean, seed = 1): void {
  const x = input(shape, -1, 1, seed);
  const fn = (t: ff.Tensor) => (mean ? t.mean(axes, keepDims) : t.sum(axes, keepDims));
  const r = runOp(fn, [x]);
  const norm = (axes ?? shape.map((_, i) => i)).map((a) => (a < 0 ? a + shape.length : a));
  const out = (mean ? R.meanRef : R.sumRef)(ref(x), norm, keepDims);
  expect(r.shape).toEqual(out.shape);
  expect(relErr(r.out, out.data)).toBeLessThan(1e-6);
  // d sum / dx = the upstream gradient broadcast back (divided by the count for mean)
  const count = norm.reduce((n, a) => n * shape[a], 1);
  const kept = shape.map((d, i) => (norm.includes(i) ? 1 : d));
  const g = R.broadcastToRef(ff.reference.refArray(r.grad, kept), shape);
  expect(
    relErr(
      r.grads[0],
      g.data.map((v) => (mean ? v / count : v)),
    ),
  ).toBeLessThan(1e-6);
}

describe(`sum and mean on ${device()}`, () => {
  const cases: [number[], number[] | undefined][] = [
    [[2, 3, 4], undefined],
    [[2, 3, 4], [0]],
    [[2, 3, 4], [1]],
    [[2, 3, 4], [2]],
    [
      [2, 3, 4],
      [0, 2],
    ],
    [
      [2, 3, 4],
      [-1, -2],
    ],
    [
      [3, 5, 2, 4],
      [1, 3],
    ],
    [
      [3, 5, 2, 4],
      [0, 2],
    ],
    [[3, 1, 4], [1]],
    [[5], [0]],
    [[], undefined],
    [[2, 3], []],
  ];
  for (const [shape, axes] of cases) {
    for (const keepDims of [false, true]) {
      test(`sum and mean of ${JSON.stringify(shape)} over ${JSON.stringify(axes)}, keepDims ${keepDims}`, () => {
        check(shape, axes, keepDims, false);
        check(shape, axes, keepDims, true);
      });
    }
  }

  test('large reductions: whole tensor, rows, columns (the bias-gradient shape), few columns', () => {
    check([40000], undefined, false, false, 2);
    check([300, 130], [0], false, false, 3);
    check([300, 130], [1], false, true, 4);
    check([3, 12000], [1], true, false, 5);
    check([12000, 3], [0], false, true, 6);
    check([20, 300, 7], [0, 2], false, false, 7);
  });

  test('the sum of many equal values is exact to float rounding (double accumulation)', () => {
    const n = 1 << 20;
    const s = ff.tidy(() => ff.full([n], 0.1).sum().item());
    expect(Math.abs(s - Math.fround(0.1) * n)).toBeLessThan(1e-3);
  });

  test('an empty axis: sum 0, mean NaN', () => {
    ff.tidy(() => {
      const x = ff.zeros([2, 0, 3]);
      expect(Array.from(x.sum(1).toFloat32Array())).toEqual(new Array(6).fill(0));
      expect(x.mean(1).toFloat32Array().every(Number.isNaN)).toBe(true);
      expect(x.sum(0).shape).toEqual([0, 3]);
    });
  });

  test('gradients agree with central differences of the forward', () => {
    const x = input([3, 4, 5], -1, 1, 11);
    expect(directionalError((t) => t.sum([0, 2]), [x])).toBeLessThan(1e-3);
    expect(directionalError((t) => t.mean(1, true).mul(t), [x])).toBeLessThan(2e-3);
  });

  test('bad input names the argument', () => {
    ff.tidy(() => {
      const x = ff.zeros([2, 3]);
      expect(() => x.sum([0, 0])).toThrow(/^axes: axis 0 is repeated/);
      expect(() => x.sum(2)).toThrow(/^axes: expected integers in \[-2, 1\]/);
      expect(() => x.mean([0.5])).toThrow(/^axes:/);
      expect(() => ff.sum(x, 0, 'yes' as unknown as boolean)).toThrow(/^keepDims: expected a boolean/);
      expect(() => ff.sum({} as ff.Tensor)).toThrow(/^x: expected a Tensor/);
      // reduced and kept dims alternating 7 times: more than the kernels take
      expect(() => ff.zeros([2, 2, 2, 2, 2, 2, 2]).sum([0, 2, 4, 6])).toThrow(
        /^axes: the reduced and kept dimensions alternate 7 times/,
      );
      const b = x.backend;
      expect(() => b.sumAxes(x.storage(), [2, 3], [2])).toThrow(/^axes: expected integers in \[0, 2\)/);
      expect(() => b.sumAxes(x.storage(), [3, 3], [0])).toThrow(/^x: expected 9 elements, got 6/);
    });
  });
});
