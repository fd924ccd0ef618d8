// LayerNorm (torch.nn.LayerNorm over the last axis): weight ones and bias zeros, eps 1e-5 by
// default (the paper's ViT uses 1e-6).
import { layerNorm } from '../ops/layernorm';
import type { Device } from '../native';
import { checkOptions, optBoolean, optNumber } from '../options';
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

  constructor(
    readonly normalizedShape: number,
    options?: LayerNormModuleOptions,
  ) {
    super();
    checkFeatures(normalizedShape, 'normalizedShape');
    const opts = checkOptions(options, ['eps', 'elementwiseAffine', 'bias', 'device']);
    this.eps = optNumber(opts.eps, 'opts.eps', 1e-5, 0);
    const affine = optBoolean(opts.elementwiseAffine, 'opts.elementwiseAffine', true);
    const bias = optBoolean(opts.bias, 'opts.bias', true);
    this.weight = affine ? this.registerParameter('weight', ones([normalizedShape], { device: opts.device })) : null;
    this.bias =
      affine && bias ? this.registerParameter('bias', zeros([normalizedShape], { device: opts.device })) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, { eps: this.eps });
  }
}
