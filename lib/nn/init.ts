// Parameter initialisation (torch.nn.init): each helper overwrites a tensor's values in place
// and returns it. Random values come from a seeded Generator (lib/random.ts; the default one
// unless opts.generator is given), drawn on the host and uploaded, so the same seed gives the
// same weights on every device.
import { defaultGenerator, Generator } from '../random';
import { shapeString } from '../shape';
import { checkTensor, Tensor } from '../tensor';

export interface InitOptions {
  generator?: Generator;
}

function write(t: Tensor, values: Float32Array, what: string): Tensor {
  checkTensor(t, what);
  t.backend.uploadInto(t.storage(what), values);
  return t;
}

function generatorOf(opts: InitOptions): Generator {
  const g = opts.generator === undefined ? defaultGenerator : opts.generator;
  if (!(g instanceof Generator)) throw new Error('opts.generator: expected a Generator');
  return g;
}

function checkStd(std: number): void {
  if (!Number.isFinite(std) || std < 0) throw new Error(`std: expected a finite number >= 0, got ${std}`);
}

/** Values from N(mean, std^2). */
export function normal_(t: Tensor, mean = 0, std = 1, opts: InitOptions = {}): Tensor {
  checkStd(std);
  return write(t, generatorOf(opts).normal(checkTensor(t, 'tensor').size, mean, std), 'tensor');
}

/** Values from N(mean, std^2) redrawn until they fall in [a, b] (default: two std around mean). */
export function truncNormal_(
  t: Tensor,
  mean = 0,
  std = 1,
  a = mean - 2 * std,
  b = mean + 2 * std,
  opts: InitOptions = {},
): Tensor {
  checkStd(std);
  return write(t, generatorOf(opts).truncatedNormal(checkTensor(t, 'tensor').size, mean, std, a, b), 'tensor');
}

/** Values uniform in [lo, hi). */
export function uniform_(t: Tensor, lo = 0, hi = 1, opts: InitOptions = {}): Tensor {
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi))
    throw new Error(`lo, hi: expected finite lo <= hi, got [${lo}, ${hi})`);
  return write(t, generatorOf(opts).uniform(checkTensor(t, 'tensor').size, lo, hi), 'tensor');
}

export function constant_(t: Tensor, value: number): Tensor {
  checkTensor(t, 'tensor');
  if (typeof value !== 'number') throw new Error('value: expected a number');
  t.backend.fill(t.storage('tensor'), value);
  return t;
}

export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

/** fan_in and fan_out of a weight [out, in, ...] (torch's _calculate_fan_in_and_fan_out). */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2)
    throw new Error(`tensor: fan in and fan out need at least 2 dimensions, got ${shapeString(shape)}`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** Xavier/Glorot uniform: U(-a, a), a = gain sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform_(t: Tensor, gain = 1, opts: InitOptions = {}): Tensor {
  const { fanIn, fanOut } = fans(checkTensor(t, 'tensor').shape);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -a, a, opts);
}
