// Seeded random numbers for the image pipeline, on top of the library's Philox generator
// (lib/random.ts). Every random decision of the loader comes from a stream named by a path of
// integers, deriveSeed(seed, epoch, kind, index), so a sample's crop, flip and erasing depend only
// on (seed, epoch, its position in the epoch), never on the order in which batches were prepared:
// prefetching more or fewer batches gives the same data.
import { Generator } from '../random';

const TWO_32 = 4294967296;

function checkPathPart(p: number, what: string): void {
  if (!Number.isSafeInteger(p) || p < 0) throw new Error(`${what}: expected an integer in [0, 2^53), got ${String(p)}`);
}

/** A new seed in [0, 2^53) for the stream named by `path` under `seed` (one Philox block per step). */
export function deriveSeed(seed: number, ...path: number[]): number {
  checkPathPart(seed, 'seed');
  let s = seed;
  for (const p of path) {
    checkPathPart(p, 'stream index');
    const g = new Generator(s);
    g.setState({ seed: s, offset: p });
    const u = g.uint32(2);
    s = (u[0] >>> 11) * TWO_32 + u[1];
  }
  return s;
}

/** Uniform, integer, normal, beta draws and permutations from one seeded stream. */
export class ImageRng {
  private readonly gen: Generator;
  private buffer: Uint32Array = new Uint32Array(0);
  private next = 0;

  constructor(seed: number) {
    this.gen = new Generator(seed);
  }

  private uint32(): number {
    if (this.next === this.buffer.length) {
      this.buffer = this.gen.uint32(64);
      this.next = 0;
    }
    return this.buffer[this.next++];
  }

  /** A double uniform in [lo, hi), with 53 random bits (as numpy's random()). */
  uniform(lo = 0, hi = 1): number {
    const u = ((this.uint32() >>> 5) * 67108864 + (this.uint32() >>> 6)) / 9007199254740992;
    return lo + (hi - lo) * u;
  }

  /** An integer uniform in [lo, hi) (hi > lo). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo));
  }

  /** One draw from N(0, 1) (Box-Muller). */
  normal(): number {
    const u1 = 1 - this.uniform(); // in (0, 1]: the log is finite
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** n draws from N(0, 1) at once. */
  normals(n: number): Float32Array {
    return this.gen.normal(n);
  }

  /** log of a Gamma(shape, 1) draw (Marsaglia-Tsang; shape < 1 by Gamma(shape + 1) * U^(1/shape)). */
  private logGamma(shape: number): number {
    if (shape < 1) return this.logGamma(shape + 1) + Math.log(1 - this.uniform()) / shape;
    const d = shape - 1 / 3,
      c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number, v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.uniform();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return Math.log(d * v);
    }
  }

  /** A Beta(a, b) draw, computed from log-gammas so that small a, b (draws near 0 or 1) stay finite. */
  beta(a: number, b: number): number {
    const lx = this.logGamma(a),
      ly = this.logGamma(b);
    return 1 / (1 + Math.exp(ly - lx));
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }
}
