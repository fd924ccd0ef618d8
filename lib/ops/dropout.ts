// dropout(x, p) and dropPath(x, p) (stochastic depth: one draw per sample, zeroing whole rows
// of a residual branch). The mask comes from Philox4x32-10 at a (seed, offset) reserved from a
// Generator (lib/random.ts; the default one unless opts.generator), so the same generator state
// gives the same mask on cpu, cuda and cuda-emu, a checkpoint's RNG state reproduces it, and
// the backward recomputes the mask instead of storing it: dx = the same op applied to dy.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkOptions, describe, optBoolean } from '../options';
import { defaultGenerator, Generator } from '../random';
import { shapeString } from '../shape';
import { checkTensor, Tensor } from '../tensor';

export interface DropoutOptions {
  /** false (evaluation) returns x itself, as PyTorch's functional dropout; true by default. */
  training?: boolean;
  /** The generator the mask's Philox counters are reserved from; the default generator if omitted. */
  generator?: Generator;
}

/** Native dropout arguments: dims = [n, group], p, seed, offset. */
type Args = [number[], number, number, number];

export class DropoutFunction extends Function {
  static override forward(ctx: Context, x: Tensor, args: Args): Tensor {
    ctx.args = args;
    return new Tensor(x.backend.dropout(x.storage('x'), ...args), x.shape, x.device);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    return [
      new Tensor(grad.backend.dropout(grad.storage('grad'), ...(ctx.args as Args)), grad.shape, grad.device),
      null,
    ];
  }
}

function apply(x: Tensor, p: number, options: DropoutOptions | undefined, perSample: boolean): Tensor {
  checkTensor(x, 'x');
  if (typeof p !== 'number' || !(p >= 0 && p <= 1))
    throw new Error(`p: expected a probability in [0, 1], got ${describe(p)}`);
  const opts = checkOptions(options, ['training', 'generator']);
  const training = optBoolean(opts.training, 'opts.training', true);
  const generator = opts.generator === undefined ? defaultGenerator : opts.generator;
  if (!(generator instanceof Generator)) throw new Error('opts.generator: expected a Generator');
  if (!training || p === 0 || x.size === 0) return x;
  if (perSample && x.ndim < 1) throw new Error(`x: expected a batch [B, ...], got shape ${shapeString(x.shape)}`);
  const group = perSample ? x.size / x.shape[0] : 1;
  const { seed, offset } = generator.reserve(Math.ceil(x.size / group / 4));
  return DropoutFunction.apply(x, [[x.size, group], p, seed, offset]) as Tensor;
}

/** Zeroes each element with probability p and scales the rest by 1 / (1 - p). */
export function dropout(x: Tensor, p = 0.5, opts?: DropoutOptions): Tensor {
  return apply(x, p, opts, false);
}

/** Zeroes each sample x[b] with probability p and scales the rest by 1 / (1 - p) (drop-path). */
export function dropPath(x: Tensor, p = 0.1, opts?: DropoutOptions): Tensor {
  return apply(x, p, opts, true);
}
