// fourierAttention where float32 is tested hardest: stable mode at D = 64 and 128 with x = R (q - k)
// well past the cpu kernels' polynomial range (|x| up to ~10), every R shape, causal or not, and
// the default mode's deep underflow (every K_ij below 1e-30). Against the float64 reference:
// outputs within 1e-4 and every gradient within 1e-3 of the largest magnitude of that tensor, or,
// on inputs where x in float32 already moves the float64 answer by more than that
// (helpers/fourier-float32-model.ts: a key whose factor sits near a zero of sinc dominates a
// row), within kFloor times that movement. Runs on every ISA path of the cpu kernels through
// FOURIERFORMER_CPU_ISA (scripts/test-all.sh).
import * as ff from '../lib';
import { device, gradOf, relErr } from './helpers/compare';
import { fourierAttentionFloat32Model } from './helpers/fourier-float32-model';

const { fourierAttentionRef, fourierAttentionGradRef, fourierMetricRef, gaussian, refArray } = ff.reference;

const tol = { out: 1e-4, grad: 1e-3 };
// The floor: the model's distance from float64 with x off by 2 float32 ulps (all one way, and
// mixed), the larger; a kernel may be kFloor times past it (the cpu kernels' x = (c R q - c R k)
// / c takes up to ~4 roundings of |q|, |k|, not one of |x|).
const floorUlps = 2;
const kFloor = 4;
const names = ['out', 'dq', 'dk', 'dv', 'dR'] as const;

interface Case {
  H: number;
  N: number;
  D: number;
  Dv: number;
  RShape: number[];
  rLo: number;
  rHi: number;
  std: number;
  seed: number;
  opts: ff.FourierAttentionOptions;
}

interface Outcome {
  err: Record<(typeof names)[number], number>;
  floor: Record<(typeof names)[number], number>;
  maxX: number;
  ref: { out: Float64Array; dv: Float64Array };
  got: { out: Float32Array; dv: Float32Array };
}

function run(c: Case): Outcome {
  return ff.tidy(() => {
    const qs = [1, c.H, c.N, c.D],
      vs = [1, c.H, c.N, c.Dv];
    const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
    const qv = gaussian(size(qs), c.std, c.seed),
      kv = gaussian(size(qs), c.std, c.seed + 1);
    const vv = gaussian(size(vs), 1, c.seed + 2),
      dov = gaussian(size(vs), 1, c.seed + 4);
    const Rv = ff.reference.uniform(size(c.RShape), c.rLo, c.rHi, c.seed + 3);
    const t = (x: Float32Array, s: number[]): ff.Tensor => ff.tensor(x, s, { device: device(), requiresGrad: true });
    const [q, k, v, R] = [t(qv, qs), t(kv, qs), t(vv, vs), t(Rv, c.RShape)];
    const h = ff.fourierAttention(q, k, v, R, c.opts);
    h.backward(ff.tensor(dov, vs, { device: device() }));
    const refs = [refArray(qv, qs), refArray(kv, qs), refArray(vv, vs), refArray(Rv, c.RShape)] as const;
    const dout = refArray(dov, vs);
    const out = fourierAttentionRef(...refs, c.opts).data;
    const g = fourierAttentionGradRef(...refs, dout, c.opts);
    // The cpu kernels' stable backward takes delta_i from its own weights (exact where one key
    // dominates); the others take it from the float32 output, whose rounding is then part of
    // their floor.
    const roundOut = !(device() === 'cpu' && c.opts.stable);
    const models = (['same', 'mixed'] as const).map((signs) =>
      fourierAttentionFloat32Model(...refs, dout, c.opts, { roundOut, ulps: floorUlps, signs }),
    );
    const exact = { out, dq: g.dq.data, dk: g.dk.data, dv: g.dv.data, dR: g.dR.data };
    const got = { out: h.toFloat32Array(), dq: gradOf(q), dk: gradOf(k), dv: gradOf(v), dR: gradOf(R) };
    // max |x| over the pairs: how far past the cpu kernels' polynomial range (|x| <= 4.25)
    const rH = c.RShape.length === 2 ? c.RShape[0] : 1,
      rD = c.RShape[c.RShape.length - 1];
    let maxX = 0;
    for (let h = 0; h < c.H; h++)
      for (let d = 0; d < c.D; d++) {
        const r = Rv[(rH === 1 ? 0 : h) * rD + (rD === 1 ? 0 : d)];
        for (let i = 0; i < c.N; i++)
          for (let j = 0; j < c.N; j++)
            maxX = Math.max(maxX, r * Math.abs(qv[(h * c.N + i) * c.D + d] - kv[(h * c.N + j) * c.D + d]));
      }
    const err = {} as Outcome['err'],
      floor = {} as Outcome['floor'];
    for (const n of names) {
      err[n] = relErr(got[n], exact[n]);
      floor[n] = Math.max(...models.map((m) => relErr(m[n], exact[n])));
    }
    return { err, floor, maxX, ref: { out, dv: g.dv.data }, got: { out: got.out, dv: got.dv } };
  });
}

/** The names of the tensors that miss both the tolerance and kFloor times the float32 floor. */
function misses(o: Outcome): string[] {
  return names
    .filter((n) => !(o.err[n] <= Math.max(n === 'out' ? tol.out : tol.grad, kFloor * o.floor[n])))
    .map((n) => `${n} ${o.err[n].toExponential(1)} (floor ${o.floor[n].toExponential(1)})`);
}

/** Whether the kernel is held to the plain tolerance on these inputs (their floor is low enough). */
const plainTolerance = (o: Outcome): boolean =>
  names.every((n) => kFloor * o.floor[n] <= (n === 'out' ? tol.out : tol.grad));

describe(`fourierAttention regimes on ${device()}`, () => {
  const stable = { stable: true };
  const rShapes = (H: number, D: number): number[][] => [[1], [D], [H, 1], [H, D]];

  for (const D of [64, 128]) {
    for (const causal of [false, true]) {
      test(`stable, D = ${D}, causal ${causal}: inputs N(0, 0.6^2), R in [1, 3], every R shape`, () => {
        let plain = 0,
          total = 0,
          maxX = 0;
        for (const RShape of rShapes(2, D)) {
          for (const seed of [1, 11, 21, 31]) {
            const o = run({
              H: 2,
              N: 12,
              D,
              Dv: 16,
              RShape,
              rLo: 1,
              rHi: 3,
              std: 0.6,
              seed,
              opts: { ...stable, causal },
            });
            expect(o.maxX).toBeGreaterThan(4.25);
            maxX = Math.max(maxX, o.maxX);
            expect({ RShape, seed, misses: misses(o) }).toEqual({ RShape, seed, misses: [] });
            if (plainTolerance(o)) plain++;
            total++;
          }
        }
        // at least half the inputs hold the kernel to the plain tolerance: the sweep is not all floor
        expect(plain).toBeGreaterThanOrEqual(total / 2);
        expect(maxX).toBeGreaterThan(8);
      });
    }
  }

  // The reported cases (one head, 12 queries and keys, one radius ~2.7) and R and seeds around them.
  for (const [D, causal] of [
    [128, true],
    [64, false],
    [128, false],
    [64, true],
  ] as const) {
    test(`stable, D = ${D}, causal ${causal}, one head, R = [1] in 2.5..2.9: a sweep around the reported cases`, () => {
      for (const r of [2.5, 2.6, 2.7, 2.8, 2.9]) {
        for (const seed of [1, 2, 3, 4]) {
          const o = run({
            H: 1,
            N: 12,
            D,
            Dv: 16,
            RShape: [1],
            rLo: r,
            rHi: r,
            std: 0.6,
            seed: 100 * seed,
            opts: { ...stable, causal },
          });
          expect({ r, seed, misses: misses(o) }).toEqual({ r, seed, misses: [] });
        }
      }
    });
  }

  test('default mode, D = 64, R = 2, every K_ij below 1e-30: outputs ~1e-33..1e-27 and gradients computed', () => {
    let checked = 0;
    for (const seed of [3, 4, 5, 7]) {
      const c = { H: 1, N: 12, D: 64, Dv: 16, RShape: [1], rLo: 2, rHi: 2, std: 0.6, seed, opts: {} };
      const o = run(c);
      const maxOut = Math.max(...o.ref.out.map(Math.abs));
      if (maxOut < 1e-33) continue;
      const K = fourierMetricRef(
        refArray(gaussian(c.N * c.D, c.std, seed), [1, 1, c.N, c.D]),
        refArray(gaussian(c.N * c.D, c.std, seed + 1), [1, 1, c.N, c.D]),
        refArray([2], [1]),
      ).data;
      expect(Math.max(...K)).toBeLessThan(1e-30);
      expect(maxOut).toBeLessThan(1e-20);
      expect({ seed, misses: misses(o) }).toEqual({ seed, misses: [] });
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(3);
  });

  // The statement of docs/api.md (the API reference): the cpu kernels flush subnormals, so a weight
  // P_ij = K_ij / (S_i + eps) or a result below 2^-126 counts as 0 (everything above it is kept).
  (device() === 'cpu' ? test : test.skip)('cpu, default mode: weights and outputs below 2^-126 are exactly 0', () => {
    const o = run({ H: 1, N: 12, D: 64, Dv: 16, RShape: [1], rLo: 2.6, rHi: 2.6, std: 0.6, seed: 5, opts: {} });
    const tiny = 2 ** -130;
    expect(Math.max(...o.ref.out.map(Math.abs))).toBeLessThan(tiny);
    expect(Math.max(...o.ref.dv.map(Math.abs))).toBeLessThan(tiny);
    expect(Math.max(...o.ref.out.map(Math.abs))).toBeGreaterThan(1e-60);
    expect(o.got.out.every((x) => x === 0)).toBe(true);
    expect(o.got.dv.every((x) => x === 0)).toBe(true);
  });
});
