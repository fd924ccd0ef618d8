// LayerNorm (torch.nn.LayerNorm over the last axis): weight ones and bias zeros, eps 1e-5 by
// default (the paper's ViT uses 1e-6).
import { layerNorm } from '../ops/layernorm';
import type { Device } from '../native';
import { ones, Tensor, zeros } from '../tensor';
import { checkFeatures } from './linear';
import { Module } from './module';

export interface LayerNormModuleOptions {
  eps?: number;
  /** Learn a weight and a bias (true by default). */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine, whether to learn the bias too (true by default). */
  bias?: boolean;
  device?: Device;
}

export class LayerNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(readonly normalizedShape: number, opts: LayerNormModuleOptions = {}) {
    super();
    checkFeatures(normalizedShape, 'normalizedShape');
    this.eps = opts.eps ?? 1e-5;
    if (!Number.isFinite(this.eps) || this.eps < 0) throw new Error(`opts.eps: expected a finite number >= 0, got ${this.eps}`);
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? this.registerParameter('weight', ones([normalizedShape], { device: opts.device })) : null;
    this.bias = affine && opts.bias !== false ? this.registerParameter('bias', zeros([normalizedShape], { device: opts.device })) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, { eps: this.eps });
  }
}
