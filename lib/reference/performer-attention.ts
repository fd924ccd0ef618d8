// Float64 reference of FAVOR+ attention (ff.performerAttention), forward and backward, for tests
// only: the features of every query and key from their definition, the full Nq x Nk matrix of
// kappa_ij (csrc/common/favor.h), then plain sums. No chunks, no augmented rows, no running sums.
import type { RefArray } from './fourier-metric';

export interface PerformerRefOptions {
  causal?: boolean;
  scale?: number;
  eps?: number;
}

interface Setup {
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  F: number;
  M: number;
  Dv: number;
  causal: boolean;
  scale: number;
  eps: number;
  /** per row: phi [M] (queries, eps included), e [M] (keys), s (keys), M_i (queries) */
  phi: Float64Array;
  e: Float64Array;
  sk: Float64Array;
  Mi: Float64Array;
  /** kappa [BH, Nq, Nk] (0 where masked) */
  kappa: Float64Array;
}

/** exp(l - max l) of one row x against the projection, and max l. */
function stabilised(
  x: ArrayLike<number>,
  at: number,
  F: number,
  W: RefArray,
  M: number,
  scale: number,
  out: Float64Array,
  o: number,
): number {
  let sq = 0;
  for (let f = 0; f < F; f++) sq += x[at + f] * x[at + f];
  const l = new Float64Array(M);
  let s = -Infinity;
  for (let m = 0; m < M; m++) {
    let wx = 0;
    for (let f = 0; f < F; f++) wx += W.data[m * F + f] * x[at + f];
    l[m] = Math.sqrt(scale) * wx - 0.5 * scale * sq;
    s = Math.max(s, l[m]);
  }
  for (let m = 0; m < M; m++) out[o + m] = Math.exp(l[m] - s);
  return s;
}

function setup(q: RefArray, k: RefArray, v: RefArray, W: RefArray, opts: PerformerRefOptions): Setup {
  const [B, H, Nq, F] = q.shape;
  const Nk = k.shape[2],
    Dv = v.shape[3],
    M = W.shape[0];
  const causal = opts.causal ?? false,
    scale = opts.scale ?? 1 / Math.sqrt(F),
    eps = opts.eps ?? 1e-6;
  const phi = new Float64Array(B * H * Nq * M),
    e = new Float64Array(B * H * Nk * M);
  const sk = new Float64Array(B * H * Nk),
    Mi = new Float64Array(B * H * Nq);
  for (let r = 0; r < B * H * Nq; r++) {
    stabilised(q.data, r * F, F, W, M, scale, phi, r * M);
    for (let m = 0; m < M; m++) phi[r * M + m] += eps;
  }
  for (let r = 0; r < B * H * Nk; r++) sk[r] = stabilised(k.data, r * F, F, W, M, scale, e, r * M);
  const kappa = new Float64Array(B * H * Nq * Nk);
  for (let bh = 0; bh < B * H; bh++) {
    for (let i = 0; i < Nq; i++) {
      const row = bh * Nq + i;
      let mx = -Infinity;
      for (let j = 0; j < Nk; j++) if (!causal || j <= i) mx = Math.max(mx, sk[bh * Nk + j]);
      Mi[row] = mx;
      let sigma = 0;
      for (let m = 0; m < M; m++) sigma += phi[row * M + m];
      for (let j = 0; j < Nk; j++) {
        if (causal && j > i) continue;
        const col = bh * Nk + j;
        let p = 0;
        for (let m = 0; m < M; m++) p += phi[row * M + m] * e[col * M + m];
        kappa[row * Nk + j] = Math.exp(sk[col] - mx) * p + eps * sigma;
      }
    }
  }
  return { B, H, Nq, Nk, F, M, Dv, causal, scale, eps, phi, e, sk, Mi, kappa };
}

function outputs(S: Setup, v: RefArray): { out: Float64Array; den: Float64Array } {
  const { B, H, Nq, Nk, Dv } = S;
  const out = new Float64Array(B * H * Nq * Dv),
    den = new Float64Array(B * H * Nq);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < Nq; i++) {
      const row = bh * Nq + i;
      for (let j = 0; j < Nk; j++) {
        const w = S.kappa[row * Nk + j];
        den[row] += w;
        for (let c = 0; c < Dv; c++) out[row * Dv + c] += w * v.data[(bh * Nk + j) * Dv + c];
      }
      for (let c = 0; c < Dv; c++) out[row * Dv + c] = den[row] > 0 ? out[row * Dv + c] / den[row] : 0;
    }
  return { out, den };
}

/** FAVOR+ attention [B,H,Nq,Dv] of q, k [B,H,N,F], v [B,H,Nk,Dv] with the projection W [M, F]. */
export function performerAttentionRef(
  q: RefArray,
  k: RefArray,
  v: RefArray,
  W: RefArray,
  opts: PerformerRefOptions = {},
): RefArray {
  const S = setup(q, k, v, W, opts);
  return { data: outputs(S, v).out, shape: [S.B, S.H, S.Nq, S.Dv] };
}

/** dq, dk, dv of sum(out * dout), the stabilisers (row and key maxima) held constant. */
export function performerAttentionGradRef(
  q: RefArray,
  k: RefArray,
  v: RefArray,
  W: RefArray,
  dout: RefArray,
  opts: PerformerRefOptions = {},
): { dq: RefArray; dk: RefArray; dv: RefArray } {
  const S = setup(q, k, v, W, opts);
  const { B, H, Nq, Nk, F, M, Dv, eps, scale } = S;
  const { out, den } = outputs(S, v);
  const dphi = new Float64Array(B * H * Nq * M),
    de = new Float64Array(B * H * Nk * M),
    dv = new Float64Array(B * H * Nk * Dv);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < Nq; i++) {
      const row = bh * Nq + i;
      if (!(den[row] > 0)) continue;
      let delta = 0;
      for (let c = 0; c < Dv; c++) delta += dout.data[row * Dv + c] * out[row * Dv + c];
      for (let j = 0; j < Nk; j++) {
        if (S.causal && j > i) continue;
        const col = bh * Nk + j;
        let gv = 0;
        for (let c = 0; c < Dv; c++) {
          gv += dout.data[row * Dv + c] * v.data[col * Dv + c];
          dv[col * Dv + c] += (S.kappa[row * Nk + j] * dout.data[row * Dv + c]) / den[row];
        }
        const G = (gv - delta) / den[row]; // dL/dkappa_ij
        const f = Math.exp(S.sk[col] - S.Mi[row]);
        for (let m = 0; m < M; m++) {
          dphi[row * M + m] += G * (f * S.e[col * M + m] + eps);
          de[col * M + m] += G * f * S.phi[row * M + m];
        }
      }
    }
  const inputGrad = (x: RefArray, d: Float64Array, feat: (r: number, m: number) => number, rows: number): RefArray => {
    const dx = new Float64Array(rows * F);
    for (let r = 0; r < rows; r++) {
      let t = 0;
      for (let m = 0; m < M; m++) {
        const dl = d[r * M + m] * feat(r, m);
        t += dl;
        for (let f = 0; f < F; f++) dx[r * F + f] += Math.sqrt(scale) * dl * W.data[m * F + f];
      }
      for (let f = 0; f < F; f++) dx[r * F + f] -= scale * x.data[r * F + f] * t;
    }
    return { data: dx, shape: [...x.shape] };
  };
  return {
    dq: inputGrad(q, dphi, (r, m) => S.phi[r * M + m] - eps, B * H * Nq),
    dk: inputGrad(k, de, (r, m) => S.e[r * M + m], B * H * Nk),
    dv: { data: dv, shape: [...v.shape] },
  };
}
