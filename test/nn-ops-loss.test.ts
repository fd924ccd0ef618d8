// crossEntropy on the test device against the float64 reference: class ids and soft targets,
// label smoothing, ignore_index, every reduction; finite differences; bad targets.
import * as ff from '../lib';
import { device, gradOf, pair, randomPair, relErr, uniform } from './helpers/compare';
import { centralDiff, directionalCheck } from './helpers/nn-ops';

const { crossEntropyRef, crossEntropyGradRef, refArray } = ff.reference;

type Opts = ff.CrossEntropyOptions;

function classIds(n: number, C: number, seed: number, ignoreIndex?: number): Float32Array {
  const ids = uniform(n, 0, C, seed).map(Math.floor);
  if (ignoreIndex !== undefined) for (let i = 0; i < n; i += 3) ids[i] = ignoreIndex;
  return ids;
}

function softTargets(rows: number, C: number, seed: number): Float32Array {
  const p = uniform(rows * C, 0, 1, seed);
  for (let r = 0; r < rows; r++) {
    const s = p.subarray(r * C, (r + 1) * C).reduce((a, b) => a + b, 0);
    for (let c = 0; c < C; c++) p[r * C + c] /= s;
  }
  return p;
}

function check(shape: number[], target: Float32Array, targetShape: number[], opts: Opts): void {
  const x = randomPair(shape, -3, 3, 1);
  const t = pair(target, targetShape, false);
  const loss = ff.crossEntropy(x.t, t.t, opts);
  const ref = crossEntropyRef(x.ref, t.ref, opts);
  expect(loss.shape).toEqual(ref.shape);
  expect(relErr(loss.toFloat32Array(), ref.data)).toBeLessThan(1e-5);
  const grad = randomPair([...loss.shape], 0.5, 1.5, 2, false);
  loss.backward(grad.t);
  expect(relErr(gradOf(x.t), crossEntropyGradRef(x.ref, t.ref, grad.ref, opts).data)).toBeLessThan(1e-5);
}

describe(`crossEntropy on ${device()}`, () => {
  const shape = [3, 4, 11];
  const C = 11;
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    for (const labelSmoothing of [0, 0.1]) {
      test(`class ids, reduction ${reduction}, label smoothing ${labelSmoothing}`, () => {
        check(shape, classIds(12, C, 3), [3, 4], { reduction, labelSmoothing });
      });
      test(`class ids with ignored rows (ignoreIndex -1), reduction ${reduction}, label smoothing ${labelSmoothing}`, () => {
        check(shape, classIds(12, C, 4, -1), [3, 4], { reduction, labelSmoothing, ignoreIndex: -1 });
      });
      test(`soft targets, reduction ${reduction}, label smoothing ${labelSmoothing}`, () => {
        check(shape, softTargets(12, C, 5), shape, { reduction, labelSmoothing });
      });
    }
  }

  test('an ignore index inside [0, C) ignores that class', () => {
    check([6, 5], Float32Array.of(0, 1, 2, 0, 4, 0), [6], { ignoreIndex: 0, labelSmoothing: 0.2 });
  });

  test('soft targets that do not sum to 1 follow -sum q log p', () => {
    check([2, 4], Float32Array.of(0.5, 0.5, 0.5, 0, 0.1, 0, 0, 0.2), [2, 4], { reduction: 'sum', labelSmoothing: 0.1 });
  });

  test('a long row (vocabulary-sized) and many rows match', () => {
    const rows = device() === 'cuda-emu' ? 16 : 200;
    check([rows, 3000], classIds(rows, 3000, 6), [rows], { labelSmoothing: 0.1 });
  });

  test('rows whose length is no multiple of the vector width, with logits far apart, match', () => {
    // 1013 = 63 * 16 + 5: every sweep of the cpu kernel (pairs of 8 lanes, one 8, a padded tail);
    // logits in [-80, 80] put most exp(x - max) below float's range (they must give 0, not NaN).
    const rows = 5,
      C = 1013;
    for (const labelSmoothing of [0, 0.1]) {
      const x = pair(uniform(rows * C, -80, 80, 12), [rows, C]);
      const t = pair(classIds(rows, C, 13), [rows], false);
      const loss = ff.crossEntropy(x.t, t.t, { labelSmoothing });
      expect(relErr(loss.toFloat32Array(), crossEntropyRef(x.ref, t.ref, { labelSmoothing }).data)).toBeLessThan(1e-5);
      loss.backward();
      expect(
        relErr(gradOf(x.t), crossEntropyGradRef(x.ref, t.ref, refArray([1], [1]), { labelSmoothing }).data),
      ).toBeLessThan(1e-5);
    }
  });

  test('-Infinity logits (masked classes) are left out: finite loss, zero gradient there, as PyTorch', () => {
    const rows = 3,
      C = 37;
    const values = uniform(rows * C, -3, 3, 14);
    const masked = (c: number) => c % 5 === 2;
    const targets = Float32Array.of(0, 11, 36);
    for (let i = 0; i < values.length; i++) if (masked(i % C)) values[i] = -Infinity;
    const x = ff.tensor(values, [rows, C], { device: device(), requiresGrad: true });
    const loss = ff.crossEntropy(x, ff.tensor(targets, [rows], { device: device() }));
    // the same rows with the masked classes removed
    const keptCols = Array.from({ length: C }, (_, c) => c).filter((c) => !masked(c));
    const compact = refArray(Array.from({ length: rows }, (_, r) => keptCols.map((c) => values[r * C + c])).flat(), [
      rows,
      keptCols.length,
    ]);
    const compactTargets = refArray(
      Array.from(targets, (t) => keptCols.indexOf(t)),
      [rows],
    );
    expect(relErr(loss.toFloat32Array(), crossEntropyRef(compact, compactTargets).data)).toBeLessThan(1e-5);
    loss.backward();
    const g = gradOf(x);
    const expected = crossEntropyGradRef(compact, compactTargets, refArray([1], [1])).data;
    const full = new Float64Array(rows * C);
    for (let r = 0; r < rows; r++) keptCols.forEach((c, k) => (full[r * C + c] = expected[r * keptCols.length + k]));
    expect(relErr(g, full)).toBeLessThan(1e-5);
    for (let i = 0; i < g.length; i++) if (masked(i % C)) expect(g[i]).toBe(0);
  });

  test('every row ignored: mean is NaN (as PyTorch), sum is 0, gradients are 0', () => {
    const x = ff.tensor(uniform(6, -1, 1, 7), [2, 3], { requiresGrad: true });
    const t = ff.tensor([-100, -100], [2]);
    expect(Number.isNaN(ff.crossEntropy(x, t).item())).toBe(true);
    const s = ff.crossEntropy(x, t, { reduction: 'sum' });
    expect(s.item()).toBe(0);
    s.backward();
    expect(Array.from(gradOf(x))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test('the reference gradients agree with float64 central differences', () => {
    const x = refArray(uniform(3 * 5, -2, 2, 8), [3, 5]);
    for (const [target, opts] of [
      [refArray([1, -100, 4], [3]), { labelSmoothing: 0.1 }],
      [refArray(softTargets(3, 5, 9), [3, 5]), { labelSmoothing: 0.2, reduction: 'sum' }],
    ] as [ff.reference.RefArray, Opts][]) {
      const loss = () => crossEntropyRef(x, target, opts).data[0];
      const g = crossEntropyGradRef(x, target, refArray([1], [1]), opts);
      expect(relErr(g.data, centralDiff(loss, x))).toBeLessThan(1e-7);
    }
  });

  test('native gradients agree with finite differences of the native forward', () => {
    const target = ff.tensor(softTargets(4, 6, 10), [4, 6]);
    const [fd, analytic] = directionalCheck(
      ([x]) => ff.crossEntropy(x, target, { labelSmoothing: 0.1, reduction: 'none' }),
      [{ values: uniform(24, -2, 2, 11), shape: [4, 6] }],
      12,
      1e-3,
    );
    expect(Math.abs(fd - analytic)).toBeLessThan(2e-3 * Math.max(1, Math.abs(analytic)));
  });

  test('bad targets throw errors naming them, before any kernel reads with them', () => {
    const x = ff.zeros([3, 4]);
    expect(() => ff.crossEntropy(x, ff.tensor([0, 4, 1], [3])).toFloat32Array()).toThrow(
      /^target: element 1 is 4\.0+; expected an integer in \[0, 4\)/,
    );
    expect(() => ff.crossEntropy(x, ff.tensor([0, 1.5, 1], [3])).toFloat32Array()).toThrow(
      /^target: element 1 is 1\.5/,
    );
    expect(() => ff.crossEntropy(x, ff.tensor([NaN, 1, 1], [3])).toFloat32Array()).toThrow(/^target: element 0/);
    expect(() => ff.crossEntropy(x, ff.tensor([-1, 1, 1], [3])).toFloat32Array()).toThrow(
      /^target: element 0 .* or the ignore index -100/,
    );
    expect(() => ff.crossEntropy(x, ff.zeros([4]))).toThrow(/^target: expected class ids of shape \[3\]/);
    expect(() => ff.crossEntropy(x, ff.zeros([3]), { labelSmoothing: 2 })).toThrow(/^opts.labelSmoothing/);
    expect(() => ff.crossEntropy(x, ff.zeros([3]), { reduction: 'avg' as 'mean' })).toThrow(/^opts.reduction/);
    expect(() => ff.crossEntropy(x, ff.zeros([3]), { ignoreIndex: 0.5 })).toThrow(/^opts.ignoreIndex/);
  });
});
