// Error bounds of dot-product attention in float32, from the conditioning of its logits.
//
// A logit l_ij = scale q_i . k_j is a D-term dot product: |l^ - l| <= gamma_{D+1} |scale|
// sum_d |q_id k_jd|. The softmax then evaluates exp(l - m) with m the row maximum: the
// subtraction and exp add 4U (|l| + |m|) + 4U to the argument. With each log-weight anywhere in
// [l - dl, l + dl], h_i = sum_j exp(l_ij) v_j / sum_j exp(l_ij) ranges over the interval that
// ratioRange() computes exactly (the same linear-fractional extreme as the Fourier bound); with
// huge logits (|l| U >> 1) that interval is the convex hull of the values, which a kernel must
// stay in however large the logits are.
// Backward: P^_ij = exp(l^_ij - lse^_i) is recomputed from the saved log-sum-exp, so its
// relative error is exp(dl_ij + max_j dl_ij + 8U (|l| + |lse|)) - 1, and a kernel whose forward
// and backward logits agree keeps P^ in [0, 1]: |P^ - P| <= max(P, 1 - P) + gamma_{Nk} as well.
// Then G'_ij = dout_i . (v_j - h_i) with the saved h's error, and the float sums over j (dq)
// and i (dk, dv), as in the Fourier bound.
import { gamma, TINY, U } from './check';
import { mul, ratioRange } from './fourier-bounds';

export interface DotProblem {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  D: number;
  Dv: number;
  causal: boolean;
  scale: number;
  dout?: Float32Array;
}

export interface DotBounds {
  hLo: Float64Array;
  hHi: Float64Array;
  dq?: Float64Array;
  dk?: Float64Array;
  dv?: Float64Array;
}

export function dotBounds(p: DotProblem): DotBounds {
  const { B, H, Nq, Nk, D, Dv, causal, scale } = p;
  const hLo = new Float64Array(B * H * Nq * Dv),
    hHi = new Float64Array(B * H * Nq * Dv);
  const back = p.dout !== undefined;
  const dq = new Float64Array(p.q.length),
    dk = new Float64Array(p.k.length),
    dv = new Float64Array(p.v.length);
  const dqAbs = new Float64Array(p.q.length),
    dkAbs = new Float64Array(p.k.length),
    dvAbs = new Float64Array(p.v.length);
  const l = new Float64Array(Nk),
    dl = new Float64Array(Nk);
  const lo = new Float64Array(Nk),
    hi = new Float64Array(Nk),
    y = new Float64Array(Nk);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < Nq; i++) {
      const row = bh * Nq + i;
      const n = causal ? i + 1 : Nk;
      let m = -Infinity;
      for (let j = 0; j < n; j++) {
        let dot = 0,
          mag = 0;
        for (let d = 0; d < D; d++) {
          const t = p.q[row * D + d] * p.k[(bh * Nk + j) * D + d];
          dot += t;
          mag += Math.abs(t);
        }
        l[j] = scale * dot;
        dl[j] = gamma(D + 1) * Math.abs(scale) * mag;
        m = Math.max(m, l[j]);
      }
      let M = -Infinity;
      for (let j = 0; j < n; j++) {
        dl[j] += 4 * U * (Math.abs(l[j]) + Math.abs(m)) + 4 * U;
        M = Math.max(M, l[j] + dl[j]);
      }
      // The bounds in units of exp(M) (M the largest upper bound), the exact weights in units of
      // exp(m) (m the largest logit): dl may be huge, so one scale would underflow the other.
      let S = 0;
      for (let j = 0; j < n; j++) {
        lo[j] = Math.exp(l[j] - dl[j] - M);
        hi[j] = Math.exp(l[j] + dl[j] - M);
        S += Math.exp(l[j] - m);
      }
      const P = Array.from({ length: n }, (_, j) => Math.exp(l[j] - m) / S);
      const lse = m + Math.log(S);
      const hExact = new Float64Array(Dv);
      for (let j = 0; j < n; j++) for (let e = 0; e < Dv; e++) hExact[e] += P[j] * p.v[(bh * Nk + j) * Dv + e];
      const dh = new Float64Array(Dv);
      for (let e = 0; e < Dv; e++) {
        let vmax = 0;
        for (let j = 0; j < n; j++) {
          y[j] = p.v[(bh * Nk + j) * Dv + e];
          vmax = Math.max(vmax, Math.abs(y[j]));
        }
        const [a, b] = ratioRange(y.subarray(0, n), lo, hi, 0);
        // exp(l - M) v_j underflowing loses up to TINY per key (the row sum is >= 1 here).
        const acc = gamma(n + 3) * vmax + n * TINY;
        hLo[row * Dv + e] = a - acc;
        hHi[row * Dv + e] = b + acc;
        dh[e] = Math.max(hExact[e] - a, b - hExact[e]) + acc;
      }
      if (!back) continue;
      const dout = p.dout as Float32Array;
      let dlMax = 0;
      for (let j = 0; j < n; j++) dlMax = Math.max(dlMax, dl[j]);
      for (let j = 0; j < n; j++) {
        const vo = (bh * Nk + j) * Dv;
        let G = 0,
          dG = 0,
          mag = 0;
        for (let e = 0; e < Dv; e++) {
          const g = dout[row * Dv + e];
          G += g * (p.v[vo + e] - hExact[e]);
          dG += mul(Math.abs(g), dh[e]);
          mag += mul(Math.abs(g), Math.abs(p.v[vo + e]) + Math.abs(hExact[e]) + dh[e]);
        }
        dG += gamma(Dv + 2) * mag;
        const rel = Math.expm1(dl[j] + dlMax + 8 * U * (Math.abs(l[j]) + Math.abs(lse)) + 8 * U);
        const dP = Math.min(P[j] === 0 ? 0 : P[j] * rel, Math.max(P[j], 1 - P[j]) + gamma(n + 2));
        for (let e = 0; e < Dv; e++) {
          const g = Math.abs(dout[row * Dv + e]);
          dv[vo + e] += mul(dP, g) + TINY;
          dvAbs[vo + e] += P[j] * g;
        }
        // dlogit_ij = scale P_ij G'_ij; dq_i += dlogit k_j, dk_j += dlogit q_i.
        const err = Math.abs(scale) * (1 + 3 * U) * (mul(dP, Math.abs(G) + dG) + mul(P[j], dG));
        const term = Math.abs(scale) * P[j] * Math.abs(G);
        for (let d = 0; d < D; d++) {
          const kv = Math.abs(p.k[(bh * Nk + j) * D + d]);
          const qv = Math.abs(p.q[row * D + d]);
          dq[row * D + d] += mul(err + 2 * U * term, kv) + TINY;
          dqAbs[row * D + d] += term * kv;
          dk[(bh * Nk + j) * D + d] += mul(err + 2 * U * term, qv) + TINY;
          dkAbs[(bh * Nk + j) * D + d] += term * qv;
        }
      }
    }
  if (!back) return { hLo, hHi };
  for (let n = 0; n < dq.length; n++) dq[n] += gamma(Nk + 2) * dqAbs[n];
  for (let n = 0; n < dk.length; n++) dk[n] += gamma(Nq + 2) * dkAbs[n];
  for (let n = 0; n < dv.length; n++) dv[n] += gamma(Nq + 2) * dvAbs[n];
  return { hLo, hHi, dq, dk, dv };
}
