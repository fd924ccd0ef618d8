// neuralAttention(q, k, v, params, {causal}): Neural Attention (DiGiugno & Mahmood, 2025), the
// attention score of each pair from a small feed-forward network on (q_i, k_j) instead of a dot
// product, softmax over the keys, times V:
//   s_ij = w3 relu(W2 relu(W1 [q_i; k_j] + b1) + b2) + b3      (no 1/sqrt(d) scale, as the paper)
// The first layer acts on q_i and k_j separately (W1 [q; k] = W1q q + W1k k), so its two halves
// are two ordinary linear layers, a_i = W1q q_i + b1 and c_j = W1k k_j, computed once per row;
// the rest of the network runs per pair inside one fused native pass forward (online softmax)
// and one backward (da, dc, dv and the network's weight gradients), and nothing of size
// Nq x Nk x d1 (nor Nq x Nk) is ever stored.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkOptions, optBoolean } from '../options';
import { shapeString } from '../shape';
import { checkTensor, Tensor } from '../tensor';
import { checkQKV } from './attention-args';
import { slice } from './layout';
import { linear } from './linear';

/** The largest hidden layers the fused kernels take (d1 and d2). */
export const NEURAL_MAX_HIDDEN = 8;

/** The score network's weights, torch.nn.Linear's layout [out, in]. */
export interface NeuralAttentionParams {
  /** First layer [d1, 2F] on [q_i; k_j] (F = q's last dimension), and its bias [d1]. */
  w1: Tensor;
  b1: Tensor;
  /** Second layer [d2, d1] and bias [d2]. */
  w2: Tensor;
  b2: Tensor;
  /** Output layer [1, d2] and bias [1] (a shift of every score: softmax ignores it, and its gradient is 0). */
  w3: Tensor;
  b3: Tensor;
}

export interface NeuralAttentionOptions {
  /** Row i attends to keys j <= i (needs Nq == Nk). */
  causal?: boolean;
}

/**
 * The fused op on the first layer's halves: a [B,H,Nq,d1], c [B,H,Nk,d1], v [B,H,Nk,Dv] and the
 * rest of the network (w2, b2, w3, b3); out [B,H,Nq,Dv]. Its backward returns the gradients of
 * all seven tensors.
 */
export class NeuralAttention extends Function {
  static override forward(
    ctx: Context,
    a: Tensor,
    c: Tensor,
    v: Tensor,
    w2: Tensor,
    b2: Tensor,
    w3: Tensor,
    b3: Tensor,
    causal: boolean,
  ): Tensor {
    const [B, H, Nq, d1] = a.shape;
    const dims = [B, H, Nq, c.shape[2], d1, 1, 1, v.shape[3], causal ? 1 : 0];
    const d2 = w2.shape[0];
    const [out, lse] = a.backend.neuralAttentionForward(
      a.storage('a'),
      c.storage('c'),
      v.storage('v'),
      w2.storage('w2'),
      b2.storage('b2'),
      w3.storage('w3'),
      b3.storage('b3'),
      dims,
      d2,
    );
    const o = new Tensor(out, [B, H, Nq, v.shape[3]], a.device);
    ctx.saveForBackward(a, c, v, w2, b2, w3, b3, o, new Tensor(lse, [B, H, Nq], a.device));
    ctx.dims = dims;
    return o;
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [a, c, v, w2, b2, w3, b3, o, lse] = ctx.savedTensors;
    const grads = a.backend.neuralAttentionBackward(
      a.storage('a'),
      c.storage('c'),
      v.storage('v'),
      w2.storage('w2'),
      b2.storage('b2'),
      w3.storage('w3'),
      b3.storage('b3'),
      ctx.dims as number[],
      w2.shape[0],
      o.storage('out'),
      lse.storage('lse'),
      grad.storage('grad'),
    );
    const like = [a, c, v, w2, b2, w3, b3];
    return [...grads.map((g, n) => new Tensor(g, like[n].shape, a.device)), null];
  }
}

/** Checks params against q's last dimension F; returns the hidden sizes. */
function checkParams(params: unknown, F: number, device: string): { d1: number; d2: number } {
  if (params === null || typeof params !== 'object') throw new Error('params: expected { w1, b1, w2, b2, w3, b3 }');
  const p = params as Record<string, unknown>;
  const t: Record<string, Tensor> = {};
  for (const name of ['w1', 'b1', 'w2', 'b2', 'w3', 'b3']) t[name] = checkTensor(p[name], `params.${name}`);
  const expect = (name: string, shape: number[]) => {
    const s = t[name].shape;
    if (s.length !== shape.length || s.some((x, i) => x !== shape[i])) {
      throw new Error(`params.${name}: expected shape ${shapeString(shape)}, got ${shapeString(s)}`);
    }
  };
  if (t.w1.ndim !== 2 || t.w1.shape[1] !== 2 * F) {
    throw new Error(
      `params.w1: expected shape [d1, ${2 * F}] (q and k have ${F} features), got ${shapeString(t.w1.shape)}`,
    );
  }
  const d1 = t.w1.shape[0];
  if (t.w2.ndim !== 2 || t.w2.shape[1] !== d1)
    throw new Error(`params.w2: expected shape [d2, ${d1}] (w1 has ${d1} rows), got ${shapeString(t.w2.shape)}`);
  const d2 = t.w2.shape[0];
  for (const [name, d] of [
    ['w1', d1],
    ['w2', d2],
  ] as const) {
    if (d > NEURAL_MAX_HIDDEN)
      throw new Error(
        `params.${name}: the fused kernels take at most ${NEURAL_MAX_HIDDEN} hidden units per layer, got ${d} rows`,
      );
  }
  expect('b1', [d1]);
  expect('b2', [d2]);
  expect('w3', [1, d2]);
  expect('b3', [1]);
  for (const [name, x] of Object.entries(t)) {
    if (x.device !== device) throw new Error(`params.${name}: on ${x.device}, but q is on ${device}`);
  }
  return { d1, d2 };
}

/**
 * Neural Attention [B,H,Nq,Dv]: softmax_j(MLP([q_i; k_j])) v, for q [B,H,Nq,F], k [B,H,Nk,F],
 * v [B,H,Nk,Dv] and the network's weights (hidden layers of at most 8 units); differentiable in
 * q, k, v and every weight.
 */
export function neuralAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  params: NeuralAttentionParams,
  opts?: NeuralAttentionOptions,
): Tensor {
  const causal = optBoolean(checkOptions(opts, ['causal']).causal, 'opts.causal', false);
  const { D: F } = checkQKV(q, k, v, causal);
  checkParams(params, F, q.device);
  const a = linear(q, slice(params.w1, 1, 0, F), params.b1);
  const c = linear(k, slice(params.w1, 1, F, 2 * F));
  return NeuralAttention.apply(a, c, v, params.w2, params.b2, params.w3, params.b3, causal) as Tensor;
}
