// Test helpers: the test device, seeded tensor/reference pairs, and the reference's error measure.
import * as ff from '../../lib';

export const device = (): ff.Device => ff.getDefaultDevice();

export const { rng, uniform, relErr } = ff.reference;

/** A tensor on the test device and the same values as a float64 reference array. */
export interface Pair {
  t: ff.Tensor;
  ref: ff.reference.RefArray;
}

export function pair(values: Float32Array, shape: number[], requiresGrad = true): Pair {
  return {
    t: ff.tensor(values, shape, { device: device(), requiresGrad }),
    ref: ff.reference.refArray(values, shape),
  };
}

/** Uniform values in [lo, hi) as a tensor/reference pair. */
export function randomPair(shape: number[], lo: number, hi: number, seed: number, requiresGrad = true): Pair {
  return pair(
    uniform(
      shape.reduce((a, b) => a * b, 1),
      lo,
      hi,
      seed,
    ),
    shape,
    requiresGrad,
  );
}

/** The gradient a tensor received, as an array (throws if it received none). */
export function gradOf(t: ff.Tensor): Float32Array {
  if (t.grad === null) throw new Error('no gradient');
  return t.grad.toFloat32Array();
}

/** Whether a backend's addon is built and its device usable here. */
export function available(d: ff.Device): boolean {
  return ff.backends().some((b) => b.device === d && b.available);
}
