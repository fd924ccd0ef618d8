// The random projection of FAVOR+ (Performer): orthogonal random features. M rows in R^F, drawn
// in blocks of F rows that are exactly orthogonal to each other (the rows of a Gaussian F x F
// matrix orthonormalised: a Haar-random rotation), each row then scaled to the length of an
// independent Gaussian vector (so every row is marginally N(0, I_F), as FAVOR+'s unbiasedness
// needs) or to sqrt(F). Orthogonal rows lower the variance of the softmax-kernel estimate for
// the same M (Choromanski et al., 2021, Theorem 2). Drawn on the host in float64 from a seeded
// Generator: the same seed gives the same features on every device.
// Cost: O(M F^2) host flops (Gram-Schmidt, twice for orthogonality to rounding).
import { checkDevice, Device } from '../native';
import { checkOptions, optChoice } from '../options';
import { checkGenerator, defaultGenerator, Generator } from '../random';
import { tensor, Tensor } from '../tensor';

export interface RandomFeaturesOptions {
  /** The generator of the draw (ff.defaultGenerator when omitted). */
  generator?: Generator;
  /** 'gaussian' (default): row lengths of Gaussian vectors; 'fixed': every row of length sqrt(F). */
  scaling?: 'gaussian' | 'fixed';
  device?: Device;
}

function checkCount(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65536)
    throw new Error(`${what}: expected an integer in [1, 65536], got ${String(n)}`);
  return n;
}

/** F orthonormal rows of a Gaussian F x F matrix (classical Gram-Schmidt, applied twice). */
function orthonormalBlock(F: number, g: Generator): Float64Array {
  for (;;) {
    const a = Float64Array.from(g.normal(F * F));
    let ok = true;
    for (let r = 0; r < F && ok; r++) {
      const row = a.subarray(r * F, (r + 1) * F);
      for (let pass = 0; pass < 2; pass++) {
        for (let p = 0; p < r; p++) {
          const prev = a.subarray(p * F, (p + 1) * F);
          let dot = 0;
          for (let c = 0; c < F; c++) dot += row[c] * prev[c];
          for (let c = 0; c < F; c++) row[c] -= dot * prev[c];
        }
      }
      let norm = 0;
      for (let c = 0; c < F; c++) norm += row[c] * row[c];
      norm = Math.sqrt(norm);
      if (!(norm > 1e-8)) ok = false; // a (measure-zero) dependent draw: draw the block again
      for (let c = 0; c < F; c++) row[c] /= norm;
    }
    if (ok) return a;
  }
}

/**
 * Orthogonal random features [M, F] for ff.performerAttention: blocks of F mutually orthogonal
 * rows, each scaled to a Gaussian vector's length ('gaussian') or sqrt(F) ('fixed').
 */
export function orthogonalRandomFeatures(M: number, F: number, opts?: RandomFeaturesOptions): Tensor {
  checkCount(M, 'M');
  checkCount(F, 'F');
  const o = checkOptions(opts, ['generator', 'scaling', 'device']);
  const scaling = optChoice(o.scaling, 'opts.scaling', ['gaussian', 'fixed'] as const, 'gaussian');
  checkGenerator(o.generator, 'opts.generator');
  if (o.device !== undefined) checkDevice(o.device, 'opts.device');
  if (M * F > 2 ** 26) throw new Error(`M, F: expected M * F <= 2^26 features, got ${M} x ${F}`);
  const g = o.generator ?? defaultGenerator;
  const out = new Float32Array(M * F);
  for (let r0 = 0; r0 < M; r0 += F) {
    const block = orthonormalBlock(F, g);
    const rows = Math.min(F, M - r0);
    out.set(Float32Array.from(block.subarray(0, rows * F)), r0 * F);
  }
  const lengths = scaling === 'fixed' ? null : g.normal(M * F);
  for (let r = 0; r < M; r++) {
    let len = Math.sqrt(F);
    if (lengths !== null) {
      let s = 0;
      for (let c = 0; c < F; c++) s += lengths[r * F + c] ** 2;
      len = Math.sqrt(s);
    }
    for (let c = 0; c < F; c++) out[r * F + c] *= len;
  }
  return tensor(out, [M, F], { device: o.device });
}
