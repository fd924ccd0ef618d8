// Shape helpers shared by tensors and ops.
import { describe } from './options';

/** The most elements a tensor holds: the native layer counts them in a signed 32-bit int. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Checks a user-supplied shape (non-negative integers, at most MAX_ELEMENTS elements in all),
 * naming the argument in the error.
 */
export function checkShape(shape: unknown, what = 'shape'): number[] {
  if (!Array.isArray(shape))
    throw new Error(`${what}: expected an array of non-negative integers, got ${describe(shape)}`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new Error(`${what}: expected non-negative integers, got ${shapeText(shape)}`);
    }
  }
  const n = numel(shape);
  if (n > MAX_ELEMENTS)
    throw new Error(`${what}: ${shapeString(shape)} has ${n} elements, more than a tensor holds (2^31 - 1)`);
  return [...shape];
}

/** A shape that failed its check, as text (its entries may be anything). */
function shapeText(shape: unknown[]): string {
  const text = `[${shape.map((d) => (typeof d === 'number' ? String(d) : describe(d))).join(', ')}]`;
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}
