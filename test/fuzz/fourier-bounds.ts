// Error bounds of the Fourier kernels in float32, from the conditioning of the sinc product.
//
// The model: a backward-stable kernel, i.e. the exact result for inputs off by U relative. A
// kernel's x = R (q - k) is then off by dx = U (|R| (|q| + |k|) + 3 |x|) (computing R q - R k,
// as fast kernels do, loses exactly that to cancellation; R (q - k) loses less), and its s(x),
// s'(x) by |s'| dx and |s''| dx more (|s'| <= 0.44, |s''| <= 1/3 everywhere). The evaluation
// itself (the Taylor polynomials below |x| = 0.5, sinf / cosf and a division above;
// scripts/check-sinc-poly measures 6.5U for s') adds EVAL_S = 12U. So every computed s and s'
// is within eps_d = EVAL_S + dx min(0.44, |s'(x)| + dx / 3) (s': min(1/3, |s''(x)| + dx / 5))
// of the exact value, in absolute terms, and never above |s| <= 1 (sin x / x, or the Taylor
// polynomial, stays there) or |s'| <= 0.44 (plus rounding). An absolute error is the right model: near a zero of
// sinc the relative error of s is unbounded, and for huge |x| (R = 1e30) the float argument no
// longer determines sin(x) at all.
//
// From that, products are bounded exactly (not to first order): for factors with |a^ - a| <= e,
//     |prod a^ - prod a| <= prod (|a| + e) - prod |a|,
// so with a_d = |s_d| and the p D + 3 roundings of the products,
//     |K^ - K| <= Khi - |K|,   Khi = prod_d (a_d + eps_d)^p (1 + U)^(p D + 3),
// and T_d = dK/dx_d = p s_d^(p-1) s'_d prod_{e != d} s_e^p likewise with |s'_d| + eps'_d. The
// log-domain (stable) kernels sum D logarithms instead: gamma_D p sum_d |log a_d| more in log K.
// A float32 K below TINY may come back as 0 (non-stable kernels only).
//
// Attention normalises K per row. With each K^_ij anywhere in its interval [Klo, Khi], the
// output h_i = sum_j K_ij v_j / (sum_j K_ij + eps) ranges over an interval that ratioRange()
// computes exactly (a linear-fractional function over a box is extreme at a threshold vertex),
// widened by the float sums (gamma_{Nk+3} max |v|). Where the problem is ill-conditioned (K
// intervals reaching 0), that range grows to the convex hull of the values: the weights stay
// in [0, 1] and sum to 1, which is the invariant a kernel must keep however large R |q - k| is.
// The backward is bounded to first order in the same intervals: the weights P (and their
// derivative W = T / (S + eps)), G'_ij = dout_i . (v_j - h_i) with the saved h's error, then
// the float sums over j (dq), i (dk, dv) and both (dR).
import { gamma, TINY, U } from './check';

/** a b, with 0 times anything 0 (a term that is exactly 0 has no error, however loose the bound of its factor). */
export const mul = (a: number, b: number): number => (a === 0 || b === 0 ? 0 : a * b);
import { sincDerivRef, sincRef } from '../../lib/reference';

export const EVAL_S = 12 * U;
/** The spacing of float32's subnormals, 2^-149. */
const SUBNORMAL_ULP = 2 ** -149;

export interface FourierProblem {
  q: Float32Array;
  k: Float32Array;
  R: Float32Array;
  rShape: number[];
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  D: number;
  power: number;
}

export interface AttentionProblem extends FourierProblem {
  v: Float32Array;
  Dv: number;
  causal: boolean;
  eps: number;
  stable: boolean;
  /** The upstream gradient, when the backward is checked. */
  dout?: Float32Array;
}

function rIndex(rShape: number[]): (h: number, d: number) => number {
  const rH = rShape.length === 2 ? rShape[0] : 1;
  const rD = rShape.length === 0 ? 1 : rShape[rShape.length - 1];
  return (h, d) => (rH === 1 ? 0 : h) * rD + (rD === 1 ? 0 : d);
}

/**
 * One (query, key) pair: log|K| and the log of its upper bound Khi (lower bound Klo too), the
 * sign of K, and per feature log|T_d| and the log of its upper bound.
 */
class Pair {
  logK = 0;
  logKhi = 0;
  logKlo = 0;
  /** The rounding of the product (or of the log-domain sum) alone, in log units. */
  rounding = 0;
  readonly logT: Float64Array;
  readonly logTbar: Float64Array;
  readonly diff: Float64Array;
  signK = 1;
  private readonly s: Float64Array;
  private readonly ds: Float64Array;
  /** The absolute error bounds of the computed s_d and s'_d. */
  private readonly epsS: Float64Array;
  private readonly epsT: Float64Array;

  constructor(D: number) {
    this.epsS = new Float64Array(D);
    this.epsT = new Float64Array(D);
    this.logT = new Float64Array(D);
    this.logTbar = new Float64Array(D);
    this.diff = new Float64Array(D);
    this.s = new Float64Array(D);
    this.ds = new Float64Array(D);
  }

  /** Fills the pair of query row qo and key row ko, head h. */
  compute(
    p: FourierProblem,
    qo: number,
    ko: number,
    h: number,
    r: (h: number, d: number) => number,
    logDomain: boolean,
  ): void {
    const { D, power } = p;
    let sumLog = 0; // sum over non-zero s of p log|s|
    let zeros = 0;
    let sumHi = 0; // sum of p log(|s| + eps_d)
    let sumLo = 0; // sum of p log(|s| - eps_d)
    let absLogs = 0;
    let sign = 1;
    const { s, ds } = this;
    for (let d = 0; d < D; d++) {
      const qv = p.q[qo + d],
        kv = p.k[ko + d],
        Rv = p.R[r(h, d)];
      const diff = qv - kv;
      const x = Rv * diff;
      this.diff[d] = diff;
      s[d] = sincRef(x);
      ds[d] = sincDerivRef(x);
      const dx = U * (Math.abs(Rv) * (Math.abs(qv) + Math.abs(kv)) + 3 * Math.abs(x));
      const d2 = x === 0 ? -1 / 3 : -s[d] - (2 * ds[d]) / x; // s'' from x s'' + 2 s' + x s = 0
      this.epsS[d] = EVAL_S + dx * Math.min(0.44, Math.abs(ds[d]) + dx / 3);
      this.epsT[d] = EVAL_S + dx * Math.min(1 / 3, Math.abs(d2) + dx / 5);
      const e = this.epsS[d];
      const a = Math.abs(s[d]);
      if (a === 0) zeros++;
      else sumLog += power * Math.log(a);
      if (s[d] < 0 && power % 2 === 1) sign = -sign;
      const aHi = Math.min(a + e, 1 + 2 * U);
      sumHi += power * Math.log(aHi);
      sumLo += a > e ? power * Math.log(a - e) : -Infinity;
      absLogs += Math.abs(Math.log(aHi));
    }
    const rounding = (power * D + 3) * Math.log1p(U) + (logDomain ? gamma(D + 2) * power * absLogs : 0);
    this.signK = sign;
    this.rounding = rounding;
    this.logK = zeros > 0 ? -Infinity : sumLog;
    this.logKhi = sumHi + rounding;
    this.logKlo = sumLo - rounding;
    for (let d = 0; d < D; d++) {
      const a = Math.abs(s[d]);
      // Leave-one-out: the other factors' p log|s_e|.
      const others = a === 0 ? (zeros > 1 ? -Infinity : sumLog) : zeros > 0 ? -Infinity : sumLog - power * Math.log(a);
      const own = power === 1 ? 0 : (power - 1) * Math.log(a);
      this.logT[d] = Math.log(power) + own + Math.log(Math.abs(ds[d])) + others;
      const aHi = Math.min(a + this.epsS[d], 1 + 2 * U);
      const bHi = Math.min(Math.abs(ds[d]) + this.epsT[d], 0.44 * (1 + 4 * U));
      this.logTbar[d] =
        Math.log(power) + (power - 1) * Math.log(aHi) + Math.log(bHi) + (sumHi - power * Math.log(aHi)) + rounding;
    }
  }
}

/** Tolerances of fourierMetric: for K, and (given the upstream gradient g) for dq, dk, dR. */
export function metricBounds(
  p: FourierProblem,
  g?: Float32Array,
): { K: Float64Array; dq?: Float64Array; dk?: Float64Array; dR?: Float64Array } {
  const { B, H, Nq, Nk, D } = p;
  const r = rIndex(p.rShape);
  const tolK = new Float64Array(B * H * Nq * Nk);
  const dq = new Float64Array(p.q.length),
    dk = new Float64Array(p.k.length),
    dR = new Float64Array(p.R.length);
  const dqAbs = new Float64Array(p.q.length),
    dkAbs = new Float64Array(p.k.length),
    dRAbs = new Float64Array(p.R.length);
  const pair = new Pair(D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Nq; i++)
        for (let j = 0; j < Nk; j++) {
          const qo = ((b * H + h) * Nq + i) * D;
          const ko = ((b * H + h) * Nk + j) * D;
          const idx = ((b * H + h) * Nq + i) * Nk + j;
          pair.compute(p, qo, ko, h, r, false);
          tolK[idx] = Math.exp(pair.logKhi) - Math.exp(pair.logK);
          if (!g) continue;
          const gi = Math.abs(g[idx]);
          for (let d = 0; d < D; d++) {
            const Rv = Math.abs(p.R[r(h, d)]);
            const T = Math.exp(pair.logT[d]);
            const dT = Math.exp(pair.logTbar[d]) - T + TINY;
            const err = mul(gi, dT) * (1 + 3 * U);
            const term = gi * T;
            dq[qo + d] += err * Rv + 3 * U * term * Rv + TINY;
            dqAbs[qo + d] += term * Rv;
            dk[ko + d] += err * Rv + 3 * U * term * Rv + TINY;
            dkAbs[ko + d] += term * Rv;
            const x = Math.abs(pair.diff[d]);
            dR[r(h, d)] += (err + 3 * U * term) * x + TINY;
            dRAbs[r(h, d)] += term * x;
          }
        }
  if (!g) return { K: tolK };
  for (let n = 0; n < dq.length; n++) dq[n] += gamma(Nk + 2) * dqAbs[n];
  for (let n = 0; n < dk.length; n++) dk[n] += gamma(Nq + 2) * dkAbs[n];
  for (let n = 0; n < dR.length; n++) dR[n] += gamma(Nq + Nk + 2) * dRAbs[n];
  return { K: tolK, dq, dk, dR };
}

/**
 * The smallest and largest (sum_j w_j y_j) / (sum_j w_j + c) over w_j in [lo_j, hi_j], c >= 0;
 * [NaN, NaN] when every choice has a zero denominator.
 */
export function ratioRange(
  y: ArrayLike<number>,
  lo: ArrayLike<number>,
  hi: ArrayLike<number>,
  c: number,
): [number, number] {
  // y in units of max |y|: a weight of 1e-296 (a key e^-680 below the row's largest bound) times
  // a v of 1e-30 underflowed to 0 in float64, and the candidate where that key carries the row
  // came out 0 instead of its v.
  let ymax = 0;
  for (let j = 0; j < y.length; j++) ymax = Math.max(ymax, Math.abs(y[j]));
  const scale = ymax > 0 && Number.isFinite(ymax) ? ymax : 1;
  const ys = Array.from(y, (v) => v / scale);
  const best = (sign: number): number => {
    const n = ys.length;
    const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => sign * (ys[b] - ys[a]));
    // Candidate t: the first t (largest sign*y) at hi, the rest at lo.
    let num = 0,
      den = c;
    for (let j = 0; j < n; j++) {
      num += lo[j] * ys[j];
      den += lo[j];
    }
    let out = den > 0 ? sign * (num / den) : -Infinity;
    for (let t = 0; t < n; t++) {
      const j = order[t];
      num += (hi[j] - lo[j]) * ys[j];
      den += hi[j] - lo[j];
      if (den > 0) out = Math.max(out, sign * (num / den));
    }
    return out === -Infinity ? NaN : sign * out * scale;
  };
  return [best(-1), best(1)];
}

export interface AttentionBounds {
  /** The allowed range of each output value. */
  hLo: Float64Array;
  hHi: Float64Array;
  /**
   * Per row, how far above 1 the weights a kernel applies may sum: the rounding of log K and
   * of a float row normaliser log S (|log K| < 1e5 for any float input, so this stays small).
   */
  weightSlack: Float64Array;
  dq?: Float64Array;
  dk?: Float64Array;
  dv?: Float64Array;
  dR?: Float64Array;
}

/** The output ranges of Fourier attention and, with dout, tolerances of its gradients. */
export function attentionBounds(p: AttentionProblem): AttentionBounds {
  const { B, H, Nq, Nk, D, Dv, power, causal, stable } = p;
  const r = rIndex(p.rShape);
  const hLo = new Float64Array(B * H * Nq * Dv),
    hHi = new Float64Array(B * H * Nq * Dv);
  const weightSlack = new Float64Array(B * H * Nq);
  const back = p.dout !== undefined;
  const dq = new Float64Array(p.q.length),
    dk = new Float64Array(p.k.length),
    dv = new Float64Array(p.v.length),
    dR = new Float64Array(p.R.length);
  const dqAbs = new Float64Array(p.q.length),
    dkAbs = new Float64Array(p.k.length),
    dvAbs = new Float64Array(p.v.length),
    dRAbs = new Float64Array(p.R.length);
  const pairs = Array.from({ length: Nk }, () => new Pair(D));
  const lo = new Float64Array(Nk),
    hi = new Float64Array(Nk),
    Kt = new Float64Array(Nk);
  const y = new Float64Array(Nk);
  const BIG = 1e300;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Nq; i++) {
        const row = (b * H + h) * Nq + i;
        const n = causal ? i + 1 : Nk;
        let M = -Infinity;
        for (let j = 0; j < n; j++) {
          pairs[j].compute(p, row * D, ((b * H + h) * Nk + j) * D, h, r, stable);
          M = Math.max(M, pairs[j].logKhi);
        }
        // Two row-relative scales, so that nothing under- or overflows float64: the bounds (hi,
        // lo, dS, dT) in units of exp(M), M the largest upper bound of log K; the exact values
        // (P, W, h) in units of exp(Me), Me the largest exact log K. Only ratios mix the two.
        let Me = -Infinity;
        for (let j = 0; j < n; j++) Me = Math.max(Me, pairs[j].logK);
        const tiny = stable ? 0 : Math.min(BIG, TINY * Math.exp(-M));
        const eps = stable || p.eps === 0 ? 0 : Math.min(BIG, p.eps * Math.exp(-M));
        const epsE = stable || p.eps === 0 ? 0 : Math.min(BIG, p.eps * Math.exp(-Me));
        let S = 0,
          Se = 0,
          Slo = 0,
          Shi = 0;
        for (let j = 0; j < n; j++) {
          Kt[j] = pairs[j].signK * Math.exp(pairs[j].logK - M);
          Se += pairs[j].signK * Math.exp(pairs[j].logK - Me);
          hi[j] = Math.min(BIG, Math.exp(pairs[j].logKhi - M) + tiny);
          lo[j] = Math.max(0, Math.exp(pairs[j].logKlo - M) - tiny);
          S += Kt[j];
          Slo += lo[j];
          Shi += hi[j];
        }
        // The exact row normaliser S + eps in units of exp(Me); 0 when every K is 0.
        const normE = Me === -Infinity ? 0 : Se + epsE;
        // |K^_j - K_j| <= hi_j - |K_j| (the product bound), so the row sum is off by at most dS.
        let dS = gamma(n + 2) * Shi;
        for (let j = 0; j < n; j++) dS += hi[j] - Math.abs(Kt[j]);
        const even = power % 2 === 0;
        const den = Math.max(even ? Slo * (1 - gamma(n + 2)) + eps : 0, Math.abs(S + eps) - dS);
        let rho = 0;
        for (let j = 0; j < n; j++) rho = Math.max(rho, pairs[j].rounding);
        const logS = Me + Math.log(Math.abs(normE));
        weightSlack[row] =
          Math.exp(2 * rho + 4 * U * (Number.isFinite(logS) ? Math.abs(logS) + Math.abs(Me) + 1 : 0)) *
          (1 + gamma(n + 4));
        // A product K^_ij v_j (or T^ G') that underflows loses up to TINY before the division
        // by the row sum (non-stable kernels: in row-relative units, tiny / den).
        const termFloor = stable ? TINY : Math.max(TINY, den > 0 ? tiny / den : Infinity);
        // Exact weights and h (float64, from the same sinc values as the reference).
        const P = Array.from({ length: n }, (_, j) =>
          normE === 0 ? 0 : (pairs[j].signK * Math.exp(pairs[j].logK - Me)) / normE,
        );
        const hExact = new Float64Array(Dv);
        for (let j = 0; j < n; j++)
          for (let e = 0; e < Dv; e++) hExact[e] += P[j] * p.v[((b * H + h) * Nk + j) * Dv + e];
        // Keys whose upper bound underflowed in units of exp(M) (hi = 0, log Khi finite) get no
        // weight from ratioRange. A key's weight in the row is at most exp(log Khi_j - LOmax),
        // LOmax the row's largest log lower bound: that much of |v_j| + max|v| is added; where no
        // K of the row is bounded away from 0 (LOmax = -inf), such a key may carry the whole row,
        // and its v joins the range (R = 1e30 in stable mode: features with |x| ~ 1e5 bound one
        // key's K near its exact e^-6721, while the float argument no longer determines the
        // factors of the other, whose bounds span [0, e^-800]).
        let LOmax = -Infinity;
        for (let j = 0; j < n; j++) LOmax = Math.max(LOmax, pairs[j].logKlo);
        const lost: number[] = [];
        for (let j = 0; j < n; j++) if (hi[j] === 0 && pairs[j].logKhi > -Infinity) lost.push(j);
        const dh = new Float64Array(Dv);
        for (let e = 0; e < Dv; e++) {
          let vmax = 0;
          for (let j = 0; j < n; j++) {
            y[j] = p.v[((b * H + h) * Nk + j) * Dv + e];
            vmax = Math.max(vmax, Math.abs(y[j]));
          }
          let l: number, u: number;
          if (even) {
            [l, u] = ratioRange(y.subarray(0, n), lo, hi, eps);
            if (Number.isNaN(l)) [l, u] = [-Infinity, Infinity];
          } else {
            // Odd powers: K may be negative. h^ - h = sum_j dK_j (v_j - h) / (S^ + eps) exactly.
            let dev = 0;
            for (let j = 0; j < n; j++) dev += (hi[j] - Math.abs(Kt[j])) * Math.abs(y[j] - hExact[e]);
            const spread = den > 0 ? dev / den : Infinity;
            [l, u] = [hExact[e] - spread, hExact[e] + spread];
          }
          for (const j of lost) {
            const yj = p.v[((b * H + h) * Nk + j) * Dv + e];
            if (LOmax === -Infinity) {
              [l, u] = [Math.min(l, yj), Math.max(u, yj)];
            } else {
              const w = Math.exp(pairs[j].logKhi - LOmax) * (Math.abs(yj) + vmax);
              [l, u] = [l - w, u + w];
            }
          }
          // eps = 0 and a row whose sum may underflow to 0: the documented result is 0.
          if (!stable && p.eps === 0 && lo.subarray(0, n).every((x) => x === 0))
            [l, u] = [Math.min(l, 0), Math.max(u, 0)];
          // The float sums of K v and K: gamma sum_j |K_j| (|v_j| + |h|) / (S + eps), at most
          // 2 gamma max|v| for even powers (K >= 0); odd powers' signed K can cancel in S.
          let absKv = 0;
          if (!even) for (let j = 0; j < n; j++) absKv += Math.abs(Kt[j]) * (Math.abs(y[j]) + Math.abs(hExact[e]));
          const sumErr = even ? vmax : den > 0 ? Math.max(vmax, absKv / den) : Infinity;
          const acc = gamma(n + 3) * sumErr + n * termFloor;
          hLo[row * Dv + e] = l - acc;
          hHi[row * Dv + e] = u + acc;
          dh[e] = Math.max(hExact[e] - l, u - hExact[e]) + acc;
        }
        if (!back) continue;
        const dout = p.dout as Float32Array;
        for (let j = 0; j < n; j++) {
          const ko = ((b * H + h) * Nk + j) * D;
          const vo = ((b * H + h) * Nk + j) * Dv;
          // G'_ij = dout_i . (v_j - h_i) and its error (the saved h^ is off by up to dh).
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
          // P^ - P = (dK_j - P dS) / (S^ + eps), exactly.
          const Pj = P[j];
          const dP = den > 0 ? (hi[j] - Math.abs(Kt[j]) + Math.abs(Pj) * dS) / den : Infinity;
          for (let e = 0; e < Dv; e++) {
            const g = Math.abs(dout[row * Dv + e]);
            // Non-stable kernels flush a weight P below TINY to 0 before it meets dout (stable
            // ones round it to a multiple of 2^-149).
            dv[vo + e] += mul(dP, g) + termFloor + mul(stable ? SUBNORMAL_ULP : termFloor, g);
            dvAbs[vo + e] += Math.abs(Pj) * g;
          }
          for (let d = 0; d < D; d++) {
            // W = T_d / (S + eps); W^ - W = dT / (S^ + eps) + T (1 / (S^ + eps) - 1 / (S + eps)).
            const T = Math.exp(pairs[j].logT[d] - M);
            const W = normE === 0 ? 0 : Math.exp(pairs[j].logT[d] - Me) / Math.abs(normE);
            const dT = Math.exp(pairs[j].logTbar[d] - M) - T + tiny;
            const dW = den > 0 ? dT / den + (W * dS) / den : Infinity;
            const Rv = Math.abs(p.R[r(h, d)]);
            const x = Math.abs(pairs[j].diff[d]);
            const err = (1 + 3 * U) * (mul(dW, Math.abs(G) + dG) + mul(W, dG));
            const term = W * Math.abs(G);
            // Non-stable kernels flush a term dL/dx_ijd = G' W below TINY to 0 before it is
            // scaled by R (dq, dk) or by q - k (dR): up to termFloor R or termFloor |q - k| lost.
            // Stable ones keep it subnormal, rounded to a multiple of 2^-149: up to SUBNORMAL_ULP
            // per rounding of the few it takes, scaled the same way.
            const lost = stable ? 4 * SUBNORMAL_ULP : termFloor;
            const flushQ = mul(lost, Rv);
            const flushR = mul(lost, x);
            dq[row * D + d] += mul(err + 3 * U * term, Rv) + termFloor + flushQ;
            dqAbs[row * D + d] += term * Rv;
            dk[ko + d] += mul(err + 3 * U * term, Rv) + termFloor + flushQ;
            dkAbs[ko + d] += term * Rv;
            dR[r(h, d)] += mul(err + 3 * U * term, x) + termFloor + flushR;
            dRAbs[r(h, d)] += term * x;
          }
        }
      }
  if (!back) return { hLo, hHi, weightSlack };
  // The float sums: over j (dq), over i (dk, dv), over i, j and a broadcast R's features (dR).
  for (let n = 0; n < dq.length; n++) dq[n] += gamma(Nk + 2) * dqAbs[n];
  for (let n = 0; n < dk.length; n++) dk[n] += gamma(Nq + 2) * dkAbs[n];
  for (let n = 0; n < dv.length; n++) dv[n] += gamma(Nq + 2) * dvAbs[n];
  for (let n = 0; n < dR.length; n++) dR[n] += gamma(Nq + Nk + D + 2) * dRAbs[n];
  return { hLo, hHi, weightSlack, dq, dk, dv, dR };
}
