// crossEntropy(input, target, opts): log-softmax and negative log-likelihood over the last axis
// in one native pass (torch.nn.functional.cross_entropy with the classes on the last axis, as
// language models hold them: input [..., C]). target is either class ids (input.shape without
// its last axis, float32 holding integers, checked natively) or a probability per class (the
// shape of input: soft targets, as mixup and cutmix make). Options as PyTorch's:
// labelSmoothing mixes the target with the uniform distribution; ignoreIndex rows (class ids
// only) add nothing and count for nothing in the mean; reduction 'mean' | 'sum' | 'none'.
// The backward recomputes softmax from the saved log-sum-exp: no [rows, C] tensor is kept.
// target gets no gradient.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkOptions } from '../options';
import { sameShape, shapeString } from '../shape';
import { checkSameDevice, checkTensor, Tensor } from '../tensor';

export type Reduction = 'mean' | 'sum' | 'none';
const REDUCTIONS: Reduction[] = ['none', 'sum', 'mean'];

export interface CrossEntropyOptions {
  /** Rows whose class id equals this add no loss and no gradient; -100 by default. */
  ignoreIndex?: number;
  /** In [0, 1]: the target becomes (1 - s) target + s / C. 0 by default. */
  labelSmoothing?: number;
  /** 'mean' (default: over rows not ignored), 'sum', or 'none' (one loss per row). */
  reduction?: Reduction;
}

/** The native arguments after the storages: dims, soft, ignoreIndex, labelSmoothing, reduction. */
type Args = [number[], boolean, number, number, number];

export class CrossEntropyFunction extends Function {
  static override forward(ctx: Context, input: Tensor, target: Tensor, args: Args): Tensor {
    const [loss, lse, count] = input.backend.crossEntropyForward(
      input.storage('input'),
      target.storage('target'),
      ...args,
    );
    const rowsShape = input.shape.slice(0, -1);
    ctx.saveForBackward(
      input,
      target,
      new Tensor(lse, [args[0][0]], input.device),
      new Tensor(count, [1], input.device),
    );
    ctx.args = args;
    return new Tensor(loss, args[4] === 0 ? rowsShape : [], input.device);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [input, target, lse, count] = ctx.savedTensors;
    const dx = input.backend.crossEntropyBackward(
      input.storage('input'),
      target.storage('target'),
      lse.storage('lse'),
      count.storage('count'),
      grad.storage('grad'),
      ...(ctx.args as Args),
    );
    return [new Tensor(dx, input.shape, input.device), null, null];
  }
}

/** Cross-entropy of logits input [..., C] against class ids [...] or probabilities [..., C]. */
export function crossEntropy(input: Tensor, target: Tensor, options?: CrossEntropyOptions): Tensor {
  checkTensor(input, 'input');
  checkTensor(target, 'target');
  checkSameDevice({ input, target });
  if (input.ndim < 1 || input.size === 0)
    throw new Error(`input: expected a non-empty tensor [..., C], got shape ${shapeString(input.shape)}`);
  const C = input.shape[input.ndim - 1];
  const rowsShape = input.shape.slice(0, -1);
  const soft = sameShape(target.shape, input.shape);
  if (!soft && !sameShape(target.shape, rowsShape)) {
    throw new Error(
      `target: expected class ids of shape ${shapeString(rowsShape)} or probabilities of shape ${shapeString(input.shape)}, got ${shapeString(target.shape)}`,
    );
  }
  const opts = checkOptions(options, ['ignoreIndex', 'labelSmoothing', 'reduction']);
  const ignoreIndex = opts.ignoreIndex === undefined ? -100 : opts.ignoreIndex;
  if (!Number.isInteger(ignoreIndex) || Math.abs(ignoreIndex) > 2 ** 24) {
    throw new Error(`opts.ignoreIndex: expected an integer within +-2^24, got ${String(ignoreIndex)}`);
  }
  const ls = opts.labelSmoothing === undefined ? 0 : opts.labelSmoothing;
  if (typeof ls !== 'number' || !(ls >= 0 && ls <= 1))
    throw new Error(`opts.labelSmoothing: expected a number in [0, 1], got ${String(ls)}`);
  const reduction = opts.reduction === undefined ? 'mean' : opts.reduction;
  if (!REDUCTIONS.includes(reduction))
    throw new Error(`opts.reduction: expected 'mean', 'sum' or 'none', got ${String(reduction)}`);
  const args: Args = [[input.size / C, C], soft, ignoreIndex, ls, REDUCTIONS.indexOf(reduction)];
  return CrossEntropyFunction.apply(input, target, args) as Tensor;
}
