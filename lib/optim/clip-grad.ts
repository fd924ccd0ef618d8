// clipGradNorm_ (torch.nn.utils.clip_grad_norm_): the global L2 norm of all gradients, from one
// native squared-norm reduction per device, and when it exceeds maxNorm every gradient is scaled
// in place by maxNorm / (norm + 1e-6). Returns the norm before clipping. A NaN or infinite norm
// leaves the gradients untouched (PyTorch would scale them to NaN), or throws with errorIfNonfinite.
import { checkOptions, optBoolean } from '../options';
import { checkRange } from './optimizer';
import { checkTensor, Tensor } from '../tensor';

export interface ClipGradNormOptions {
  /** Throw when the norm is NaN or infinite. */
  errorIfNonfinite?: boolean;
}

export function clipGradNorm_(params: Tensor[], maxNorm: number, opts?: ClipGradNormOptions): number {
  if (!Array.isArray(params)) throw new Error('params: expected an array of tensors');
  checkRange(maxNorm, 'maxNorm', 0);
  const errorIfNonfinite = optBoolean(checkOptions(opts, ['errorIfNonfinite']).errorIfNonfinite, 'opts.errorIfNonfinite', false);
  const byDevice = new Map<string, Tensor[]>();
  params.forEach((p, i) => {
    checkTensor(p, `params[${i}]`);
    if (p.grad === null) return;
    const g = checkTensor(p.grad, `params[${i}].grad`);
    const list = byDevice.get(g.device) ?? [];
    if (!list.includes(g)) list.push(g);
    byDevice.set(g.device, list);
  });
  let squared = 0;
  for (const grads of byDevice.values()) squared += grads[0].backend.squaredNorm(grads.map((g) => g.storage('grad')));
  const norm = Math.sqrt(squared);
  if (!Number.isFinite(norm)) {
    if (errorIfNonfinite) throw new Error(`clipGradNorm_: the total norm of the gradients is ${norm}; they were left unclipped`);
    return norm;
  }
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const grads of byDevice.values()) grads[0].backend.scaleInplace(grads.map((g) => g.storage('grad')), coef);
  }
  return norm;
}
