// The fuzz cases' building blocks as fast-check arbitraries. A case is plain JSON (printed on a
// failure, replayed from it): tensors are described by a shape and a seeded value recipe, not
// by their values, and made on the device when the case runs.
import fc from 'fast-check';
import * as ff from '../../lib';

/** How a tensor's values are drawn: a kind, a magnitude and a seed. */
export interface ValueSpec {
  /**
   * uniform: U(-1, 1) * scale;  positive: U(0, 1) * scale;  spread: random signs with
   * magnitudes log-uniform over [1e-30, 1] * scale;  constant: scale everywhere;  grid: integers
   * in [-3, 3] * scale (ties and exact zeros);  near: 1 + U(-1, 1) * 1e-6, times scale (values
   * that differ in their last bits).
   */
  kind: 'uniform' | 'positive' | 'spread' | 'constant' | 'grid' | 'near';
  scale: number;
  seed: number;
}

/** The values of a spec: n float32 numbers, the same for the same spec on every run. */
export function valuesOf(spec: ValueSpec, n: number): Float32Array {
  const r = ff.reference.rng(spec.seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = r();
    switch (spec.kind) {
      case 'uniform':
        out[i] = (2 * a - 1) * spec.scale;
        break;
      case 'positive':
        out[i] = a * spec.scale;
        break;
      case 'spread':
        out[i] = (r() < 0.5 ? -1 : 1) * 10 ** (-30 * a) * spec.scale;
        break;
      case 'constant':
        out[i] = spec.scale;
        break;
      case 'grid':
        out[i] = (Math.floor(7 * a) - 3) * spec.scale;
        break;
      case 'near':
        out[i] = (1 + (2 * a - 1) * 1e-6) * spec.scale;
        break;
    }
  }
  return out;
}

/** Magnitudes 1e-30 .. 1e4, mostly around 1 (where models live), the extremes often enough. */
export const magnitude = (hi = 1e4): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(0.5, 1, 2) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(1e-30, 1e-20, 1e-10, 1e-5, 1e-2, 0.1, 10, 100, 1e3, 1e4).filter((m) => m <= hi),
    },
    { weight: 2, arbitrary: fc.integer({ min: -30, max: Math.floor(Math.log10(hi)) }).map((e) => 10 ** e) },
  );

export const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

/** A value recipe: mostly uniform, sometimes the awkward kinds. */
export const values = (
  hi = 1e4,
  kinds: ValueSpec['kind'][] = ['uniform', 'positive', 'spread', 'constant', 'grid', 'near'],
): fc.Arbitrary<ValueSpec> =>
  fc.record({
    kind: fc.oneof(
      { weight: 4, arbitrary: fc.constant(kinds[0]) },
      { weight: 3, arbitrary: fc.constantFrom(...kinds) },
    ),
    scale: magnitude(hi),
    seed,
  });

/** A size in [1, max]: 1 and small sizes often, every size up to max sometimes. */
export const size = (max: number): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constant(1) },
    { weight: 4, arbitrary: fc.integer({ min: 1, max: Math.min(max, 8) }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: Math.min(max, 64) }) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max }) },
  );

/**
 * Shrinks dims (largest first, halving) until cost(dims) <= budget: large sizes stay possible
 * one at a time, and a case's reference and emulator time stay bounded.
 */
export function withinBudget<T extends Record<string, number>>(
  dims: T,
  cost: (d: T) => number,
  budget: number,
  fixed: (keyof T)[] = [],
): T {
  const d = { ...dims };
  while (cost(d) > budget) {
    let key: keyof T | null = null;
    for (const k of Object.keys(d) as (keyof T)[])
      if (!fixed.includes(k) && d[k] > 1 && (key === null || d[k] > d[key])) key = k;
    if (key === null) break;
    (d as Record<keyof T, number>)[key] = Math.max(1, Math.floor(d[key] / 2));
  }
  return d;
}

/** A float32 tensor and its float64 twin for the reference. */
export interface Made {
  t: ff.Tensor;
  values: Float32Array;
  ref: ff.reference.RefArray;
}

export function make(shape: number[], spec: ValueSpec, device: ff.Device, requiresGrad = false): Made {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = valuesOf(spec, n);
  return { t: ff.tensor(values, shape, { device, requiresGrad }), values, ref: ff.reference.refArray(values, shape) };
}

/** The gradient of a leaf as an array (zeros when it received none). */
export function gradOf(t: ff.Tensor): Float32Array {
  return t.grad === null ? new Float32Array(t.size) : t.grad.toFloat32Array();
}
