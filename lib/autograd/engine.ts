// backward(): walks the graph from one tensor in reverse topological order, calls each node's
// Function.backward once with the summed gradients of its outputs, and accumulates into the
// .grad of leaves. Gradient tensors the engine makes are disposed once used; leaf grads are
// kept out of tidy() scopes (they belong to their leaf, and go with leaf.dispose()).
// No gradient is copied without need: a backward that passes its incoming gradient on (as add
// does) hands that tensor to the first input that takes it (a copy only for a second one), and
// the caller's grad is borrowed, not cloned: it flows through the graph read-only, is never
// disposed, and is copied only where it would be written or kept (a sum into it, a leaf's .grad).
// Post-accumulate-grad hooks (hooks.ts) fire for a leaf right after the last node that uses it;
// callbacks they queue run once the pass has finished.
import { checkOptions, optBoolean } from '../options';
import { keep } from '../scope';
import { sameShape, shapeString } from '../shape';
import { checkTensor, ones, Tensor } from '../tensor';
import { noGrad } from './grad-mode';
import { hasGradHooks, runGradHooks, withCallbackQueue } from './hooks';
import { GradNode } from './node';

export interface BackwardOptions {
  /** Keep saved tensors so that backward can run through the graph again. */
  retainGraph?: boolean;
}

function topoOrder(root: GradNode): GradNode[] {
  const order: GradNode[] = [];
  const seen = new Set<GradNode>();
  // Iterative post-order DFS: graphs of deep models would overflow a recursive one.
  const stack: [GradNode, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1] = i + 1;
      const child = node.inputs[i]?.gradFn;
      if (child && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

export function runBackward(root: Tensor, grad?: Tensor, opts?: BackwardOptions): void {
  checkTensor(root, 'backward');
  const retainGraph = optBoolean(checkOptions(opts, ['retainGraph']).retainGraph, 'opts.retainGraph', false);
  if (!root.requiresGrad) {
    throw new Error('backward: the tensor does not require grad (no input of the ops that made it has requiresGrad)');
  }
  let seed: Tensor;
  if (grad === undefined) {
    if (root.size !== 1) {
      throw new Error(
        `grad: backward() of a tensor of shape ${shapeString(root.shape)} needs an explicit grad (only one-element outputs default to 1)`,
      );
    }
    seed = ones(root.shape, { device: root.device });
  } else {
    checkTensor(grad, 'grad');
    if (!sameShape(grad.shape, root.shape)) {
      throw new Error(`grad: expected shape ${shapeString(root.shape)} (the tensor's), got ${shapeString(grad.shape)}`);
    }
    if (grad.device !== root.device)
      throw new Error(`grad: is on device '${grad.device}' but the tensor is on '${root.device}'`);
    seed = grad;
  }
  const grads = new GradStore(grad);
  withCallbackQueue(() =>
    noGrad(() => {
      if (root.gradFn === null) {
        grads.accumulateLeaf(root, seed);
        if (hasGradHooks()) runGradHooks(root);
        return;
      }
      const pending = new Map<GradNode, (Tensor | null)[]>();
      pending.set(root.gradFn, slots(root.gradFn, root.outputIndex, seed));
      const order = topoOrder(root.gradFn);
      const finished = hasGradHooks() ? leavesFinishedAt(order) : null;
      for (let at = 0; at < order.length; at++) {
        const node = order[at];
        const incoming = pending.get(node);
        if (incoming === undefined) {
          for (const leaf of finished?.get(at) ?? []) runGradHooks(leaf);
          continue;
        }
        pending.delete(node);
        const result = node.fn.backward(node.ctx, ...incoming);
        const results = Array.isArray(result) ? result : [result];
        if (results.length < node.inputs.length) {
          throw new Error(
            `${node.name}.backward: returned ${results.length} gradients for ${node.inputs.length} forward arguments`,
          );
        }
        const passedOn = new Set<Tensor>();
        node.inputs.forEach((input, i) => {
          const g = results[i] as Tensor | null | undefined;
          if (input === null || !input.requiresGrad || g === null || g === undefined) return;
          checkGradient(node, i, input, g);
          // A second use of one tensor, or a forward input returned as a gradient, is copied;
          // a borrowed grad goes on as it is (it stays read-only wherever it goes).
          const copy = !grads.isBorrowed(g) && (passedOn.has(g) || node.inputs.includes(g));
          const owned = copy ? g.clone() : g;
          passedOn.add(g);
          if (input.gradFn === null) grads.accumulateLeaf(input, owned);
          else {
            const slot = pending.get(input.gradFn) ?? new Array<Tensor | null>(input.gradFn.numOutputs).fill(null);
            pending.set(input.gradFn, slot);
            grads.addInto(slot, input.outputIndex, owned);
          }
        });
        for (const g of incoming) if (g !== null && !passedOn.has(g)) grads.release(g);
        for (const r of results) {
          if (r instanceof Tensor && !passedOn.has(r) && !node.inputs.includes(r)) grads.release(r);
        }
        if (!retainGraph) node.ctx.release();
        for (const leaf of finished?.get(at) ?? []) runGradHooks(leaf);
      }
    }),
  );
}

/** The leaves that require grad, by the position in `order` of the last node using them. */
function leavesFinishedAt(order: GradNode[]): Map<number, Tensor[]> {
  const last = new Map<Tensor, number>();
  order.forEach((node, at) => {
    for (const input of node.inputs)
      if (input !== null && input.gradFn === null && input.requiresGrad) last.set(input, at);
  });
  const byPosition = new Map<number, Tensor[]>();
  for (const [leaf, at] of last) {
    const list = byPosition.get(at) ?? [];
    list.push(leaf);
    byPosition.set(at, list);
  }
  return byPosition;
}

function slots(node: GradNode, index: number, g: Tensor): (Tensor | null)[] {
  const s = new Array<Tensor | null>(node.numOutputs).fill(null);
  s[index] = g;
  return s;
}

/** The gradients of one backward pass: the engine's own, and the caller's grad (borrowed). */
class GradStore {
  constructor(private readonly borrowed: Tensor | undefined) {}

  isBorrowed(g: Tensor): boolean {
    return g === this.borrowed;
  }

  /** Disposes a gradient the engine owns. */
  release(g: Tensor): void {
    if (!this.isBorrowed(g)) g.dispose();
  }

  /** Adds g into slot[index] (g is consumed). */
  addInto(slot: (Tensor | null)[], index: number, g: Tensor): void {
    const current = slot[index];
    if (current === null) slot[index] = g;
    else if (this.isBorrowed(current)) {
      const sum = g.clone();
      sum.backend.addInplace(sum.storage(), current.storage());
      slot[index] = sum;
      this.release(g);
    } else {
      current.backend.addInplace(current.storage(), g.storage());
      this.release(g);
    }
  }

  /** Adds g into leaf.grad (g is consumed). */
  accumulateLeaf(leaf: Tensor, g: Tensor): void {
    if (leaf.grad === null || leaf.grad.isDisposed) leaf.grad = keep(this.isBorrowed(g) ? g.clone() : g);
    else {
      leaf.grad.backend.addInplace(leaf.grad.storage(), g.storage());
      this.release(g);
    }
  }
}

function checkGradient(node: GradNode, i: number, input: Tensor, g: unknown): asserts g is Tensor {
  if (!(g instanceof Tensor)) throw new Error(`${node.name}.backward: gradient ${i} is not a Tensor or null`);
  if (g.isDisposed) throw new Error(`${node.name}.backward: gradient ${i} has been disposed`);
  if (!sameShape(g.shape, input.shape)) {
    throw new Error(
      `${node.name}.backward: gradient ${i} has shape ${shapeString(g.shape)}, expected ${shapeString(input.shape)} (the shape of input ${i})`,
    );
  }
  if (g.device !== input.device) {
    throw new Error(`${node.name}.backward: gradient ${i} is on device '${g.device}', expected '${input.device}'`);
  }
}
