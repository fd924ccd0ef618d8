// layerNorm(x, weight?, bias?, {eps}): LayerNorm over the last axis, fused (one native pass
// forward, one backward): y = (x - mean) / sqrt(var + eps) * weight + bias, biased variance, as
// torch.nn.functional.layer_norm with normalized_shape = [x.shape[-1]]. The forward saves the
// per-row mean and 1/std for the backward, which gives dx, dweight and dbias together.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkOptions, optNumber } from '../options';
import { shapeString } from '../shape';
import { checkSameDevice, checkTensor, Tensor } from '../tensor';

export interface LayerNormOptions {
  /** Added to the variance; 1e-5 by default (PyTorch's). */
  eps?: number;
}

export class LayerNormFunction extends Function {
  static override forward(ctx: Context, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
    const C = x.shape[x.ndim - 1];
    const dims = [x.size / C, C];
    const [y, mean, rstd] = x.backend.layerNormForward(
      x.storage('x'),
      weight ? weight.storage('weight') : null,
      bias ? bias.storage('bias') : null,
      dims,
      eps,
    );
    const rows = [x.size / C];
    ctx.saveForBackward(x, weight, new Tensor(mean, rows, x.device), new Tensor(rstd, rows, x.device));
    ctx.dims = dims;
    return new Tensor(y, x.shape, x.device);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [x, weight, mean, rstd] = ctx.savedTensors;
    const [needX, needW, needB] = ctx.needsInputGrad;
    const [dx, dw, db] = x.backend.layerNormBackward(
      x.storage('x'),
      weight ? weight.storage('weight') : null,
      mean.storage('mean'),
      rstd.storage('rstd'),
      grad.storage('grad'),
      ctx.dims as number[],
      needX,
      needW,
      needB,
    );
    const C = [x.shape[x.ndim - 1]];
    return [
      dx && new Tensor(dx, x.shape, x.device),
      dw && new Tensor(dw, C, x.device),
      db && new Tensor(db, C, x.device),
      null,
    ];
  }
}

/** LayerNorm of x over its last axis (size C), with optional weight and bias of shape [C]. */
export function layerNorm(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, opts?: LayerNormOptions): Tensor {
  checkTensor(x, 'x');
  const w = weight ?? null;
  const b = bias ?? null;
  if (x.ndim < 1 || x.size === 0)
    throw new Error(`x: expected a non-empty tensor [..., C], got shape ${shapeString(x.shape)}`);
  const C = x.shape[x.ndim - 1];
  const named: Record<string, Tensor> = { x };
  for (const [name, t] of [
    ['weight', w],
    ['bias', b],
  ] as const) {
    if (t === null) continue;
    checkTensor(t, name);
    if (t.ndim !== 1 || t.shape[0] !== C)
      throw new Error(`${name}: expected shape [${C}] (x's last dimension), got ${shapeString(t.shape)}`);
    named[name] = t;
  }
  checkSameDevice(named);
  const eps = optNumber(checkOptions(opts, ['eps']).eps, 'opts.eps', 1e-5, 0);
  return LayerNormFunction.apply(x, w, b, eps) as Tensor;
}
