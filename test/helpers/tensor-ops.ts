// Helpers of the tensor-ops tests: run an op forward and backward on the test device (nothing
// left allocated), and check its gradient against central differences of its own forward.
import * as ff from '../../lib';
import { uniform } from './compare';

export interface Input {
  values: Float32Array;
  shape: number[];
}

export function input(shape: number[], lo: number, hi: number, seed: number): Input {
  return {
    values: uniform(
      shape.reduce((a, b) => a * b, 1),
      lo,
      hi,
      seed,
    ),
    shape,
  };
}

export function ref(x: Input): ff.reference.RefArray {
  return ff.reference.refArray(x.values, x.shape);
}

export interface OpRun {
  out: Float32Array;
  shape: number[];
  /** The upstream gradient used for backward (seeded uniform in [-1, 1)). */
  grad: Float32Array;
  /** The gradient of each input, in order. */
  grads: Float32Array[];
}

/** fn on tensors of `inputs` (all requiring grad), then backward with a seeded upstream gradient. */
export function runOp(fn: (...ts: ff.Tensor[]) => ff.Tensor, inputs: Input[], seed = 99): OpRun {
  return ff.tidy(() => {
    const ts = inputs.map((x) => ff.tensor(x.values, x.shape, { requiresGrad: true }));
    const out = fn(...ts);
    const grad = uniform(out.size, -1, 1, seed);
    out.backward(ff.tensor(grad, [...out.shape]));
    return {
      out: out.toFloat32Array(),
      shape: [...out.shape],
      grad,
      grads: ts.map((t) => (t.grad === null ? new Float32Array(0) : t.grad.toFloat32Array())),
    };
  });
}

/** Forward only, on tensors that do not require grad. */
export function forward(fn: (...ts: ff.Tensor[]) => ff.Tensor, inputs: Input[]): Float32Array {
  return ff.tidy(() => fn(...inputs.map((x) => ff.tensor(x.values, x.shape))).toFloat32Array());
}

/**
 * |directional derivative by central differences - gradient . direction|, relative to
 * max(1, |gradient . direction|), for L = sum(W * fn(inputs)) along a seeded direction.
 */
export function directionalError(fn: (...ts: ff.Tensor[]) => ff.Tensor, inputs: Input[], h = 1e-2, seed = 7): number {
  const run = runOp(fn, inputs, seed);
  const W = run.grad;
  const dirs = inputs.map((x, i) => uniform(x.values.length, -1, 1, seed * 31 + i));
  const loss = (sign: number): number => {
    const shifted = inputs.map((x, i) => ({
      shape: x.shape,
      values: x.values.map((v, k) => v + sign * h * dirs[i][k]),
    }));
    return forward(fn, shifted).reduce((s, v, k) => s + v * W[k], 0);
  };
  const fd = (loss(1) - loss(-1)) / (2 * h);
  const analytic = run.grads.reduce((s, g, i) => s + g.reduce((t, v, k) => t + v * dirs[i][k], 0), 0);
  return Math.abs(fd - analytic) / Math.max(1, Math.abs(analytic));
}
