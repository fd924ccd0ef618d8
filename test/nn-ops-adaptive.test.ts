// adaptiveLogSoftmaxWithLoss and adaptiveInput on the test device against the float64 reference
// (every row through every cluster, by the definition) and its central differences, with the
// weights untied and tied as in the paper's language model.
import * as ff from '../lib';
import { device, gradOf, pair, Pair, randomPair, relErr } from './helpers/compare';
import { centralDiff } from './helpers/nn-ops';

const { adaptiveLogProbRef, refArray, embeddingRef, linearRef } = ff.reference;

const d = 8;
const cutoffs = [4, 7, 11];
const V = 14;
// targets hitting the shortlist and every cluster, and one cluster twice
const targetValues = Float32Array.of(0, 5, 13, 3, 8, 12, 6, 1, 10, 11);
const N = targetValues.length;

interface Weights {
  head: Pair;
  headBias: Pair;
  tails: { proj: Pair | null; projTransposed: boolean; weight: Pair }[];
}

function makeWeights(projTransposed: boolean): Weights {
  const dims = [d, d / 2, 2];
  return {
    head: randomPair([cutoffs[0] + 3, d], -0.5, 0.5, 1),
    headBias: randomPair([cutoffs[0] + 3], -0.5, 0.5, 2),
    tails: [0, 1, 2].map((i) => {
      const Vi = (i < 2 ? cutoffs[i + 1] : V) - cutoffs[i];
      const proj = i === 0 ? null : randomPair(projTransposed ? [d, dims[i]] : [dims[i], d], -0.5, 0.5, 10 + i);
      return { proj, projTransposed, weight: randomPair([Vi, dims[i]], -0.5, 0.5, 20 + i) };
    }),
  };
}

function nllRef(x: ff.reference.RefArray, w: Weights): number[] {
  const lp = adaptiveLogProbRef(x, refWeights(w), cutoffs);
  return Array.from(targetValues, (t, r) => -lp.data[r * V + t]);
}

function refWeights(w: Weights): ff.reference.AdaptiveSoftmaxRefWeights {
  return {
    head: w.head.ref,
    headBias: w.headBias.ref,
    tails: w.tails.map((t) => ({ proj: t.proj?.ref ?? null, projTransposed: t.projTransposed, weight: t.weight.ref })),
  };
}

function tensorWeights(w: Weights): ff.AdaptiveSoftmaxWeights {
  return {
    head: w.head.t,
    headBias: w.headBias.t,
    tails: w.tails.map((t) => ({ proj: t.proj?.t ?? null, projTransposed: t.projTransposed, weight: t.weight.t })),
  };
}

describe(`adaptiveLogSoftmaxWithLoss on ${device()}`, () => {
  for (const projTransposed of [false, true]) {
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      test(`reduction ${reduction}${projTransposed ? ', tied (transposed) projections' : ''}: loss and every gradient match the reference`, () => {
        const x = randomPair([2, N / 2, d], -1, 1, 3);
        const w = makeWeights(projTransposed);
        const { loss } = ff.adaptiveLogSoftmaxWithLoss(x.t, ff.tensor(targetValues, [2, N / 2]), tensorWeights(w), {
          cutoffs,
          reduction,
        });
        const x2 = refArray(x.ref.data, [N, d]);
        const nll = nllRef(x2, w);
        const total = nll.reduce((a, b) => a + b, 0);
        if (reduction === 'none') {
          expect(loss.shape).toEqual([2, N / 2]);
          expect(relErr(loss.toFloat32Array(), nll)).toBeLessThan(1e-5);
          loss.backward(ff.ones([2, N / 2]));
        } else {
          expect(loss.shape).toEqual([]);
          expect(relErr([loss.item()], [reduction === 'sum' ? total : total / N])).toBeLessThan(1e-5);
          loss.backward();
        }
        const scale = reduction === 'mean' ? 1 / N : 1;
        const f = () => nllRef(x2, w).reduce((a, b) => a + b, 0) * scale;
        const params: [string, ff.Tensor, ff.reference.RefArray][] = [
          ['x', x.t, x2],
          ['head', w.head.t, w.head.ref],
          ['headBias', w.headBias.t, w.headBias.ref],
          ...w.tails.flatMap((t, i) => [
            [`tails[${i}].weight`, t.weight.t, t.weight.ref] as [string, ff.Tensor, ff.reference.RefArray],
            ...(t.proj
              ? [[`tails[${i}].proj`, t.proj.t, t.proj.ref] as [string, ff.Tensor, ff.reference.RefArray]]
              : []),
          ]),
        ];
        for (const [name, t, ref] of params) {
          const err = relErr(gradOf(t), centralDiff(f, ref));
          if (err > 1e-4) throw new Error(`${name}: gradient error ${err}`);
        }
      });
    }
  }

  test('logProbs: every word of the vocabulary, normalised per row', () => {
    const x = randomPair([N, d], -1, 1, 4);
    const w = makeWeights(false);
    const { logProbs } = ff.adaptiveLogSoftmaxWithLoss(x.t, ff.tensor(targetValues, [N]), tensorWeights(w), {
      cutoffs,
      logProbs: true,
    });
    const ref = adaptiveLogProbRef(x.ref, refWeights(w), cutoffs);
    expect(logProbs?.shape).toEqual([N, V]);
    const lp = (logProbs as ff.Tensor).toFloat32Array();
    expect(relErr(lp, ref.data)).toBeLessThan(1e-5);
    for (let r = 0; r < N; r++)
      expect(lp.subarray(r * V, (r + 1) * V).reduce((s, v) => s + Math.exp(v), 0)).toBeCloseTo(1, 5);
  });

  test('adaptiveLogProbs: the same log-probabilities without a target; a head in two parts, few rows or many', () => {
    const w = makeWeights(false);
    const split = tensorWeights(w);
    const whole = split.head as ff.Tensor;
    split.head = [ff.slice(whole, 0, 0, 5), ff.slice(whole, 0, 5)];
    for (const rows of [1, 3, N]) {
      const x = randomPair([rows, d], -1, 1, 5 + rows);
      const ref = adaptiveLogProbRef(x.ref, refWeights(w), cutoffs);
      const lp = ff.adaptiveLogProbs(x.t, tensorWeights(w), { cutoffs });
      expect(lp.shape).toEqual([rows, V]);
      expect(relErr(lp.toFloat32Array(), ref.data)).toBeLessThan(1e-5);
      // rows < d multiply the parts one by one, rows >= d the joined head: the same values
      expect(relErr(ff.adaptiveLogProbs(x.t, split, { cutoffs }).toFloat32Array(), ref.data)).toBeLessThan(1e-5);
      const x3 = ff.reshape(x.t, [1, rows, d]);
      expect(ff.adaptiveLogProbs(x3, split, { cutoffs }).shape).toEqual([1, rows, V]);
    }
    // the bias's gradient reaches both parts of a split head
    const x = randomPair([2, d], -1, 1, 9);
    const bias = ff.tensor(w.headBias.t.toFloat32Array(), [cutoffs[0] + 3], { device: device(), requiresGrad: true });
    ff.sum(ff.adaptiveLogProbs(x.t, { ...split, headBias: bias }, { cutoffs })).backward();
    expect(Array.from(gradOf(bias)).filter((g) => g !== 0).length).toBe(cutoffs[0] + 3);
    expect(() =>
      ff.adaptiveLogProbs(x.t, { ...split, head: [ff.slice(whole, 0, 0, 5), ff.slice(whole, 0, 5, 6)] }, { cutoffs }),
    ).toThrow(/weights\.head: expected \[7, 8\] \(shortlist 4 \+ 3 clusters\), got \[5, 8\] \+ \[1, 8\]/);
  });

  test('adaptiveLogProbs without grad: one native call, the reference and the composed ops (1e-5); projections either way, biases, heads whole or split', () => {
    for (const projTransposed of [false, true]) {
      const w = makeWeights(projTransposed);
      const tailBias = w.tails.map((t, i) => randomPair([t.weight.t.shape[0]], -0.5, 0.5, 40 + i, false));
      const refW = refWeights(w);
      refW.tails.forEach((t, i) => (t.bias = i === 1 ? null : tailBias[i].ref));
      const tw = tensorWeights(w);
      tw.tails.forEach((t, i) => (t.bias = i === 1 ? null : tailBias[i].t));
      const whole = tw.head as ff.Tensor;
      for (const [head, headBias] of [
        [whole, tw.headBias],
        [[ff.slice(whole, 0, 0, 4), ff.slice(whole, 0, 4)], tw.headBias],
        [whole, null],
      ] as const) {
        const weights = { ...tw, head: head as ff.Tensor | [ff.Tensor, ff.Tensor], headBias };
        for (const rows of [1, 3, N]) {
          const x = randomPair([rows, d], -1, 1, 30 + rows, false);
          const ref = adaptiveLogProbRef(
            x.ref,
            { ...refW, headBias: headBias === null ? null : refW.headBias },
            cutoffs,
          );
          const native = ff.noGrad(() => ff.adaptiveLogProbs(x.t, weights, { cutoffs }));
          const composed = ff.noGrad(() => ff.adaptiveLogProbs(x.t, weights, { cutoffs, composed: true }));
          expect(native.shape).toEqual([rows, V]);
          expect(relErr(native.toFloat32Array(), ref.data)).toBeLessThan(1e-5);
          expect(relErr(native.toFloat32Array(), composed.toFloat32Array())).toBeLessThan(1e-5);
          const x3 = ff.noGrad(() => ff.adaptiveLogProbs(ff.reshape(x.t, [1, rows, d]), weights, { cutoffs }));
          expect(x3.shape).toEqual([1, rows, V]);
          expect(relErr(x3.toFloat32Array(), ref.data)).toBeLessThan(1e-5);
        }
      }
      // a projection of the right size but the wrong shape, a bias of the wrong length: errors naming them
      const x = randomPair([2, d], -1, 1, 39, false);
      const bad = (tails: ff.AdaptiveSoftmaxTail[]) => () =>
        ff.noGrad(() => ff.adaptiveLogProbs(x.t, { ...tw, tails }, { cutoffs }));
      const p1 = tw.tails[1].proj as ff.Tensor;
      expect(
        bad(tw.tails.map((t, i) => (i === 1 ? { ...t, proj: ff.reshape(p1, [p1.shape[1], p1.shape[0]]) } : t))),
      ).toThrow(
        new RegExp(
          `^weights\\.tails\\[1\\]\\.proj: expected \\[${projTransposed ? `${d}, ${d / 2}` : `${d / 2}, ${d}`}\\]`,
        ),
      );
      expect(bad(tw.tails.map((t, i) => (i === 0 ? { ...t, bias: ff.zeros([2], { device: device() }) } : t)))).toThrow(
        /^weights\.tails\[0\]\.bias: expected \[3\], got \[2\]/,
      );
      expect(bad(tw.tails.map((t, i) => (i === 1 ? { ...t, proj: null } : t)))).toThrow(
        /^weights\.tails\[1\]\.weight: expected \[4, 8\] without a projection, got \[4, 4\]/,
      );
    }
  });

  test('adaptiveInput of ids all in one cluster (one token, as in decoding): the rows and their gradient', () => {
    const table = randomPair([4, 2], -0.5, 0.5, 60);
    const proj = randomPair([d, 2], -0.5, 0.5, 61);
    const clusters = [
      { weight: randomPair([4, d], -0.5, 0.5, 62).t, proj: null },
      { weight: randomPair([3, d / 2], -0.5, 0.5, 63).t, proj: randomPair([d, d / 2], -0.5, 0.5, 64).t },
      { weight: table.t, proj: proj.t },
      { weight: randomPair([3, 2], -0.5, 0.5, 65).t, proj: randomPair([d, 2], -0.5, 0.5, 66).t },
    ];
    for (const ids of [[9], [8, 10, 8]]) {
      const h = ff.adaptiveInput(ff.tensor(ids, [1, ids.length], { device: device() }), clusters, cutoffs);
      expect(h.shape).toEqual([1, ids.length, d]);
      const want = ids.flatMap((id) =>
        Array.from(linearRef(embeddingRef(refArray([id - 7], [1]), table.ref), proj.ref, null).data),
      );
      expect(relErr(h.toFloat32Array(), want)).toBeLessThan(1e-5);
      ff.sum(h).backward();
      const g = gradOf(table.t);
      expect(g.slice(0, 2).every((x) => x === 0)).toBe(true); // row 0 (id 7) is never read
      expect(g.slice(2).some((x) => x !== 0)).toBe(true);
      table.t.grad = null;
    }
  });

  test('weights tied with an adaptive input: shared tables get the gradient of both uses', () => {
    // adaptive input clusters: [0, 4) in d dims, [4, 7) in d/2, [7, 11) in 2, [11, 14) in 2
    const inDims = [d, d / 2, 2, 2];
    const bounds = [0, ...cutoffs, V];
    const tables = inDims.map((di, i) => randomPair([bounds[i + 1] - bounds[i], di], -0.5, 0.5, 30 + i));
    const projs = inDims.map((di, i) => (i === 0 ? null : randomPair([d, di], -0.5, 0.5, 40 + i)));
    const clusterRows = randomPair([3, d], -0.5, 0.5, 50);
    const ids = pair(Float32Array.of(13, 2, 5, 9, 0, 11, 4, 7), [8], false);
    const clusters = tables.map((t, i) => ({ weight: t.t, proj: projs[i]?.t ?? null }));
    const h = ff.adaptiveInput(ids.t, clusters, cutoffs);
    expect(h.shape).toEqual([8, d]);
    // the input embedding by the definition: row = E_i[id - c_i] P_i^T
    const hRef = Array.from(ids.ref.data, (id) => {
      const i = bounds.findIndex((b, k) => id >= b && id < bounds[k + 1]);
      const e = embeddingRef(refArray([id - bounds[i]], [1]), tables[i].ref);
      return projs[i] ? linearRef(e, (projs[i] as Pair).ref, null).data : e.data;
    });
    expect(
      relErr(
        h.toFloat32Array(),
        hRef.flatMap((r) => Array.from(r)),
      ),
    ).toBeLessThan(1e-5);
    const weights: ff.AdaptiveSoftmaxWeights = {
      head: [tables[0].t, clusterRows.t],
      tails: [1, 2, 3].map((i) => ({ proj: projs[i]?.t, projTransposed: true, weight: tables[i].t })),
    };
    const target = ff.tensor(Float32Array.of(2, 5, 9, 0, 11, 4, 7, 13), [8]);
    ff.adaptiveLogSoftmaxWithLoss(h, target, weights, { cutoffs, reduction: 'sum' }).loss.backward();
    // reference: the same model with the shared tables, differentiated by central differences
    const f = () => {
      const hr = refArray(
        Float64Array.from(
          Array.from(ids.ref.data, (id) => {
            const i = bounds.findIndex((b, k) => id >= b && id < bounds[k + 1]);
            const e = embeddingRef(refArray([id - bounds[i]], [1]), tables[i].ref);
            return Array.from(projs[i] ? linearRef(e, (projs[i] as Pair).ref, null).data : e.data);
          }).flat(),
        ),
        [8, d],
      );
      const head = refArray([...tables[0].ref.data, ...clusterRows.ref.data], [cutoffs[0] + 3, d]);
      const lp = adaptiveLogProbRef(
        hr,
        { head, tails: [1, 2, 3].map((i) => ({ proj: projs[i]?.ref, projTransposed: true, weight: tables[i].ref })) },
        cutoffs,
      );
      return [2, 5, 9, 0, 11, 4, 7, 13].reduce((s, t, r) => s - lp.data[r * V + t], 0);
    };
    tables.forEach((t) => expect(relErr(gradOf(t.t), centralDiff(f, t.ref))).toBeLessThan(1e-4));
    projs.forEach((p) => p && expect(relErr(gradOf(p.t), centralDiff(f, p.ref))).toBeLessThan(1e-4));
    expect(relErr(gradOf(clusterRows.t), centralDiff(f, clusterRows.ref))).toBeLessThan(1e-4);
  });

  test('bad arguments throw errors naming them', () => {
    const w = tensorWeights(makeWeights(false));
    const x = ff.zeros([N, d]);
    const t = ff.tensor(targetValues, [N]);
    expect(() => ff.adaptiveLogSoftmaxWithLoss(x, ff.tensor([14], [1]), w, { cutoffs })).toThrow(
      /^target: expected shape \[10\]/,
    );
    const bad = targetValues.slice();
    bad[3] = 14;
    expect(() => ff.adaptiveLogSoftmaxWithLoss(x, ff.tensor(bad, [N]), w, { cutoffs })).toThrow(
      /^target: element 3 is 14/,
    );
    expect(() => ff.adaptiveLogSoftmaxWithLoss(x, t, w, { cutoffs: [4, 7] })).toThrow(/^opts.cutoffs/);
    expect(() => ff.adaptiveLogSoftmaxWithLoss(x, t, w, { cutoffs: [4, 8, 11] })).toThrow(
      /^weights.tails\[0\].weight: expected \[4, d_0\]/,
    );
    expect(() => ff.adaptiveLogSoftmaxWithLoss(x, t, { ...w, head: ff.zeros([6, d]) }, { cutoffs })).toThrow(
      /^weights.head: expected \[7, 8\]/,
    );
    expect(() =>
      ff.adaptiveInput(ff.tensor([20], [1]), [{ weight: ff.zeros([4, d]) }, { weight: ff.zeros([10, d]) }], [4]),
    ).toThrow(/^ids: element 0 is 20/);
  });
});
