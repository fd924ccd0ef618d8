// Pure-TypeScript float64 reference of Neural Attention, forward and backward, for tests only:
// the authors' computation as written, every pair's [q_i; k_j] concatenated and passed through
// the whole network (its first layer included, unsplit), the Nq x Nk scores materialised, a
// softmax per row, times V; the backward by the chain rule through the same steps.
import type { RefArray } from './fourier-metric';

/** The network's weights as float64 arrays, torch.nn.Linear's layout [out, in]. */
export interface NeuralParamsRef {
  w1: RefArray;
  b1: RefArray;
  w2: RefArray;
  b2: RefArray;
  w3: RefArray;
  b3: RefArray;
}

export interface NeuralGradRef {
  dq: RefArray;
  dk: RefArray;
  dv: RefArray;
  params: NeuralParamsRef;
}

/** One pair's network, keeping every layer's pre-activation for the backward. */
interface PairTrace {
  x: Float64Array;
  z1: Float64Array;
  z2: Float64Array;
  s: number;
}

function runPair(
  p: NeuralParamsRef,
  q: Float64Array | Float32Array,
  qo: number,
  k: Float64Array | Float32Array,
  ko: number,
  F: number,
): PairTrace {
  const d1 = p.w1.shape[0],
    d2 = p.w2.shape[0];
  const x = new Float64Array(2 * F);
  for (let f = 0; f < F; f++) {
    x[f] = q[qo + f];
    x[F + f] = k[ko + f];
  }
  const z1 = new Float64Array(d1);
  for (let m = 0; m < d1; m++) {
    let t = p.b1.data[m];
    for (let f = 0; f < 2 * F; f++) t += p.w1.data[m * 2 * F + f] * x[f];
    z1[m] = t;
  }
  const z2 = new Float64Array(d2);
  for (let n = 0; n < d2; n++) {
    let t = p.b2.data[n];
    for (let m = 0; m < d1; m++) t += p.w2.data[n * d1 + m] * Math.max(z1[m], 0);
    z2[n] = t;
  }
  let s = p.b3.data[0];
  for (let n = 0; n < d2; n++) s += p.w3.data[n] * Math.max(z2[n], 0);
  return { x, z1, z2, s };
}

interface Dims {
  BH: number;
  Nq: number;
  Nk: number;
  F: number;
  Dv: number;
}

function dimsOf(q: RefArray, k: RefArray, v: RefArray): Dims {
  const [B, H, Nq, F] = q.shape;
  return { BH: B * H, Nq, Nk: k.shape[2], F, Dv: v.shape[3] };
}

/** The softmax weights P [BH, Nq, Nk] (0 where causal hides a key). */
function weights(q: RefArray, k: RefArray, p: NeuralParamsRef, causal: boolean, d: Dims): Float64Array {
  const P = new Float64Array(d.BH * d.Nq * d.Nk);
  const s = new Float64Array(d.Nk);
  for (let bh = 0; bh < d.BH; bh++)
    for (let i = 0; i < d.Nq; i++) {
      const n = causal ? i + 1 : d.Nk;
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        s[j] = runPair(p, q.data, (bh * d.Nq + i) * d.F, k.data, (bh * d.Nk + j) * d.F, d.F).s;
        max = Math.max(max, s[j]);
      }
      let sum = 0;
      for (let j = 0; j < n; j++) sum += Math.exp(s[j] - max);
      for (let j = 0; j < n; j++) P[(bh * d.Nq + i) * d.Nk + j] = Math.exp(s[j] - max) / sum;
    }
  return P;
}

/** The attention weights softmax_j(MLP([q_i; k_j])) [B,H,Nq,Nk] (0 where causal hides a key). */
export function neuralWeightsRef(
  q: RefArray,
  k: RefArray,
  params: NeuralParamsRef,
  opts: { causal?: boolean } = {},
): RefArray {
  const d = dimsOf(q, k, k);
  return { data: weights(q, k, params, opts.causal ?? false, d), shape: [q.shape[0], q.shape[1], d.Nq, d.Nk] };
}

/** The network's weights of a NeuralScoreNet's parameters (stateDict() names under `prefix`). */
export function neuralParamsRef(p: Record<string, RefArray>, prefix: string): NeuralParamsRef {
  const at = (layer: string, what: string) => p[`${prefix}${layer}.${what}`];
  return {
    w1: at('fc1', 'weight'),
    b1: at('fc1', 'bias'),
    w2: at('fc2', 'weight'),
    b2: at('fc2', 'bias'),
    w3: at('fc3', 'weight'),
    b3: at('fc3', 'bias'),
  };
}

/** softmax_j(MLP([q_i; k_j])) v, [B,H,Nq,Dv]. */
export function neuralAttentionRef(
  q: RefArray,
  k: RefArray,
  v: RefArray,
  params: NeuralParamsRef,
  opts: { causal?: boolean } = {},
): RefArray {
  const d = dimsOf(q, k, v);
  const P = weights(q, k, params, opts.causal ?? false, d);
  const out = new Float64Array(d.BH * d.Nq * d.Dv);
  for (let bh = 0; bh < d.BH; bh++)
    for (let i = 0; i < d.Nq; i++)
      for (let j = 0; j < d.Nk; j++) {
        const w = P[(bh * d.Nq + i) * d.Nk + j];
        for (let e = 0; e < d.Dv; e++) out[(bh * d.Nq + i) * d.Dv + e] += w * v.data[(bh * d.Nk + j) * d.Dv + e];
      }
  return { data: out, shape: [q.shape[0], q.shape[1], d.Nq, d.Dv] };
}

/** The gradients of sum(out * dout) with respect to q, k, v and every weight. */
export function neuralAttentionGradRef(
  q: RefArray,
  k: RefArray,
  v: RefArray,
  params: NeuralParamsRef,
  dout: RefArray,
  opts: { causal?: boolean } = {},
): NeuralGradRef {
  const causal = opts.causal ?? false;
  const d = dimsOf(q, k, v);
  const p = params;
  const d1 = p.w1.shape[0],
    d2 = p.w2.shape[0],
    F2 = 2 * d.F;
  const P = weights(q, k, p, causal, d);
  const zeros = (r: RefArray): RefArray => ({ data: new Float64Array(r.data.length), shape: [...r.shape] });
  const dq = zeros(q),
    dk = zeros(k),
    dv = zeros(v);
  const g: NeuralParamsRef = {
    w1: zeros(p.w1),
    b1: zeros(p.b1),
    w2: zeros(p.w2),
    b2: zeros(p.b2),
    w3: zeros(p.w3),
    b3: zeros(p.b3),
  };
  const out = new Float64Array(d.Dv);
  for (let bh = 0; bh < d.BH; bh++)
    for (let i = 0; i < d.Nq; i++) {
      const row = bh * d.Nq + i;
      out.fill(0);
      for (let j = 0; j < d.Nk; j++)
        for (let e = 0; e < d.Dv; e++) out[e] += P[row * d.Nk + j] * v.data[(bh * d.Nk + j) * d.Dv + e];
      let delta = 0;
      for (let e = 0; e < d.Dv; e++) delta += dout.data[row * d.Dv + e] * out[e];
      const n = causal ? i + 1 : d.Nk;
      for (let j = 0; j < n; j++) {
        const w = P[row * d.Nk + j];
        let dp = 0;
        for (let e = 0; e < d.Dv; e++) {
          const go = dout.data[row * d.Dv + e];
          dv.data[(bh * d.Nk + j) * d.Dv + e] += w * go;
          dp += go * v.data[(bh * d.Nk + j) * d.Dv + e];
        }
        const ds = w * (dp - delta); // dL/ds_ij through the softmax
        const t = runPair(p, q.data, row * d.F, k.data, (bh * d.Nk + j) * d.F, d.F);
        g.b3.data[0] += ds;
        const g2 = new Float64Array(d2);
        for (let c = 0; c < d2; c++) {
          g.w3.data[c] += ds * Math.max(t.z2[c], 0);
          g2[c] = t.z2[c] > 0 ? ds * p.w3.data[c] : 0;
          g.b2.data[c] += g2[c];
          for (let m = 0; m < d1; m++) g.w2.data[c * d1 + m] += g2[c] * Math.max(t.z1[m], 0);
        }
        for (let m = 0; m < d1; m++) {
          if (!(t.z1[m] > 0)) continue;
          let g1 = 0;
          for (let c = 0; c < d2; c++) g1 += g2[c] * p.w2.data[c * d1 + m];
          g.b1.data[m] += g1;
          for (let f = 0; f < F2; f++) {
            g.w1.data[m * F2 + f] += g1 * t.x[f];
            const dx = g1 * p.w1.data[m * F2 + f];
            if (f < d.F) dq.data[row * d.F + f] += dx;
            else dk.data[(bh * d.Nk + j) * d.F + f - d.F] += dx;
          }
        }
      }
    }
  return { dq, dk, dv, params: g };
}
