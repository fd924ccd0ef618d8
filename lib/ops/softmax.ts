// softmax(x) and logSoftmax(x) over the last axis, one fused native pass each way. The backward
// needs only the output: softmax dx = y (dy - sum(dy y)), log-softmax dx = dy - exp(y) sum(dy).
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { shapeString } from '../shape';
import { checkTensor, Tensor } from '../tensor';

export class SoftmaxFunction extends Function {
  static override forward(ctx: Context, x: Tensor, log: boolean): Tensor {
    const C = x.shape[x.ndim - 1];
    const dims = [x.size / C, C];
    const y = new Tensor(x.backend.softmaxForward(x.storage('x'), dims, log), x.shape, x.device);
    ctx.saveForBackward(y);
    ctx.dims = dims;
    ctx.log = log;
    return y;
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [y] = ctx.savedTensors;
    const dx = y.backend.softmaxBackward(
      y.storage('output'),
      grad.storage('grad'),
      ctx.dims as number[],
      ctx.log as boolean,
    );
    return [new Tensor(dx, y.shape, y.device), null];
  }
}

function checkLastAxis(x: Tensor, axis: unknown): void {
  checkTensor(x, 'x');
  if (x.ndim < 1 || x.size === 0) throw new Error(`x: expected a non-empty tensor, got shape ${shapeString(x.shape)}`);
  if (axis !== -1 && axis !== x.ndim - 1) {
    throw new Error(
      `axis: only the last axis (-1 or ${x.ndim - 1}) is supported, got ${String(axis)}; permute x first`,
    );
  }
}

/** exp(x) / sum(exp(x)) over the last axis. */
export function softmax(x: Tensor, axis = -1): Tensor {
  checkLastAxis(x, axis);
  return SoftmaxFunction.apply(x, false) as Tensor;
}

/** x - log(sum(exp(x))) over the last axis, computed without forming softmax(x). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkLastAxis(x, axis);
  return SoftmaxFunction.apply(x, true) as Tensor;
}
