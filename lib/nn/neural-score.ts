// NeuralScoreNet: the learned pieces of a Neural Attention layer (DiGiugno & Mahmood, 2025, as
// the authors' NeuralAttention.py): projections of every head's q and k to F features (shared by
// the heads, with bias) and the score network MLP([q'_i; k'_j]) = Linear(2F -> F), ReLU,
// Linear(F -> F/2), ReLU, Linear(F/2 -> 1). forward(q, k, v) runs the fused ff.neuralAttention;
// scores(q, k) materialises the [B, H, Nq, Nk] scores with ordinary ops (no grad; for attention
// maps and statistics).
// Init: the weights as PyTorch's default (the authors' code), the biases 0 but the second
// layer's, U(0, 1/sqrt(F)). With the authors' biases, U(+-1/sqrt(fan-in)), a first-layer ReLU is
// on or off for every pair alike wherever q and k are small next to the biases (the language
// model's N(0, 0.02) qkv projection makes them so); in brown-small every one was off, the layer a
// uniform average whose network never received a gradient. With no bias before them the first
// layer's ReLUs split the pairs at any scale of q and k, and the positive second-layer bias keeps
// its units on (with F = 2 it has one unit, which weights of one sign would otherwise leave off).
import { noGrad } from '../autograd/grad-mode';
import { add, relu } from '../ops/elementwise';
import { reshape, slice } from '../ops/layout';
import { linear } from '../ops/linear';
import { neuralAttention, NeuralAttentionParams, NEURAL_MAX_HIDDEN } from '../ops/neural-attention';
import type { Device } from '../native';
import type { AttentionKind } from './attention-kind';
import type { Generator } from '../random';
import type { Tensor } from '../tensor';
import { uniform_, zeros_ } from './init';
import { Linear } from './linear';
import { Module } from './module';

/**
 * The authors' default projection width for a head dimension: d_head / 32, at least 2 (and at most
 * 8, the fused kernels').
 */
export function defaultNeuralDim(headDim: number): number {
  return Math.min(NEURAL_MAX_HIDDEN, Math.max(2, Math.floor(headDim / 32)));
}

export function checkNeuralDim(F: unknown, what: string): number {
  if (typeof F !== 'number' || !Number.isInteger(F) || F < 2 || F > NEURAL_MAX_HIDDEN) {
    throw new Error(
      `${what}: expected an integer in [2, ${NEURAL_MAX_HIDDEN}] (the projection width d'; the network's second layer has d' / 2 units), got ${String(F)}`,
    );
  }
  return F;
}

export class NeuralScoreNet extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly fc3: Linear;

  constructor(
    readonly headDim: number,
    readonly dim: number,
    opts: { device?: Device; generator?: Generator } = {},
  ) {
    super();
    checkNeuralDim(dim, 'neuralDim');
    this.qProj = this.registerModule('qProj', new Linear(headDim, dim, opts));
    this.kProj = this.registerModule('kProj', new Linear(headDim, dim, opts));
    this.fc1 = this.registerModule('fc1', new Linear(2 * dim, dim, opts));
    this.fc2 = this.registerModule('fc2', new Linear(dim, Math.floor(dim / 2), opts));
    this.fc3 = this.registerModule('fc3', new Linear(Math.floor(dim / 2), 1, opts));
    for (const l of [this.qProj, this.kProj, this.fc1, this.fc3]) zeros_(l.bias as Tensor);
    uniform_(this.fc2.bias as Tensor, 0, 1 / Math.sqrt(dim), { generator: opts.generator });
  }

  /** The network's weights as ff.neuralAttention takes them. */
  weights(): NeuralAttentionParams {
    const bias = (l: Linear) => l.bias as Tensor;
    return {
      w1: this.fc1.weight,
      b1: bias(this.fc1),
      w2: this.fc2.weight,
      b2: bias(this.fc2),
      w3: this.fc3.weight,
      b3: bias(this.fc3),
    };
  }

  /** Neural Attention of heads q, k [B, H, N, headDim] and v [B, H, N, Dv]: [B, H, Nq, Dv]. */
  forward(q: Tensor, k: Tensor, v: Tensor, causal: boolean): Tensor {
    return neuralAttention(this.qProj.forward(q), this.kProj.forward(k), v, this.weights(), { causal });
  }

  /** The scores s_ij [B, H, Nq, Nk] of heads q [B, H, Nq, headDim], k [B, H, Nk, headDim], materialised (no grad). */
  scores(q: Tensor, k: Tensor): Tensor {
    return noGrad(() => {
      const [B, H, Nq] = q.shape;
      const Nk = k.shape[2];
      const F = this.dim;
      const w1 = this.fc1.weight;
      // fc1([q'; k']) = (W1q q' + b1) + W1k k', broadcast over the pairs: [B, H, Nq, Nk, F].
      const a = reshape(linear(this.qProj.forward(q), slice(w1, 1, 0, F), this.fc1.bias), [B, H, Nq, 1, F]);
      const c = reshape(linear(this.kProj.forward(k), slice(w1, 1, F, 2 * F)), [B, H, 1, Nk, F]);
      const h = relu(this.fc2.forward(relu(add(a, c))));
      return reshape(this.fc3.forward(h), [B, H, Nq, Nk]);
    });
  }
}

/**
 * The attention of block i of a model configured with `attention`: with 'neural', the blocks in
 * neuralLayers (the first alone by default, as the authors) are 'neural' and the others 'dot'.
 */
export function blockAttention(
  attention: AttentionKind,
  neuralLayers: readonly number[] | undefined,
  i: number,
): AttentionKind {
  if (attention !== 'neural') return attention;
  return (neuralLayers ?? [0]).includes(i) ? 'neural' : 'dot';
}

/** Checks a model configuration's neuralLayers: distinct block indices in [0, layers). */
export function checkNeuralLayers(neuralLayers: unknown, layers: number, what: string): void {
  if (neuralLayers === undefined) return;
  const ok =
    Array.isArray(neuralLayers) &&
    neuralLayers.length > 0 &&
    new Set(neuralLayers).size === neuralLayers.length &&
    neuralLayers.every((i) => Number.isInteger(i) && i >= 0 && i < layers);
  if (!ok)
    throw new Error(
      `${what}: expected distinct block indices in [0, ${layers}), at least one, got ${JSON.stringify(neuralLayers)}`,
    );
}

/**
 * The Linear layers of the blocks' score networks (which keep PyTorch's init where a model
 * re-initialises its Linears).
 */
export function scoreNetModules(blocks: Iterable<{ attn: { score: NeuralScoreNet | null } }>): Set<Module> {
  const out = new Set<Module>();
  for (const b of blocks) for (const m of b.attn.score?.modules() ?? []) out.add(m);
  return out;
}
