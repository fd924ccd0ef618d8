// Function: the base of every differentiable op, mirroring torch.autograd.Function.
//
//   class Square extends Function {
//     static forward(ctx: Context, x: Tensor) { ctx.saveForBackward(x); return ...; }
//     static backward(ctx: Context, grad: Tensor) { const [x] = ctx.savedTensors; return ...; }
//   }
//   const y = Square.apply(x);
//
// forward runs with recording off; backward returns one gradient (or null) per forward argument.
import { Tensor } from '../tensor';
import { isGradEnabled, noGrad } from './grad-mode';
import { Context, GradNode } from './node';

export class Function {
  static forward(_ctx: Context, ..._args: unknown[]): Tensor | Tensor[] {
    throw new Error(`${this.name}.forward is not implemented`);
  }

  static backward(_ctx: Context, ..._grads: (Tensor | null)[]): Tensor | null | (Tensor | null)[] {
    throw new Error(`${this.name}.backward is not implemented`);
  }

  /** Runs forward and, when an input requires grad, records the op for backward(). */
  static apply(...args: unknown[]): Tensor | Tensor[] {
    const ctx = new Context();
    const inputs = args.map((a) => (a instanceof Tensor ? a : null));
    ctx.needsInputGrad = inputs.map((t) => t !== null && t.requiresGrad);
    const record = isGradEnabled() && ctx.needsInputGrad.some(Boolean);
    const result = noGrad(() => this.forward(ctx, ...args));
    const outs = Array.isArray(result) ? result : [result];
    outs.forEach((t, i) => {
      if (!(t instanceof Tensor)) throw new Error(`${this.name}.forward: output ${i} is not a Tensor`);
      if (inputs.includes(t))
        throw new Error(`${this.name}.forward: output ${i} is one of its inputs; return a copy (x.clone())`);
    });
    ctx.adoptIntermediates(inputs, outs);
    if (!record) {
      ctx.release();
      return result;
    }
    const node = new GradNode(this, ctx, inputs, outs.length);
    outs.forEach((t, i) => {
      t.gradFn = node;
      t.outputIndex = i;
      t.requiresGrad = true;
    });
    return result;
  }
}
