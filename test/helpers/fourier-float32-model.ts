// How close to float64 a float32 Fourier attention kernel can come, for tests of ill-conditioned
// inputs. Near a zero of sinc (x = R (q - k) near m pi) s'(x)/s(x) ~ 1/(x - m pi) is huge, and a
// rounding of x to float32 (relative ~6e-8) moves K and the gradient terms there by
// ~6e-8 |x| / |x - m pi|: at D = 64..128 with |x| up to ~10, a few percent of random inputs put
// such a factor in a row's dominant key, and no float32 kernel meets a fixed tolerance on them.
// This is the float64 computation of lib/reference on x = fl(fl(q - k) R) (x in float32, as
// cuda-emu computes it) times (1 + ulps 2^-24 sign_ijd): a kernel whose x is within that many
// float32 ulps cannot be held closer to float64 than this model's distance from it. With
// roundOut, delta_i = dout_i . out_i is taken from the float32-rounded output, as a
// FlashAttention-style backward that receives the saved float32 output does.
import * as ff from '../../lib';

const { sincRef, sincDerivRef } = ff.reference;
type RefArray = ff.reference.RefArray;

export interface Float32ModelResult {
  out: Float64Array;
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
  dR: Float64Array;
}

export function fourierAttentionFloat32Model(
  q: RefArray,
  k: RefArray,
  v: RefArray,
  R: RefArray,
  dout: RefArray,
  opts: { power?: number; causal?: boolean; eps?: number; stable?: boolean },
  model: { roundOut: boolean; ulps: number; signs: 'same' | 'mixed' },
): Float32ModelResult {
  const p = opts.power ?? 4,
    causal = opts.causal ?? false,
    eps = opts.eps ?? 1e-6,
    stable = opts.stable ?? false;
  const [B, H, Nq, D] = q.shape;
  const Nk = k.shape[2],
    Dv = v.shape[3];
  const rs = R.shape;
  const rH = rs.length === 2 ? rs[0] : 1;
  const rD = rs.length === 0 ? 1 : rs[rs.length - 1];
  const rIdx = (h: number, d: number): number => (rH === 1 ? 0 : h) * rD + (rD === 1 ? 0 : d);
  const f = Math.fround;
  const out = new Float64Array(B * H * Nq * Dv),
    dq = new Float64Array(q.data.length),
    dk = new Float64Array(k.data.length);
  const dv = new Float64Array(v.data.length),
    dR = new Float64Array(R.data.length);
  const logK = new Float64Array(Nk),
    P = new Float64Array(Nk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      // the perturbation's sign per (i, j, d): all +1, or a fixed pseudo-random pattern
      const sign = (i: number, j: number, d: number): number =>
        model.signs === 'same' || ((((i * 7919 + j) * 104729 + d) * 2654435761) >>> 0) % 2 === 0 ? 1 : -1;
      const x = (i: number, j: number, d: number): number =>
        f(f(q.data[(bh * Nq + i) * D + d] - k.data[(bh * Nk + j) * D + d]) * R.data[rIdx(h, d)]) *
        (1 + model.ulps * 2 ** -24 * sign(i, j, d));
      for (let i = 0; i < Nq; i++) {
        let max = -Infinity;
        for (let j = 0; j < Nk; j++) {
          logK[j] = -Infinity;
          if (causal && j > i) continue;
          let l = 0;
          for (let d = 0; d < D; d++) l += Math.log(Math.abs(sincRef(x(i, j, d))));
          logK[j] = p * l;
          max = Math.max(max, logK[j]);
        }
        if (max === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < Nk; j++) sum += Math.exp(logK[j] - max);
        const logS = max + Math.log(sum);
        for (let j = 0; j < Nk; j++)
          P[j] = stable ? Math.exp(logK[j] - logS) : Math.exp(logK[j]) / (Math.exp(logS) + eps);
        const o = (bh * Nq + i) * Dv;
        for (let j = 0; j < Nk; j++) for (let e = 0; e < Dv; e++) out[o + e] += P[j] * v.data[(bh * Nk + j) * Dv + e];
        let delta = 0;
        for (let e = 0; e < Dv; e++) delta += dout.data[o + e] * (model.roundOut ? f(out[o + e]) : out[o + e]);
        for (let j = 0; j < Nk; j++) {
          if (P[j] === 0) continue;
          let dp = 0;
          for (let e = 0; e < Dv; e++) {
            dp += dout.data[o + e] * v.data[(bh * Nk + j) * Dv + e];
            dv[(bh * Nk + j) * Dv + e] += P[j] * dout.data[o + e];
          }
          // dL/dx_d = P_ij G_ij p s'/s (stable); the default's G/(S + eps) K p s'/s is the same
          // with its own P = K / (S + eps)
          const w = P[j] * (dp - delta) * p;
          for (let d = 0; d < D; d++) {
            const xd = x(i, j, d);
            const t = (w * sincDerivRef(xd)) / sincRef(xd);
            const r = R.data[rIdx(h, d)];
            dq[(bh * Nq + i) * D + d] += t * r;
            dk[(bh * Nk + j) * D + d] -= t * r;
            dR[rIdx(h, d)] += t * (q.data[(bh * Nq + i) * D + d] - k.data[(bh * Nk + j) * D + d]);
          }
        }
      }
    }
  return { out, dq, dk, dv, dR };
}
