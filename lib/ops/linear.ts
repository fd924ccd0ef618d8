// linear(x, weight, bias?): y = x W^T + b over the last axis (torch.nn.functional.linear:
// x [..., in], W [out, in], b [out] -> y [..., out]). The bias is fused into the GEMM (y starts
// as b, the GEMM accumulates onto it); the backward runs only the GEMMs whose gradients are
// needed (dx = dy W, dW = dy^T x) and sums dy's rows for db in a fixed order.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { shapeString } from '../shape';
import { checkSameDevice, checkTensor, Tensor } from '../tensor';

export class LinearFunction extends Function {
  static override forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    const [out, inF] = weight.shape;
    const dims = [x.size / inF, inF, out];
    ctx.saveForBackward(x, weight);
    ctx.dims = dims;
    const y = x.backend.linearForward(
      x.storage('x'),
      weight.storage('weight'),
      bias ? bias.storage('bias') : null,
      dims,
    );
    return new Tensor(y, [...x.shape.slice(0, -1), out], x.device);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [x, weight] = ctx.savedTensors;
    const [needX, needW, needB] = ctx.needsInputGrad;
    const [dx, dW, db] = x.backend.linearBackward(
      x.storage('x'),
      weight.storage('weight'),
      grad.storage('grad'),
      ctx.dims as number[],
      needX,
      needW,
      needB,
    );
    return [
      dx && new Tensor(dx, x.shape, x.device),
      dW && new Tensor(dW, weight.shape, x.device),
      db && new Tensor(db, [weight.shape[0]], x.device),
    ];
  }
}

/** x [..., in] W^T + b with W [out, in] and b [out] (optional): [..., out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  checkTensor(x, 'x');
  checkTensor(weight, 'weight');
  const b = bias ?? null;
  if (b !== null) checkTensor(b, 'bias');
  checkSameDevice(b === null ? { x, weight } : { x, weight, bias: b });
  if (weight.ndim !== 2)
    throw new Error(`weight: expected 2 dimensions [out, in], got shape ${shapeString(weight.shape)}`);
  const [out, inF] = weight.shape;
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new Error(`x: expected shape [..., ${inF}] (weight is [${out}, ${inF}]), got ${shapeString(x.shape)}`);
  }
  if (x.size === 0 || out === 0 || inF === 0)
    throw new Error(
      `x, weight: every dimension must be at least 1, got x ${shapeString(x.shape)} and weight ${shapeString(weight.shape)}`,
    );
  if (b !== null && (b.ndim !== 1 || b.shape[0] !== out))
    throw new Error(`bias: expected shape [${out}], got ${shapeString(b.shape)}`);
  return LinearFunction.apply(x, weight, b) as Tensor;
}
