// The autograd graph: each op application that needs gradients leaves a GradNode holding its
// Function class, its context (saved tensors) and the tensor inputs it was applied to.
import type { Tensor } from '../tensor';
import { shapeString } from '../shape';

/** ctx of torch.autograd.Function: save tensors in forward, read them in backward. */
export class Context {
  /** needsInputGrad[i]: whether forward's i-th argument is a tensor that requires grad. */
  needsInputGrad: boolean[] = [];
  private saved: readonly (Tensor | null)[] = [];
  /** Saved tensors that forward made for itself (neither inputs nor outputs): the ctx owns them. */
  private owned: Tensor[] = [];
  private released = false;
  // Functions may keep other values here, as in PyTorch (ctx.power = p).
  [key: string]: unknown;

  saveForBackward(...tensors: (Tensor | null)[]): void {
    this.saved = tensors;
  }

  get savedTensors(): Tensor[] {
    if (this.released) {
      throw new Error(
        'savedTensors: the graph was already freed by a backward(); pass { retainGraph: true } to backward twice',
      );
    }
    return this.saved.map((t, i) => {
      if (t !== null && t.isDisposed) {
        throw new Error(
          `savedTensors: saved tensor ${i} ${shapeString(t.shape)} was disposed before backward (did a tidy() around the forward end first?)`,
        );
      }
      return t as Tensor;
    });
  }

  /** @internal After forward: the saved tensors that are neither inputs nor outputs become the ctx's. */
  adoptIntermediates(inputs: readonly (Tensor | null)[], outputs: readonly Tensor[]): void {
    this.owned = this.saved.filter((t): t is Tensor => t !== null && !inputs.includes(t) && !outputs.includes(t));
  }

  /** @internal Drops the saved tensors after backward, freeing those the ctx owns. */
  release(): void {
    for (const t of this.owned) t.dispose();
    this.owned = [];
    this.saved = [];
    this.released = true;
  }
}

export interface FunctionClass {
  readonly name: string;
  backward(ctx: Context, ...grads: (Tensor | null)[]): unknown;
}

export class GradNode {
  constructor(
    readonly fn: FunctionClass,
    readonly ctx: Context,
    /** One entry per forward argument: the tensor, or null for a non-tensor argument. */
    readonly inputs: readonly (Tensor | null)[],
    readonly numOutputs: number,
  ) {}

  get name(): string {
    return this.fn.name;
  }
}

// Tensor.gradFn is a GradNode (tensor.ts declares GradFn empty to stay below the autograd graph).
declare module '../tensor' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- merges GradNode into GradFn
  interface GradFn extends GradNode {}
}
