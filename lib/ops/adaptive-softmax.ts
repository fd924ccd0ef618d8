// Adaptive softmax (Grave et al. 2017, torch.nn.AdaptiveLogSoftmaxWithLoss) and adaptive input
// (Baevski & Auli 2019), the pair the paper's WikiText-103 model uses, with their weights tied.
// The vocabulary is cut at cutoffs c_0 < c_1 < ... < c_{k-1} < V into a shortlist [0, c_0) and k
// tail clusters [c_i, c_{i+1}) (c_k = V).
//
// adaptiveLogSoftmaxWithLoss(x [..., d], target [...]): the head scores the shortlist words and one
// entry per cluster (head logits = x H^T + b, H [c_0 + k, d]); cluster i scores its words from a
// projection of x to d_i dims (x P_i^T, P_i [d_i, d]; or x P_i with P_i [d, d_i] when tied to an
// adaptive input's projection) times its weight W_i [V_i, d_i]:
//     log p(w) = log p_head(w)                                 w in the shortlist
//     log p(w) = log p_head(cluster i) + log p_i(w - c_i)      w in cluster i
// The loss is the fused cross-entropy of the head over all rows plus, per cluster, the fused
// cross-entropy of the rows whose target falls in it (gathered rows: only those run the tail).
// logProbs: true also returns log p over the whole vocabulary [..., V] (evaluation);
// adaptiveLogProbs gives it alone, without a target (sampling).
//
// adaptiveInput(ids [...], weights): cluster i's ids look up E_i [V_i, d_i] and project to d
// with P_i [d, d_i] (y = e P_i^T); the rows are scattered back in place. Tying, as Baevski &
// Auli: the softmax shortlist rows = E_0 (head given as [E_0, cluster rows]), tail weight W_i =
// E_{i+1}, and the tail projection = P_{i+1} read transposed (projTransposed: true).
// Composed from linear, matmul, crossEntropy, logSoftmax, embedding/gatherRows/scatterRows and
// the tensor ops (add, scale, slice, concat, reshape), so autograd gives every gradient. The
// cluster routing reads the targets (or ids) back to the host: one sync per call.
import { isGradEnabled } from '../autograd/grad-mode';
import type { Storage } from '../native';
import { shapeString } from '../shape';
import { checkSameDevice, checkTensor, tensor, Tensor } from '../tensor';
import { crossEntropy } from './cross-entropy';
import { add, scale } from './elementwise';
import { embedding, gatherRows, scatterRows } from './embedding';
import { concat, reshape, slice } from './layout';
import { linear } from './linear';
import { matmul } from './matmul';
import { logSoftmax } from './softmax';

/** One tail cluster of an adaptive softmax. */
export interface AdaptiveSoftmaxTail {
  /** d -> d_i: a linear weight [d_i, d], or [d, d_i] when projTransposed; omitted: no projection (d_i = d). */
  proj?: Tensor | null;
  /** proj is [d, d_i] and used as x proj (tied with an adaptive input's projection [d, d_i]). */
  projTransposed?: boolean;
  /** The cluster's output weight [V_i, d_i]. */
  weight: Tensor;
  bias?: Tensor | null;
}

export interface AdaptiveSoftmaxWeights {
  /** The head [c_0 + k, d], or its two parts [shortlist [c_0, d], clusters [k, d]] (to tie the shortlist). */
  head: Tensor | [Tensor, Tensor];
  headBias?: Tensor | null;
  /** One per cluster, in cutoff order. */
  tails: AdaptiveSoftmaxTail[];
}

export interface AdaptiveSoftmaxOptions {
  /** c_0 < c_1 < ... < c_{k-1}, without the vocabulary size (PyTorch's convention). */
  cutoffs: number[];
  /** 'mean' (default), 'sum', or 'none' (the negative log-likelihood of each row, target's shape). */
  reduction?: 'mean' | 'sum' | 'none';
  /** Also return log p over the whole vocabulary, [..., V]. */
  logProbs?: boolean;
}

export interface AdaptiveSoftmaxResult {
  loss: Tensor;
  logProbs?: Tensor;
}

/** One cluster of an adaptive input: a table [V_i, d_i] and, when d_i < d, its projection [d, d_i]. */
export interface AdaptiveInputCluster {
  weight: Tensor;
  proj?: Tensor | null;
}

function checkCutoffs(cutoffs: unknown, clusters: number, V: number | null): number[] {
  if (!Array.isArray(cutoffs) || cutoffs.length === 0)
    throw new Error('opts.cutoffs: expected a non-empty array of increasing positive integers');
  cutoffs.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 1 || (i > 0 && c <= cutoffs[i - 1]) || (V !== null && c >= V)) {
      throw new Error(`opts.cutoffs: expected increasing integers in [1, ${V ?? 'V'}), got ${JSON.stringify(cutoffs)}`);
    }
  });
  if (cutoffs.length !== clusters)
    throw new Error(`opts.cutoffs: has ${cutoffs.length} cutoffs but there are ${clusters} clusters`);
  return cutoffs as number[];
}

/** The rows of each cluster (-1: shortlist) and their ids relative to the cluster start. */
function route(ids: Float32Array, bounds: number[]): { rows: number[][]; rel: number[][] } {
  const k = bounds.length - 1;
  const rows: number[][] = Array.from({ length: k }, () => []);
  const rel: number[][] = Array.from({ length: k }, () => []);
  ids.forEach((t, r) => {
    for (let i = k - 1; i >= 0; i--) {
      if (t >= bounds[i]) {
        rows[i].push(r);
        rel[i].push(t - bounds[i]);
        return;
      }
    }
  });
  return { rows, rel };
}

function project(x: Tensor, tail: AdaptiveSoftmaxTail): Tensor {
  if (!tail.proj) return x;
  return tail.projTransposed ? matmul(x, tail.proj) : linear(x, tail.proj);
}

function checkIdsRange(ids: Float32Array, V: number, what: string): void {
  const bad = ids.findIndex((t) => !(Number.isInteger(t) && t >= 0 && t < V));
  if (bad >= 0) throw new Error(`${what}: element ${bad} is ${ids[bad]}; expected an integer in [0, ${V})`);
}

/** The checked shapes of an adaptive softmax call; x is the input as [N, d]. */
interface AdaptiveShapes {
  x: Tensor;
  N: number;
  V: number;
  cutoffs: number[];
  bounds: number[];
  headParts: Tensor[];
}

/** With flat false, x is input itself (ops over the last axis only: no copy into [N, d]). */
function checkAdaptive(
  input: Tensor,
  weights: AdaptiveSoftmaxWeights,
  opts: { cutoffs: number[] },
  target: Tensor | null,
  flat = true,
): AdaptiveShapes {
  checkTensor(input, 'input');
  if (target !== null) checkTensor(target, 'target');
  if (weights === null || typeof weights !== 'object' || !Array.isArray(weights.tails)) {
    throw new Error('weights: expected { head, headBias?, tails: [{ proj?, weight, bias? }] }');
  }
  if (opts === null || typeof opts !== 'object') throw new Error('opts: expected an object with cutoffs');
  if (input.ndim < 1) throw new Error(`input: expected [..., d], got shape ${shapeString(input.shape)}`);
  const d = input.shape[input.ndim - 1];
  const N = input.size / d;
  if (
    target !== null &&
    (target.size !== N || !target.shape.every((s, i) => s === input.shape[i]) || target.ndim !== input.ndim - 1)
  ) {
    throw new Error(
      `target: expected shape ${shapeString(input.shape.slice(0, -1))} (input without its last axis), got ${shapeString(target.shape)}`,
    );
  }
  const k = weights.tails.length;
  const headParts = Array.isArray(weights.head) ? weights.head : [weights.head];
  headParts.forEach((h, i) => checkTensor(h, `weights.head${headParts.length > 1 ? `[${i}]` : ''}`));
  weights.tails.forEach((t, i) => checkTensor(t?.weight, `weights.tails[${i}].weight`));
  const V = opts.cutoffs?.[k - 1] + weights.tails[k - 1]?.weight.shape[0];
  const cutoffs = checkCutoffs(opts.cutoffs, k, Number.isInteger(V) ? V : null);
  const bounds = [...cutoffs, V];
  weights.tails.forEach((t, i) => {
    if (t.weight.ndim !== 2 || t.weight.shape[0] !== bounds[i + 1] - bounds[i]) {
      throw new Error(
        `weights.tails[${i}].weight: expected [${bounds[i + 1] - bounds[i]}, d_${i}] (cluster [${bounds[i]}, ${bounds[i + 1]})), got ${shapeString(t.weight.shape)}`,
      );
    }
  });
  checkSameDevice({
    input,
    ...(target !== null ? { target } : {}),
    ...Object.fromEntries(headParts.map((h, i) => [`weights.head[${i}]`, h])),
  });
  const rows = headParts.reduce((n, h) => n + (h.ndim === 2 ? h.shape[0] : NaN), 0);
  if (headParts.some((h) => h.ndim !== 2 || h.shape[1] !== d) || rows !== cutoffs[0] + k) {
    const got = headParts.map((h) => shapeString(h.shape)).join(' + ');
    throw new Error(
      `weights.head: expected [${cutoffs[0] + k}, ${d}] (shortlist ${cutoffs[0]} + ${k} clusters), got ${got}`,
    );
  }
  return { x: input.ndim === 2 || !flat ? input : reshape(input, [N, d]), N, V, cutoffs, bounds, headParts };
}

/**
 * The head's logits [N, c_0 + k]. A head given in parts is joined where it is cheaper: the
 * weights ([c_0 + k, d], once) when there are at least d rows, else the parts' logits (decoding:
 * a token at a time would copy the whole shortlist table per token).
 */
function headLogits(s: AdaptiveShapes, headBias: Tensor | null): Tensor {
  const { x, headParts } = s;
  if (headParts.length === 1) return linear(x, headParts[0], headBias);
  if (s.N >= x.shape[x.ndim - 1]) return linear(x, concat(headParts, 0), headBias);
  let at = 0;
  return concat(
    headParts.map((h) => {
      const rows = h.shape[0];
      at += rows;
      return linear(x, h, headBias === null ? null : slice(headBias, 0, at - rows, at));
    }),
    -1,
  );
}

/** log p over the whole vocabulary [N, V] from the head's logits (see the header). */
function logProbsOf(s: AdaptiveShapes, logits: Tensor, weights: AdaptiveSoftmaxWeights): Tensor {
  const c0 = s.cutoffs[0];
  const headLP = logSoftmax(logits);
  const parts = [slice(headLP, -1, 0, c0)];
  weights.tails.forEach((tail, i) => {
    const tailLP = logSoftmax(linear(project(s.x, tail), tail.weight, tail.bias ?? null));
    parts.push(add(tailLP, slice(headLP, -1, c0 + i, c0 + i + 1)));
  });
  return concat(parts, -1);
}

/** The adaptive softmax's negative log-likelihood of target, and optionally all log-probabilities. */
export function adaptiveLogSoftmaxWithLoss(
  input: Tensor,
  target: Tensor,
  weights: AdaptiveSoftmaxWeights,
  opts: AdaptiveSoftmaxOptions,
): AdaptiveSoftmaxResult {
  const s = checkAdaptive(input, weights, opts, target);
  const reduction = opts.reduction ?? 'mean';
  if (!['mean', 'sum', 'none'].includes(reduction))
    throw new Error(`opts.reduction: expected 'mean', 'sum' or 'none', got ${String(reduction)}`);
  const { x, N, V, cutoffs, bounds } = s;
  const logits = headLogits(s, weights.headBias ?? null);

  const ids = target.toFloat32Array();
  checkIdsRange(ids, V, 'target');
  const { rows, rel } = route(ids, bounds);
  const headTarget = ids.map((t) => (t < cutoffs[0] ? t : 0));
  rows.forEach((rs, i) => rs.forEach((r) => (headTarget[r] = cutoffs[0] + i)));
  const device = input.device;
  const perRow = reduction === 'none';
  let loss = crossEntropy(logits, tensor(headTarget, [N], { device }), { reduction: perRow ? 'none' : 'sum' });
  rows.forEach((rs, i) => {
    if (rs.length === 0) return;
    const index = tensor(rs, [rs.length], { device });
    const tail = weights.tails[i];
    const tailLogits = linear(project(gatherRows(x, index), tail), tail.weight, tail.bias ?? null);
    const nll = crossEntropy(tailLogits, tensor(rel[i], [rs.length], { device }), {
      reduction: perRow ? 'none' : 'sum',
    });
    loss = add(loss, perRow ? scatterRows(nll, index, N) : nll);
  });
  if (reduction === 'mean') loss = scale(loss, 1 / N);
  else if (perRow && target.ndim !== 1) loss = reshape(loss, target.shape);
  if (!opts.logProbs) return { loss };
  const all = logProbsOf(s, logits, weights);
  return { loss, logProbs: input.ndim === 2 ? all : reshape(all, [...input.shape.slice(0, -1), V]) };
}

/** The native one-call log-probabilities (csrc/binding/adaptive_log_probs.cpp). */
interface AdaptiveNative {
  adaptiveLogProbs(
    x: Storage,
    dims: number[],
    cutoffs: number[],
    head: Storage[],
    headBias: Storage | null,
    tails: [Storage, Storage | null, Storage | null, number, boolean][],
  ): Storage;
}

/**
 * log p over the whole vocabulary [..., V] of input [..., d] (no target: what sampling reads).
 * Without grad (grad disabled, or no input or weight requiring it) one native call computes it
 * (csrc/binding/adaptive_log_probs.cpp: the same kernels, none of the dozen intermediate tensors
 * that cost a decoding step most of its output layer); with grad, the composed ops (autograd).
 * opts.composed forces the composed ops (the reference the native call is tested against).
 */
export function adaptiveLogProbs(
  input: Tensor,
  weights: AdaptiveSoftmaxWeights,
  opts: { cutoffs: number[]; composed?: boolean },
): Tensor {
  // every op of logProbsOf works over the last axis, so input [..., d] keeps its leading axes
  const s = checkAdaptive(input, weights, opts, null, input.ndim < 2);
  const named: Record<string, Tensor> = { input };
  s.headParts.forEach((h, i) => (named[`weights.head[${i}]`] = h));
  if (weights.headBias) named['weights.headBias'] = weights.headBias;
  weights.tails.forEach((t, i) => {
    named[`weights.tails[${i}].weight`] = t.weight;
    if (t.proj) named[`weights.tails[${i}].proj`] = t.proj;
    if (t.bias) named[`weights.tails[${i}].bias`] = t.bias;
  });
  const needsGrad = isGradEnabled() && Object.values(named).some((t) => t.requiresGrad);
  if (opts.composed === true || needsGrad) {
    const all = logProbsOf(s, headLogits(s, weights.headBias ?? null), weights);
    return input.ndim >= 2 ? all : reshape(all, [s.V]);
  }
  Object.entries(named).forEach(([what, t]) => checkTensor(t, what));
  checkSameDevice(named);
  const d = input.shape[input.ndim - 1];
  const want = (t: Tensor, shape: number[], what: string) => {
    if (t.ndim !== shape.length || t.shape.some((n, j) => n !== shape[j]))
      throw new Error(`${what}: expected ${shapeString(shape)}, got ${shapeString(t.shape)}`);
  };
  if (weights.headBias) want(weights.headBias, [s.cutoffs[0] + weights.tails.length], 'weights.headBias');
  const tails = weights.tails.map((t, i): [Storage, Storage | null, Storage | null, number, boolean] => {
    const [rows, di] = t.weight.shape;
    const transposed = t.projTransposed === true;
    if (t.proj) want(t.proj, transposed ? [d, di] : [di, d], `weights.tails[${i}].proj`);
    else if (di !== d)
      throw new Error(
        `weights.tails[${i}].weight: expected [${rows}, ${d}] without a projection, got ${shapeString(t.weight.shape)}`,
      );
    if (t.bias) want(t.bias, [rows], `weights.tails[${i}].bias`);
    return [
      t.weight.storage(`weights.tails[${i}].weight`),
      t.proj ? t.proj.storage(`weights.tails[${i}].proj`) : null,
      t.bias ? t.bias.storage(`weights.tails[${i}].bias`) : null,
      di,
      transposed,
    ];
  });
  const native = input.backend as unknown as AdaptiveNative;
  const y = native.adaptiveLogProbs(
    input.storage('input'),
    [s.N, d, s.V],
    s.cutoffs,
    s.headParts.map((h, i) => h.storage(`weights.head[${i}]`)),
    weights.headBias ? weights.headBias.storage('weights.headBias') : null,
    tails,
  );
  return new Tensor(y, input.ndim >= 2 ? [...input.shape.slice(0, -1), s.V] : [s.V], input.device);
}

/** Adaptive input embeddings of ids [...] -> [..., d]: cluster i looks up clusters[i].weight and projects to d. */
export function adaptiveInput(ids: Tensor, clusters: AdaptiveInputCluster[], cutoffs: number[]): Tensor {
  checkTensor(ids, 'ids');
  if (!Array.isArray(clusters) || clusters.length < 2)
    throw new Error('clusters: expected one { weight, proj? } per cluster, shortlist first (at least 2)');
  clusters.forEach((c, i) => checkTensor(c?.weight, `clusters[${i}].weight`));
  const last = clusters.length - 1;
  const V = cutoffs?.[last - 1] + clusters[last].weight.shape[0];
  checkCutoffs(cutoffs, last, Number.isInteger(V) ? V : null);
  const bounds = [0, ...cutoffs, V];
  const dims = clusters.map((c, i) => {
    if (c.weight.ndim !== 2 || c.weight.shape[0] !== bounds[i + 1] - bounds[i]) {
      throw new Error(
        `clusters[${i}].weight: expected [${bounds[i + 1] - bounds[i]}, d_${i}], got ${shapeString(c.weight.shape)}`,
      );
    }
    return c.proj ? checkTensor(c.proj, `clusters[${i}].proj`).shape[0] : c.weight.shape[1];
  });
  if (dims.some((dd) => dd !== dims[0]))
    throw new Error(`clusters: every cluster must project to the same d, got ${JSON.stringify(dims)}`);
  const values = ids.toFloat32Array();
  checkIdsRange(values, V, 'ids');
  const { rows, rel } = route(values, bounds);
  const N = ids.size;
  const device = ids.device;
  let out: Tensor | null = null;
  rows.forEach((rs, i) => {
    if (rs.length === 0) return;
    const index = rs.length === N ? null : tensor(rs, [rs.length], { device });
    // a cluster holding every row looks them up in ids' shape: [..., d] without a reshape
    const e = embedding(tensor(rel[i], index === null ? ids.shape : [rs.length], { device }), clusters[i].weight);
    const proj = clusters[i].proj;
    const rowsOut = proj ? linear(e, proj) : e;
    // a cluster holding every row (one token, as in decoding) already has them in order
    const part = index === null ? rowsOut : scatterRows(rowsOut, index, N);
    out = out === null ? part : add(out, part);
  });
  const all = out as unknown as Tensor;
  return all.ndim === ids.ndim + 1 ? all : reshape(all, [...ids.shape, dims[0]]);
}
