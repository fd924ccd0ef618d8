// Test helpers: seeded random inputs and error measures relative to the largest value.
import * as ff from '../../lib';

export const device = (): ff.Device => ff.getDefaultDevice();

/** A small deterministic generator (mulberry32), so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function uniform(n: number, lo: number, hi: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** max |a - b| / max |b|; 0 when both are all zeros. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

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
  return pair(uniform(shape.reduce((a, b) => a * b, 1), lo, hi, seed), shape, requiresGrad);
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
