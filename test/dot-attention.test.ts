// dotProductAttention (fused forward and backward) on the test device against the float64
// reference and by finite differences.
import * as ff from '../lib';
import { device, gradOf, randomPair, relErr, uniform } from './helpers/compare';

const { dotAttentionRef, dotAttentionGradRef } = ff.reference;

function check(
  shape: { B: number; H: number; Nq: number; Nk: number; D: number; Dv: number },
  opts: ff.DotProductAttentionOptions,
  seed: number,
): void {
  const { B, H, Nq, Nk, D, Dv } = shape;
  ff.tidy(() => {
    const q = randomPair([B, H, Nq, D], -1, 1, seed);
    const k = randomPair([B, H, Nk, D], -1, 1, seed + 1);
    const v = randomPair([B, H, Nk, Dv], -1, 1, seed + 2);
    const dout = randomPair([B, H, Nq, Dv], -1, 1, seed + 3, false);
    const o = ff.dotProductAttention(q.t, k.t, v.t, opts);
    o.backward(dout.t);
    expect(relErr(o.toFloat32Array(), dotAttentionRef(q.ref, k.ref, v.ref, opts).data)).toBeLessThan(1e-4);
    const g = dotAttentionGradRef(q.ref, k.ref, v.ref, dout.ref, opts);
    expect(relErr(gradOf(q.t), g.dq.data)).toBeLessThan(1e-3);
    expect(relErr(gradOf(k.t), g.dk.data)).toBeLessThan(1e-3);
    expect(relErr(gradOf(v.t), g.dv.data)).toBeLessThan(1e-3);
  });
}

describe(`dotProductAttention on ${device()}`, () => {
  for (const causal of [false, true]) {
    for (const D of [8, 16, 32, 64, 128]) {
      test(`causal ${causal}, D ${D}`, () =>
        check({ B: 2, H: 2, Nq: 37, Nk: 37, D, Dv: D }, { causal }, 10 * D + (causal ? 1 : 0)));
    }
  }

  test('cross-attention shapes, Dv != D, an explicit scale', () => {
    check({ B: 1, H: 3, Nq: 5, Nk: 70, D: 16, Dv: 7 }, { scale: 0.9 }, 501);
    check({ B: 2, H: 1, Nq: 65, Nk: 3, D: 4, Dv: 32 }, {}, 502);
  });

  test('D = Dv = 256 and D 200, Dv 24: a whole warp per row on cuda', () => {
    check({ B: 1, H: 2, Nq: 13, Nk: 13, D: 256, Dv: 256 }, { causal: true }, 801);
    check({ B: 1, H: 1, Nq: 9, Nk: 11, D: 200, Dv: 24 }, {}, 802);
  });

  test('large logits stay finite (online softmax)', () =>
    check({ B: 1, H: 1, Nq: 20, Nk: 20, D: 16, Dv: 16 }, { causal: true, scale: 30 }, 601));

  test('native gradients agree with finite differences (directional)', () => {
    const shapes = [
      [1, 2, 9, 4],
      [1, 2, 9, 4],
      [1, 2, 9, 5],
    ];
    const x0 = shapes.map((s, n) =>
      uniform(
        s.reduce((a, b) => a * b, 1),
        -1,
        1,
        700 + n,
      ),
    );
    const W = uniform(90, -1, 1, 710);
    const loss = (x: Float32Array[]): number =>
      ff.tidy(() => {
        const [a, b, c] = x.map((v, n) => ff.tensor(v, shapes[n]));
        return ff
          .dotProductAttention(a, b, c, { causal: true })
          .toFloat32Array()
          .reduce((s, v, i) => s + v * W[i], 0);
      });
    const grads = ff.tidy(() => {
      const ts = x0.map((v, n) => ff.tensor(v, shapes[n], { requiresGrad: true }));
      ff.dotProductAttention(ts[0], ts[1], ts[2], { causal: true }).backward(ff.tensor(W, [1, 2, 9, 5]));
      return ts.map(gradOf);
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
      const q = ff.zeros([1, 1, 4, 8]);
      expect(() => ff.dotProductAttention(q, ff.zeros([1, 1, 4, 7]), q)).toThrow(/^k: shape/);
      expect(() => ff.dotProductAttention(q, q, q, { scale: NaN })).toThrow(/^scale: expected a finite number/);
      expect(() => ff.dotProductAttention(q, ff.zeros([1, 1, 5, 8]), ff.zeros([1, 1, 5, 8]), { causal: true })).toThrow(
        /^causal: /,
      );
      expect(() => ff.dotProductAttention(q, q, q, { causal: 1 as unknown as boolean })).toThrow(
        /^causal: expected a boolean/,
      );
    });
  });
});
