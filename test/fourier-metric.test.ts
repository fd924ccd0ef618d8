// fourierMetric on the test device against the float64 reference (lib/reference), by finite
// differences, and at the edge cases of the sinc kernel.
import * as ff from '../lib';
import { device, gradOf, pair, relErr, uniform } from './helpers/compare';

const { fourierMetricRef, fourierMetricGradRef, refArray } = ff.reference;

/** Runs forward and backward with a fixed random upstream gradient; returns native and ref results. */
function run(
  qv: Float32Array,
  kv: Float32Array,
  Rv: Float32Array,
  qShape: number[],
  kShape: number[],
  RShape: number[],
  power: number,
) {
  const q = pair(qv, qShape);
  const k = pair(kv, kShape);
  const R = pair(Rv, RShape);
  const K = ff.fourierMetric(q.t, k.t, R.t, { power });
  const dK = pair(uniform(K.size, -1, 1, 99), [...K.shape], false);
  K.backward(dK.t);
  const ref = fourierMetricRef(q.ref, k.ref, R.ref, power);
  const grads = fourierMetricGradRef(q.ref, k.ref, R.ref, dK.ref, power);
  const out = {
    K: K.toFloat32Array(),
    Kref: ref.data,
    dq: gradOf(q.t),
    dk: gradOf(k.t),
    dR: gradOf(R.t),
    grads,
  };
  for (const t of [q.t, k.t, R.t, K, dK.t]) t.dispose();
  return out;
}

describe(`fourierMetric on ${device()}`, () => {
  const B = 2,
    H = 3,
    Nq = 5,
    Nk = 7,
    D = 6;
  const rShapes: number[][] = [[], [1], [D], [H, 1], [H, D], [1, D], [1, 1]];

  for (const RShape of rShapes) {
    for (const power of [1, 2, 3, 4]) {
      test(`matches the float64 reference: R ${JSON.stringify(RShape)}, power ${power}`, () => {
        const nR = RShape.reduce((a, b) => a * b, 1);
        const r = run(
          uniform(B * H * Nq * D, -0.8, 0.8, 1),
          uniform(B * H * Nk * D, -0.8, 0.8, 2),
          uniform(nR, 1.5, 2.5, 3),
          [B, H, Nq, D],
          [B, H, Nk, D],
          RShape,
          power,
        );
        expect(relErr(r.K, r.Kref)).toBeLessThan(1e-4);
        expect(relErr(r.dq, r.grads.dq.data)).toBeLessThan(1e-3);
        expect(relErr(r.dk, r.grads.dk.data)).toBeLessThan(1e-3);
        expect(relErr(r.dR, r.grads.dR.data)).toBeLessThan(1e-3);
      });
    }
  }

  test('the reference gradients agree with float64 central differences', () => {
    const q = refArray(uniform(1 * 2 * 3 * 4, -1, 1, 5), [1, 2, 3, 4]);
    const k = refArray(uniform(1 * 2 * 4 * 4, -1, 1, 6), [1, 2, 4, 4]);
    const R = refArray(uniform(2 * 4, 1, 3, 7), [2, 4]);
    const dK = refArray(uniform(1 * 2 * 3 * 4, -1, 1, 8), [1, 2, 3, 4]);
    const loss = () => fourierMetricRef(q, k, R, 4).data.reduce((s, x, i) => s + x * dK.data[i], 0);
    const g = fourierMetricGradRef(q, k, R, dK, 4);
    for (const [x, gx] of [
      [q, g.dq],
      [k, g.dk],
      [R, g.dR],
    ] as const) {
      const fd = x.data.map((v, i) => {
        const h = 1e-6;
        x.data[i] = v + h;
        const up = loss();
        x.data[i] = v - h;
        const down = loss();
        x.data[i] = v;
        return (up - down) / (2 * h);
      });
      expect(relErr(gx.data, fd)).toBeLessThan(1e-6);
    }
  });

  test('native gradients agree with finite differences of the native forward (directional)', () => {
    const qShape = [1, 2, 4, 5],
      kShape = [1, 2, 3, 5],
      RShape = [2, 1];
    const x0 = [uniform(40, -0.7, 0.7, 11), uniform(30, -0.7, 0.7, 12), uniform(2, 1.5, 2.5, 13)];
    const W = uniform(24, -1, 1, 14);
    // L = sum(K * W): its gradient is the metric's backward with dK = W.
    const loss = (x: Float32Array[]): number =>
      ff.tidy(() => {
        const K = ff.fourierMetric(ff.tensor(x[0], qShape), ff.tensor(x[1], kShape), ff.tensor(x[2], RShape));
        return K.toFloat32Array().reduce((s, v, i) => s + v * W[i], 0);
      });
    const grads = ff.tidy(() => {
      const ts = x0.map((v, n) => ff.tensor(v, [qShape, kShape, RShape][n], { requiresGrad: true }));
      ff.fourierMetric(ts[0], ts[1], ts[2]).backward(ff.tensor(W, [1, 2, 4, 3]));
      return ts.map(gradOf);
    });
    const dirs = [uniform(40, -1, 1, 15), uniform(30, -1, 1, 16), uniform(2, -1, 1, 17)];
    const h = 1e-2;
    const shifted = (sign: number) => x0.map((x, n) => x.map((v, i) => v + sign * h * dirs[n][i]));
    const fd = (loss(shifted(1)) - loss(shifted(-1))) / (2 * h);
    const analytic = grads.reduce((s, g, n) => s + g.reduce((t, v, i) => t + v * dirs[n][i], 0), 0);
    expect(Math.abs(fd - analytic)).toBeLessThan(2e-3 * Math.max(1, Math.abs(analytic)));
  });

  test('q == k exactly gives K = 1 and zero gradients', () => {
    const v = uniform(2 * 8, -1, 1, 21);
    const r = run(v, v, Float32Array.of(2), [1, 1, 2, 8], [1, 1, 2, 8], [1], 4);
    expect(r.K[0]).toBe(1);
    expect(r.K[3]).toBe(1);
    expect(relErr(r.K, r.Kref)).toBeLessThan(1e-4);
    expect(relErr(r.dq, r.grads.dq.data)).toBeLessThan(1e-3);
    expect(relErr(r.dR, r.grads.dR.data)).toBeLessThan(1e-3);
  });

  for (const power of [1, 4]) {
    test(`x at multiples of pi (sinc zeros), power ${power}`, () => {
      // R = pi and q - k = 1 or -3 on one feature of rows 0 and 2: s = 0 there (up to float
      // rounding of pi); row 1 has no zero, so the gradients have a scale to compare at.
      const qv = Float32Array.from([1, 0.25, 0.3, 0.5, -3, 0.1]);
      const kv = new Float32Array(6);
      const r = run(qv, kv, Float32Array.of(Math.PI), [1, 1, 3, 2], [1, 1, 3, 2], [1], power);
      for (const a of [r.K, r.dq, r.dk, r.dR]) expect(a.every(Number.isFinite)).toBe(true);
      expect(Math.max(...r.K.map(Math.abs))).toBeLessThan(1e-6 + Math.max(...r.Kref.map(Math.abs)));
      expect(relErr(r.dq, r.grads.dq.data)).toBeLessThan(1e-3);
      expect(relErr(r.dk, r.grads.dk.data)).toBeLessThan(1e-3);
    });
  }

  test('D = 64 underflows to 0, never NaN, and matches the reference', () => {
    const D64 = 64;
    const r = run(
      uniform(3 * D64, -0.8, 0.8, 31),
      uniform(4 * D64, -0.8, 0.8, 32),
      Float32Array.of(2),
      [1, 1, 3, D64],
      [1, 1, 4, D64],
      [1],
      4,
    );
    for (const a of [r.K, r.dq, r.dk, r.dR]) expect(a.every(Number.isFinite)).toBe(true);
    const scale = Math.max(...r.Kref);
    for (let i = 0; i < r.K.length; i++) expect(Math.abs(r.K[i] - r.Kref[i])).toBeLessThanOrEqual(1e-4 * scale + 1e-30);
  });

  test('B = H = 1, Nq != Nk, large |x| (R = 40, inputs in [-3, 3])', () => {
    const r = run(
      uniform(9 * 3, -3, 3, 41),
      uniform(2 * 3, -3, 3, 42),
      Float32Array.of(40, 35, 45),
      [1, 1, 9, 3],
      [1, 1, 2, 3],
      [3],
      2,
    );
    expect(relErr(r.K, r.Kref)).toBeLessThan(1e-4);
    expect(relErr(r.dq, r.grads.dq.data)).toBeLessThan(1e-3);
    expect(relErr(r.dk, r.grads.dk.data)).toBeLessThan(1e-3);
    expect(relErr(r.dR, r.grads.dR.data)).toBeLessThan(1e-3);
  });

  test('a larger case with many rows (threads) matches', () => {
    const r = run(
      uniform(4 * 4 * 33 * 16, -0.6, 0.6, 51),
      uniform(4 * 4 * 40 * 16, -0.6, 0.6, 52),
      uniform(4 * 16, 1, 3, 53),
      [4, 4, 33, 16],
      [4, 4, 40, 16],
      [4, 16],
      4,
    );
    expect(relErr(r.K, r.Kref)).toBeLessThan(1e-4);
    expect(relErr(r.dq, r.grads.dq.data)).toBeLessThan(1e-3);
    expect(relErr(r.dk, r.grads.dk.data)).toBeLessThan(1e-3);
    expect(relErr(r.dR, r.grads.dR.data)).toBeLessThan(1e-3);
  });
});
