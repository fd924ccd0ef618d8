// Pure-TypeScript float64 reference of the neural-network ops and their gradients, for tests
// only: plain loops over the definitions, sharing no shortcut with the native kernels (no fused
// formulas where a definition is simpler; gradients that have no plain closed form are checked
// against central differences of these forwards by the tests). Philox is an independent BigInt
// implementation checked against the Random123 known-answer vectors.
import { RefArray } from './fourier-metric';

const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function zeros(shape: number[]): RefArray {
  return { data: new Float64Array(prod(shape)), shape };
}

// ---- matmul and linear ----------------------------------------------------------------------

/** The NumPy broadcast of two operands' leading dims, and each operand's matrix index per batch entry. */
function batchOf(a: RefArray, b: RefArray): { batch: number[]; bA: (i: number) => number; bB: (i: number) => number } {
  const ba = a.shape.slice(0, -2),
    bb = b.shape.slice(0, -2);
  const n = Math.max(ba.length, bb.length);
  const batch = Array.from({ length: n }, (_, i) => Math.max(ba[ba.length - n + i] ?? 1, bb[bb.length - n + i] ?? 1));
  return { batch, bA: (i) => (prod(ba) === 1 ? 0 : i), bB: (i) => (prod(bb) === 1 ? 0 : i) };
}

/** op(a) op(b) over the last two dims; a transposed operand is stored [.., K, M] / [.., N, K]. */
export function matmulRef(a: RefArray, b: RefArray, transA = false, transB = false): RefArray {
  const [ar, ac] = a.shape.slice(-2),
    [br, bc] = b.shape.slice(-2);
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const N = transB ? br : bc;
  const { batch, bA, bB } = batchOf(a, b);
  const out = zeros([...batch, M, N]);
  for (let i = 0; i < prod(batch); i++)
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a.data[bA(i) * M * K + (transA ? k * M + m : m * K + k)];
          const bv = b.data[bB(i) * K * N + (transB ? n * K + k : k * N + n)];
          s += av * bv;
        }
        out.data[(i * M + m) * N + n] = s;
      }
  return out;
}

/** Gradients of sum(matmulRef(a, b) * dC) with respect to a and b (a shared operand's summed over the batch). */
export function matmulGradRef(
  a: RefArray,
  b: RefArray,
  dC: RefArray,
  transA = false,
  transB = false,
): { da: RefArray; db: RefArray } {
  const [ar, ac] = a.shape.slice(-2),
    [br, bc] = b.shape.slice(-2);
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const N = transB ? br : bc;
  const { batch, bA, bB } = batchOf(a, b);
  const da = zeros([...a.shape]),
    db = zeros([...b.shape]);
  for (let i = 0; i < prod(batch); i++)
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        const g = dC.data[(i * M + m) * N + n];
        for (let k = 0; k < K; k++) {
          const ia = bA(i) * M * K + (transA ? k * M + m : m * K + k);
          const ib = bB(i) * K * N + (transB ? n * K + k : k * N + n);
          da.data[ia] += g * b.data[ib];
          db.data[ib] += g * a.data[ia];
        }
      }
  return { da, db };
}

/** x [..., in] W^T + b, W [out, in]. */
export function linearRef(x: RefArray, W: RefArray, bias: RefArray | null): RefArray {
  const [out, inF] = W.shape;
  const rows = x.data.length / inF;
  const y = zeros([...x.shape.slice(0, -1), out]);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < out; o++) {
      let s = bias ? bias.data[o] : 0;
      for (let i = 0; i < inF; i++) s += x.data[r * inF + i] * W.data[o * inF + i];
      y.data[r * out + o] = s;
    }
  return y;
}

export function linearGradRef(x: RefArray, W: RefArray, dy: RefArray): { dx: RefArray; dW: RefArray; db: RefArray } {
  const [out, inF] = W.shape;
  const rows = x.data.length / inF;
  const dx = zeros([...x.shape]),
    dW = zeros([...W.shape]),
    db = zeros([out]);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < out; o++) {
      const g = dy.data[r * out + o];
      db.data[o] += g;
      for (let i = 0; i < inF; i++) {
        dx.data[r * inF + i] += g * W.data[o * inF + i];
        dW.data[o * inF + i] += g * x.data[r * inF + i];
      }
    }
  return { dx, dW, db };
}

// ---- LayerNorm, softmax ---------------------------------------------------------------------

/** (x - mean) / sqrt(var + eps) * w + b over the last axis (biased variance). */
export function layerNormRef(x: RefArray, w: RefArray | null, b: RefArray | null, eps = 1e-5): RefArray {
  const C = x.shape[x.shape.length - 1];
  const y = zeros([...x.shape]);
  for (let r = 0; r < x.data.length / C; r++) {
    const row = x.data.subarray(r * C, (r + 1) * C);
    const mean = row.reduce((s, v) => s + v, 0) / C;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / C;
    for (let c = 0; c < C; c++) {
      y.data[r * C + c] = ((row[c] - mean) / Math.sqrt(variance + eps)) * (w ? w.data[c] : 1) + (b ? b.data[c] : 0);
    }
  }
  return y;
}

/** Gradients of sum(layerNormRef * dy) by the chain rule through mean and variance, term by term. */
export function layerNormGradRef(
  x: RefArray,
  w: RefArray | null,
  dy: RefArray,
  eps = 1e-5,
): { dx: RefArray; dw: RefArray; db: RefArray } {
  const C = x.shape[x.shape.length - 1];
  const dx = zeros([...x.shape]),
    dw = zeros([C]),
    db = zeros([C]);
  for (let r = 0; r < x.data.length / C; r++) {
    const row = x.data.subarray(r * C, (r + 1) * C);
    const mean = row.reduce((s, v) => s + v, 0) / C;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / C;
    const sd = Math.sqrt(variance + eps);
    // y_c = (x_c - mean) / sd * w_c: dL/dxhat_c = dy_c w_c
    const g = Array.from({ length: C }, (_, c) => dy.data[r * C + c] * (w ? w.data[c] : 1));
    let dVar = 0,
      dMean = 0;
    for (let c = 0; c < C; c++) {
      dVar += g[c] * (row[c] - mean) * -0.5 * sd ** -3;
      dMean += -g[c] / sd;
    }
    for (let c = 0; c < C; c++) {
      dx.data[r * C + c] = g[c] / sd + (dVar * 2 * (row[c] - mean)) / C + dMean / C;
      dw.data[c] += (dy.data[r * C + c] * (row[c] - mean)) / sd;
      db.data[c] += dy.data[r * C + c];
    }
  }
  return { dx, dw, db };
}

/** softmax (or log-softmax) over the last axis. */
export function softmaxRef(x: RefArray, log = false): RefArray {
  const C = x.shape[x.shape.length - 1];
  const y = zeros([...x.shape]);
  for (let r = 0; r < x.data.length / C; r++) {
    const row = x.data.subarray(r * C, (r + 1) * C);
    const m = Math.max(...row);
    const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
    for (let c = 0; c < C; c++) y.data[r * C + c] = log ? row[c] - m - Math.log(z) : Math.exp(row[c] - m) / z;
  }
  return y;
}

/** Gradient of sum(softmaxRef(x, log) * dy): the Jacobian of each row applied to dy. */
export function softmaxGradRef(x: RefArray, dy: RefArray, log = false): RefArray {
  const C = x.shape[x.shape.length - 1];
  const p = softmaxRef(x);
  const dx = zeros([...x.shape]);
  for (let r = 0; r < x.data.length / C; r++)
    for (let j = 0; j < C; j++) {
      let s = 0;
      for (let i = 0; i < C; i++) {
        const pi = p.data[r * C + i],
          pj = p.data[r * C + j];
        // d y_i / d x_j: softmax p_i (delta_ij - p_j); log-softmax delta_ij - p_j
        const jac = log ? (i === j ? 1 : 0) - pj : pi * ((i === j ? 1 : 0) - pj);
        s += dy.data[r * C + i] * jac;
      }
      dx.data[r * C + j] = s;
    }
  return dx;
}

// ---- cross-entropy --------------------------------------------------------------------------

export interface CrossEntropyRefOptions {
  ignoreIndex?: number;
  labelSmoothing?: number;
  reduction?: 'mean' | 'sum' | 'none';
}

/** The smoothed target distribution of each row, or null for an ignored row. */
function targetsOf(x: RefArray, target: RefArray, ls: number, ignoreIndex: number): (Float64Array | null)[] {
  const C = x.shape[x.shape.length - 1];
  // Soft targets have the input's shape; class ids one axis less (the counts agree when C = 1).
  const soft = target.shape.length === x.shape.length;
  return Array.from({ length: x.data.length / C }, (_, r) => {
    if (!soft && target.data[r] === ignoreIndex) return null;
    const q = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      const p = soft ? target.data[r * C + c] : c === target.data[r] ? 1 : 0;
      q[c] = (1 - ls) * p + ls / C;
    }
    return q;
  });
}

/** -sum_c q_c log softmax(x)_c per row, then the reduction (mean over rows not ignored). */
export function crossEntropyRef(x: RefArray, target: RefArray, opts: CrossEntropyRefOptions = {}): RefArray {
  const C = x.shape[x.shape.length - 1];
  const lp = softmaxRef(x, true);
  const qs = targetsOf(x, target, opts.labelSmoothing ?? 0, opts.ignoreIndex ?? -100);
  const losses = qs.map((q, r) => (q === null ? 0 : -q.reduce((s, qc, c) => s + qc * lp.data[r * C + c], 0)));
  const reduction = opts.reduction ?? 'mean';
  if (reduction === 'none') return { data: Float64Array.from(losses), shape: x.shape.slice(0, -1) };
  const total = losses.reduce((s, l) => s + l, 0);
  const count = qs.filter((q) => q !== null).length;
  return { data: Float64Array.of(reduction === 'sum' ? total : total / count), shape: [] };
}

/**
 * Gradient of crossEntropyRef with respect to x, given the upstream gradient (one value, or one per
 * row for 'none').
 */
export function crossEntropyGradRef(
  x: RefArray,
  target: RefArray,
  grad: RefArray,
  opts: CrossEntropyRefOptions = {},
): RefArray {
  const C = x.shape[x.shape.length - 1];
  const p = softmaxRef(x);
  const qs = targetsOf(x, target, opts.labelSmoothing ?? 0, opts.ignoreIndex ?? -100);
  const reduction = opts.reduction ?? 'mean';
  const count = qs.filter((q) => q !== null).length;
  const dx = zeros([...x.shape]);
  qs.forEach((q, r) => {
    if (q === null) return;
    const w = reduction === 'none' ? grad.data[r] : reduction === 'sum' ? grad.data[0] : grad.data[0] / count;
    const mass = q.reduce((s, v) => s + v, 0);
    for (let c = 0; c < C; c++) dx.data[r * C + c] = w * (mass * p.data[r * C + c] - q[c]);
  });
  return dx;
}

// ---- embedding ------------------------------------------------------------------------------

/** Rows of weight [V, D] at ids: [...ids.shape, D]. */
export function embeddingRef(ids: RefArray, weight: RefArray): RefArray {
  const D = weight.shape[1];
  const out = zeros([...ids.shape, D]);
  ids.data.forEach((id, i) => {
    for (let d = 0; d < D; d++) out.data[i * D + d] = weight.data[id * D + d];
  });
  return out;
}

export function embeddingGradRef(ids: RefArray, dout: RefArray, V: number): RefArray {
  const D = dout.data.length / ids.data.length;
  const dW = zeros([V, D]);
  ids.data.forEach((id, i) => {
    for (let d = 0; d < D; d++) dW.data[id * D + d] += dout.data[i * D + d];
  });
  return dW;
}

// ---- Philox and dropout ---------------------------------------------------------------------

const MASK32 = 0xffffffffn;

/** Philox4x32-10 of a 128-bit counter under a 64-bit key, in BigInt arithmetic. */
export function philox4x32Ref(counter: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = counter.map(BigInt);
  let [k0, k1] = key.map(BigInt);
  for (let round = 0; round < 10; round++) {
    const p0 = 0xd2511f53n * c0,
      p1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [((p1 >> 32n) ^ c1 ^ k0) & MASK32, p1 & MASK32, ((p0 >> 32n) ^ c3 ^ k1) & MASK32, p0 & MASK32];
    k0 = (k0 + 0x9e3779b9n) & MASK32;
    k1 = (k1 + 0xbb67ae85n) & MASK32;
  }
  return [c0, c1, c2, c3].map(Number);
}

/** Draw j of the stream (seed, offset): word j % 4 at counter offset + j / 4, top 24 bits as [0, 1). */
export function philoxUniformRef(seed: number, offset: number, j: number): number {
  const counter = BigInt(offset) + BigInt(Math.floor(j / 4));
  const s = BigInt(seed);
  const words = philox4x32Ref(
    [Number(counter & MASK32), Number(counter >> 32n), 0, 0],
    [Number(s & MASK32), Number(s >> 32n)],
  );
  return Math.floor(words[j % 4] / 256) / 16777216;
}

/** The dropout multipliers of n elements (0 or 1 / (1 - p)), one draw per group of elements. */
export function dropoutMaskRef(n: number, group: number, p: number, seed: number, offset: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = philoxUniformRef(seed, offset, Math.floor(i / group)) >= p ? 1 / (1 - p) : 0;
  return out;
}

// ---- adaptive softmax -----------------------------------------------------------------------

export interface AdaptiveSoftmaxRefWeights {
  head: RefArray;
  headBias?: RefArray | null;
  tails: { proj?: RefArray | null; projTransposed?: boolean; weight: RefArray; bias?: RefArray | null }[];
}

/** log p(w) for every row of x [N, d] and word w < V, by the definition (every row runs every tail). */
export function adaptiveLogProbRef(x: RefArray, weights: AdaptiveSoftmaxRefWeights, cutoffs: number[]): RefArray {
  const [N] = x.shape;
  const headLP = softmaxRef(linearRef(x, weights.head, weights.headBias ?? null), true);
  const H = cutoffs[0] + weights.tails.length;
  const V = cutoffs[cutoffs.length - 1] + weights.tails[weights.tails.length - 1].weight.shape[0];
  const out = zeros([N, V]);
  for (let r = 0; r < N; r++) for (let w = 0; w < cutoffs[0]; w++) out.data[r * V + w] = headLP.data[r * H + w];
  weights.tails.forEach((t, i) => {
    const h = !t.proj ? x : t.projTransposed ? matmulRef(x, t.proj) : linearRef(x, t.proj, null);
    const lp = softmaxRef(linearRef(h, t.weight, t.bias ?? null), true);
    const Vi = t.weight.shape[0];
    for (let r = 0; r < N; r++)
      for (let w = 0; w < Vi; w++)
        out.data[r * V + cutoffs[i] + w] = headLP.data[r * H + cutoffs[0] + i] + lp.data[r * Vi + w];
  });
  return out;
}
