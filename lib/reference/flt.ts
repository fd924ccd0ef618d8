// Float64 reference of FLT's learned spectral relative positional encoding (lib/nn/spectral-rpe.ts)
// and of an FLT attention layer (MultiHeadAttention 'flt'), for tests only: every quantity from
// its definition, in plain loops.
//   rho_hk = tau_h(xi_hk) / p(xi_hk),  tau_h(xi) = sum_i w_hi exp(-|xi - mu_hi|^2 / exp(logVar_hi)),
//            p the N(0, I_d) density
//   E_h(r) = c m^-1/2 [rho_hk cos(2 pi xi_hk . r), rho_hk sin(2 pi xi_hk . r)]_k,  c = Dh^(1/4)
//   RPE_h(r_i, r_j) = (1/m) sum_k rho_hk^2 cos(2 pi xi_hk . (r_i - r_j))   (0 if either has no position)
// fltLayerRef: the layer's qkv projection, q and k extended by E, FAVOR+ (performerAttentionRef)
// with the scale 1/sqrt(Dh), the output projection. fltExactLayerRef: the same layer with exact
// softmax attention and the RPE as an additive logit bias, softmax(q k^T / sqrt(Dh) + RPE) v:
// what FAVOR+ on the extended rows estimates.
import type { RefArray } from './fourier-metric';
import { performerAttentionRef } from './performer-attention';

/** The learned spectrum of one layer: w [H, I], mu [H, I, d], log sigma^2 [H, I], xi [H, m, d]. */
export interface SpectrumRef {
  weights: RefArray;
  means: RefArray;
  logVariances: RefArray;
  frequencies: RefArray;
}

/** rho [H * m] = tau(xi) / p(xi). */
export function spectralRatiosRef(s: SpectrumRef): Float64Array {
  const [H, m, d] = s.frequencies.shape;
  const I = s.weights.shape[1];
  const rho = new Float64Array(H * m);
  for (let h = 0; h < H; h++) {
    for (let k = 0; k < m; k++) {
      const xi = (c: number) => s.frequencies.data[(h * m + k) * d + c];
      let tau = 0,
        sq = 0;
      for (let c = 0; c < d; c++) sq += xi(c) * xi(c);
      for (let i = 0; i < I; i++) {
        let dist = 0;
        for (let c = 0; c < d; c++) dist += (xi(c) - s.means.data[(h * I + i) * d + c]) ** 2;
        tau += s.weights.data[h * I + i] * Math.exp(-dist / Math.exp(s.logVariances.data[h * I + i]));
      }
      const density = Math.exp(-sq / 2) / (2 * Math.PI) ** (d / 2);
      rho[h * m + k] = tau / density;
    }
  }
  return rho;
}

/** Token positions: text 0, 1, ... or a row-major grid [rows, cols]; the first `prefix` tokens none. */
export function fltPositionsRef(
  first: number,
  N: number,
  grid: [number, number] | null,
  prefix = 0,
): (number[] | null)[] {
  return Array.from({ length: N }, (_, n) => {
    const t = first + n - prefix;
    if (t < 0) return null;
    return grid ? [Math.floor(t / grid[1]), t % grid[1]] : [t];
  });
}

/** The snippets E [H, N, 2m] of the given positions (rows of tokens without one: 0). */
export function fltSnippetsRef(s: SpectrumRef, positions: (number[] | null)[], headDim: number): RefArray {
  const [H, m, d] = s.frequencies.shape;
  const N = positions.length;
  const rho = spectralRatiosRef(s);
  const c = Math.sqrt(Math.sqrt(headDim)) / Math.sqrt(m);
  const E = new Float64Array(H * N * 2 * m);
  for (let h = 0; h < H; h++) {
    for (let n = 0; n < N; n++) {
      const r = positions[n];
      if (r === null) continue;
      for (let k = 0; k < m; k++) {
        let phase = 0;
        for (let a = 0; a < d; a++) phase += s.frequencies.data[(h * m + k) * d + a] * r[a];
        phase *= 2 * Math.PI;
        E[(h * N + n) * 2 * m + k] = c * rho[h * m + k] * Math.cos(phase);
        E[(h * N + n) * 2 * m + m + k] = c * rho[h * m + k] * Math.sin(phase);
      }
    }
  }
  return { data: E, shape: [H, N, 2 * m] };
}

/** RPE [H, N, N]: (1/m) sum_k rho^2 cos(2 pi xi . (r_i - r_j)), the logit bias FLT adds. */
export function fltBiasRef(s: SpectrumRef, positions: (number[] | null)[]): RefArray {
  const [H, m, d] = s.frequencies.shape;
  const N = positions.length;
  const rho = spectralRatiosRef(s);
  const bias = new Float64Array(H * N * N);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < N; j++) {
        const ri = positions[i],
          rj = positions[j];
        if (ri === null || rj === null) continue;
        let b = 0;
        for (let k = 0; k < m; k++) {
          let phase = 0;
          for (let a = 0; a < d; a++) phase += s.frequencies.data[(h * m + k) * d + a] * (ri[a] - rj[a]);
          b += rho[h * m + k] ** 2 * Math.cos(2 * Math.PI * phase);
        }
        bias[(h * N + i) * N + j] = b / m;
      }
    }
  }
  return { data: bias, shape: [H, N, N] };
}

/** The parameters of an FLT attention layer (MultiHeadAttention 'flt'). */
export interface FltLayerRef {
  numHeads: number;
  causal: boolean;
  /** qkv: W [3C, C], b [3C] or null; proj: W [C, C], b [C] or null */
  qkvWeight: RefArray;
  qkvBias: RefArray | null;
  projWeight: RefArray;
  projBias: RefArray | null;
  spectrum: SpectrumRef;
  /** FAVOR+'s projection [M, Dh + 2m] (fltLayerRef only) */
  projection: RefArray;
  grid: [number, number] | null;
  prefixTokens: number;
}

/** y [B, N, O] = x W^T + b, x [B, N, C]. */
function linear(x: Float64Array, rows: number, C: number, W: RefArray, b: RefArray | null): Float64Array {
  const O = W.shape[0];
  const y = new Float64Array(rows * O);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < O; o++) {
      let s = b ? b.data[o] : 0;
      for (let c = 0; c < C; c++) s += x[r * C + c] * W.data[o * C + c];
      y[r * O + o] = s;
    }
  return y;
}

/** q, k (extended by the snippets), v [B, H, N, *] of x [B, N, C]. */
function extendedHeads(
  L: FltLayerRef,
  x: RefArray,
): { q: RefArray; k: RefArray; v: RefArray; qh: RefArray; kh: RefArray; positions: (number[] | null)[] } {
  const [B, N, C] = x.shape;
  const H = L.numHeads,
    Dh = C / H;
  const qkv = linear(Float64Array.from(x.data), B * N, C, L.qkvWeight, L.qkvBias);
  const positions = fltPositionsRef(0, N, L.grid, L.prefixTokens);
  const E = fltSnippetsRef(L.spectrum, positions, Dh);
  const w = E.shape[2],
    F = Dh + w;
  const q = new Float64Array(B * H * N * F),
    k = new Float64Array(B * H * N * F),
    v = new Float64Array(B * H * N * Dh);
  const qh = new Float64Array(B * H * N * Dh),
    kh = new Float64Array(B * H * N * Dh);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let n = 0; n < N; n++) {
        const row = (b * H + h) * N + n,
          src = (b * N + n) * 3 * C;
        for (let f = 0; f < Dh; f++) {
          q[row * F + f] = qkv[src + h * Dh + f];
          k[row * F + f] = qkv[src + C + h * Dh + f];
          v[row * Dh + f] = qkv[src + 2 * C + h * Dh + f];
          qh[row * Dh + f] = q[row * F + f];
          kh[row * Dh + f] = k[row * F + f];
        }
        for (let f = 0; f < w; f++) {
          q[row * F + Dh + f] = E.data[(h * N + n) * w + f];
          k[row * F + Dh + f] = E.data[(h * N + n) * w + f];
        }
      }
  return {
    q: { data: q, shape: [B, H, N, F] },
    k: { data: k, shape: [B, H, N, F] },
    v: { data: v, shape: [B, H, N, Dh] },
    qh: { data: qh, shape: [B, H, N, Dh] },
    kh: { data: kh, shape: [B, H, N, Dh] },
    positions,
  };
}

/** Heads [B, H, N, Dh] merged to [B, N, C], then the output projection. */
function merge(L: FltLayerRef, h: Float64Array, B: number, N: number, C: number): RefArray {
  const H = L.numHeads,
    Dh = C / H;
  const merged = new Float64Array(B * N * C);
  for (let b = 0; b < B; b++)
    for (let hh = 0; hh < H; hh++)
      for (let n = 0; n < N; n++)
        for (let f = 0; f < Dh; f++) merged[(b * N + n) * C + hh * Dh + f] = h[((b * H + hh) * N + n) * Dh + f];
  return { data: linear(merged, B * N, C, L.projWeight, L.projBias), shape: [B, N, C] };
}

/** The FLT layer's output [B, N, C] for x [B, N, C]: FAVOR+ on the extended rows. */
export function fltLayerRef(L: FltLayerRef, x: RefArray): RefArray {
  const [B, N, C] = x.shape;
  const { q, k, v } = extendedHeads(L, x);
  const h = performerAttentionRef(q, k, v, L.projection, {
    causal: L.causal,
    scale: 1 / Math.sqrt(C / L.numHeads),
    eps: 1e-6,
  });
  return merge(L, h.data, B, N, C);
}

/** What fltLayerRef estimates: exact softmax(q k^T / sqrt(Dh) + RPE) v (causal: j <= i). */
export function fltExactLayerRef(L: FltLayerRef, x: RefArray, withRpe = true): RefArray {
  const [B, N, C] = x.shape;
  const H = L.numHeads,
    Dh = C / H;
  const { qh, kh, v, positions } = extendedHeads(L, x);
  const bias = fltBiasRef(L.spectrum, positions);
  const out = new Float64Array(B * H * N * Dh);
  const logits = new Float64Array(N);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < N; i++) {
        const row = (b * H + h) * N + i;
        const J = L.causal ? i + 1 : N;
        let mx = -Infinity;
        for (let j = 0; j < J; j++) {
          const col = (b * H + h) * N + j;
          let s = 0;
          for (let f = 0; f < Dh; f++) s += qh.data[row * Dh + f] * kh.data[col * Dh + f];
          logits[j] = s / Math.sqrt(Dh) + (withRpe ? bias.data[(h * N + i) * N + j] : 0);
          mx = Math.max(mx, logits[j]);
        }
        let den = 0;
        for (let j = 0; j < J; j++) den += logits[j] = Math.exp(logits[j] - mx);
        for (let j = 0; j < J; j++) {
          const col = (b * H + h) * N + j;
          for (let f = 0; f < Dh; f++) out[row * Dh + f] += (logits[j] / den) * v.data[col * Dh + f];
        }
      }
  return merge(L, out, B, N, C);
}
