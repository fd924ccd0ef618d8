// embedding, gatherRows and scatterRows on the test device against the float64 reference; the
// gradient's determinism with repeated ids; bad ids.
import * as ff from '../lib';
import { device, gradOf, pair, randomPair, relErr, uniform } from './helpers/compare';
import { directionalCheck } from './helpers/nn-ops';

const { embeddingRef, embeddingGradRef } = ff.reference;

describe(`embedding on ${device()}`, () => {
  test('matches the reference with repeated ids, forward and backward', () => {
    const V = 9,
      D = 5;
    const idsValues = Float32Array.of(3, 0, 8, 3, 3, 1, 0, 7, 3, 2, 8, 3);
    const ids = pair(idsValues, [3, 4], false);
    const W = randomPair([V, D], -1, 1, 1);
    const y = ff.embedding(ids.t, W.t);
    expect(y.shape).toEqual([3, 4, D]);
    expect(relErr(y.toFloat32Array(), embeddingRef(ids.ref, W.ref).data)).toBe(0);
    const dy = randomPair([3, 4, D], -1, 1, 2, false);
    y.backward(dy.t);
    expect(relErr(gradOf(W.t), embeddingGradRef(ids.ref, dy.ref, V).data)).toBeLessThan(1e-6);
    expect(ids.t.grad).toBeNull();
  });

  test('the gradient sums repeated ids in order: the same bits every run, and exact for exact sums', () => {
    const n = device() === 'cuda-emu' ? 2100 : 5000; // above 2048: the sort's cross-tile steps
    const V = 37,
      D = 24;
    const ids = ff.tensor(uniform(n, 0, V, 3).map(Math.floor), [n]);
    const dy = ff.tensor(uniform(n * D, -1, 1, 4), [n, D]);
    const grads = [0, 1].map(() =>
      ff.tidy(() => {
        const W = ff.zeros([V, D], { requiresGrad: true });
        ff.embedding(ids, W).backward(dy);
        return gradOf(W);
      }),
    );
    expect(Buffer.from(grads[0].buffer).equals(Buffer.from(grads[1].buffer))).toBe(true);
    // sequential float32 sums in the order of the ids
    const expected = new Float32Array(V * D);
    const idv = ids.toFloat32Array(),
      dyv = dy.toFloat32Array();
    for (let i = 0; i < n; i++)
      for (let d = 0; d < D; d++) expected[idv[i] * D + d] = Math.fround(expected[idv[i] * D + d] + dyv[i * D + d]);
    expect(Buffer.from(grads[0].buffer).equals(Buffer.from(expected.buffer))).toBe(true);
  });

  test('a long run of one id (padding) sums to the reference, the same bits every run', () => {
    const n = 1500,
      V = 5,
      D = 3; // id 0 fills ~1300 positions: several of cuda's 256-row chunks
    const idv = Float32Array.from(uniform(n, 0, 1, 5), (u, i) => (u < 0.13 ? 1 + (i % 4) : 0));
    const ids = pair(idv, [n], false);
    const dy = randomPair([n, D], -1, 1, 6, false);
    const grads = [0, 1].map(() =>
      ff.tidy(() => {
        const W = ff.zeros([V, D], { requiresGrad: true });
        ff.embedding(ids.t, W).backward(dy.t);
        return gradOf(W);
      }),
    );
    expect(Buffer.from(grads[0].buffer).equals(Buffer.from(grads[1].buffer))).toBe(true);
    expect(relErr(grads[0], embeddingGradRef(ids.ref, dy.ref, V).data)).toBeLessThan(1e-5);
  });

  test('a large vocabulary with few ids: untouched rows get a zero gradient', () => {
    const V = 5000,
      D = 3;
    const W = ff.zeros([V, D], { requiresGrad: true });
    ff.embedding(ff.tensor([4999, 17, 4999], [3]), W).backward(ff.ones([3, D]));
    const g = gradOf(W);
    expect(g[4999 * D]).toBe(2);
    expect(g[17 * D + 2]).toBe(1);
    expect(g.reduce((s, v) => s + v, 0)).toBe(9);
  });

  test('gatherRows and scatterRows are transposes of each other, with gradients', () => {
    const x = randomPair([6, 2, 3], -1, 1, 5);
    const index = ff.tensor([5, 0, 5, 2], [4]);
    const g = ff.gatherRows(x.t, index);
    expect(g.shape).toEqual([4, 2, 3]);
    const xv = x.t.toFloat32Array();
    const gv = g.toFloat32Array();
    [5, 0, 5, 2].forEach((r, i) =>
      expect(Array.from(gv.subarray(i * 6, i * 6 + 6))).toEqual(Array.from(xv.subarray(r * 6, r * 6 + 6))),
    );
    const [fd, analytic] = directionalCheck(
      ([src]) => ff.scatterRows(src, index, 7),
      [{ values: uniform(8, -1, 1, 6), shape: [4, 2] }],
      7,
    );
    expect(Math.abs(fd - analytic)).toBeLessThan(1e-3 * Math.max(1, Math.abs(analytic)));
    const s = ff.scatterRows(ff.tensor([1, 2, 3, 4], [4]), index, 7).toFloat32Array();
    expect(Array.from(s)).toEqual([2, 0, 4, 0, 0, 4, 0]);
  });

  test('bad ids throw errors naming them, and nothing is read out of range', () => {
    const W = ff.zeros([4, 2]);
    expect(() => ff.embedding(ff.tensor([0, 4], [2]), W).toFloat32Array()).toThrow(
      /^ids: element 1 is 4\.0+; expected an integer in \[0, 4\)/,
    );
    expect(() => ff.embedding(ff.tensor([-1], [1]), W).toFloat32Array()).toThrow(/^ids: element 0 is -1/);
    expect(() => ff.embedding(ff.tensor([0.5], [1]), W).toFloat32Array()).toThrow(/^ids: element 0 is 0\.5/);
    expect(() => ff.embedding(ff.tensor([Infinity], [1]), W).toFloat32Array()).toThrow(/^ids: element 0 is inf/);
    expect(() => ff.embedding(ff.zeros([0]), W)).toThrow(/^ids: expected at least one id/);
    expect(() => ff.embedding(ff.zeros([2]), ff.zeros([4]))).toThrow(/^weight: expected a non-empty \[V, D\] table/);
    expect(() => ff.scatterRows(ff.zeros([3, 2]), ff.zeros([2]), 4)).toThrow(/^src, index/);
    expect(() => ff.scatterRows(ff.zeros([2, 2]), ff.zeros([2]), 0)).toThrow(/^rows: expected a positive integer/);
  });
});
