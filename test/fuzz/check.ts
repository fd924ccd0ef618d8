// How the fuzz properties compare a float32 result with the float64 reference, and what a
// failure says. Every tolerance is a bound on the float32 rounding error that a correct kernel
// may make, built by the property from the op's conditioning (see each property); this file
// only applies it.
import { types } from 'util';

/** The float32 unit roundoff: one rounding moves a value by at most U times its magnitude. */
export const U = 2 ** -24;
/**
 * The float32 underflow floor: the smallest normal. A result below it may come back flushed to
 * zero (FTZ) or as a subnormal with an absolute error up to it; every tolerance adds it.
 */
export const TINY = 2 ** -126;
export const FLT_MAX = 3.4028234663852886e38;

/** gamma_n = n U / (1 - n U): the classic bound on the relative error of a sum of n terms. */
export function gamma(n: number): number {
  const nu = n * U;
  return nu < 0.5 ? nu / (1 - nu) : Infinity;
}

/** A property's failure: the message says what differed, where, and by how much. */
export class Mismatch extends Error {
  override name = 'Mismatch';
}

export function fail(message: string): never {
  throw new Mismatch(message);
}

export function check(ok: boolean, message: () => string): void {
  if (!ok) fail(message());
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toPrecision(7) : String(x));

/**
 * The tolerance of a value that float32 cannot compute at all (an intermediate that overflows,
 * a variance that underflows to 0 under eps = 0): any result, Inf and NaN included, passes.
 */
export const ANY = -1;

/**
 * Checks |got[i] - want[i]| <= tol[i] + TINY for every i. A reference NaN needs a NaN; a
 * non-finite result needs the reference to be that infinity or within tolerance of overflowing
 * float32 (|want| + tol > FLT_MAX, same sign). A tolerance of Infinity only asks for the
 * result to be finite where the reference is (no NaN, no Inf out of a finite problem); ANY
 * asks nothing; a NaN tolerance is a fault of the test and fails.
 */
export function expectClose(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: ArrayLike<number> | number,
): void {
  check(got.length === want.length, () => `${what}: ${got.length} values, the reference has ${want.length}`);
  let worst = -1;
  let worstRatio = 0;
  let bad = 0;
  for (let i = 0; i < got.length; i++) {
    const g = got[i];
    const w = want[i];
    const t0 = typeof tol === 'number' ? tol : tol[i];
    if (t0 === ANY) continue;
    const t = t0 + TINY;
    let ok: boolean;
    let ratio = 0;
    if (Number.isNaN(w)) ok = Number.isNaN(g);
    else if (Number.isNaN(t)) ok = false;
    else if (!Number.isFinite(g))
      ok = !Number.isNaN(g) && Math.sign(g) === Math.sign(w) && (!Number.isFinite(w) || Math.abs(w) + t > FLT_MAX);
    else if (!Number.isFinite(w)) ok = false;
    else {
      ratio = Math.abs(g - w) / t;
      ok = ratio <= 1;
    }
    if (!ok) {
      bad++;
      if (worst < 0 || ratio > worstRatio || !Number.isFinite(g)) {
        worst = i;
        worstRatio = Number.isFinite(g) ? ratio : Infinity;
      }
    }
  }
  if (bad > 0) {
    const i = worst;
    const t = typeof tol === 'number' ? tol : tol[i];
    fail(
      `${what}: ${bad} of ${got.length} values out of tolerance; worst [${i}]: got ${fmt(got[i])}, reference ${fmt(want[i])}, ` +
        `|diff| ${fmt(Math.abs(got[i] - want[i]))} > tolerance ${fmt(t)} (+ ${TINY.toExponential(2)})`,
    );
  }
}

/** Checks bit-for-bit equality (0 and -0 equal, NaN equal to NaN): layout ops move values only. */
export function expectExact(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  check(got.length === want.length, () => `${what}: ${got.length} values, expected ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i];
    const w = Math.fround(want[i]);
    if (!(g === w || (Number.isNaN(g) && Number.isNaN(w))))
      fail(`${what}: [${i}] is ${fmt(g)}, expected exactly ${fmt(w)}`);
  }
}

/** Checks that every value is finite. */
export function expectFinite(what: string, got: ArrayLike<number>): void {
  for (let i = 0; i < got.length; i++)
    if (!Number.isFinite(got[i])) fail(`${what}: [${i}] is ${got[i]}, expected a finite value`);
}

/** Elementwise absolute values, as float64. */
export function abs(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, Math.abs);
}

/** Expects fn to throw an Error whose message starts with one of `names` (the bad argument). */
export function expectArgError(fn: () => unknown, names: readonly string[], what: string): void {
  let thrown: unknown = undefined;
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    thrown = e;
  }
  check(threw, () => `${what}: returned without an Error (expected one naming ${names.join(' or ')})`);
  // isNativeError, not instanceof: an Error made by a native addon belongs to the main realm,
  // which is not the realm of a test running under jest's vm sandbox.
  check(thrown instanceof Error || types.isNativeError(thrown), () => `${what}: threw ${String(thrown)}, not an Error`);
  const message = (thrown as Error).message;
  const named = names.some((n) => message.startsWith(n) && /^[:,. [(]/.test(message.slice(n.length) || ':'));
  check(
    named,
    () =>
      `${what}: threw "${message.slice(0, 200)}", which does not start with ${names.map((n) => `'${n}:'`).join(' or ')}`,
  );
}
