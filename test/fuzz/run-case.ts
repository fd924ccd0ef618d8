// Running one fuzz case: case i of a run with seed S is drawn from property pick(S, i) with
// fast-check seed caseSeed(S, i), so `--seed S --case i` replays it anywhere. A failing case is
// shrunk by fast-check (within a time limit) to a smaller case that still fails. Every case
// also checks that it left no tensor behind, on success and on error paths alike.
import fc from 'fast-check';
import * as ff from '../../lib';
import { catalogue } from './catalogue';
import { Mismatch } from './check';
import type { Env, Property } from './property';

/** The fast-check seed of case `index` of a run with seed `seed` (a 32-bit mix of both). */
export function caseSeed(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The property of case `index`, picked by weight from the catalogue (or from `only`). */
export function pick(seed: number, index: number, only?: readonly string[]): Property {
  const pool =
    only && only.length > 0
      ? catalogue.filter((p) => only.some((o) => p.name === o || p.name.startsWith(`${o}:`)))
      : catalogue;
  if (pool.length === 0) throw new Error(`--only: no property named ${only?.join(', ')}`);
  const total = pool.reduce((s, p) => s + p.weight, 0);
  let x = ff.reference.rng(caseSeed(seed, index) ^ 0x5bd1e995)() * total;
  for (const p of pool) {
    x -= p.weight;
    if (x < 0) return p;
  }
  return pool[pool.length - 1];
}

export function findProperty(name: string): Property {
  const p = catalogue.find((q) => q.name === name);
  if (!p) throw new Error(`property: no property named ${JSON.stringify(name)}`);
  return p;
}

/** The case a property draws with a fast-check seed. */
export function drawCase(p: Property, seed: number, env: Env): unknown {
  return fc.sample(p.arbitrary(env), { seed, numRuns: 1 })[0];
}

function liveTensors(): number {
  return ff.memory().numTensors;
}

/** Runs one case; throws what the property threw, or a Mismatch for a leaked tensor. */
export function runCase(p: Property, c: unknown, env: Env): void {
  const before = liveTensors();
  ff.tidy(() => {
    p.run(c, env);
  });
  // Later cases compare with their own count, so a leak fails this case only. (A case that
  // throws is reported by its error; tidy() has disposed what it made.)
  const after = liveTensors();
  if (after !== before)
    throw new Mismatch(
      `leak: ${after - before} tensor(s) still live after the case (${before} before, ${after} after)`,
    );
}

export interface CaseResult {
  index: number;
  property: string;
  caseSeed: number;
  ok: boolean;
  /** The case as drawn, and (when shrinking found one) a smaller one that fails too. */
  case: unknown;
  shrunk?: unknown;
  error?: string;
  ms: number;
}

/** Runs case `index` of the run `seed` on env.device; shrinks a failure for up to shrinkMs. */
export function runIndexed(
  seed: number,
  index: number,
  env: Env,
  shrinkMs: number,
  only?: readonly string[],
): CaseResult {
  const p = pick(seed, index, only);
  const s = caseSeed(seed, index);
  const drawn = drawCase(p, s, env);
  const t0 = Date.now();
  try {
    runCase(p, drawn, env);
    return { index, property: p.name, caseSeed: s, ok: true, case: drawn, ms: Date.now() - t0 };
  } catch (e) {
    const error = describeError(e);
    const ms = Date.now() - t0;
    let shrunk: unknown;
    if (shrinkMs > 0) {
      const details = fc.check(
        fc.property(p.arbitrary(env), (c) => runCase(p, c, env)),
        {
          seed: s,
          numRuns: 1,
          interruptAfterTimeLimit: shrinkMs,
          markInterruptAsFailure: false,
        },
      );
      if (details.failed && details.counterexample) {
        const small = details.counterexample[0];
        if (JSON.stringify(small) !== JSON.stringify(drawn)) shrunk = small;
      }
    }
    return { index, property: p.name, caseSeed: s, ok: false, case: drawn, shrunk, error, ms };
  }
}

export function describeError(e: unknown): string {
  if (e instanceof Mismatch) return e.message;
  if (e instanceof Error)
    return `${e.name}: ${e.message}${e.stack ? `\n${e.stack.split('\n').slice(1, 4).join('\n')}` : ''}`;
  return `threw ${String(e)}`;
}
