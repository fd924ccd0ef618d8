// MultiHeadAttention with `attention: 'fourier' | 'dot' | 'neural' | 'performer' | 'flt'`: a fused
// qkv projection, the fused attention op of that kind, and an output projection.
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
//   'neural'   ff.neuralAttention (Neural Attention): softmax over j of a small network's score of
//              each pair, MLP([P_q q_i; P_k k_j]), times v, the projections P_q, P_k to neuralDim
//              features (d_head / 32 by default, at least 2) shared by the heads
//              (lib/nn/neural-score.ts).
//   'performer' ff.performerAttention: FAVOR+ linear attention estimating 'dot' with randomFeatures
//              orthogonal random features (lib/nn/favor-features.ts; redrawn every redrawFeatures
//              training forwards, never by default).
//   'flt'      FourierLearner-Transformer: 'performer' on q and k extended by FLT's learned spectral
//              relative positional encoding (lib/nn/spectral-rpe.ts): token positions 0, 1, ...
//              (text) or with rpeGrid the patches' (row, column) (images; rpePrefixTokens, e.g. a
//              class token, get none).
// x [B, N, C] -> [B, N, C], C = numHeads * Dh.
// attentionMap(x) materialises the weights the fused ops apply, [B, H, N, N] without grad (for
// analysis: the paper's head redundancy; 'performer' and 'flt': the FAVOR+ weights, computed on
// the host by lib/nn/favor-weights.ts): 'fourier' K_ij / (sum_j K_ij + eps) with K from
// ff.fourierMetric, or with stable: true exp(log K_ij - log sum_j K_ij) with log K summed from
// per-feature log sinc^2 terms (no underflow for any Dh); 'dot' softmax(q k^T / sqrt(Dh));
// 'neural' the softmax of the network's scores, materialised.
// Causal layers mask j > i before normalising.
import { noGrad } from '../autograd/grad-mode';
import { dotProductAttention } from '../ops/dot-attention';
import { performerAttention } from '../ops/performer-attention';
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
import { ATTENTION_KINDS, AttentionKind } from './attention-kind';
import {
  AttentionStatistics,
  dotStatistics,
  favorStatistics,
  fourierStatistics,
  softmaxStatistics,
} from './attention-statistics';
import { checkRandomFeatures, checkRedraw, FavorFeatures } from './favor-features';
import { favorWeightRows } from './favor-weights';
import type { LayerKVCache } from './kv-cache';
import { checkFeatures, Linear } from './linear';
import { Module } from './module';
import { checkNeuralDim, defaultNeuralDim, NeuralScoreNet } from './neural-score';
import { resolveSpectralRPEOptions, SpectralRPE } from './spectral-rpe';

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

/** Neural Attention's settings in a model configuration (as the CLI carries them). */
export interface NeuralSettings {
  /** The projection width d' (d_head / 32 by default, at least 2; at most 8). */
  neuralDim?: number;
  /** The blocks with Neural Attention ([0], the first, by default; the others use dot-product attention). */
  neuralLayers?: number[];
}

/** Performer and FLT settings, as model configurations and the CLI carry them. */
export interface FavorSettings {
  /** The random features M of FAVOR+ (64 by default). */
  randomFeatures?: number;
  /** Redraw the random features every n training forwards (0, the default: never). */
  redrawFeatures?: number;
  /** 'flt': frequencies m (64) and Gaussian components (25) of the learned spectrum. */
  rpeFrequencies?: number;
  rpeComponents?: number;
}

export interface MultiHeadAttentionOptions {
  /** 'fourier' (default), 'dot', 'neural', 'performer' or 'flt'. */
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
  /** Neural attention's projection width d' (Dh / 32 by default, at least 2; at most 8). */
  neuralDim?: number;
  /** 'performer', 'flt': the random features M (64 by default). */
  randomFeatures?: number;
  /** 'performer', 'flt': redraw the random features every n training forwards (0, the default: never). */
  redrawFeatures?: number;
  /** 'flt': the frequencies m (64) and Gaussian components (25) of the learned spectrum. */
  rpeFrequencies?: number;
  rpeComponents?: number;
  /** 'flt' on images: the patch grid [rows, columns] (text positions when omitted). */
  rpeGrid?: [number, number];
  /** 'flt': leading tokens without a position (a class token: 1; 0 by default). */
  rpePrefixTokens?: number;
  device?: Device;
  generator?: Generator;
}

/** The option names of MultiHeadAttention (TransformerBlock passes them on). */
export const MULTI_HEAD_ATTENTION_OPTIONS = [
  'attention',
  'causal',
  'qkvBias',
  'projBias',
  'radius',
  'radiusInit',
  'power',
  'eps',
  'stable',
  'features',
  'neuralDim',
  'randomFeatures',
  'redrawFeatures',
  'rpeFrequencies',
  'rpeComponents',
  'rpeGrid',
  'rpePrefixTokens',
  'device',
  'generator',
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
    attention: optChoice(opts.attention, 'opts.attention', ATTENTION_KINDS, 'fourier'),
    causal: optBoolean(opts.causal, 'opts.causal', false),
    qkvBias: optBoolean(opts.qkvBias, 'opts.qkvBias', true),
    projBias: optBoolean(opts.projBias, 'opts.projBias', true),
    features: opts.features,
    neuralDim: opts.neuralDim === undefined ? undefined : checkNeuralDim(opts.neuralDim, 'opts.neuralDim'),
    randomFeatures: checkRandomFeatures(
      opts.randomFeatures === undefined ? 64 : opts.randomFeatures,
      'opts.randomFeatures',
    ),
    redrawFeatures: checkRedraw(opts.redrawFeatures === undefined ? 0 : opts.redrawFeatures, 'opts.redrawFeatures'),
    rpe: resolveSpectralRPEOptions(
      {
        frequencies: opts.rpeFrequencies,
        components: opts.rpeComponents,
        grid: opts.rpeGrid,
        prefixTokens: opts.rpePrefixTokens,
      },
      (key) => `opts.rpe${key[0].toUpperCase()}${key.slice(1)}`,
    ),
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
  /** The learnable radius of 'fourier' attention (null otherwise). */
  readonly R: Tensor | null;
  /** The projections and score network of 'neural' attention (null otherwise). */
  readonly score: NeuralScoreNet | null;
  /** 'performer' and 'flt': the random projection (null for the other kinds). */
  readonly favor: FavorFeatures | null = null;
  /** 'flt': the learned spectral RPE (null for the other kinds). */
  readonly rpe: SpectralRPE | null = null;
  readonly headDim: number;
  readonly attention: AttentionKind;
  readonly causal: boolean;
  /** The features of each head that Fourier attention's kernel reads (headDim unless opts.features). */
  readonly kernelFeatures: number;
  private readonly fourier: { power?: number; eps?: number; stable?: boolean };

  constructor(
    readonly dModel: number,
    readonly numHeads: number,
    options?: MultiHeadAttentionOptions,
  ) {
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
      throw new Error(
        `opts.features: expected an integer in [1, ${this.headDim}] (the head dimension), got ${describe(o.features)}`,
      );
    }
    this.kernelFeatures = F;
    const layer = { device: o.device, generator: o.generator };
    this.qkv = this.registerModule('qkv', new Linear(dModel, 3 * dModel, { ...layer, bias: o.qkvBias }));
    this.proj = this.registerModule('proj', new Linear(dModel, dModel, { ...layer, bias: o.projBias }));
    this.R =
      this.attention === 'fourier'
        ? this.registerParameter('R', full(radiusShape(o.radius, numHeads, F), o.radiusInit, { device: o.device }))
        : null;
    this.score =
      this.attention === 'neural'
        ? this.registerModule(
            'score',
            new NeuralScoreNet(this.headDim, o.neuralDim ?? defaultNeuralDim(this.headDim), layer),
          )
        : null;
    if (this.attention === 'flt')
      this.rpe = this.registerModule('rpe', new SpectralRPE(numHeads, this.headDim, { ...o.rpe, ...layer }));
    if (this.attention === 'performer' || this.attention === 'flt') {
      const dim = this.headDim + (this.rpe === null ? 0 : 2 * this.rpe.numFrequencies);
      this.favor = this.registerModule(
        'favor',
        new FavorFeatures(dim, { features: o.randomFeatures, redraw: o.redrawFeatures, ...layer }),
      );
    }
  }

  /** q, k, v [B, H, N, Dh] of x [B, N, dModel]. */
  private heads(x: Tensor): Tensor[] {
    checkTensor(x, 'x');
    if (x.ndim !== 3 || x.shape[2] !== this.dModel) {
      throw new Error(`x: expected shape [B, N, ${this.dModel}], got ${shapeString(x.shape)}`);
    }
    const [B, N] = x.shape;
    const H = this.numHeads,
      Dh = this.headDim,
      C = this.dModel;
    const y = this.qkv.forward(x);
    // One token (decoding): [B, 1, 3C] already holds q, k, v [B, H, 1, Dh] in order, a slice each.
    if (N === 1) return [0, 1, 2].map((i) => reshape(slice(y, 2, i * C, (i + 1) * C), [B, H, 1, Dh]));
    // [B, N, 3C] -> [3, B, H, N, Dh], then q, k, v [B, H, N, Dh]
    const heads = permute(reshape(y, [B, N, 3, H, Dh]), [2, 0, 3, 1, 4]);
    return [0, 1, 2].map((i) => reshape(slice(heads, 0, i, i + 1), [B, H, N, Dh]));
  }

  /** The first kernelFeatures features of q or k [B, H, N, Dh] (t itself when that is all of them). */
  private kernelInput(t: Tensor): Tensor {
    return this.kernelFeatures === this.headDim ? t : slice(t, 3, 0, this.kernelFeatures);
  }

  /**
   * The rows FAVOR+ reads for q, k [B, H, N, Dh] of a whole sequence: themselves, or for 'flt'
   * extended by their snippets.
   */
  private favorInputs(q: Tensor, k: Tensor): [Tensor, Tensor] {
    if (this.rpe === null) return [q, k];
    const E = this.rpe.snippets(0, q.shape[2]);
    return [this.rpe.extend(q, E), this.rpe.extend(k, E)];
  }

  /** The options of the layer's FAVOR+ attention: performerAttention's eps, the scale 1 / sqrt(Dh). */
  private favorOptions(): { causal: boolean; scale: number; eps: number } {
    return { causal: this.causal, scale: 1 / Math.sqrt(this.headDim), eps: 1e-6 };
  }

  /**
   * x [B, N, dModel] -> [B, N, dModel]. With a cache (incremental decoding, lib/nn/kv-cache.ts),
   * x holds the tokens after those cached: their keys and values join the cache and the queries
   * attend to every cached key. Empty cache: the layer's own pass over x (causal for a causal
   * layer). Otherwise a causal layer takes one token at a time (N = 1), which sees every cached
   * key and itself: the fused op without a mask, Nq = 1 against Nk = n + 1 ('performer' and
   * 'flt' too: non-causal FAVOR+ takes Nq != Nk; 'flt' caches its keys extended by their
   * positions' snippets).
   */
  forward(x: Tensor, cache?: LayerKVCache): Tensor {
    const [q, k, v] = this.heads(x);
    const [B, N] = x.shape;
    const past = cache?.length ?? 0;
    if (this.causal && past > 0 && N !== 1)
      throw new Error(`x: a causal layer with ${past} cached tokens takes one new token at a time, got ${N}`);
    // 'flt': queries and keys extended by their positions' snippets (cached keys keep theirs)
    const E = this.rpe?.snippets(past, N);
    const [qx, kx] = this.rpe !== null && E !== undefined ? [this.rpe.extend(q, E), this.rpe.extend(k, E)] : [q, k];
    const [keys, values] = cache === undefined ? [kx, v] : cache.update(kx, v);
    const causal = this.causal && past === 0;
    let h: Tensor;
    if (this.R !== null)
      h = fourierAttention(this.kernelInput(q), this.kernelInput(keys), values, this.R, { ...this.fourier, causal });
    else if (this.score !== null) h = this.score.forward(q, keys, values, causal);
    else if (this.favor !== null)
      h = performerAttention(qx, keys, values, this.favor.next(), { causal, scale: 1 / Math.sqrt(this.headDim) });
    else h = dotProductAttention(q, keys, values, { causal });
    // [B, H, N, Dh] -> [B, N, H * Dh] (one token: the same order already)
    return this.proj.forward(reshape(N === 1 ? h : permute(h, [0, 2, 1, 3]), [B, N, this.dModel]));
  }

  /**
   * What the fused decoding step (TransformerBlock.decodeStep) needs of this layer's attention,
   * or null where it does not cover it and the step runs op by op: 'fourier' reading every
   * feature of its heads (features: F < Dh slices them), and 'dot' at its 1 / sqrt(Dh) scale.
   */
  decodeSettings(): {
    attention: 'fourier' | 'dot';
    R: Tensor | null;
    power: number;
    eps: number;
    stable: boolean;
    scale: number;
  } | null {
    if (this.R !== null) {
      if (this.kernelFeatures !== this.headDim) return null;
      const { power, eps, stable } = resolveFourierOptions(this.fourier);
      return { attention: 'fourier', R: this.R, power, eps, stable, scale: 0 };
    }
    if (this.attention !== 'dot') return null;
    return { attention: 'dot', R: null, power: 0, eps: 0, stable: false, scale: 1 / Math.sqrt(this.headDim) };
  }

  /**
   * What the layer's attention does with its rows for input x [B, N, dModel] (row sums against
   * eps, row mass, entropy, largest weight, R; lib/nn/attention-statistics.ts), without grad.
   */
  attentionStatistics(x: Tensor): AttentionStatistics {
    return noGrad(() =>
      tidy(() => {
        const [q, k] = this.heads(x);
        if (this.score !== null) {
          const score = this.score;
          return softmaxStatistics('neural', q, k.shape[2], this.causal, (qc) => score.scores(qc, k));
        }
        if (this.favor !== null) {
          const [qx, kx] = this.favorInputs(q, k);
          const projection = this.favor.projection;
          return favorStatistics(this.attention as 'performer' | 'flt', (visit) =>
            favorWeightRows(qx, kx, projection, this.favorOptions(), visit),
          );
        }
        if (this.R === null) return dotStatistics(q, k, this.causal);
        return fourierStatistics(this.kernelInput(q), this.kernelInput(k), this.R, {
          power: this.fourier.power ?? 4,
          eps: this.fourier.eps ?? 1e-6,
          stable: this.fourier.stable ?? false,
          causal: this.causal,
        });
      }),
    );
  }

  /**
   * The attention weights [B, H, N, N] that forward(x) applies to the values (row i: the weights
   * of keys j; each row sums to 1, up to eps for non-stable 'fourier'), without grad.
   */
  attentionMap(x: Tensor): Tensor {
    return noGrad(() =>
      tidy(() => {
        const [qh, kh] = this.heads(x);
        const N = qh.shape[2];
        if (this.score !== null) {
          const scores = this.score.scores(qh, kh);
          return softmax(this.causal ? add(scores, causalMask(N, x.device, 'log')) : scores);
        }
        if (this.favor !== null) {
          const [qx, kx] = this.favorInputs(qh, kh);
          const [B, H] = qh.shape;
          const P = new Float32Array(B * H * N * N);
          favorWeightRows(qx, kx, this.favor.projection, this.favorOptions(), (bh, i, w, n) => {
            let den = 0;
            for (let j = 0; j < n; j++) den += w[j];
            for (let j = 0; j < n; j++) P[(bh * N + i) * N + j] = den > 0 ? w[j] / den : 0;
          });
          return tensor(P, [B, H, N, N], { device: x.device });
        }
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
            const term = log(
              fourierMetric(slice(q, 3, d, d + 1), slice(k, 3, d, d + 1), radiusOfFeature(this.R, d), { power: 2 }),
            );
            logK = logK === null ? term : add(logK, term);
          }
          const scaled = scale(logK as Tensor, power / 2);
          return softmax(this.causal ? add(scaled, causalMask(N, x.device, 'log')) : scaled);
        }
        const K = fourierMetric(q, k, this.R, { power });
        const visible = this.causal ? mul(K, causalMask(N, x.device, 'linear')) : K;
        return div(visible, addScalar(sum(visible, -1, true), this.fourier.eps ?? 1e-6));
      }),
    );
  }
}

/** [N, N] with j <= i visible: 1 and 0 ('linear', a factor) or 0 and -Infinity ('log', an addend). */
function causalMask(N: number, device: Device, kind: 'linear' | 'log'): Tensor {
  const m = new Float32Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) m[i * N + j] = kind === 'linear' ? (j <= i ? 1 : 0) : j <= i ? 0 : -Infinity;
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
    case 'shared':
      return [1];
    case 'head':
      return [H, 1];
    case 'feature':
      return [Dh];
    case 'head-feature':
      return [H, Dh];
  }
}
