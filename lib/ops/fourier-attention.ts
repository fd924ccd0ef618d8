// fourierAttention(q, k, v, R, {power, causal, eps, stable}): attention with the generalized
// Fourier integral kernel, h_i = sum_j K_ij v_j / (sum_j K_ij + eps), as one fused native pass
// forward and one backward (dq, dk, dv, dR); the Nq x Nk kernel is never stored. stable: true
// computes the same estimate with eps = 0 in the log domain, free of underflow for any D.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkOptions, describe, optBoolean } from '../options';
import { Tensor } from '../tensor';
import { checkQKV } from './attention-args';
import { checkPower, qkrDims } from './fourier-metric';

export interface FourierAttentionOptions {
  /** The exponent p of the sinc product (4, the paper's, by default); even when stable. */
  power?: number;
  /** Row i attends to keys j <= i (needs Nq == Nk). */
  causal?: boolean;
  /** Added to the normaliser sum_j K_ij (1e-6 by default); unused when stable. */
  eps?: number;
  /** The log-domain estimate (eps = 0, no underflow). */
  stable?: boolean;
}

interface Resolved {
  power: number;
  causal: boolean;
  eps: number;
  stable: boolean;
}

export class FourierAttention extends Function {
  static override forward(ctx: Context, q: Tensor, k: Tensor, v: Tensor, R: Tensor, o: Resolved): Tensor {
    const dims = [...qkrDims(q, k, R), v.shape[3], o.causal ? 1 : 0];
    const [out, stats] = q.backend.fourierAttentionForward(
      q.storage('q'),
      k.storage('k'),
      v.storage('v'),
      R.storage('R'),
      dims,
      o.power,
      o.eps,
      o.stable,
    );
    const h = new Tensor(out, [dims[0], dims[1], dims[2], dims[7]], q.device);
    const rowStats = new Tensor(stats, [dims[0], dims[1], dims[2]], q.device);
    ctx.saveForBackward(q, k, v, R, h, rowStats);
    ctx.dims = dims;
    ctx.options = o;
    return h;
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [q, k, v, R, h, rowStats] = ctx.savedTensors;
    const o = ctx.options as Resolved;
    const [dq, dk, dv, dR] = q.backend.fourierAttentionBackward(
      q.storage('q'),
      k.storage('k'),
      v.storage('v'),
      R.storage('R'),
      ctx.dims as number[],
      o.power,
      o.eps,
      o.stable,
      h.storage('out'),
      rowStats.storage('stats'),
      grad.storage('grad'),
    );
    return [
      new Tensor(dq, q.shape, q.device),
      new Tensor(dk, k.shape, k.device),
      new Tensor(dv, v.shape, v.device),
      new Tensor(dR, R.shape, R.device),
      null,
    ];
  }
}

/** The option names fourierAttention takes (MultiHeadAttention passes them on). */
export const FOURIER_ATTENTION_OPTIONS = ['power', 'causal', 'eps', 'stable'] as const;

/** Checks the options and fills in the defaults. */
export function resolveFourierOptions(opts: FourierAttentionOptions | undefined): Resolved {
  const o = checkOptions(opts, FOURIER_ATTENTION_OPTIONS);
  const power = checkPower(o.power === undefined ? 4 : o.power);
  const eps = o.eps === undefined ? 1e-6 : o.eps;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0)
    throw new Error(`eps: expected a finite number >= 0, got ${describe(eps)}`);
  const stable = optBoolean(o.stable, 'stable', false);
  if (stable && power % 2 !== 0) throw new Error(`power: stable: true needs an even power (K >= 0), got ${power}`);
  return { power, causal: optBoolean(o.causal, 'causal', false), eps, stable };
}

/** h [B,H,Nq,Dv] = sum_j K_ij v_j / (sum_j K_ij + eps); differentiable in q, k, v and R. */
export function fourierAttention(q: Tensor, k: Tensor, v: Tensor, R: Tensor, opts?: FourierAttentionOptions): Tensor {
  const o = resolveFourierOptions(opts);
  checkQKV(q, k, v, o.causal, { R });
  qkrDims(q, k, R);
  return FourierAttention.apply(q, k, v, R, o) as Tensor;
}
