// Per-image augmentation of the DeiT recipe, in timm's order: random resized crop (torchvision's
// RandomResizedCrop box: area share in `scale`, log-uniform aspect ratio in `ratio`, 10 tries, then
// the centre crop), resampled bilinearly to imageSize (align_corners = false, no antialiasing);
// horizontal flip with probability 0.5; normalisation by a per-channel mean and std; random erasing
// (timm's RandomErasing, mode 'pixel': with probability p, one box of 2%..1/3 of the area and
// aspect ratio 0.3..3.3 is filled with N(0, 1) noise, in the normalised space). Everything random
// is off unless asked for, so { mean, std, imageSize } alone is the evaluation transform: a
// bilinear resize of the whole image to imageSize (when it differs) and the normalisation.
// Images are planar Float32Array [channels, height, width].
import { checkOptionKeys } from './image-dataset';
import type { ImageRng } from './image-rng';
import { checkMixOptions, MixOptions } from './mix';

export interface AugmentOptions {
  /** Random resized crop; ratio defaults to [3/4, 4/3]. Off when absent or false. */
  randomResizedCrop?: { scale: [number, number]; ratio?: [number, number] } | false;
  /** Horizontal flip with probability 0.5. */
  flip?: boolean;
  /** Mixup's Beta(alpha, alpha) (0: off). */
  mixup?: number;
  /** CutMix's Beta(alpha, alpha) (0: off). */
  cutmix?: number;
  /** The probability that a batch is mixed at all (default 1). */
  mixProb?: number;
  /** The probability of random erasing per image (0: off). */
  randomErasing?: number;
  /** Label smoothing of the targets (0: off). */
  labelSmoothing?: number;
  /** Per-channel mean and std (one value, or one per channel); default: no normalisation. */
  mean?: number[];
  std?: number[];
  /** The side of the square output images; default: the dataset's height x width. */
  imageSize?: number;
}

const AUGMENT_KEYS = ['randomResizedCrop', 'flip', 'mixup', 'cutmix', 'mixProb', 'randomErasing', 'labelSmoothing', 'mean', 'std', 'imageSize'];

/** Checked augmentation settings for images of a given number of channels. */
export interface ResolvedAugment {
  crop: { scale: [number, number]; ratio: [number, number] } | null;
  flip: boolean;
  erasing: number;
  mix: MixOptions;
  mean: Float32Array | null;
  std: Float32Array | null;
  height: number;
  width: number;
}

/** The options of the evaluation transform matching `opts`: its imageSize, mean and std only. */
export function evaluationAugment(opts: AugmentOptions): AugmentOptions {
  return { mean: opts.mean, std: opts.std, imageSize: opts.imageSize };
}

function checkRange(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw new Error(`${what}: expected a number in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

function checkPair(v: unknown, what: string, lo: number, hi: number): [number, number] {
  if (!Array.isArray(v) || v.length !== 2) throw new Error(`${what}: expected [min, max], got ${JSON.stringify(v)}`);
  const a = checkRange(v[0], lo, hi, `${what}[0]`), b = checkRange(v[1], lo, hi, `${what}[1]`);
  if (a > b) throw new Error(`${what}: expected min <= max, got [${a}, ${b}]`);
  return [a, b];
}

function checkChannelValues(v: unknown, channels: number, what: string, positive: boolean): Float32Array {
  if (!Array.isArray(v) || (v.length !== 1 && v.length !== channels)) {
    throw new Error(`${what}: expected 1 or ${channels} numbers (one per channel), got ${JSON.stringify(v)}`);
  }
  const out = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const x = v.length === 1 ? v[0] : v[c];
    if (typeof x !== 'number' || !Number.isFinite(x) || (positive && !(x > 0))) {
      throw new Error(`${what}: expected ${positive ? 'positive' : 'finite'} numbers, got ${JSON.stringify(v)}`);
    }
    out[c] = x;
  }
  return out;
}

export function resolveAugment(opts: AugmentOptions | undefined, channels: number, height: number, width: number): ResolvedAugment {
  checkOptionKeys(opts, AUGMENT_KEYS, 'augment');
  const o = opts ?? {};
  let crop: ResolvedAugment['crop'] = null;
  if (o.randomResizedCrop !== undefined && o.randomResizedCrop !== false) {
    const rrc = o.randomResizedCrop;
    checkOptionKeys(rrc, ['scale', 'ratio'], 'augment.randomResizedCrop');
    const scale = checkPair(rrc.scale, 'augment.randomResizedCrop.scale', 0, 1);
    if (!(scale[1] > 0)) throw new Error(`augment.randomResizedCrop.scale: expected a positive maximum, got [${scale.join(', ')}]`);
    const ratio = checkPair(rrc.ratio ?? [3 / 4, 4 / 3], 'augment.randomResizedCrop.ratio', Number.MIN_VALUE, Number.MAX_VALUE);
    crop = { scale, ratio };
  }
  if (o.flip !== undefined && typeof o.flip !== 'boolean') throw new Error(`augment.flip: expected a boolean, got ${String(o.flip)}`);
  const size = o.imageSize;
  if (size !== undefined && !(Number.isInteger(size) && size > 0)) throw new Error(`augment.imageSize: expected a positive integer, got ${String(size)}`);
  if ((o.mean === undefined) !== (o.std === undefined)) throw new Error('augment.mean, augment.std: give both or neither');
  return {
    crop,
    flip: o.flip ?? false,
    erasing: checkRange(o.randomErasing ?? 0, 0, 1, 'augment.randomErasing'),
    mix: checkMixOptions({ mixup: o.mixup ?? 0, cutmix: o.cutmix ?? 0, mixProb: o.mixProb ?? 1, labelSmoothing: o.labelSmoothing ?? 0 }),
    mean: o.mean === undefined ? null : checkChannelValues(o.mean, channels, 'augment.mean', false),
    std: o.std === undefined ? null : checkChannelValues(o.std, channels, 'augment.std', true),
    height: size ?? height,
    width: size ?? width,
  };
}

/** A box inside an image, in pixels. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** torchvision's RandomResizedCrop.get_params. */
export function randomResizedCropBox(rng: ImageRng, height: number, width: number, scale: [number, number], ratio: [number, number]): CropBox {
  const area = height * width;
  const logLo = Math.log(ratio[0]), logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: rng.int(0, height - h + 1), left: rng.int(0, width - w + 1), height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** Source index pairs and weights of a bilinear resize of `n` pixels to `m` (align_corners = false). */
function bilinearTaps(start: number, n: number, m: number): { i0: Int32Array; i1: Int32Array; w: Float32Array } {
  const i0 = new Int32Array(m), i1 = new Int32Array(m), w = new Float32Array(m);
  const scale = n / m;
  for (let k = 0; k < m; k++) {
    const s = Math.min(Math.max((k + 0.5) * scale - 0.5, 0), n - 1);
    const f = Math.floor(s);
    i0[k] = start + f;
    i1[k] = start + Math.min(f + 1, n - 1);
    w[k] = s - f;
  }
  return { i0, i1, w };
}

/** The `box` of a [channels, height, width] image resampled bilinearly to [channels, outHeight, outWidth]. */
export function resizedCrop(src: Float32Array, channels: number, height: number, width: number, box: CropBox, outHeight: number, outWidth: number): Float32Array {
  if (box.top < 0 || box.left < 0 || box.height < 1 || box.width < 1 || box.top + box.height > height || box.left + box.width > width) {
    throw new Error(`box: ${JSON.stringify(box)} is not inside a ${height}x${width} image`);
  }
  const ys = bilinearTaps(box.top, box.height, outHeight), xs = bilinearTaps(box.left, box.width, outWidth);
  const out = new Float32Array(channels * outHeight * outWidth);
  for (let c = 0; c < channels; c++) {
    const plane = c * height * width;
    let o = c * outHeight * outWidth;
    for (let y = 0; y < outHeight; y++) {
      const r0 = plane + ys.i0[y] * width, r1 = plane + ys.i1[y] * width, wy = ys.w[y];
      for (let x = 0; x < outWidth; x++) {
        const x0 = xs.i0[x], x1 = xs.i1[x], wx = xs.w[x];
        const top = src[r0 + x0] + (src[r0 + x1] - src[r0 + x0]) * wx;
        const bottom = src[r1 + x0] + (src[r1 + x1] - src[r1 + x0]) * wx;
        out[o++] = top + (bottom - top) * wy;
      }
    }
  }
  return out;
}

/** Mirrors a [channels, height, width] image left-right, in place. */
export function horizontalFlip(pixels: Float32Array, channels: number, height: number, width: number): void {
  for (let row = 0; row < channels * height; row++) pixels.subarray(row * width, (row + 1) * width).reverse();
}

/** (x - mean[c]) / std[c] per channel, in place. */
export function normalize(pixels: Float32Array, channels: number, mean: Float32Array, std: Float32Array): void {
  const plane = pixels.length / channels;
  for (let c = 0; c < channels; c++) {
    const m = mean[c], inv = 1 / std[c];
    for (let k = c * plane; k < (c + 1) * plane; k++) pixels[k] = (pixels[k] - m) * inv;
  }
}

/** timm's RandomErasing (mode 'pixel', one box): with probability p fills a random box with N(0, 1)
 *  noise, in place. Returns the box, or null when nothing was erased. */
export function randomErasing(rng: ImageRng, pixels: Float32Array, channels: number, height: number, width: number, p: number): CropBox | null {
  if (!(rng.uniform() < p)) return null;
  const area = height * width;
  const logLo = Math.log(0.3), logHi = Math.log(1 / 0.3);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = rng.uniform(0.02, 1 / 3) * area;
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const h = Math.round(Math.sqrt(target * aspect));
    const w = Math.round(Math.sqrt(target / aspect));
    if (w < width && h < height) {
      const top = rng.int(0, height - h + 1), left = rng.int(0, width - w + 1);
      const noise = rng.normals(channels * h * w);
      let n = 0;
      for (let c = 0; c < channels; c++) {
        for (let y = top; y < top + h; y++) {
          const row = (c * height + y) * width;
          for (let x = left; x < left + w; x++) pixels[row + x] = noise[n++];
        }
      }
      return { top, left, height: h, width: w };
    }
  }
  return null;
}

/** One image through the per-image transform: crop/resize, flip, normalise, erase. `rng` is used
 *  only when something random is on. Returns a new [channels, a.height, a.width] array. */
export function transformImage(src: Float32Array, channels: number, height: number, width: number, a: ResolvedAugment, rng: ImageRng): Float32Array {
  const box = a.crop ? randomResizedCropBox(rng, height, width, a.crop.scale, a.crop.ratio) : { top: 0, left: 0, height, width };
  const identity = box.height === height && box.width === width && height === a.height && width === a.width;
  const out = identity ? src.slice() : resizedCrop(src, channels, height, width, box, a.height, a.width);
  if (a.flip && rng.uniform() < 0.5) horizontalFlip(out, channels, a.height, a.width);
  if (a.mean && a.std) normalize(out, channels, a.mean, a.std);
  if (a.erasing > 0) randomErasing(rng, out, channels, a.height, a.width, a.erasing);
  return out;
}
