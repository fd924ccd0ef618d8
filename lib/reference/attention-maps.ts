// Float64 reference of MultiHeadAttention.attentionMap: the weights [B, H, N, N] each attention
// applies to the values, for tests only. Fourier: K / (sum_j K + eps) from the plain metric
// reference, or (stable) exp(log K - log sum_j K) with log K = p sum_d log|sinc|; dot: softmax of
// q k^T / sqrt(Dh); neural: softmax of the network's scores (lib/reference/neural-attention.ts).
// Causal rows see j <= i only (masked weights are 0).
import { fourierMetricRef, RefArray, sincRef } from './fourier-metric';
import { neuralParamsRef, neuralWeightsRef } from './neural-attention';
import { AttentionModuleRefOptions, kernelFeaturesRef, neuralProjectionsRef, RefParams } from './nn-modules';
import { linearRef } from './nn-ops';
import { permuteRef, sliceRef } from './tensor-ops';

/** R_hd of R ([1], [Dh], [H, 1] or [H, Dh]) broadcast to [H, Dh]. */
function radius(R: RefArray, h: number, d: number): number {
  const rH = R.shape.length === 2 ? R.shape[0] : 1;
  const rD = R.shape[R.shape.length - 1];
  return R.data[(rH === 1 ? 0 : h) * rD + (rD === 1 ? 0 : d)];
}

/** Row-normalised weights from per-entry log-weights (-Infinity: masked), as a softmax in float64. */
function normaliseLogs(logW: Float64Array, rows: number, N: number): Float64Array {
  const P = new Float64Array(logW.length);
  for (let r = 0; r < rows; r++) {
    const row = logW.subarray(r * N, (r + 1) * N);
    const max = Math.max(...row);
    let s = 0;
    for (const v of row) s += Math.exp(v - max);
    for (let j = 0; j < N; j++) P[r * N + j] = Math.exp(row[j] - max) / s;
  }
  return P;
}

/** The attention weights [B, H, N, N] of x [B, N, C] for a MultiHeadAttention's params (qkv.weight, qkv.bias?, R?). */
export function attentionMapRef(x: RefArray, p: RefParams, o: AttentionModuleRefOptions, prefix = ''): RefArray {
  const [B, N, C] = x.shape;
  const H = o.numHeads,
    Dh = C / H;
  const qkv = linearRef(x, p[`${prefix}qkv.weight`], p[`${prefix}qkv.bias`] ?? null);
  const heads = permuteRef({ data: qkv.data, shape: [B, N, 3, H, Dh] }, [2, 0, 3, 1, 4]);
  const [qh, kh] = [0, 1].map((i) => ({ data: sliceRef(heads, 0, i, i + 1).data, shape: [B, H, N, Dh] }));
  const visible = (i: number, j: number) => !o.causal || j <= i;
  const rows = B * H * N;
  const shape = [B, H, N, N];
  if (o.attention === 'neural') {
    const [qp, kp] = neuralProjectionsRef(qh, kh, p, prefix);
    return neuralWeightsRef(qp, kp, neuralParamsRef(p, `${prefix}score.`), { causal: o.causal });
  }
  if (o.attention === 'dot') {
    const [q, k] = [qh, kh];
    const logW = new Float64Array(rows * N);
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < N; j++) {
        let dot = 0;
        const kRow = Math.floor(r / N) * N + j;
        for (let d = 0; d < Dh; d++) dot += q.data[r * Dh + d] * k.data[kRow * Dh + d];
        logW[r * N + j] = visible(r % N, j) ? dot / Math.sqrt(Dh) : -Infinity;
      }
    return { data: normaliseLogs(logW, rows, N), shape };
  }
  const R = p[`${prefix}R`];
  const power = o.power ?? 4;
  const [q, k] = [kernelFeaturesRef(qh, o.features), kernelFeaturesRef(kh, o.features)];
  const F = q.shape[3];
  if (o.stable) {
    const logW = new Float64Array(rows * N);
    for (let r = 0; r < rows; r++) {
      const h = Math.floor(r / N) % H;
      for (let j = 0; j < N; j++) {
        let s = 0;
        const kRow = Math.floor(r / N) * N + j;
        for (let d = 0; d < F; d++)
          s += Math.log(Math.abs(sincRef(radius(R, h, d) * (q.data[r * F + d] - k.data[kRow * F + d]))));
        logW[r * N + j] = visible(r % N, j) ? power * s : -Infinity;
      }
    }
    return { data: normaliseLogs(logW, rows, N), shape };
  }
  const K = fourierMetricRef(q, k, R, power).data;
  const P = new Float64Array(K.length);
  const eps = o.eps ?? 1e-6;
  for (let r = 0; r < rows; r++) {
    let S = 0;
    for (let j = 0; j < N; j++) if (visible(r % N, j)) S += K[r * N + j];
    for (let j = 0; j < N; j++) P[r * N + j] = visible(r % N, j) ? K[r * N + j] / (S + eps) : 0;
  }
  return { data: P, shape };
}
