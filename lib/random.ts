// The library's seeded random numbers: a counter-based generator (Philox4x32-10, as PyTorch's
// CUDA generator and curand use) whose whole state is a seed and a counter offset, so that it is
// saved in a checkpoint as two numbers and a resumed run draws exactly the numbers the
// uninterrupted run would have. Host draws (parameter init) and device kernels (dropout masks)
// share the counter space: a kernel reserves a range of counters with reserve() and computes its
// numbers from (seed, offset) on any backend.
//
//   ff.manualSeed(0);                               // seeds the default generator
//   const g = new ff.Generator(42);                 // or a generator of one's own
//   g.normal(4, 0, 0.02);  g.getState();  g.setState(state);

/** The state of a generator: everything needed to continue its stream exactly. */
export interface RngState {
  /** The Philox key, an integer in [0, 2^53). */
  seed: number;
  /** The next unused counter (each counter gives four 32-bit numbers). */
  offset: number;
}

/** PyTorch's default seed, so that a fresh process draws the same numbers every run. */
export const DEFAULT_SEED = 67280421310721;

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO_32 = 4294967296;

/** High 32 bits of the 64-bit product of two uint32 (exact: every partial product is below 2^53). */
function mulhi(a: number, b: number): number {
  const ah = a >>> 16,
    al = a & 0xffff,
    bh = b >>> 16,
    bl = b & 0xffff;
  const mid = ah * bl + al * bh + ((al * bl) >>> 16);
  return (ah * bh + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32-10 of counter (c0, c1, 0, 0) under key (k0, k1): four uint32 into out[at..at+4). */
function philox(c0: number, c1: number, k0: number, k1: number, out: Uint32Array, at: number): void {
  let x0 = c0,
    x1 = c1,
    x2 = 0,
    x3 = 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, x0),
      lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulhi(M1, x2),
      lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ k0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ k1) >>> 0;
    x3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[at] = x0;
  out[at + 1] = x1;
  out[at + 2] = x2;
  out[at + 3] = x3;
}

function checkSeed(seed: unknown, what: string): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`${what}: expected an integer in [0, 2^53), got ${String(seed)}`);
  }
  return seed;
}

function checkCount(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new Error(`${what}: expected a non-negative integer, got ${String(n)}`);
  }
  return n;
}

export class Generator {
  private seed: number;
  private offset = 0;

  constructor(seed: number = DEFAULT_SEED) {
    this.seed = checkSeed(seed, 'seed');
  }

  /** Restarts the stream of a seed (torch.Generator.manual_seed). */
  manualSeed(seed: number): this {
    this.seed = checkSeed(seed, 'seed');
    this.offset = 0;
    return this;
  }

  initialSeed(): number {
    return this.seed;
  }

  getState(): RngState {
    return { seed: this.seed, offset: this.offset };
  }

  setState(state: RngState): void {
    if (state === null || typeof state !== 'object') throw new Error('state: expected { seed, offset }');
    this.seed = checkSeed(state.seed, 'state.seed');
    this.offset = checkCount(state.offset, 'state.offset');
  }

  /**
   * Reserves `counters` Philox counters for a kernel (each gives four 32-bit numbers) and
   * returns the key and the first counter; the next draw starts after them.
   */
  reserve(counters: number): RngState {
    checkCount(counters, 'counters');
    const state = this.getState();
    this.offset += counters;
    if (!Number.isSafeInteger(this.offset))
      throw new Error('Generator: the counter offset passed 2^53; reseed with manualSeed()');
    return state;
  }

  /** n uniformly random uint32, four per counter. */
  uint32(n: number): Uint32Array {
    checkCount(n, 'n');
    const blocks = Math.ceil(n / 4);
    const out = new Uint32Array(blocks * 4);
    const { seed, offset } = this.reserve(blocks);
    const k0 = (seed % TWO_32) >>> 0,
      k1 = Math.floor(seed / TWO_32) >>> 0;
    for (let b = 0; b < blocks; b++) {
      const c = offset + b;
      philox((c % TWO_32) >>> 0, Math.floor(c / TWO_32) >>> 0, k0, k1, out, 4 * b);
    }
    return out.subarray(0, n);
  }

  /** n values uniform in [lo, hi) (24 random bits each, as float32 holds). */
  uniform(n: number, lo = 0, hi = 1): Float32Array {
    const u = this.uint32(n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * ((u[i] >>> 8) / 16777216);
    return out;
  }

  /** n values from N(mean, std^2), by the Box-Muller transform (two values per pair of uint32). */
  normal(n: number, mean = 0, std = 1): Float32Array {
    const u = this.uint32(n + (n & 1));
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u1 = ((u[i] >>> 8) + 0.5) / 16777216; // in (0, 1): the log is finite
      const u2 = (u[i + 1] >>> 8) / 16777216;
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }

  /**
   * n values from N(mean, std^2) restricted to [a, b] (rejection: draws are repeated until they
   * fall inside, so [a, b] must hold a reasonable share of the mass).
   */
  truncatedNormal(n: number, mean = 0, std = 1, a = mean - 2 * std, b = mean + 2 * std): Float32Array {
    if (!(a < b)) throw new Error(`a, b: expected a < b, got [${a}, ${b}]`);
    const out = new Float32Array(n);
    let filled = 0;
    for (let round = 0; filled < n; round++) {
      if (round === 1000) throw new Error(`a, b: [${a}, ${b}] holds too little of N(${mean}, ${std}^2) to sample`);
      const draw = this.normal(Math.max(16, 2 * (n - filled)), mean, std);
      for (let i = 0; i < draw.length && filled < n; i++) if (draw[i] >= a && draw[i] <= b) out[filled++] = draw[i];
    }
    return out;
  }
}

/** The generator used when none is given (dropout masks, parameter init). */
export const defaultGenerator = new Generator();

/** Seeds the default generator (torch.manual_seed). */
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}

export function getRngState(): RngState {
  return defaultGenerator.getState();
}

export function setRngState(state: RngState): void {
  defaultGenerator.setState(state);
}

/** A generator option: undefined (the default generator is used) or a Generator. */
export function checkGenerator(g: unknown, what: string): Generator | undefined {
  if (g !== undefined && !(g instanceof Generator)) {
    throw new Error(`${what}: expected a Generator, got ${g === null ? 'null' : typeof g}`);
  }
  return g;
}
