// Pure-TypeScript float64 reference of Fourier attention and dot-product attention, forward and
// backward, for tests only. It materialises the Nq x Nk matrix (the fused kernels never do) and
// composes the plainest formulas, so it shares no shortcut with the kernels it checks.
import { fourierMetricGradRef, fourierMetricRef, RefArray, sincDerivRef, sincRef } from './fourier-metric';

export interface AttentionRefOptions {
  power?: number;
  causal?: boolean;
  eps?: number;
  /** The log-domain estimate: K / sum_j K with no eps (for any D, no underflow). */
  stable?: boolean;
}

export interface AttentionGradRef {
  dq: RefArray;
  dk: RefArray;
  dv: RefArray;
}

interface Dims {
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  D: number;
  Dv: number;
}

function attnDims(q: RefArray, k: RefArray, v: RefArray): Dims {
  const [B, H, Nq, D] = q.shape;
  return { B, H, Nq, Nk: k.shape[2], D, Dv: v.shape[3] };
}

const visible = (causal: boolean, i: number, j: number): boolean => !causal || j <= i;

/**
 * The normalised weights P [B,H,Nq,Nk] of Fourier attention: K / (S + eps), or in stable mode
 * exp(log K - log S) computed from log|sinc| sums (K = 0 rows give P = 0).
 */
function fourierWeights(q: RefArray, k: RefArray, R: RefArray, o: Required<AttentionRefOptions>): RefArray {
  const { B, H, Nq, Nk, D } = attnDims(q, k, k);
  const P = new Float64Array(B * H * Nq * Nk);
  if (!o.stable) {
    const K = fourierMetricRef(q, k, R, o.power).data;
    for (let row = 0; row < B * H * Nq; row++) {
      const i = row % Nq;
      let S = 0;
      for (let j = 0; j < Nk; j++) if (visible(o.causal, i, j)) S += K[row * Nk + j];
      // eps = 0 and a row whose every K underflows (even in float64): 0, as the kernels document.
      if (S + o.eps === 0) continue;
      for (let j = 0; j < Nk; j++) if (visible(o.causal, i, j)) P[row * Nk + j] = K[row * Nk + j] / (S + o.eps);
    }
    return { data: P, shape: [B, H, Nq, Nk] };
  }
  const logK = new Float64Array(Nk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Nq; i++) {
        const row = (b * H + h) * Nq + i;
        let max = -Infinity;
        for (let j = 0; j < Nk; j++) {
          logK[j] = -Infinity;
          if (!visible(o.causal, i, j)) continue;
          let sum = 0;
          for (let d = 0; d < D; d++) {
            const x = rAt(R, H, D, h, d) * (q.data[row * D + d] - k.data[((b * H + h) * Nk + j) * D + d]);
            sum += Math.log(Math.abs(sincRef(x)));
          }
          logK[j] = o.power * sum;
          max = Math.max(max, logK[j]);
        }
        if (max === -Infinity) continue;
        let l = 0;
        for (let j = 0; j < Nk; j++) l += Math.exp(logK[j] - max);
        const logS = max + Math.log(l);
        for (let j = 0; j < Nk; j++) P[row * Nk + j] = Math.exp(logK[j] - logS);
      }
  return { data: P, shape: [B, H, Nq, Nk] };
}

/** R_hd after broadcasting R ([], [1], [D], [H,1], [H,D]) to [H, D]. */
function rAt(R: RefArray, H: number, D: number, h: number, d: number): number {
  const rs = R.shape;
  const rH = rs.length === 2 ? rs[0] : 1;
  const rD = rs.length === 0 ? 1 : rs[rs.length - 1];
  return R.data[(rH === 1 ? 0 : h) * rD + (rD === 1 ? 0 : d)];
}

function withDefaults(o: AttentionRefOptions): Required<AttentionRefOptions> {
  return { power: o.power ?? 4, causal: o.causal ?? false, eps: o.eps ?? 1e-6, stable: o.stable ?? false };
}

/** out [B,H,Nq,Dv] = P V for the weights P [B,H,Nq,Nk]. */
function weightsTimesV(P: RefArray, v: RefArray): RefArray {
  const [B, H, Nq, Nk] = P.shape;
  const Dv = v.shape[3];
  const out = new Float64Array(B * H * Nq * Dv);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < Nq; i++)
      for (let j = 0; j < Nk; j++) {
        const p = P.data[(bh * Nq + i) * Nk + j];
        if (p === 0) continue;
        for (let e = 0; e < Dv; e++) out[(bh * Nq + i) * Dv + e] += p * v.data[(bh * Nk + j) * Dv + e];
      }
  return { data: out, shape: [B, H, Nq, Dv] };
}

/**
 * Given P, V and dout: dv = P^T dout, and G_ij = dout_i . v_j - dout_i . out_i, the gradient
 * through the row normalisation that both attentions share (P_ij G_ij is dL/dlogit_ij).
 */
function weightsBackward(P: RefArray, v: RefArray, out: RefArray, dout: RefArray): { dv: RefArray; G: Float64Array } {
  const [B, H, Nq, Nk] = P.shape;
  const Dv = v.shape[3];
  const dv = new Float64Array(v.data.length);
  const G = new Float64Array(P.data.length);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < Nq; i++) {
      let delta = 0;
      for (let e = 0; e < Dv; e++) delta += dout.data[(bh * Nq + i) * Dv + e] * out.data[(bh * Nq + i) * Dv + e];
      for (let j = 0; j < Nk; j++) {
        const p = P.data[(bh * Nq + i) * Nk + j];
        let dp = 0;
        for (let e = 0; e < Dv; e++) {
          const g = dout.data[(bh * Nq + i) * Dv + e];
          dv[(bh * Nk + j) * Dv + e] += p * g;
          dp += g * v.data[(bh * Nk + j) * Dv + e];
        }
        G[(bh * Nq + i) * Nk + j] = dp - delta;
      }
    }
  return { dv: { data: dv, shape: [...v.shape] }, G };
}

/** Fourier attention h [B,H,Nq,Dv] = sum_j K_ij v_j / (sum_j K_ij + eps), or the stable form. */
export function fourierAttentionRef(
  q: RefArray,
  k: RefArray,
  v: RefArray,
  R: RefArray,
  opts: AttentionRefOptions = {},
): RefArray {
  return weightsTimesV(fourierWeights(q, k, R, withDefaults(opts)), v);
}

/** dq, dk, dv, dR of sum(h * dout) for Fourier attention. */
export function fourierAttentionGradRef(
  q: RefArray,
  k: RefArray,
  v: RefArray,
  R: RefArray,
  dout: RefArray,
  opts: AttentionRefOptions = {},
): AttentionGradRef & { dR: RefArray } {
  const o = withDefaults(opts);
  const { B, H, Nq, Nk, D } = attnDims(q, k, v);
  const P = fourierWeights(q, k, R, o);
  const out = weightsTimesV(P, v);
  const { dv, G } = weightsBackward(P, v, out, dout);
  if (!o.stable) {
    // dL/dK_ij = (dout_i . v_j - dout_i . h_i) / (S_i + eps), then the metric's own backward.
    const K = fourierMetricRef(q, k, R, o.power).data;
    const dK = new Float64Array(K.length);
    for (let row = 0; row < B * H * Nq; row++) {
      const i = row % Nq;
      let S = 0;
      for (let j = 0; j < Nk; j++) if (visible(o.causal, i, j)) S += K[row * Nk + j];
      if (S + o.eps === 0) continue;
      for (let j = 0; j < Nk; j++) if (visible(o.causal, i, j)) dK[row * Nk + j] = G[row * Nk + j] / (S + o.eps);
    }
    const g = fourierMetricGradRef(q, k, R, { data: dK, shape: [B, H, Nq, Nk] }, o.power);
    return { dq: g.dq, dk: g.dk, dv, dR: g.dR };
  }
  // Stable: dL/dlogK_ij = P_ij G_ij and dlogK/dx_d = p s'(x_d) / s(x_d) (-> 0 with P when s = 0).
  const dq = new Float64Array(q.data.length);
  const dk = new Float64Array(k.data.length);
  const dRfull = new Float64Array(H * D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Nq; i++)
        for (let j = 0; j < Nk; j++) {
          const idx = ((b * H + h) * Nq + i) * Nk + j;
          const w = P.data[idx] * G[idx];
          if (w === 0) continue;
          const qo = ((b * H + h) * Nq + i) * D;
          const ko = ((b * H + h) * Nk + j) * D;
          for (let d = 0; d < D; d++) {
            const r = rAt(R, H, D, h, d);
            const diff = q.data[qo + d] - k.data[ko + d];
            const s = sincRef(r * diff);
            if (s === 0) continue;
            const t = (w * o.power * sincDerivRef(r * diff)) / s;
            dq[qo + d] += t * r;
            dk[ko + d] -= t * r;
            dRfull[h * D + d] += t * diff;
          }
        }
  const rs = R.shape;
  const rH = rs.length === 2 ? rs[0] : 1;
  const rD = rs.length === 0 ? 1 : rs[rs.length - 1];
  const dR = new Float64Array(R.data.length);
  for (let h = 0; h < H; h++)
    for (let d = 0; d < D; d++) dR[(rH === 1 ? 0 : h) * rD + (rD === 1 ? 0 : d)] += dRfull[h * D + d];
  return {
    dq: { data: dq, shape: [...q.shape] },
    dk: { data: dk, shape: [...k.shape] },
    dv,
    dR: { data: dR, shape: [...R.shape] },
  };
}

export interface DotAttentionRefOptions {
  causal?: boolean;
  /** Defaults to 1 / sqrt(D). */
  scale?: number;
}

function softmaxWeights(q: RefArray, k: RefArray, o: DotAttentionRefOptions): RefArray {
  const { B, H, Nq, Nk, D } = attnDims(q, k, k);
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const P = new Float64Array(B * H * Nq * Nk);
  const logits = new Float64Array(Nk);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < Nq; i++) {
      let max = -Infinity;
      for (let j = 0; j < Nk; j++) {
        logits[j] = -Infinity;
        if (!visible(o.causal ?? false, i, j)) continue;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q.data[(bh * Nq + i) * D + d] * k.data[(bh * Nk + j) * D + d];
        logits[j] = scale * dot;
        max = Math.max(max, logits[j]);
      }
      let sum = 0;
      for (let j = 0; j < Nk; j++) sum += Math.exp(logits[j] - max);
      for (let j = 0; j < Nk; j++) P[(bh * Nq + i) * Nk + j] = Math.exp(logits[j] - max) / sum;
    }
  return { data: P, shape: [B, H, Nq, Nk] };
}

/** softmax(scale q k^T) v, with the causal mask j <= i when asked. */
export function dotAttentionRef(q: RefArray, k: RefArray, v: RefArray, opts: DotAttentionRefOptions = {}): RefArray {
  return weightsTimesV(softmaxWeights(q, k, opts), v);
}

/** dq, dk, dv of sum(out * dout) for dot-product attention. */
export function dotAttentionGradRef(
  q: RefArray,
  k: RefArray,
  v: RefArray,
  dout: RefArray,
  opts: DotAttentionRefOptions = {},
): AttentionGradRef {
  const { B, H, Nq, Nk, D } = attnDims(q, k, v);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const P = softmaxWeights(q, k, opts);
  const out = weightsTimesV(P, v);
  const { dv, G } = weightsBackward(P, v, out, dout);
  const dq = new Float64Array(q.data.length);
  const dk = new Float64Array(k.data.length);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < Nq; i++)
      for (let j = 0; j < Nk; j++) {
        const dlogit = P.data[(bh * Nq + i) * Nk + j] * G[(bh * Nq + i) * Nk + j] * scale;
        if (dlogit === 0) continue;
        for (let d = 0; d < D; d++) {
          dq[(bh * Nq + i) * D + d] += dlogit * k.data[(bh * Nk + j) * D + d];
          dk[(bh * Nk + j) * D + d] += dlogit * q.data[(bh * Nq + i) * D + d];
        }
      }
  return { dq: { data: dq, shape: [...q.shape] }, dk: { data: dk, shape: [...k.shape] }, dv };
}
