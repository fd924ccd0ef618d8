// Float64 references of the nn modules (lib/nn), composed from the op references: a
// MultiHeadAttention and a TransformerBlock forward over plain arrays, with parameters passed by
// their stateDict() names. Tests compare modules with these and check module gradients by
// central differences of them.
import type { AttentionKind } from '../nn/attention-kind';
import { dotAttentionRef, fourierAttentionRef } from './attention';
import { neuralAttentionRef, neuralParamsRef } from './neural-attention';
import { refArray, RefArray } from './fourier-metric';
import { layerNormRef, linearRef } from './nn-ops';
import { binaryRef, permuteRef, sliceRef, unaryRef } from './tensor-ops';

export type RefParams = Record<string, RefArray>;

const reshape = (x: RefArray, shape: number[]): RefArray => ({ data: x.data, shape });

export interface AttentionModuleRefOptions {
  numHeads: number;
  /** The kinds this reference computes. */
  attention: Extract<AttentionKind, 'fourier' | 'dot' | 'neural'>;
  causal?: boolean;
  power?: number;
  eps?: number;
  stable?: boolean;
  /** Fourier: the kernel reads the first F features of each head's q and k (all by default). */
  features?: number;
}

/** The first F features of q or k [B, H, N, Dh] (x itself without F). */
export function kernelFeaturesRef(x: RefArray, F: number | undefined): RefArray {
  return F === undefined || F === x.shape[3] ? x : sliceRef(x, 3, 0, F);
}

/**
 * The projected q' and k' [B, H, N, d'] of 'neural' attention's heads (params score.qProj.*,
 * score.kProj.* under `prefix`).
 */
export function neuralProjectionsRef(q: RefArray, k: RefArray, p: RefParams, prefix: string): [RefArray, RefArray] {
  return [
    linearRef(q, p[`${prefix}score.qProj.weight`], p[`${prefix}score.qProj.bias`]),
    linearRef(k, p[`${prefix}score.kProj.weight`], p[`${prefix}score.kProj.bias`]),
  ];
}

/**
 * MultiHeadAttention of x [B, N, C]; params qkv.weight, qkv.bias?, proj.weight, proj.bias, R?,
 * score.*? under `prefix`.
 */
export function multiHeadAttentionRef(x: RefArray, p: RefParams, o: AttentionModuleRefOptions, prefix = ''): RefArray {
  const [B, N, C] = x.shape;
  const H = o.numHeads,
    Dh = C / H;
  const qkv = linearRef(x, p[`${prefix}qkv.weight`], p[`${prefix}qkv.bias`] ?? null);
  const heads = permuteRef(reshape(qkv, [B, N, 3, H, Dh]), [2, 0, 3, 1, 4]);
  const [q, k, v] = [0, 1, 2].map((i) => reshape(sliceRef(heads, 0, i, i + 1), [B, H, N, Dh]));
  let h: RefArray;
  if (o.attention === 'fourier') {
    h = fourierAttentionRef(kernelFeaturesRef(q, o.features), kernelFeaturesRef(k, o.features), v, p[`${prefix}R`], {
      causal: o.causal,
      power: o.power,
      eps: o.eps,
      stable: o.stable,
    });
  } else if (o.attention === 'neural') {
    const [qp, kp] = neuralProjectionsRef(q, k, p, prefix);
    h = neuralAttentionRef(qp, kp, v, neuralParamsRef(p, `${prefix}score.`), { causal: o.causal });
  } else h = dotAttentionRef(q, k, v, { causal: o.causal });
  return linearRef(reshape(permuteRef(h, [0, 2, 1, 3]), [B, N, C]), p[`${prefix}proj.weight`], p[`${prefix}proj.bias`]);
}

export interface BlockRefOptions extends AttentionModuleRefOptions {
  norm: 'pre' | 'post';
  activation: 'gelu' | 'relu';
  lnEps?: number;
}

/** TransformerBlock of x [B, N, C] without dropout; params by the block's stateDict() names. */
export function transformerBlockRef(x: RefArray, p: RefParams, o: BlockRefOptions): RefArray {
  const ln = (y: RefArray, name: string) => layerNormRef(y, p[`${name}.weight`], p[`${name}.bias`], o.lnEps ?? 1e-5);
  const ff = (y: RefArray) => {
    const h = linearRef(y, p['fc1.weight'], p['fc1.bias']);
    return linearRef(unaryRef(o.activation === 'gelu' ? 'gelu_erf' : 'relu', h), p['fc2.weight'], p['fc2.bias']);
  };
  const attn = (y: RefArray) => multiHeadAttentionRef(y, p, o, 'attn.');
  const add = (a: RefArray, b: RefArray) => binaryRef('add', a, b);
  if (o.norm === 'pre') {
    const h = add(x, attn(ln(x, 'ln1')));
    return add(h, ff(ln(h, 'ln2')));
  }
  const h = ln(add(x, attn(x)), 'ln1');
  return ln(add(h, ff(h)), 'ln2');
}

/** A module's stateDict() as float64 reference arrays. */
export function refParams(
  dict: Record<string, { shape: readonly number[]; toFloat32Array(): Float32Array }>,
): RefParams {
  const out: RefParams = {};
  for (const [name, t] of Object.entries(dict)) out[name] = refArray(t.toFloat32Array(), [...t.shape]);
  return out;
}
