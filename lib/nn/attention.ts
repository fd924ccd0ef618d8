// MultiHeadAttention with `attention: 'fourier' | 'dot'`: a fused qkv projection, the fused
// attention op of either kind, and an output projection.
//   'fourier'  ff.fourierAttention with a learnable radius R: one for the layer ('shared', R [1]),
//              one per head ('head', [H, 1]), one per feature of a head ('feature', [Dh], the
//              paper's reference code) or per head and feature ('head-feature', [H, Dh]),
//              initialised to radiusInit (the paper: 2 for its LM, 1 for its ViT). With
//              features: F < Dh the kernel reads only the first F features of each head's q and
//              k (R 'feature' is then [F]); the values keep all Dh. features: 1 with one shared
//              R is the kernel the paper's reference CUDA code computes in effect (it reads
//              R[d] for every d of a one-element R; where the memory after R is zero,
//              sinc(0) = 1 for d >= 1).
//   'dot'      ff.dotProductAttention, softmax(q k^T / sqrt(Dh)) v.
// x [B, N, C] -> [B, N, C], C = numHeads * Dh.
// attentionMap(x) materialises the weights the fused ops apply, [B, H, N, N] without grad (for
// analysis: the paper's head redundancy): 'fourier' K_ij / (sum_j K_ij + eps) with K from
// ff.fourierMetric, or with stable: true exp(log K_ij - log sum_j K_ij) with log K summed from
// per-feature log sinc^2 terms (no underflow for any Dh); 'dot' softmax(q k^T / sqrt(Dh)).
// Causal layers mask j > i before normalising.
import { noGrad } from '../autograd/grad-mode';
import { dotProductAttention } from '../ops/dot-attention';
import { add, addScalar, div, log, mul, scale } from '../ops/elementwise';
import { fourierAttention, resolveFourierOptions } from '../ops/fourier-attention';
import { fourierMetric } from '../ops/fourier-metric';
import { permute, reshape, slice } from '../ops/layout';
import { matmul } from '../ops/matmul';
import { sum } from '../ops/reduce';
import { softmax } from '../ops/softmax';
import { checkDevice, Device } from '../native';
import { checkOptions, describe, optBoolean, optChoice } from '../options';
import { checkGenerator, Generator } from '../random';
import { tidy } from '../scope';
import { shapeString } from '../shape';
import { checkTensor, full, tensor, Tensor } from '../tensor';
import { AttentionStatistics, dotStatistics, fourierStatistics } from './attention-statistics';
import type { LayerKVCache } from './kv-cache';
import { checkFeatures, Linear } from './linear';
import { Module } from './module';

export type AttentionKind = 'fourier' | 'dot';
export type RadiusSharing = 'shared' | 'head' | 'feature' | 'head-feature';

/** Fourier attention's kernel settings beyond R, as model configurations and the CLI carry them. */
export interface FourierKernelSettings {
  /** The exponent p (4 by default, the paper's). */
  power?: number;
  /** The normaliser's eps (1e-6 by default); unused when stable. */
  eps?: number;
  /** The log-domain estimate: eps = 0, no underflow. */
  stable?: boolean;
  /** The kernel reads the first F features of each head (all by default). */
  features?: number;
}

export interface MultiHeadAttentionOptions {
  /** 'fourier' (default) or 'dot'. */
  attention?: AttentionKind;
  /** Row i attends to positions j <= i only (language models). */
  causal?: boolean;
  /** Whether the qkv projection has a bias (true by default; DeiT: true). */
  qkvBias?: boolean;
  /** Whether the output projection has a bias (true by default; DeiT: true; the paper's LM: false). */
  projBias?: boolean;
  /** How many radii R the layer learns ('feature' by default). */
  radius?: RadiusSharing;
  /** R's initial value, > 0 (2 by default, the paper's LM; its ViT uses 1). */
  radiusInit?: number;
  /** Fourier attention's exponent p (4 by default), normaliser eps (1e-6), log-domain mode. */
  power?: number;
  eps?: number;
  stable?: boolean;
  /** Fourier attention's kernel over the first F features of each head (all Dh by default). */
  features?: number;
  device?: Device;
  generator?: Generator;
}

/** The option names of MultiHeadAttention (TransformerBlock passes them on). */
export const MULTI_HEAD_ATTENTION_OPTIONS = [
  'attention', 'causal', 'qkvBias', 'projBias', 'radius', 'radiusInit', 'power', 'eps', 'stable', 'features', 'device', 'generator',
] as const;

/**
 * Checks MultiHeadAttention's options (before any tensor is made, so a bad option leaks
 * nothing) and fills in the defaults.
 */
export function resolveAttentionOptions(options: MultiHeadAttentionOptions | undefined) {
  const opts = checkOptions(options, MULTI_HEAD_ATTENTION_OPTIONS);
  const radiusInit = opts.radiusInit === undefined ? 2 : opts.radiusInit;
  if (typeof radiusInit !== 'number' || !Number.isFinite(radiusInit) || radiusInit <= 0) {
    throw new Error(`opts.radiusInit: expected a finite number > 0, got ${describe(radiusInit)}`);
  }
  const fourier = { power: opts.power, eps: opts.eps, stable: opts.stable };
  resolveFourierOptions(fourier);
  if (opts.device !== undefined) checkDevice(opts.device, 'opts.device');
  checkGenerator(opts.generator, 'opts.generator');
  return {
    attention: optChoice(opts.attention, 'opts.attention', ['fourier', 'dot'] as const, 'fourier'),
    causal: optBoolean(opts.causal, 'opts.causal', false),
    qkvBias: optBoolean(opts.qkvBias, 'opts.qkvBias', true),
    projBias: optBoolean(opts.projBias, 'opts.projBias', true),
    features: opts.features,
    radius: optChoice(opts.radius, 'opts.radius', ['shared', 'head', 'feature', 'head-feature'] as const, 'feature'),
    radiusInit,
    fourier,
    device: opts.device,
    generator: opts.generator,
  };
}

export class MultiHeadAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  /** The learnable radius of 'fourier' attention (null for 'dot'). */
  readonly R: Tensor | null;
  readonly headDim: number;
  readonly attention: AttentionKind;
  readonly causal: boolean;
  /** The features of each head that Fourier attention's kernel reads (headDim unless opts.features). */
  readonly kernelFeatures: number;
  private readonly fourier: { power?: number; eps?: number; stable?: boolean };

  constructor(readonly dModel: number, readonly numHeads: number, options?: MultiHeadAttentionOptions) {
    super();
    checkFeatures(dModel, 'dModel');
    checkFeatures(numHeads, 'numHeads');
    if (dModel % numHeads !== 0) throw new Error(`numHeads: ${numHeads} does not divide dModel ${dModel}`);
    const o = resolveAttentionOptions(options);
    this.headDim = dModel / numHeads;
    this.attention = o.attention;
    this.causal = o.causal;
    this.fourier = o.fourier;
    const F = o.features ?? this.headDim;
    if (!Number.isInteger(F) || F < 1 || F > this.headDim) {
      throw new Error(`opts.features: expected an integer in [1, ${this.headDim}] (the head dimension), got ${describe(o.features)}`);
    }
    this.kernelFeatures = F;
    const layer = { device: o.device, generator: o.generator };
    this.qkv = this.registerModule('qkv', new Linear(dModel, 3 * dModel, { ...layer, bias: o.qkvBias }));
    this.proj = this.registerModule('proj', new Linear(dModel, dModel, { ...layer, bias: o.projBias }));
    this.R = this.attention === 'fourier'
      ? this.registerParameter('R', full(radiusShape(o.radius, numHeads, F), o.radiusInit, { device: o.device }))
      : null;
  }

  /** q, k, v [B, H, N, Dh] of x [B, N, dModel]. */
  private heads(x: Tensor): Tensor[] {
    checkTensor(x, 'x');
    if (x.ndim !== 3 || x.shape[2] !== this.dModel) {
      throw new Error(`x: expected shape [B, N, ${this.dModel}], got ${shapeString(x.shape)}`);
    }
    const [B, N] = x.shape;
    const H = this.numHeads, Dh = this.headDim;
    // [B, N, 3C] -> [3, B, H, N, Dh], then q, k, v [B, H, N, Dh]
    const heads = permute(reshape(this.qkv.forward(x), [B, N, 3, H, Dh]), [2, 0, 3, 1, 4]);
    return [0, 1, 2].map((i) => reshape(slice(heads, 0, i, i + 1), [B, H, N, Dh]));
  }

  /** The first kernelFeatures features of q or k [B, H, N, Dh] (t itself when that is all of them). */
  private kernelInput(t: Tensor): Tensor {
    return this.kernelFeatures === this.headDim ? t : slice(t, 3, 0, this.kernelFeatures);
  }

  /**
   * x [B, N, dModel] -> [B, N, dModel]. With a cache (incremental decoding, lib/nn/kv-cache.ts),
   * x holds the tokens after those cached: their keys and values join the cache and the queries
   * attend to every cached key. Empty cache: the layer's own pass over x (causal for a causal
   * layer). Otherwise a causal layer takes one token at a time (N = 1), which sees every cached
   * key and itself: the fused op without a mask, Nq = 1 against Nk = n + 1.
   */
  forward(x: Tensor, cache?: LayerKVCache): Tensor {
    const [q, k, v] = this.heads(x);
    const [B, N] = x.shape;
    const past = cache?.length ?? 0;
    if (this.causal && past > 0 && N !== 1) throw new Error(`x: a causal layer with ${past} cached tokens takes one new token at a time, got ${N}`);
    const [keys, values] = cache === undefined ? [k, v] : cache.update(k, v);
    const causal = this.causal && past === 0;
    const h = this.R !== null
      ? fourierAttention(this.kernelInput(q), this.kernelInput(keys), values, this.R, { ...this.fourier, causal })
      : dotProductAttention(q, keys, values, { causal });
    return this.proj.forward(reshape(permute(h, [0, 2, 1, 3]), [B, N, this.dModel]));
  }

  /**
   * What the layer's attention does with its rows for input x [B, N, dModel] (row sums against
   * eps, row mass, entropy, largest weight, R; lib/nn/attention-statistics.ts), without grad.
   */
  attentionStatistics(x: Tensor): AttentionStatistics {
    return noGrad(() => tidy(() => {
      const [q, k] = this.heads(x);
      if (this.R === null) return dotStatistics(q, k, this.causal);
      return fourierStatistics(this.kernelInput(q), this.kernelInput(k), this.R, {
        power: this.fourier.power ?? 4, eps: this.fourier.eps ?? 1e-6, stable: this.fourier.stable ?? false, causal: this.causal,
      });
    }));
  }

  /**
   * The attention weights [B, H, N, N] that forward(x) applies to the values (row i: the weights
   * of keys j; each row sums to 1, up to eps for non-stable 'fourier'), without grad.
   */
  attentionMap(x: Tensor): Tensor {
    return noGrad(() => tidy(() => {
      const [qh, kh] = this.heads(x);
      const N = qh.shape[2];
      if (this.R === null) {
        const scores = scale(matmul(qh, kh, { transB: true }), 1 / Math.sqrt(this.headDim));
        return softmax(this.causal ? add(scores, causalMask(N, x.device, 'log')) : scores);
      }
      const [q, k] = [this.kernelInput(qh), this.kernelInput(kh)];
      const power = this.fourier.power ?? 4;
      if (this.fourier.stable === true) {
        // log K = (p / 2) sum_d log sinc(R_d (q_d - k_d))^2; softmax over j is K / sum_j K.
        let logK: Tensor | null = null;
        for (let d = 0; d < this.kernelFeatures; d++) {
          const term = log(fourierMetric(slice(q, 3, d, d + 1), slice(k, 3, d, d + 1), radiusOfFeature(this.R, d), { power: 2 }));
          logK = logK === null ? term : add(logK, term);
        }
        const scaled = scale(logK as Tensor, power / 2);
        return softmax(this.causal ? add(scaled, causalMask(N, x.device, 'log')) : scaled);
      }
      const K = fourierMetric(q, k, this.R, { power });
      const visible = this.causal ? mul(K, causalMask(N, x.device, 'linear')) : K;
      return div(visible, addScalar(sum(visible, -1, true), this.fourier.eps ?? 1e-6));
    }));
  }
}

/** [N, N] with j <= i visible: 1 and 0 ('linear', a factor) or 0 and -Infinity ('log', an addend). */
function causalMask(N: number, device: Device, kind: 'linear' | 'log'): Tensor {
  const m = new Float32Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) m[i * N + j] = kind === 'linear' ? (j <= i ? 1 : 0) : (j <= i ? 0 : -Infinity);
  }
  return tensor(m, [N, N], { device });
}

/** The radius of feature d of every head: R [1] or [H, 1] itself, R [Dh] -> [1], R [H, Dh] -> [H, 1]. */
function radiusOfFeature(R: Tensor, d: number): Tensor {
  const last = R.shape[R.ndim - 1];
  return last === 1 ? R : slice(R, R.ndim - 1, d, d + 1);
}

function radiusShape(sharing: RadiusSharing, H: number, Dh: number): number[] {
  switch (sharing) {
    case 'shared': return [1];
    case 'head': return [H, 1];
    case 'feature': return [Dh];
    case 'head-feature': return [H, Dh];
  }
}
