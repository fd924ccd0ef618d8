// dotProductAttention(q, k, v, {causal, scale}): softmax(scale q k^T) v, the baseline every
// FourierFormer comparison needs, as one fused native pass forward (online softmax, the row
// log-sum-exp kept) and one backward (dq, dk, dv).
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkOptions, optBoolean, optNumber } from '../options';
import { Tensor } from '../tensor';
import { checkQKV } from './attention-args';

export interface DotProductAttentionOptions {
  /** Row i attends to keys j <= i (needs Nq == Nk). */
  causal?: boolean;
  /** Multiplies q . k before the softmax; 1 / sqrt(D) by default. */
  scale?: number;
}

export class DotProductAttention extends Function {
  static override forward(ctx: Context, q: Tensor, k: Tensor, v: Tensor, causal: boolean, scale: number): Tensor {
    const [B, H, Nq, D] = q.shape;
    const dims = [B, H, Nq, k.shape[2], D, 1, 1, v.shape[3], causal ? 1 : 0];
    const [out, lse] = q.backend.dotAttentionForward(q.storage('q'), k.storage('k'), v.storage('v'), dims, scale);
    const o = new Tensor(out, [B, H, Nq, v.shape[3]], q.device);
    ctx.saveForBackward(q, k, v, o, new Tensor(lse, [B, H, Nq], q.device));
    ctx.dims = dims;
    ctx.scale = scale;
    return o;
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [q, k, v, o, lse] = ctx.savedTensors;
    const [dq, dk, dv] = q.backend.dotAttentionBackward(
      q.storage('q'),
      k.storage('k'),
      v.storage('v'),
      ctx.dims as number[],
      ctx.scale as number,
      o.storage('out'),
      lse.storage('lse'),
      grad.storage('grad'),
    );
    return [
      new Tensor(dq, q.shape, q.device),
      new Tensor(dk, k.shape, k.device),
      new Tensor(dv, v.shape, v.device),
      null,
      null,
    ];
  }
}

/** softmax(scale q k^T) v [B,H,Nq,Dv]; differentiable in q, k and v. */
export function dotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts?: DotProductAttentionOptions): Tensor {
  const o = checkOptions(opts, ['causal', 'scale']);
  const causal = optBoolean(o.causal, 'causal', false);
  const { D } = checkQKV(q, k, v, causal);
  const scale = optNumber(o.scale, 'scale', 1 / Math.sqrt(D));
  return DotProductAttention.apply(q, k, v, causal, scale) as Tensor;
}
