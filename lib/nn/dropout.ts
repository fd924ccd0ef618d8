// Dropout and DropPath modules: active in training mode only (module.train() / eval()). Masks
// come from Philox counters reserved from a Generator (the default one unless given), so a
// checkpoint's RNG state reproduces them.
import { dropout, dropPath } from '../ops/dropout';
import { describe } from '../options';
import { checkGenerator, Generator } from '../random';
import type { Tensor } from '../tensor';
import { Module } from './module';

function checkArgs(p: unknown, generator: unknown): void {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1))
    throw new Error(`p: expected a probability in [0, 1], got ${describe(p)}`);
  checkGenerator(generator, 'generator');
}

export class Dropout extends Module {
  constructor(
    readonly p = 0.5,
    readonly generator?: Generator,
  ) {
    super();
    checkArgs(p, generator);
  }

  /** In training: each element zeroed with probability p, the rest scaled by 1/(1-p). In eval: x itself. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, generator: this.generator });
  }
}

/** Stochastic depth (timm's DropPath): zeroes whole samples x[b] of a residual branch. */
export class DropPath extends Module {
  constructor(
    readonly p = 0.1,
    readonly generator?: Generator,
  ) {
    super();
    checkArgs(p, generator);
  }

  forward(x: Tensor): Tensor {
    return dropPath(x, this.p, { training: this.training, generator: this.generator });
  }
}
