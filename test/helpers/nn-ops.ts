// Finite-difference checks shared by the nn-ops tests: central differences of a float64
// reference function, and a directional check of a native op's gradients against central
// differences of its own float32 forward.
import * as ff from '../../lib';
import { uniform } from './compare';

/** d f / d x_i by central differences (float64), for every element of x (restored afterwards). */
export function centralDiff(f: () => number, x: ff.reference.RefArray, h = 1e-6): Float64Array {
  return x.data.map((v, i) => {
    x.data[i] = v + h;
    const up = f();
    x.data[i] = v - h;
    const down = f();
    x.data[i] = v;
    return (up - down) / (2 * h);
  });
}

export interface NativeInput {
  values: Float32Array;
  shape: number[];
}

/**
 * L(x) = sum(op(x) * W) for a fixed random W: compares sum_i grad_i . u_i (backward) with
 * (L(x + h u) - L(x - h u)) / 2h along a random direction u per input (float32 forward, float64 sums).
 * Returns [finite difference, analytic].
 */
export function directionalCheck(
  op: (xs: ff.Tensor[]) => ff.Tensor,
  inputs: NativeInput[],
  seed: number,
  h = 1e-2,
): [number, number] {
  const dirs = inputs.map((x, n) => uniform(x.values.length, -1, 1, seed + 100 + n));
  let W: Float32Array | null = null;
  const loss = (vals: Float32Array[]): number =>
    ff.tidy(() => {
      const y = op(vals.map((v, n) => ff.tensor(v, inputs[n].shape)));
      W ??= uniform(y.size, -1, 1, seed);
      const out = y.toFloat32Array();
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * (W as Float32Array)[i];
      return s;
    });
  const base = inputs.map((x) => x.values);
  loss(base);
  const grads = ff.tidy(() => {
    const ts = inputs.map((x) => ff.tensor(x.values, x.shape, { requiresGrad: true }));
    const y = op(ts);
    y.backward(ff.tensor(W as Float32Array, [...y.shape]));
    return ts.map((t) => (t.grad ? t.grad.toFloat32Array() : new Float32Array(t.size)));
  });
  const shifted = (sign: number) => base.map((v, n) => v.map((x, i) => x + sign * h * dirs[n][i]));
  const fd = (loss(shifted(1)) - loss(shifted(-1))) / (2 * h);
  const analytic = grads.reduce((s, g, n) => s + g.reduce((t, v, i) => t + v * dirs[n][i], 0), 0);
  return [fd, analytic];
}
