// performerAttention(q, k, v, projection, {causal, scale, eps}): FAVOR+ linear attention
// (Performer), softmax(scale q k^T) v estimated with positive random features, as one fused
// native pass forward and one backward (dq, dk, dv), in time and memory linear in the sequence:
//   phi(q_i) = exp(l(q_i) - max_m l_m(q_i)) + eps,   psi_i(k_j) = exp(l(k_j) - M_i) + eps,
//   l_m(x) = sqrt(scale) w_m . x - scale |x|^2 / 2,  M_i = the largest l over the keys row i sees,
//   out_i = sum_j (phi(q_i) . psi_i(k_j)) v_j / sum_j phi(q_i) . psi_i(k_j)
// with w_m the rows of `projection` [M, F] (ff.orthogonalRandomFeatures). csrc/common/favor.h
// has the details (stabilisers, causal running maximum, what the backward treats as constant).
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkOptions, describe, optBoolean } from '../options';
import { shapeString } from '../shape';
import { Tensor } from '../tensor';
import { checkQKV } from './attention-args';

export interface PerformerAttentionOptions {
  /** Row i attends to keys j <= i (needs Nq == Nk). */
  causal?: boolean;
  /** The softmax's factor on q . k that the features estimate; 1 / sqrt(F) by default. */
  scale?: number;
  /** Added to every feature after its stabiliser (FAVOR+'s numerical stabiliser; 1e-6 by default). */
  eps?: number;
}

interface Resolved {
  causal: boolean;
  scale: number;
  eps: number;
}

export class PerformerAttention extends Function {
  static override forward(ctx: Context, q: Tensor, k: Tensor, v: Tensor, W: Tensor, o: Resolved): Tensor {
    const [B, H, Nq, F] = q.shape;
    const Dv = v.shape[3];
    const dims = [B, H, Nq, k.shape[2], F, 1, 1, Dv, o.causal ? 1 : 0];
    const M = W.shape[0];
    const [out, den] = q.backend.favorAttentionForward(
      q.storage('q'),
      k.storage('k'),
      v.storage('v'),
      W.storage('projection'),
      dims,
      M,
      o.scale,
      o.eps,
    );
    const h = new Tensor(out, [B, H, Nq, Dv], q.device);
    ctx.saveForBackward(q, k, v, W, h, new Tensor(den, [B, H, Nq], q.device));
    ctx.dims = dims;
    ctx.options = o;
    return h;
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [q, k, v, W, h, den] = ctx.savedTensors;
    const o = ctx.options as Resolved;
    const [dq, dk, dv] = q.backend.favorAttentionBackward(
      q.storage('q'),
      k.storage('k'),
      v.storage('v'),
      W.storage('projection'),
      ctx.dims as number[],
      W.shape[0],
      o.scale,
      o.eps,
      h.storage('out'),
      den.storage('den'),
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

/**
 * FAVOR+ attention [B,H,Nq,Dv] of q [B,H,Nq,F], k [B,H,Nk,F], v [B,H,Nk,Dv] with the random
 * features `projection` [M, F]; differentiable in q, k and v (the projection is fixed: it gets
 * no gradient).
 */
export function performerAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  projection: Tensor,
  opts?: PerformerAttentionOptions,
): Tensor {
  const o = checkOptions(opts, ['causal', 'scale', 'eps']);
  const causal = optBoolean(o.causal, 'causal', false);
  const { D } = checkQKV(q, k, v, causal, { projection });
  if (projection.ndim !== 2 || projection.shape[1] !== D) {
    throw new Error(
      `projection: expected [M, ${D}] (M random features of q's last dimension), got ${shapeString(projection.shape)}`,
    );
  }
  const scale = o.scale === undefined ? 1 / Math.sqrt(D) : o.scale;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0)
    throw new Error(`scale: expected a finite number > 0, got ${describe(scale)}`);
  const eps = o.eps === undefined ? 1e-6 : o.eps;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0)
    throw new Error(`eps: expected a finite number >= 0, got ${describe(eps)}`);
  return PerformerAttention.apply(q, k, v, projection, { causal, scale, eps }) as Tensor;
}
