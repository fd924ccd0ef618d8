// What an attention layer does with its rows, for diagnosis: for every query row i of every
// example and head, the kernel's row sum S_i, the weights' shape (entropy, largest weight), and
// for Fourier attention how many rows the normaliser's eps swamps.
//   Fourier: k_ij = prod_d sinc(R_d (q_id - k_jd)) from ff.fourierMetric (power 1, float32; the
//            sinc product itself underflows far later than K = k^p), then in float64 on the host
//            K_ij = |k_ij|^p, S_i = sum_j K_ij, p_ij = K_ij / S_i. A row "underflows" when
//            S_i < eps: its output sum_j K_ij v_j / (S_i + eps) is damped towards 0 by the factor
//            S_i / (S_i + eps), the row mass (1 in stable mode, which divides by S_i alone).
//   dot:     p_ij = softmax_j(q_i . k_j / sqrt(Dh)), in float64 on the host.
//   neural:  p_ij = softmax_j(s_ij) of the score network's s_ij (materialised per chunk of rows).
//   performer, flt: p_ij = kappa_ij / sum_j kappa_ij, FAVOR+'s weights (lib/nn/favor-weights.ts).
// Entropy -sum_j p_ij ln p_ij in nats, also divided by ln(visible keys): 1 is uniform, 0 one-hot.
// Rows are taken in chunks of queries ([B, H, chunk, Nk] at a time, at most 2^22 scores), so no
// N x N tensor of the whole batch is ever held. Cost: one metric (or q k^T) pass over the rows
// on the device, O(B H Nq Nk) on the host.
import { noGrad } from '../autograd/grad-mode';
import { scale } from '../ops/elementwise';
import { fourierMetric } from '../ops/fourier-metric';
import { slice } from '../ops/layout';
import { matmul } from '../ops/matmul';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';
import type { AttentionKind } from './attention-kind';

export interface AttentionStatistics {
  kind: AttentionKind;
  /** Query rows examined (B H Nq). */
  rows: number;
  /** Fourier: the share of rows with S_i < eps (in stable mode: the rows eps would have damped); null for dot. */
  underflow: number | null;
  /** Fourier: the mean row mass S_i / (S_i + eps) (1 in stable mode); null for dot. */
  rowMass: number | null;
  /** The mean entropy of the rows' weights, nats (rows with S_i > 0). */
  entropy: number;
  /** The mean of entropy / ln(visible keys) over rows with at least 2 visible keys: 1 uniform, 0 one-hot. */
  normalizedEntropy: number;
  /** The mean of the rows' largest weight (after normalising by S_i). */
  maxWeight: number;
  /** Fourier: R's mean, smallest and largest element; null for dot. */
  radius: { mean: number; min: number; max: number } | null;
}

export interface FourierStatisticsOptions {
  power: number;
  eps: number;
  stable: boolean;
  causal: boolean;
}

/** Scores per chunk at most (4 M floats, 16 MiB). */
const CHUNK_SCORES = 1 << 22;

class Accumulator {
  rows = 0;
  underflow = 0;
  mass = 0;
  entropy = 0;
  entropyRows = 0;
  normalized = 0;
  normalizedRows = 0;
  maxWeight = 0;

  /** One row's unnormalised weights w[0 .. n) (all >= 0). */
  add(w: Float64Array, n: number, eps: number | null): void {
    let S = 0,
      top = 0;
    for (let j = 0; j < n; j++) {
      S += w[j];
      if (w[j] > top) top = w[j];
    }
    this.rows += 1;
    if (eps !== null) {
      if (S < eps) this.underflow += 1;
      this.mass += S + eps > 0 ? S / (S + eps) : 0;
    }
    if (!(S > 0)) return;
    let h = 0;
    for (let j = 0; j < n; j++) {
      if (w[j] > 0) {
        const p = w[j] / S;
        h -= p * Math.log(p);
      }
    }
    this.entropy += h;
    this.entropyRows += 1;
    this.maxWeight += top / S;
    if (n > 1) {
      this.normalized += h / Math.log(n);
      this.normalizedRows += 1;
    }
  }

  result(
    kind: AttentionStatistics['kind'],
    stable: boolean,
    radius: AttentionStatistics['radius'],
  ): AttentionStatistics {
    const mean = (s: number, n: number) => (n > 0 ? s / n : NaN);
    return {
      kind,
      rows: this.rows,
      underflow: kind === 'fourier' ? this.underflow / this.rows : null,
      rowMass: kind === 'fourier' ? (stable ? 1 : this.mass / this.rows) : null,
      entropy: mean(this.entropy, this.entropyRows),
      normalizedEntropy: mean(this.normalized, this.normalizedRows),
      maxWeight: mean(this.maxWeight, this.entropyRows),
      radius,
    };
  }
}

/** Visits the rows of q [B, H, Nq, *] in chunks: scores(qChunk) gives [B, H, c, Nk] as a host array. */
function eachRow(
  q: Tensor,
  Nk: number,
  causal: boolean,
  scores: (chunk: Tensor) => Float32Array,
  visit: (row: Float32Array, offset: number, n: number) => void,
): void {
  const [B, H, Nq] = q.shape;
  const chunk = Math.max(1, Math.min(Nq, Math.floor(CHUNK_SCORES / (B * H * Nk))));
  for (let i0 = 0; i0 < Nq; i0 += chunk) {
    const c = Math.min(chunk, Nq - i0);
    const s = tidy(() => scores(slice(q, 2, i0, i0 + c)));
    for (let bh = 0; bh < B * H; bh++) {
      for (let r = 0; r < c; r++) visit(s, (bh * c + r) * Nk, causal ? i0 + r + 1 : Nk);
    }
  }
}

function radiusSummary(R: Tensor): AttentionStatistics['radius'] {
  const r = R.toFloat32Array();
  let sum = 0,
    min = Infinity,
    max = -Infinity;
  for (const x of r) {
    sum += x;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  return { mean: sum / r.length, min, max };
}

/** The statistics of Fourier attention over q [B, H, Nq, F], k [B, H, Nk, F] and R as the layer uses them. */
export function fourierStatistics(q: Tensor, k: Tensor, R: Tensor, o: FourierStatisticsOptions): AttentionStatistics {
  return noGrad(() => {
    const Nk = k.shape[2];
    const acc = new Accumulator();
    const w = new Float64Array(Nk);
    eachRow(
      q,
      Nk,
      o.causal,
      (qc) => fourierMetric(qc, k, R, { power: 1 }).toFloat32Array(),
      (s, off, n) => {
        for (let j = 0; j < n; j++) w[j] = Math.abs(s[off + j]) ** o.power;
        acc.add(w, n, o.eps);
      },
    );
    return acc.result('fourier', o.stable, radiusSummary(R));
  });
}

/**
 * The statistics of a softmax attention over the rows of q [B, H, Nq, *]: logits(qChunk) gives
 * the logits [B, H, chunk, Nk] of a chunk of its rows.
 */
export function softmaxStatistics(
  kind: 'dot' | 'neural',
  q: Tensor,
  Nk: number,
  causal: boolean,
  logits: (chunk: Tensor) => Tensor,
): AttentionStatistics {
  return noGrad(() => {
    const acc = new Accumulator();
    const w = new Float64Array(Nk);
    eachRow(
      q,
      Nk,
      causal,
      (qc) => logits(qc).toFloat32Array(),
      (s, off, n) => {
        let m = -Infinity;
        for (let j = 0; j < n; j++) m = Math.max(m, s[off + j]);
        for (let j = 0; j < n; j++) w[j] = Math.exp(s[off + j] - m);
        acc.add(w, n, null);
      },
    );
    return acc.result(kind, false, null);
  });
}

/** The statistics of dot-product attention softmax(q k^T / sqrt(Dh)) over q [B, H, Nq, Dh], k [B, H, Nk, Dh]. */
export function dotStatistics(q: Tensor, k: Tensor, causal: boolean): AttentionStatistics {
  const s0 = 1 / Math.sqrt(q.shape[3]);
  return softmaxStatistics('dot', q, k.shape[2], causal, (qc) => scale(matmul(qc, k, { transB: true }), s0));
}

/** The statistics of FAVOR+ attention ('performer', 'flt') from its rows of weights (favorWeightRows). */
export function favorStatistics(
  kind: 'performer' | 'flt',
  rows: (visit: (bh: number, i: number, w: Float64Array, n: number) => void) => void,
): AttentionStatistics {
  return noGrad(() => {
    const acc = new Accumulator();
    rows((_bh, _i, w, n) => acc.add(w, n, null));
    return acc.result(kind, false, null);
  });
}
