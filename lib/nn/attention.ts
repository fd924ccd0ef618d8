// MultiHeadAttention with `attention: 'fourier' | 'dot'`: a fused qkv projection, the fused
// attention op of either kind, and an output projection.
//   'fourier'  ff.fourierAttention with a learnable radius R: one for the layer ('shared', R [1]),
//              one per head ('head', [H, 1]), one per feature of a head ('feature', [Dh], the
//              paper's reference code) or per head and feature ('head-feature', [H, Dh]),
//              initialised to radiusInit (the paper: 2 for its LM, 1 for its ViT).
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
import { checkFeatures, Linear } from './linear';
import { Module } from './module';

export type AttentionKind = 'fourier' | 'dot';
export type RadiusSharing = 'shared' | 'head' | 'feature' | 'head-feature';

export interface MultiHeadAttentionOptions {
  /** 'fourier' (default) or 'dot'. */
  attention?: AttentionKind;
  /** Row i attends to positions j <= i only (language models). */
  causal?: boolean;
  /** Whether the qkv projection has a bias (true by default; DeiT: true). */
  qkvBias?: boolean;
  /** How many radii R the layer learns ('feature' by default). */
  radius?: RadiusSharing;
  /** R's initial value, > 0 (2 by default, the paper's LM; its ViT uses 1). */
  radiusInit?: number;
  /** Fourier attention's exponent p (4 by default), normaliser eps (1e-6), log-domain mode. */
  power?: number;
  eps?: number;
  stable?: boolean;
  device?: Device;
  generator?: Generator;
}

/** The option names of MultiHeadAttention (TransformerBlock passes them on). */
export const MULTI_HEAD_ATTENTION_OPTIONS = [
  'attention', 'causal', 'qkvBias', 'radius', 'radiusInit', 'power', 'eps', 'stable', 'device', 'generator',
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
    const layer = { device: o.device, generator: o.generator };
    this.qkv = this.registerModule('qkv', new Linear(dModel, 3 * dModel, { ...layer, bias: o.qkvBias }));
    this.proj = this.registerModule('proj', new Linear(dModel, dModel, layer));
    this.R = this.attention === 'fourier'
      ? this.registerParameter('R', full(radiusShape(o.radius, numHeads, this.headDim), o.radiusInit, { device: o.device }))
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

  /** x [B, N, dModel] -> [B, N, dModel]. */
  forward(x: Tensor): Tensor {
    const [q, k, v] = this.heads(x);
    const [B, N] = x.shape;
    const h = this.R !== null
      ? fourierAttention(q, k, v, this.R, { ...this.fourier, causal: this.causal })
      : dotProductAttention(q, k, v, { causal: this.causal });
    return this.proj.forward(reshape(permute(h, [0, 2, 1, 3]), [B, N, this.dModel]));
  }

  /**
   * The attention weights [B, H, N, N] that forward(x) applies to the values (row i: the weights
   * of keys j; each row sums to 1, up to eps for non-stable 'fourier'), without grad.
   */
  attentionMap(x: Tensor): Tensor {
    return noGrad(() => tidy(() => {
      const [q, k] = this.heads(x);
      const N = q.shape[2];
      if (this.R === null) {
        const scores = scale(matmul(q, k, { transB: true }), 1 / Math.sqrt(this.headDim));
        return softmax(this.causal ? add(scores, causalMask(N, x.device, 'log')) : scores);
      }
      const power = this.fourier.power ?? 4;
      if (this.fourier.stable === true) {
        // log K = (p / 2) sum_d log sinc(R_d (q_d - k_d))^2; softmax over j is K / sum_j K.
        let logK: Tensor | null = null;
        for (let d = 0; d < this.headDim; d++) {
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
