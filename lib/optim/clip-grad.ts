// clipGradNorm_ (torch.nn.utils.clip_grad_norm_): the global L2 norm of all gradients, from one
// native squared-norm reduction per device, and when it exceeds maxNorm every gradient is scaled
// in place by maxNorm / (norm + 1e-6). Returns the norm before clipping. A NaN or infinite norm
// leaves the gradients untouched (PyTorch would scale them to NaN), or throws with errorIfNonfinite.
// Returning a number reads the norm back, so on a GPU it waits for the device; clipGradNormAsync_
// queues the same clipping and returns the norm as a tensor (PyTorch's clip_grad_norm_).
import { checkOptions, optBoolean } from '../options';
import { checkRange } from './optimizer';
import { checkTensor, full, Tensor } from '../tensor';

export interface ClipGradNormOptions {
  /** Throw when the norm is NaN or infinite. */
  errorIfNonfinite?: boolean;
}

/** The gradients of params, distinct, grouped by device (params and maxNorm checked first). */
function gradsByDevice(params: Tensor[], maxNorm: number): Map<string, Tensor[]> {
  if (!Array.isArray(params)) throw new Error('params: expected an array of tensors');
  checkRange(maxNorm, 'maxNorm', 0);
  const byDevice = new Map<string, Tensor[]>();
  params.forEach((p, i) => {
    checkTensor(p, `params[${i}]`);
    if (p.grad === null) return;
    const g = checkTensor(p.grad, `params[${i}].grad`);
    const list = byDevice.get(g.device) ?? [];
    if (!list.includes(g)) list.push(g);
    byDevice.set(g.device, list);
  });
  return byDevice;
}

export function clipGradNorm_(params: Tensor[], maxNorm: number, opts?: ClipGradNormOptions): number {
  const byDevice = gradsByDevice(params, maxNorm);
  const errorIfNonfinite = optBoolean(
    checkOptions(opts, ['errorIfNonfinite']).errorIfNonfinite,
    'opts.errorIfNonfinite',
    false,
  );
  let squared = 0;
  for (const grads of byDevice.values()) squared += grads[0].backend.squaredNorm(grads.map((g) => g.storage('grad')));
  const norm = Math.sqrt(squared);
  if (!Number.isFinite(norm)) {
    if (errorIfNonfinite)
      throw new Error(`clipGradNorm_: the total norm of the gradients is ${norm}; they were left unclipped`);
    return norm;
  }
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const grads of byDevice.values())
      grads[0].backend.scaleInplace(
        grads.map((g) => g.storage('grad')),
        coef,
      );
  }
  return norm;
}

/**
 * clipGradNorm_ without waiting for the device: the norm and the scaling are queued on the
 * gradients' device, and the norm comes back as a one-element tensor there (read it when it is
 * needed; reading waits). The gradients must be on one device. A NaN or infinite norm leaves
 * them untouched, as clipGradNorm_ does (errorIfNonfinite needs the value: use clipGradNorm_).
 * opts takes no option today; a misspelt or unsupported one (errorIfNonfinite) is an Error.
 */
export function clipGradNormAsync_(params: Tensor[], maxNorm: number, opts?: Record<string, never>): Tensor {
  const byDevice = gradsByDevice(params, maxNorm);
  checkOptions(opts, []);
  if (byDevice.size > 1)
    throw new Error(`params: clipGradNormAsync_ needs gradients on one device, got ${[...byDevice.keys()].join(', ')}`);
  const [grads] = [...byDevice.values()];
  if (grads === undefined) {
    if (params.length === 0)
      throw new Error('params: clipGradNormAsync_ needs at least one tensor (the norm has no device)');
    return full([1], 0, { device: params[0].device });
  }
  const b = grads[0].backend;
  return new Tensor(
    b.clipByNorm(
      grads.map((g) => g.storage('grad')),
      maxNorm,
    ),
    [1],
    grads[0].device,
  );
}
