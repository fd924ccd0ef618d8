// fourierMetric(q, k, R, {power}): the generalized Fourier integral kernel between every query
// and key, K[b,h,i,j] = prod_d sinc(R_hd (q_bhid - k_bhjd))^power, as a differentiable op whose
// backward is one fused native pass returning dq, dk and dR together.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { shapeString } from '../shape';
import { checkOptions, describe } from '../options';
import { checkSameDevice, checkTensor, Tensor } from '../tensor';

export interface FourierMetricOptions {
  /** The exponent p of the sinc product: a positive integer; 4 by default (the paper's). */
  power?: number;
}

/**
 * Checks q [B,H,Nq,D], k [B,H,Nk,D] and R (broadcastable to [H,D]: [], [1], [D], [H,1], [H,D],
 * [1,1], [1,D]) and returns the native dims [B, H, Nq, Nk, D, rH, rD].
 */
export function qkrDims(q: Tensor, k: Tensor, R: Tensor): number[] {
  if (q.ndim !== 4) throw new Error(`q: expected 4 dimensions [B, H, Nq, D], got shape ${shapeString(q.shape)}`);
  if (k.ndim !== 4) throw new Error(`k: expected 4 dimensions [B, H, Nk, D], got shape ${shapeString(k.shape)}`);
  const [B, H, Nq, D] = q.shape;
  const Nk = k.shape[2];
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D) {
    throw new Error(
      `k: shape ${shapeString(k.shape)} does not match q ${shapeString(q.shape)} (expected [${B}, ${H}, Nk, ${D}])`,
    );
  }
  if (q.size === 0 || k.size === 0)
    throw new Error(
      `q, k: every dimension must be at least 1, got ${shapeString(q.shape)} and ${shapeString(k.shape)}`,
    );
  const rs = R.shape;
  const bad = () =>
    new Error(
      `R: shape ${shapeString(rs)} does not broadcast to [H, D] = [${H}, ${D}] (use [], [1], [D], [H, 1] or [H, D])`,
    );
  let rH = 1;
  let rD = 1;
  if (rs.length === 1) {
    if (rs[0] !== 1 && rs[0] !== D) throw bad();
    rD = rs[0];
  } else if (rs.length === 2) {
    if ((rs[0] !== 1 && rs[0] !== H) || (rs[1] !== 1 && rs[1] !== D)) throw bad();
    [rH, rD] = rs;
  } else if (rs.length !== 0) throw bad();
  return [B, H, Nq, Nk, D, rH, rD];
}

export function checkPower(power: unknown): number {
  if (typeof power !== 'number' || !Number.isInteger(power) || power < 1 || power > 64) {
    throw new Error(`power: expected a positive integer (at most 64), got ${describe(power)}`);
  }
  return power;
}

export class FourierMetric extends Function {
  static override forward(ctx: Context, q: Tensor, k: Tensor, R: Tensor, power: number): Tensor {
    const dims = qkrDims(q, k, R);
    ctx.saveForBackward(q, k, R);
    ctx.dims = dims;
    ctx.power = power;
    const K = q.backend.fourierMetricForward(q.storage('q'), k.storage('k'), R.storage('R'), dims, power);
    return new Tensor(K, [dims[0], dims[1], dims[2], dims[3]], q.device);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [q, k, R] = ctx.savedTensors;
    const [dq, dk, dR] = q.backend.fourierMetricBackward(
      q.storage('q'),
      k.storage('k'),
      R.storage('R'),
      ctx.dims as number[],
      ctx.power as number,
      grad.storage('grad'),
    );
    return [
      new Tensor(dq, q.shape, q.device),
      new Tensor(dk, k.shape, k.device),
      new Tensor(dR, R.shape, R.device),
      null,
    ];
  }
}

/** K [B,H,Nq,Nk] = prod_d sinc(R_hd (q_id - k_jd))^power; differentiable in q, k and R. */
export function fourierMetric(q: Tensor, k: Tensor, R: Tensor, opts?: FourierMetricOptions): Tensor {
  checkTensor(q, 'q');
  checkTensor(k, 'k');
  checkTensor(R, 'R');
  checkSameDevice({ q, k, R });
  const { power: p } = checkOptions(opts, ['power']);
  const power = checkPower(p === undefined ? 4 : p);
  qkrDims(q, k, R);
  return FourierMetric.apply(q, k, R, power) as Tensor;
}
