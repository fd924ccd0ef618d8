// Hooks into backward(), as PyTorch's Tensor.register_post_accumulate_grad_hook and the autograd
// engine's queue_callback: what data-parallel training needs to reduce each gradient as soon as
// backward has finished it, and to wait for the reductions before backward() returns.
//   registerPostAccumulateGradHook(leaf, fn)   fn(leaf) once backward has added every
//       contribution of this pass to leaf.grad: after the last node of the graph that uses the
//       leaf (a leaf used twice, as a tied weight, fires once). A leaf the pass does not reach
//       fires nothing. Returns a handle whose remove() unregisters it.
//   queueCallback(fn)   fn() once the backward pass running now has finished (call it from a
//       hook); callbacks run in the order queued, before backward() returns.
// The engine (engine.ts) pays for hooks only while some are registered.
import type { Tensor } from '../tensor';

export type PostAccumulateGradHook = (leaf: Tensor) => void;

const hooks = new WeakMap<Tensor, Set<PostAccumulateGradHook>>();
let registered = 0;
let queue: (() => void)[] | null = null;

export function registerPostAccumulateGradHook(leaf: Tensor, fn: PostAccumulateGradHook): { remove(): void } {
  if (typeof fn !== 'function') throw new Error('fn: expected a function');
  if (!leaf.isLeaf || !leaf.requiresGrad)
    throw new Error('registerPostAccumulateGradHook: expected a leaf tensor that requires grad (a parameter)');
  let set = hooks.get(leaf);
  if (set === undefined) {
    set = new Set();
    hooks.set(leaf, set);
  }
  const own = set;
  const entry: PostAccumulateGradHook = (t) => fn(t);
  own.add(entry);
  registered++;
  return {
    remove: () => {
      if (own.delete(entry)) registered--;
    },
  };
}

export function queueCallback(fn: () => void): void {
  if (typeof fn !== 'function') throw new Error('fn: expected a function');
  if (queue === null) throw new Error('queueCallback: no backward pass is running');
  queue.push(fn);
}

/** @internal Whether any hook is registered (the engine skips its bookkeeping otherwise). */
export function hasGradHooks(): boolean {
  return registered > 0;
}

/** @internal Runs leaf's hooks. */
export function runGradHooks(leaf: Tensor): void {
  const set = hooks.get(leaf);
  if (set) for (const fn of [...set]) fn(leaf);
}

/**
 * @internal Runs `pass` (a backward pass) with a callback queue, then the callbacks it queued.
 * A nested pass (backward inside a hook) queues on the outer pass.
 */
export function withCallbackQueue(pass: () => void): void {
  if (queue !== null) {
    pass();
    return;
  }
  const mine: (() => void)[] = [];
  queue = mine;
  try {
    pass();
    for (let i = 0; i < mine.length; i++) mine[i]();
  } finally {
    queue = null;
  }
}
