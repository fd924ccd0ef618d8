// Sinusoidal position encoding (Vaswani et al. 2017) in Transformer-XL's layout (its
// PositionalEmbedding): for a position p and the frequencies f_i = 10000^(-2i/d), i < d/2,
//     pe(p) = [sin(p f_0), ..., sin(p f_{d/2-1}), cos(p f_0), ..., cos(p f_{d/2-1})]
// (sines in the first half, cosines in the second, rather than interleaved: the same features
// in another order). SinusoidalPositions holds the table of `length` positions as a buffer and
// returns, for a sequence of T <= length tokens, the positions Transformer-XL's absolute model
// (attn_type 2) adds: T - 1, T - 2, ..., 0, so the last token is always at position 0.
import type { Device } from '../native';
import { shapeString } from '../shape';
import { checkOptions } from '../options';
import { tensor, Tensor } from '../tensor';
import { slice } from '../ops/layout';
import { checkFeatures } from './linear';
import { Module } from './module';

/** The encodings of positions [length, dim] (row r = position positions[r]), as float32 values. */
export function sinusoidalEncoding(positions: ArrayLike<number>, dim: number): Float32Array {
  checkFeatures(dim, 'dim');
  if (dim % 2 !== 0) throw new Error(`dim: expected an even number of features (sines and cosines), got ${dim}`);
  const half = dim / 2;
  const out = new Float32Array(positions.length * dim);
  for (let r = 0; r < positions.length; r++) {
    const p = positions[r];
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(10000, (-2 * i) / dim);
      out[r * dim + i] = Math.sin(angle);
      out[r * dim + half + i] = Math.cos(angle);
    }
  }
  return out;
}

export class SinusoidalPositions extends Module {
  /** [length, dim]: row r holds position length - 1 - r. */
  readonly table: Tensor;

  constructor(
    readonly length: number,
    readonly dim: number,
    options?: { device?: Device },
  ) {
    super();
    checkFeatures(length, 'length');
    const opts = checkOptions(options, ['device']);
    const positions = Array.from({ length }, (_, r) => length - 1 - r);
    this.table = this.registerBuffer(
      'table',
      tensor(sinusoidalEncoding(positions, dim), [length, dim], { device: opts.device }),
    );
  }

  /** The encodings [T, dim] of a sequence of T tokens: positions T - 1 down to 0. */
  forward(T: number): Tensor {
    if (!Number.isInteger(T) || T < 1 || T > this.length) {
      throw new Error(
        `T: expected a sequence length in [1, ${this.length}] (the table ${shapeString(this.table.shape)}), got ${String(T)}`,
      );
    }
    return slice(this.table, 0, this.length - T, this.length);
  }
}
