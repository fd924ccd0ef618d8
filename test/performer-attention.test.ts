// performerAttention (FAVOR+ linear attention, fused forward and backward) on the test device
// against the float64 reference and by finite differences; orthogonalRandomFeatures.
import * as ff from '../lib';
import { device, gradOf, randomPair, relErr, uniform } from './helpers/compare';

const { performerAttentionRef, performerAttentionGradRef, dotAttentionRef } = ff.reference;

interface Shape {
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  F: number;
  Dv: number;
  M: number;
}

function features(M: number, F: number, seed: number): ff.Tensor {
  return ff.orthogonalRandomFeatures(M, F, { generator: new ff.Generator(seed), device: device() });
}

function check(shape: Shape, opts: ff.PerformerAttentionOptions, seed: number, range = 1): void {
  const { B, H, Nq, Nk, F, Dv, M } = shape;
  ff.tidy(() => {
    const q = randomPair([B, H, Nq, F], -range, range, seed);
    const k = randomPair([B, H, Nk, F], -range, range, seed + 1);
    const v = randomPair([B, H, Nk, Dv], -1, 1, seed + 2);
    const dout = randomPair([B, H, Nq, Dv], -1, 1, seed + 3, false);
    const W = features(M, F, seed + 4);
    const Wref = ff.reference.refArray(W.toFloat32Array(), [M, F]);
    const o = ff.performerAttention(q.t, k.t, v.t, W, opts);
    o.backward(dout.t);
    const out = o.toFloat32Array();
    expect(out.every(Number.isFinite)).toBe(true);
    expect(relErr(out, performerAttentionRef(q.ref, k.ref, v.ref, Wref, opts).data)).toBeLessThan(2e-4);
    const g = performerAttentionGradRef(q.ref, k.ref, v.ref, Wref, dout.ref, opts);
    expect(relErr(gradOf(q.t), g.dq.data)).toBeLessThan(2e-3);
    expect(relErr(gradOf(k.t), g.dk.data)).toBeLessThan(2e-3);
    expect(relErr(gradOf(v.t), g.dv.data)).toBeLessThan(2e-3);
  });
}

describe(`performerAttention on ${device()}`, () => {
  for (const causal of [false, true]) {
    test(`causal ${causal}: within one chunk, D 16, M 32`, () =>
      check({ B: 2, H: 2, Nq: 37, Nk: 37, F: 16, Dv: 16, M: 32 }, { causal }, 100 + (causal ? 1 : 0)));
    test(`causal ${causal}: three chunks (150 rows, the last partial), M 40 (not a multiple of F)`, () => {
      check({ B: 1, H: 2, Nq: 150, Nk: 150, F: 16, Dv: 8, M: 40 }, { causal }, 200 + (causal ? 1 : 0));
    });
    test(`causal ${causal}: chunk boundaries at 64 and 128 rows exactly`, () => {
      check({ B: 1, H: 1, Nq: 128, Nk: 128, F: 8, Dv: 5, M: 16 }, { causal }, 250 + (causal ? 1 : 0));
      check({ B: 1, H: 1, Nq: 65, Nk: 65, F: 8, Dv: 5, M: 16 }, { causal }, 260 + (causal ? 1 : 0));
    });
    test(`causal ${causal}: large logits (inputs in (-4, 4)): the stabilisers keep it finite`, () => {
      check({ B: 1, H: 2, Nq: 90, Nk: 90, F: 16, Dv: 16, M: 64 }, { causal }, 300 + (causal ? 1 : 0), 4);
    });
    test(`causal ${causal}: one row, one feature, eps 0, an explicit scale`, () => {
      check({ B: 1, H: 1, Nq: 1, Nk: 1, F: 3, Dv: 2, M: 1 }, { causal, eps: 0, scale: 0.7 }, 350 + (causal ? 1 : 0));
      check({ B: 2, H: 1, Nq: 70, Nk: 70, F: 4, Dv: 3, M: 7 }, { causal, eps: 0 }, 360 + (causal ? 1 : 0));
    });
  }

  test("cross-attention shapes (Nq != Nk), Dv != F, F past a warp (144: FLT's extended rows)", () => {
    check({ B: 1, H: 3, Nq: 5, Nk: 70, F: 16, Dv: 7, M: 24 }, {}, 401);
    check({ B: 2, H: 1, Nq: 65, Nk: 3, F: 4, Dv: 33, M: 8 }, { eps: 1e-3 }, 402);
    check({ B: 1, H: 2, Nq: 20, Nk: 20, F: 144, Dv: 16, M: 64 }, { causal: true }, 403);
  });

  test('native gradients agree with finite differences (directional, causal over two chunks)', () => {
    const N = 70,
      F = 4,
      Dv = 3,
      M = 12;
    const shapes = [
      [1, 2, N, F],
      [1, 2, N, F],
      [1, 2, N, Dv],
    ];
    const x0 = shapes.map((s, n) =>
      uniform(
        s.reduce((a, b) => a * b, 1),
        -1,
        1,
        700 + n,
      ),
    );
    const Wv = ff.orthogonalRandomFeatures(M, F, { generator: new ff.Generator(709) }).toFloat32Array();
    const Wt = ff.tensor(Wv, [M, F]);
    const Wout = uniform(2 * N * Dv, -1, 1, 710);
    const loss = (x: Float32Array[]): number =>
      ff.tidy(() => {
        const [a, b, c] = x.map((v, n) => ff.tensor(v, shapes[n]));
        return ff
          .performerAttention(a, b, c, Wt, { causal: true })
          .toFloat32Array()
          .reduce((s, v, i) => s + v * Wout[i], 0);
      });
    const grads = ff.tidy(() => {
      const ts = x0.map((v, n) => ff.tensor(v, shapes[n], { requiresGrad: true }));
      ff.performerAttention(ts[0], ts[1], ts[2], Wt, { causal: true }).backward(ff.tensor(Wout, [1, 2, N, Dv]));
      return ts.map(gradOf);
    });
    const dirs = x0.map((x, n) => uniform(x.length, -1, 1, 720 + n));
    const h = 1e-2;
    const shifted = (sign: number) => x0.map((x, n) => x.map((v, i) => v + sign * h * dirs[n][i]));
    const fd = (loss(shifted(1)) - loss(shifted(-1))) / (2 * h);
    const analytic = grads.reduce((s, g, n) => s + g.reduce((t, v, i) => t + v * dirs[n][i], 0), 0);
    expect(Math.abs(fd - analytic)).toBeLessThan(3e-3 * Math.max(1, Math.abs(analytic)));
    Wt.dispose();
  });

  test('FAVOR+ estimates softmax attention: with many features it approaches dotProductAttention', () => {
    ff.tidy(() => {
      const [B, H, N, D] = [1, 2, 24, 8];
      const q = randomPair([B, H, N, D], -0.5, 0.5, 801),
        k = randomPair([B, H, N, D], -0.5, 0.5, 802);
      const v = randomPair([B, H, N, D], -1, 1, 803);
      const exact = dotAttentionRef(q.ref, k.ref, v.ref, { causal: true }).data;
      const errs = [16, 2048].map((M) =>
        relErr(ff.performerAttention(q.t, k.t, v.t, features(M, D, 804), { causal: true }).toFloat32Array(), exact),
      );
      expect(errs[1]).toBeLessThan(0.03);
      expect(errs[1]).toBeLessThan(errs[0]);
    });
  });

  test('a causal row sees no later key (the output of row i is unchanged by keys j > i)', () => {
    ff.tidy(() => {
      const N = 100,
        F = 8;
      const qv = uniform(N * F, -2, 2, 901),
        kv = uniform(N * F, -2, 2, 902),
        vv = uniform(N * F, -1, 1, 903);
      const W = features(16, F, 904);
      const run = (k: Float32Array) =>
        ff
          .performerAttention(
            ff.tensor(qv, [1, 1, N, F], { device: device() }),
            ff.tensor(k, [1, 1, N, F], { device: device() }),
            ff.tensor(vv, [1, 1, N, F], { device: device() }),
            W,
            { causal: true },
          )
          .toFloat32Array();
      const k2 = kv.slice();
      for (let i = 80 * F; i < N * F; i++) k2[i] *= 3; // later keys with much larger logits
      const [a, b] = [run(kv), run(k2)];
      expect(Array.from(a.subarray(0, 80 * F))).toEqual(Array.from(b.subarray(0, 80 * F)));
    });
  });

  test('bad arguments name themselves', () => {
    ff.tidy(() => {
      const q = ff.zeros([1, 1, 4, 8], { device: device() });
      const W = features(6, 8, 1);
      expect(() => ff.performerAttention(q, q, q, features(6, 7, 1))).toThrow(/^projection: expected \[M, 8\]/);
      expect(() => ff.performerAttention(q, q, q, ff.zeros([6, 8, 1], { device: device() }))).toThrow(/^projection: /);
      expect(() => ff.performerAttention(q, q, q, W, { scale: 0 })).toThrow(/^scale: expected a finite number > 0/);
      expect(() => ff.performerAttention(q, q, q, W, { eps: -1 })).toThrow(/^eps: expected a finite number >= 0/);
      expect(() => ff.performerAttention(q, q, q, W, { eps: NaN })).toThrow(/^eps: /);
      expect(() =>
        ff.performerAttention(
          q,
          ff.zeros([1, 1, 5, 8], { device: device() }),
          ff.zeros([1, 1, 5, 8], { device: device() }),
          W,
          { causal: true },
        ),
      ).toThrow(/^causal: /);
      expect(() => ff.performerAttention(q, q, q, 'W' as unknown as ff.Tensor)).toThrow(/^projection: /);
      expect(() => ff.performerAttention(q, q, q, W, null as unknown as ff.PerformerAttentionOptions)).toThrow(
        /^opts: /,
      );
    });
  });
});

describe('orthogonalRandomFeatures', () => {
  test('rows of a block are orthogonal, marginally N(0, I): lengths near sqrt(F); seeded', () => {
    const M = 40,
      F = 16;
    const a = ff.orthogonalRandomFeatures(M, F, { generator: new ff.Generator(5) }).toFloat32Array();
    const b = ff.orthogonalRandomFeatures(M, F, { generator: new ff.Generator(5) }).toFloat32Array();
    expect(Array.from(a)).toEqual(Array.from(b));
    const row = (r: number) => a.subarray(r * F, (r + 1) * F);
    const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * y[i], 0);
    for (const [r0, r1] of [
      [0, 15],
      [16, 31],
      [32, 39],
    ]) {
      for (let r = r0; r <= r1; r++) {
        for (let p = r0; p < r; p++)
          expect(Math.abs(dot(row(r), row(p)))).toBeLessThan(
            1e-4 * Math.sqrt(dot(row(r), row(r)) * dot(row(p), row(p))),
          );
      }
    }
    const meanSq = Array.from({ length: M }, (_, r) => dot(row(r), row(r))).reduce((s, v) => s + v, 0) / M;
    expect(meanSq).toBeGreaterThan(F * 0.6);
    expect(meanSq).toBeLessThan(F * 1.4);
    const fixed = ff
      .orthogonalRandomFeatures(3, 4, { scaling: 'fixed', generator: new ff.Generator(1) })
      .toFloat32Array();
    for (let r = 0; r < 3; r++)
      expect(dot(fixed.subarray(r * 4, r * 4 + 4), fixed.subarray(r * 4, r * 4 + 4))).toBeCloseTo(4, 4);
  });

  test('bad arguments name themselves', () => {
    expect(() => ff.orthogonalRandomFeatures(0, 4)).toThrow(/^M: /);
    expect(() => ff.orthogonalRandomFeatures(4, 1.5)).toThrow(/^F: /);
    expect(() => ff.orthogonalRandomFeatures(4, 4, { scaling: 'x' as 'fixed' })).toThrow(/^opts.scaling: /);
  });
});
