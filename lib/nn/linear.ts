// Linear (torch.nn.Linear): y = x W^T + b over the last axis, W [out, in], b [out]. PyTorch's
// default init: W and b uniform in (-1/sqrt(in), 1/sqrt(in)).
import { linear } from '../ops/linear';
import { checkDevice, Device } from '../native';
import { checkGenerator, Generator } from '../random';
import { checkOptions, describe, optBoolean } from '../options';
import { Tensor, zeros } from '../tensor';
import { uniform_ } from './init';
import { Module } from './module';

export interface LinearOptions {
  /** Whether to learn a bias; true by default. */
  bias?: boolean;
  device?: Device;
  /** The generator of the initial values; the default generator if omitted. */
  generator?: Generator;
}

export function checkFeatures(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
    throw new Error(`${what}: expected a positive integer, got ${describe(n)}`);
  return n;
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options?: LinearOptions,
  ) {
    super();
    checkFeatures(inFeatures, 'inFeatures');
    checkFeatures(outFeatures, 'outFeatures');
    const opts = checkOptions(options, ['bias', 'device', 'generator']);
    const bias = optBoolean(opts.bias, 'opts.bias', true);
    checkGenerator(opts.generator, 'opts.generator');
    if (opts.device !== undefined) checkDevice(opts.device, 'opts.device');
    const bound = 1 / Math.sqrt(inFeatures);
    const init = { generator: opts.generator };
    this.weight = this.registerParameter(
      'weight',
      uniform_(zeros([outFeatures, inFeatures], { device: opts.device }), -bound, bound, init),
    );
    this.bias = bias
      ? this.registerParameter('bias', uniform_(zeros([outFeatures], { device: opts.device }), -bound, bound, init))
      : null;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
