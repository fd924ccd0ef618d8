// What an image dataset is to the rest of the library (ImageDataset: a length, a nominal shape,
// class names, get(i) -> pixels [channels, height, width] in [0, 1] with a class id, and
// decode(i) -> the 8-bit image as decoded, at its own size, which the loader's transforms start
// from), the checks the loaders share, and the in-memory dataset of 8-bit images that
// Fashion-MNIST and CIFAR-10 are.
import { ByteImage, fromPlanarBytes } from './byte-image';

export interface ImageSample {
  /** [channels, height, width], row-major, values in [0, 1]; a fresh array the caller may modify. */
  pixels: Float32Array;
  label: number;
}

export interface ImageDataset {
  readonly name: string;
  readonly length: number;
  readonly numClasses: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly classNames: string[];
  /** The sample at the dataset's nominal height x width, as floats. */
  get(i: number): Promise<ImageSample>;
  /** The sample as decoded (an image folder's files at their own sizes), as bytes. */
  decode(i: number): Promise<DecodedSample>;
}

export interface DecodedSample {
  image: ByteImage;
  label: number;
}

export type Split = 'train' | 'test';

export function checkSplit(split: unknown): Split {
  if (split !== 'train' && split !== 'test')
    throw new Error(`split: expected 'train' or 'test', got ${JSON.stringify(split)}`);
  return split;
}

/** Throws unless i indexes one of the dataset's `length` samples. */
export function checkSampleIndex(name: string, length: number, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= length) {
    throw new Error(`${name}: sample index ${String(i)} out of range [0, ${length})`);
  }
}

/** Throws unless opts is undefined or an object whose keys are all in `known`. */
export function checkOptionKeys(opts: object | undefined, known: readonly string[], what: string): void {
  if (opts === undefined) return;
  if (opts === null || typeof opts !== 'object') throw new Error(`${what}: expected an object, got ${String(opts)}`);
  for (const key of Object.keys(opts)) {
    if (!known.includes(key)) throw new Error(`${what}: unknown option '${key}' (expected one of ${known.join(', ')})`);
  }
}

/** Throws unless every label is a class id below numClasses; `source` (a file) names them in errors. */
export function checkLabels(labels: ArrayLike<number>, numClasses: number, source: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (!(labels[i] >= 0 && labels[i] < numClasses)) {
      throw new Error(`${source}: label ${labels[i]} of sample ${i} is not a class id in [0, ${numClasses})`);
    }
  }
}

/** A dataset held in memory as bytes: `pixels` is [length, channels * height * width], 0..255. */
export class ByteImageDataset implements ImageDataset {
  readonly length: number;
  readonly numClasses: number;
  private readonly sampleSize: number;

  constructor(
    readonly name: string,
    private readonly pixels: Uint8Array,
    private readonly labels: Uint8Array,
    readonly channels: number,
    readonly height: number,
    readonly width: number,
    readonly classNames: string[],
  ) {
    this.sampleSize = channels * height * width;
    this.length = labels.length;
    this.numClasses = classNames.length;
    if (pixels.length !== this.length * this.sampleSize) {
      throw new Error(
        `${name}: ${pixels.length} pixel bytes for ${this.length} labels of ${this.sampleSize} bytes each`,
      );
    }
  }

  async get(i: number): Promise<ImageSample> {
    checkSampleIndex(this.name, this.length, i);
    const out = new Float32Array(this.sampleSize);
    const src = this.pixels.subarray(i * this.sampleSize, (i + 1) * this.sampleSize);
    for (let k = 0; k < out.length; k++) out[k] = src[k] / 255;
    return { pixels: out, label: this.labels[i] };
  }

  async decode(i: number): Promise<DecodedSample> {
    checkSampleIndex(this.name, this.length, i);
    const src = this.pixels.subarray(i * this.sampleSize, (i + 1) * this.sampleSize);
    return { image: fromPlanarBytes(src, this.channels, this.height, this.width), label: this.labels[i] };
  }
}
