// fourierAttention (fused forward and backward) on the test device against the float64
// reference, which materialises the kernel matrix, and by finite differences.
import * as ff from '../lib';
import { device, gradOf, pair, randomPair, relErr, uniform } from './helpers/compare';

const { fourierAttentionRef, fourierAttentionGradRef, refArray } = ff.reference;

interface Case {
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  D: number;
  Dv: number;
  RShape: number[];
  opts: ff.FourierAttentionOptions;
  /** Inputs are uniform in (-range, range); R in (rLo, rHi). */
  range?: number;
  rLo?: number;
  rHi?: number;
}

function check(c: Case, seed: number, tol = { out: 1e-4, grad: 1e-3 }): void {
  ff.tidy(() => {
    const range = c.range ?? 0.8;
    const q = randomPair([c.B, c.H, c.Nq, c.D], -range, range, seed);
    const k = randomPair([c.B, c.H, c.Nk, c.D], -range, range, seed + 1);
    const v = randomPair([c.B, c.H, c.Nk, c.Dv], -1, 1, seed + 2);
    const R = randomPair(c.RShape, c.rLo ?? 1.5, c.rHi ?? 2.5, seed + 3);
    const dout = randomPair([c.B, c.H, c.Nq, c.Dv], -1, 1, seed + 4, false);
    const h = ff.fourierAttention(q.t, k.t, v.t, R.t, c.opts);
    expect(h.shape).toEqual([c.B, c.H, c.Nq, c.Dv]);
    h.backward(dout.t);
    const out = h.toFloat32Array();
    expect(out.every(Number.isFinite)).toBe(true);
    expect(relErr(out, fourierAttentionRef(q.ref, k.ref, v.ref, R.ref, c.opts).data)).toBeLessThan(tol.out);
    const g = fourierAttentionGradRef(q.ref, k.ref, v.ref, R.ref, dout.ref, c.opts);
    expect(relErr(gradOf(q.t), g.dq.data)).toBeLessThan(tol.grad);
    expect(relErr(gradOf(k.t), g.dk.data)).toBeLessThan(tol.grad);
    expect(relErr(gradOf(v.t), g.dv.data)).toBeLessThan(tol.grad);
    expect(relErr(gradOf(R.t), g.dR.data)).toBeLessThan(tol.grad);
  });
}

describe(`fourierAttention on ${device()}`, () => {
  const base = { B: 2, H: 2, Nq: 19, Nk: 19, D: 8, Dv: 8 };
  const rShapes = (H: number, D: number): number[][] => [[], [1], [D], [H, 1], [H, D], [1, D]];

  for (const causal of [false, true]) {
    for (const power of [2, 4]) {
      for (const RShape of rShapes(base.H, base.D)) {
        test(`causal ${causal}, power ${power}, R ${JSON.stringify(RShape)}`, () => {
          check({ ...base, RShape, opts: { power, causal } }, 100 + power + (causal ? 7 : 0));
        });
      }
    }
  }

  for (const power of [1, 3]) {
    test(`odd power ${power} (default mode)`, () =>
      check({ ...base, RShape: [2, 1], opts: { power, causal: true } }, 200 + power));
  }

  test('cross-attention shapes: Nq != Nk, Dv != D, B = H = 1', () => {
    check({ B: 1, H: 1, Nq: 7, Nk: 40, D: 6, Dv: 3, RShape: [6], opts: {} }, 301);
    check({ B: 2, H: 3, Nq: 33, Nk: 5, D: 16, Dv: 24, RShape: [3, 16], opts: {} }, 302);
  });

  test('D = 16 and 32 at the paper shapes per head, causal', () => {
    check({ B: 1, H: 2, Nq: 40, Nk: 40, D: 16, Dv: 16, RShape: [2, 1], opts: { causal: true } }, 401);
    check({ B: 1, H: 2, Nq: 24, Nk: 24, D: 32, Dv: 32, RShape: [2, 1], opts: { causal: true }, range: 0.3 }, 402);
  });

  // The CUDA kernels spread a row over G lanes (8 features each, G the smallest with 8G >= max(D, Dv)):
  // G = 1, 2, 4, 8, 16, 32 are separate instantiations, in both modes.
  for (const [D, Dv] of [
    [16, 8],
    [8, 32],
    [128, 16],
    [24, 128],
    [256, 24],
  ]) {
    for (const stable of [false, true]) {
      test(`D ${D}, Dv ${Dv}, stable ${stable}: every lane-group width`, () => {
        check(
          {
            B: 1,
            H: 2,
            Nq: 13,
            Nk: 13,
            D,
            Dv,
            RShape: [2, 1],
            range: 0.1,
            rLo: 0.5,
            rHi: 1,
            opts: { stable, causal: stable },
          },
          900 + D + Dv + (stable ? 1 : 0),
        );
      });
    }
  }

  test('eps changes the estimate as the formula says', () => {
    check({ ...base, RShape: [1], opts: { eps: 0.5 } }, 501);
    check({ ...base, RShape: [1], opts: { eps: 0 } }, 502);
  });

  test('D = 64: the default underflows towards 0 (never NaN); stable gives the eps = 0 estimate', () => {
    const c = { B: 1, H: 2, Nq: 12, Nk: 12, D: 64, Dv: 8, RShape: [2, 1] };
    check({ ...c, opts: { causal: true } }, 601);
    check({ ...c, opts: { causal: true, stable: true } }, 602);
    check({ ...c, opts: { stable: true, power: 2 } }, 603);
  });

  test('D = 128, stable, inputs where every K underflows in float', () => {
    check({ B: 1, H: 1, Nq: 9, Nk: 14, D: 128, Dv: 16, RShape: [1], opts: { stable: true } }, 701);
  });

  test('large |x|: R up to 40 and inputs in (-3, 3), stable and not', () => {
    const c = { B: 1, H: 2, Nq: 10, Nk: 10, D: 4, Dv: 4, RShape: [2, 4], range: 3, rLo: 20, rHi: 40 };
    check({ ...c, opts: { causal: true } }, 801);
    check({ ...c, opts: { stable: true } }, 802);
  });

  // R per feature in (0.5, 6) with inputs in (-0.8, 0.8): in a block of keys some features stay
  // within the cpu polynomial's bound |x| <= 4.25 and others do not, so the loops take the two
  // paths feature by feature, in a reordered product (odd D: an odd count of each).
  for (const stable of [false, true]) {
    test(`blocks with some features beyond the sinc polynomial bound, D 16 and 37, stable ${stable}`, () => {
      for (const [D, causal, seed] of [
        [16, true, 811],
        [37, false, 812],
      ] as const) {
        const c = { B: 1, H: 2, Nq: causal ? 150 : 70, Nk: 150, D, Dv: 5, RShape: [D], rLo: 0.5, rHi: 6 };
        check({ ...c, opts: { causal, stable } }, seed + (stable ? 10 : 0));
      }
    });
  }

  test('q == k: every K_ii = 1', () => {
    ff.tidy(() => {
      const x = uniform(2 * 6 * 8, -1, 1, 901);
      const q = pair(x, [1, 2, 6, 8]);
      const k = pair(x, [1, 2, 6, 8]);
      const v = randomPair([1, 2, 6, 3], -1, 1, 902);
      const R = pair(Float32Array.of(40), [1]);
      // R = 40 makes every off-diagonal K tiny: h_i ~= v_i.
      const h = ff.fourierAttention(q.t, k.t, v.t, R.t, { causal: true });
      expect(
        relErr(h.toFloat32Array(), fourierAttentionRef(q.ref, k.ref, v.ref, R.ref, { causal: true }).data),
      ).toBeLessThan(1e-4);
    });
  });

  test('a sequence of 2048 (causal), checked against the reference on a few rows', () => {
    ff.tidy(() => {
      const N = 2048,
        D = 16,
        Dv = 8;
      const qv = uniform(N * D, -0.8, 0.8, 1001);
      const kv = uniform(N * D, -0.8, 0.8, 1002);
      const vv = uniform(N * Dv, -1, 1, 1003);
      const h = ff
        .fourierAttention(
          ff.tensor(qv, [1, 1, N, D]),
          ff.tensor(kv, [1, 1, N, D]),
          ff.tensor(vv, [1, 1, N, Dv]),
          ff.tensor([2], [1]),
          { causal: true },
        )
        .toFloat32Array();
      for (const i of [0, 1, 517, 1500, N - 1]) {
        // Row i of causal attention = non-causal attention of q_i over keys 0..i.
        const ref = fourierAttentionRef(
          refArray(qv.subarray(i * D, (i + 1) * D), [1, 1, 1, D]),
          refArray(kv.subarray(0, (i + 1) * D), [1, 1, i + 1, D]),
          refArray(vv.subarray(0, (i + 1) * Dv), [1, 1, i + 1, Dv]),
          refArray([2], [1]),
        ).data;
        expect(relErr(h.subarray(i * Dv, (i + 1) * Dv), ref)).toBeLessThan(1e-4);
      }
    });
  });

  test('native gradients agree with finite differences of the native forward (directional)', () => {
    const shapes = [
      [1, 2, 6, 4],
      [1, 2, 6, 4],
      [1, 2, 6, 3],
      [2, 4],
    ];
    const x0 = shapes.map((s, n) =>
      uniform(
        s.reduce((a, b) => a * b, 1),
        n === 3 ? 1.5 : -0.7,
        n === 3 ? 2.5 : 0.7,
        1100 + n,
      ),
    );
    const W = uniform(36, -1, 1, 1110);
    const opts = { causal: true };
    const loss = (x: Float32Array[]): number =>
      ff.tidy(() => {
        const [a, b, c, d] = x.map((v, n) => ff.tensor(v, shapes[n]));
        return ff
          .fourierAttention(a, b, c, d, opts)
          .toFloat32Array()
          .reduce((s, v, i) => s + v * W[i], 0);
      });
    const grads = ff.tidy(() => {
      const ts = x0.map((v, n) => ff.tensor(v, shapes[n], { requiresGrad: true }));
      ff.fourierAttention(ts[0], ts[1], ts[2], ts[3], opts).backward(ff.tensor(W, [1, 2, 6, 3]));
      return ts.map(gradOf);
    });
    const dirs = x0.map((x, n) => uniform(x.length, -1, 1, 1120 + n));
    const h = 1e-2;
    const shifted = (sign: number) => x0.map((x, n) => x.map((v, i) => v + sign * h * dirs[n][i]));
    const fd = (loss(shifted(1)) - loss(shifted(-1))) / (2 * h);
    const analytic = grads.reduce((s, g, n) => s + g.reduce((t, v, i) => t + v * dirs[n][i], 0), 0);
    expect(Math.abs(fd - analytic)).toBeLessThan(2e-3 * Math.max(1, Math.abs(analytic)));
  });

  test('memory() is unchanged after tidy() around forward and backward; no-grad forward keeps nothing', () => {
    const before = ff.memory();
    ff.tidy(() => {
      const q = ff.tensor(uniform(64, -1, 1, 1), [1, 2, 8, 4], { requiresGrad: true });
      const R = ff.tensor([2], [1], { requiresGrad: true });
      ff.fourierAttention(q, q, q, R, { causal: true }).backward(ff.ones([1, 2, 8, 4]));
    });
    expect(ff.memory()).toEqual(before);
    const q = ff.tensor(uniform(64, -1, 1, 1), [1, 2, 8, 4]);
    const R = ff.tensor([2], [1]);
    const h = ff.fourierAttention(q, q, q, R);
    expect(ff.memory().numTensors).toBe(before.numTensors + 3);
    for (const t of [q, R, h]) t.dispose();
  });

  test('bad arguments name themselves', () => {
    ff.tidy(() => {
      const q = ff.zeros([1, 2, 4, 8]);
      const k = ff.zeros([1, 2, 5, 8]);
      const v = ff.zeros([1, 2, 5, 3]);
      const R = ff.tensor([2], [1]);
      expect(() => ff.fourierAttention(q, k, v, R, { causal: true })).toThrow(/^causal: needs as many queries as keys/);
      expect(() => ff.fourierAttention(q, k, ff.zeros([1, 2, 4, 3]), R)).toThrow(
        /^v: shape \[1, 2, 4, 3\] does not match k/,
      );
      expect(() => ff.fourierAttention(q, k, v, R, { stable: true, power: 3 })).toThrow(
        /^power: stable: true needs an even power/,
      );
      expect(() => ff.fourierAttention(q, k, v, R, { eps: -1 })).toThrow(/^eps: expected a finite number >= 0/);
      expect(() => ff.fourierAttention(q, k, v, ff.tensor([1, 2, 3], [3]))).toThrow(
        /^R: shape \[3\] does not broadcast/,
      );
      expect(() => ff.fourierAttention(q, k, v, ff.tensor([NaN], [1])).toFloat32Array()).toThrow(/^R: must be finite/);
      expect(() => ff.fourierAttention(q, k, v, R, { power: 0 })).toThrow(/^power: /);
    });
  });
});
