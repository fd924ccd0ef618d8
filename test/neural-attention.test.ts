// neuralAttention (the fused op and the first layer's halves around it) on the test device against
// the float64 reference, which runs the authors' unsplit network per pair, and by finite
// differences.
import * as ff from '../lib';
import { device, gradOf, Pair, randomPair, relErr, uniform } from './helpers/compare';

const { neuralAttentionRef, neuralAttentionGradRef } = ff.reference;

interface Shape {
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  F: number;
  Dv: number;
  d1: number;
  d2: number;
}

type Params = Record<keyof ff.NeuralAttentionParams, Pair>;

/** Weights uniform in +-gain/sqrt(fan-in) (PyTorch's init for gain 1), biases in +-0.5. */
function randomParams(F: number, d1: number, d2: number, seed: number, gain = 1): Params {
  const w = (rows: number, cols: number, s: number) =>
    randomPair([rows, cols], -gain / Math.sqrt(cols), gain / Math.sqrt(cols), s);
  return {
    w1: w(d1, 2 * F, seed),
    b1: randomPair([d1], -0.5, 0.5, seed + 1),
    w2: w(d2, d1, seed + 2),
    b2: randomPair([d2], -0.5, 0.5, seed + 3),
    w3: w(1, d2, seed + 4),
    b3: randomPair([1], -0.5, 0.5, seed + 5),
  };
}

const tensors = (p: Params) =>
  Object.fromEntries(Object.entries(p).map(([n, x]) => [n, x.t])) as unknown as ff.NeuralAttentionParams;
const refs = (p: Params) =>
  Object.fromEntries(Object.entries(p).map(([n, x]) => [n, x.ref])) as unknown as ff.reference.NeuralParamsRef;

function check(s: Shape, causal: boolean, seed: number, gain = 1): void {
  ff.tidy(() => {
    const q = randomPair([s.B, s.H, s.Nq, s.F], -1, 1, seed);
    const k = randomPair([s.B, s.H, s.Nk, s.F], -1, 1, seed + 1);
    const v = randomPair([s.B, s.H, s.Nk, s.Dv], -1, 1, seed + 2);
    const dout = randomPair([s.B, s.H, s.Nq, s.Dv], -1, 1, seed + 3, false);
    const p = randomParams(s.F, s.d1, s.d2, seed + 10, gain);
    const o = ff.neuralAttention(q.t, k.t, v.t, tensors(p), { causal });
    o.backward(dout.t);
    expect(relErr(o.toFloat32Array(), neuralAttentionRef(q.ref, k.ref, v.ref, refs(p), { causal }).data)).toBeLessThan(
      1e-4,
    );
    const g = neuralAttentionGradRef(q.ref, k.ref, v.ref, refs(p), dout.ref, { causal });
    expect(relErr(gradOf(q.t), g.dq.data)).toBeLessThan(1e-3);
    expect(relErr(gradOf(k.t), g.dk.data)).toBeLessThan(1e-3);
    expect(relErr(gradOf(v.t), g.dv.data)).toBeLessThan(1e-3);
    for (const name of ['w1', 'b1', 'w2', 'b2', 'w3'] as const) {
      const err = relErr(gradOf(p[name].t), g.params[name].data);
      expect({ [name]: err < 1e-3 ? 'ok' : err }).toEqual({ [name]: 'ok' });
    }
    // b3 shifts every score of a row alike: softmax ignores it, and its gradient, a sum over rows of
    // sum_j dS_ij = delta_i (1 - sum_j P_ij), is 0 up to each row's rounding (|delta_i| <= Dv here).
    expect(Math.abs(gradOf(p.b3.t)[0])).toBeLessThan(1e-6 * s.B * s.H * s.Nq * s.Dv);
  });
}

describe(`neuralAttention on ${device()}`, () => {
  for (const causal of [false, true]) {
    for (const [d1, d2] of [
      [2, 1],
      [4, 2],
      [8, 4],
      [8, 8],
    ]) {
      test(`causal ${causal}, hidden ${d1} x ${d2}`, () => {
        check({ B: 2, H: 2, Nq: 37, Nk: 37, F: d1, Dv: 16, d1, d2 }, causal, 100 * d1 + 10 * d2 + (causal ? 1 : 0));
      });
    }
  }

  test('hidden sizes between the buckets (3 x 1, 5 x 3, 6 x 6, 1 x 1), F != d1', () => {
    check({ B: 1, H: 2, Nq: 21, Nk: 21, F: 4, Dv: 8, d1: 3, d2: 1 }, true, 301);
    check({ B: 1, H: 1, Nq: 19, Nk: 19, F: 2, Dv: 16, d1: 5, d2: 3 }, false, 302);
    check({ B: 2, H: 1, Nq: 17, Nk: 17, F: 9, Dv: 5, d1: 6, d2: 6 }, true, 303);
    check({ B: 1, H: 3, Nq: 9, Nk: 9, F: 1, Dv: 4, d1: 1, d2: 1 }, false, 304);
  });

  test('cross-attention shapes and wide values (Dv 64, 200), long rows', () => {
    check({ B: 1, H: 3, Nq: 5, Nk: 70, F: 2, Dv: 64, d1: 2, d2: 1 }, false, 501);
    check({ B: 2, H: 1, Nq: 65, Nk: 3, F: 3, Dv: 200, d1: 4, d2: 2 }, false, 502);
    check({ B: 1, H: 1, Nq: 300, Nk: 300, F: 2, Dv: 16, d1: 2, d2: 1 }, true, 503);
  });

  test('large scores stay finite (online softmax)', () =>
    check({ B: 1, H: 2, Nq: 20, Nk: 20, F: 2, Dv: 16, d1: 2, d2: 1 }, true, 601, 40));

  test('native gradients agree with finite differences (directional, every input)', () => {
    const F = 3,
      d1 = 4,
      d2 = 2,
      N = 9;
    const shapes: Record<string, number[]> = {
      q: [1, 2, N, F],
      k: [1, 2, N, F],
      v: [1, 2, N, 5],
      w1: [d1, 2 * F],
      b1: [d1],
      w2: [d2, d1],
      b2: [d2],
      w3: [1, d2],
      b3: [1],
    };
    const names = Object.keys(shapes);
    const x0 = names.map((n, i) =>
      uniform(
        shapes[n].reduce((a, b) => a * b, 1),
        -1,
        1,
        700 + i,
      ),
    );
    const W = uniform(90, -1, 1, 710);
    const run = (x: Float32Array[], grad: boolean) => {
      const t = Object.fromEntries(names.map((n, i) => [n, ff.tensor(x[i], shapes[n], { requiresGrad: grad })]));
      const o = ff.neuralAttention(t.q, t.k, t.v, t as unknown as ff.NeuralAttentionParams, { causal: true });
      return { t, o };
    };
    const loss = (x: Float32Array[]): number =>
      ff.tidy(() =>
        run(x, false)
          .o.toFloat32Array()
          .reduce((s, v, i) => s + v * W[i], 0),
      );
    const grads = ff.tidy(() => {
      const { t, o } = run(x0, true);
      o.backward(ff.tensor(W, [1, 2, N, 5]));
      return names.map((n) => gradOf(t[n]));
    });
    const dirs = x0.map((x, n) => uniform(x.length, -1, 1, 720 + n));
    const h = 1e-2;
    const shifted = (sign: number) => x0.map((x, n) => x.map((v, i) => v + sign * h * dirs[n][i]));
    const fd = (loss(shifted(1)) - loss(shifted(-1))) / (2 * h);
    const analytic = grads.reduce((s, g, n) => s + g.reduce((t, v, i) => t + v * dirs[n][i], 0), 0);
    expect(Math.abs(fd - analytic)).toBeLessThan(2e-3 * Math.max(1, Math.abs(analytic)));
  });

  test('bad arguments name themselves', () => {
    ff.tidy(() => {
      const q = ff.zeros([1, 1, 4, 2]);
      const p = tensors(randomParams(2, 2, 1, 900));
      expect(() => ff.neuralAttention(q, ff.zeros([1, 1, 4, 3]), q, p)).toThrow(/^k: shape/);
      expect(() => ff.neuralAttention(q, q, q, null as unknown as ff.NeuralAttentionParams)).toThrow(
        /^params: expected/,
      );
      expect(() => ff.neuralAttention(q, q, q, { ...p, w2: undefined } as unknown as ff.NeuralAttentionParams)).toThrow(
        /^params\.w2: /,
      );
      expect(() => ff.neuralAttention(q, q, q, { ...p, w1: ff.zeros([2, 5]) })).toThrow(
        /^params\.w1: expected shape \[d1, 4\]/,
      );
      expect(() => ff.neuralAttention(q, q, q, { ...p, b1: ff.zeros([3]) })).toThrow(
        /^params\.b1: expected shape \[2\]/,
      );
      expect(() => ff.neuralAttention(q, q, q, { ...p, w2: ff.zeros([1, 3]) })).toThrow(
        /^params\.w2: expected shape \[d2, 2\]/,
      );
      expect(() => ff.neuralAttention(q, q, q, { ...p, w3: ff.zeros([2, 1]) })).toThrow(
        /^params\.w3: expected shape \[1, 1\]/,
      );
      expect(() => ff.neuralAttention(q, q, q, { ...p, b3: ff.zeros([2]) })).toThrow(/^params\.b3: /);
      const wide = tensors(randomParams(2, 9, 1, 901));
      expect(() => ff.neuralAttention(q, q, q, wide)).toThrow(/^params\.w1: the fused kernels take at most 8/);
      expect(() => ff.neuralAttention(q, ff.zeros([1, 1, 5, 2]), ff.zeros([1, 1, 5, 2]), p, { causal: true })).toThrow(
        /^causal: /,
      );
      expect(() => ff.neuralAttention(q, q, q, p, null as unknown as ff.NeuralAttentionOptions)).toThrow(/^opts: /);
      const gone = ff.zeros([1, 1, 4, 2]);
      gone.dispose();
      expect(() => ff.neuralAttention(gone, q, q, p)).toThrow(/^q: /);
    });
  });
});
