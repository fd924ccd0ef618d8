// Option objects and plain arguments of the public API, checked one way everywhere: a wrong
// type (requiresGrad: 'yes'), a non-object opts (5, null) or a misspelt option (casual: true)
// is an Error that names it, never a silent default. Cost: one pass over the option's keys.

/** How a value reads in an error message: its JSON (cut short) or its type. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'function') return 'a function';
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : typeof value;
}

/**
 * opts as an object whose keys are all among `keys` (undefined -> {}). A key holding undefined
 * counts as absent, so spreading a partial config stays allowed.
 */
export function checkOptions<T extends object>(
  opts: T | undefined,
  keys: readonly string[],
  what = 'opts',
): Partial<T> {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new Error(
      `${what}: expected an object${keys.length ? ` with ${keys.join(', ')}` : ''}, got ${describe(opts)}`,
    );
  }
  for (const [key, value] of Object.entries(opts)) {
    if (value !== undefined && !keys.includes(key)) {
      throw new Error(`${what}.${key}: unknown option (expected ${keys.length ? keys.join(', ') : 'none'})`);
    }
  }
  return opts;
}

/** A boolean option: `fallback` when undefined, else it must be a boolean. */
export function optBoolean(value: unknown, what: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new Error(`${what}: expected a boolean, got ${describe(value)}`);
  return value;
}

/** A finite number in [lo, hi]; `fallback` when undefined (if given). */
export function optNumber(
  value: unknown,
  what: string,
  fallback: number | undefined,
  lo = -Infinity,
  hi = Infinity,
): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi) {
    const range = lo === -Infinity && hi === Infinity ? 'a finite number' : `a finite number in [${lo}, ${hi}]`;
    throw new Error(`${what}: expected ${range}, got ${describe(value)}`);
  }
  return value;
}

/** One of a list of strings; `fallback` when undefined. */
export function optChoice<T extends string>(value: unknown, what: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new Error(`${what}: expected ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}
