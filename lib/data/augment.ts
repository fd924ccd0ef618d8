// Per-image transforms, in the order of timm's create_transform (timm 0.3.2, which DeiT and the
// paper's ImageNet code use), on the decoded 8-bit image (lib/data/byte-image.ts):
//   training:   random resized crop of the full image (timm's RandomResizedCropAndInterpolation:
//               area share in `scale`, log-uniform aspect ratio in `ratio`, 10 tries, then the
//               centre crop), resized to imageSize with Pillow's filter (`interpolation`); without
//               a crop, the evaluation geometry below (timm's no-augmentation transform at cropPct 1);
//               horizontal flip with probability 0.5; RandAugment (timm's string, e.g.
//               'rand-m9-mstd0.5-inc1'; lib/data/rand-augment.ts); to floats in [0, 1];
//               normalisation by a per-channel mean and std; random erasing (timm's
//               RandomErasing, mode 'pixel': with probability p, one box of 2%..1/3 of the area
//               and aspect ratio 0.3..3.3 filled with N(0, 1) noise, in the normalised space).
//   evaluation: the shorter side resized to floor(imageSize / cropPct), then the centre
//               imageSize x imageSize crop (DeiT: 256 then 224, bicubic), and the normalisation;
//               an image already imageSize x imageSize is left as it is at cropPct 1.
// Everything random is off unless asked for, so { mean, std, imageSize } alone is the evaluation
// transform. Mixup, CutMix and label smoothing act on whole batches (lib/data/mix.ts).
import { ByteImage, CropBox, flipHorizontal, toPlanarFloat } from './byte-image';
import { checkOptionKeys } from './image-dataset';
import type { ImageRng } from './image-rng';
import { checkMixOptions, MixOptions } from './mix';
import { randAugment, RandAugmentPolicy, randAugmentPolicy } from './rand-augment';
import { checkFilter, resize, resizeAndCenterCrop, ResampleFilter } from './resample';

export type { CropBox } from './byte-image';

export interface AugmentOptions {
  /** Random resized crop; ratio defaults to [3/4, 4/3]. Off when absent or false. */
  randomResizedCrop?: { scale: [number, number]; ratio?: [number, number] } | false;
  /** Pillow's filter of every resize, and of RandAugment's rotations, shears and shifts (default 'bilinear'). */
  interpolation?: ResampleFilter;
  /** Horizontal flip with probability 0.5. */
  flip?: boolean;
  /** timm's RandAugment string, e.g. 'rand-m9-mstd0.5-inc1'; off when absent or false. */
  randAugment?: string | false;
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
  /** Per-channel std (with mean). */
  std?: number[];
  /** The side of the square output images; default: the dataset's height x width. */
  imageSize?: number;
  /** Evaluation: the centre crop's share of the resized shorter side (DeiT: 224 / 256 = 0.875; default 1). */
  cropPct?: number;
}

const AUGMENT_KEYS = [
  'randomResizedCrop',
  'interpolation',
  'flip',
  'randAugment',
  'mixup',
  'cutmix',
  'mixProb',
  'randomErasing',
  'labelSmoothing',
  'mean',
  'std',
  'imageSize',
  'cropPct',
];

/** Checked augmentation settings for images of a given number of channels. */
export interface ResolvedAugment {
  crop: { scale: [number, number]; ratio: [number, number] } | null;
  interpolation: ResampleFilter;
  flip: boolean;
  randAugment: RandAugmentPolicy | null;
  erasing: number;
  mix: MixOptions;
  mean: Float32Array | null;
  std: Float32Array | null;
  height: number;
  width: number;
  cropPct: number;
}

/** The options of the evaluation transform matching `opts`: its geometry and normalisation only. */
export function evaluationAugment(opts: AugmentOptions): AugmentOptions {
  return {
    mean: opts.mean,
    std: opts.std,
    imageSize: opts.imageSize,
    interpolation: opts.interpolation,
    cropPct: opts.cropPct,
  };
}

function checkRange(v: unknown, lo: number, hi: number, what: string): number {
  if (typeof v !== 'number' || !(v >= lo && v <= hi))
    throw new Error(`${what}: expected a number in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

function checkPair(v: unknown, what: string, lo: number, hi: number): [number, number] {
  if (!Array.isArray(v) || v.length !== 2) throw new Error(`${what}: expected [min, max], got ${JSON.stringify(v)}`);
  const a = checkRange(v[0], lo, hi, `${what}[0]`),
    b = checkRange(v[1], lo, hi, `${what}[1]`);
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

export function resolveAugment(
  opts: AugmentOptions | undefined,
  channels: number,
  height: number,
  width: number,
): ResolvedAugment {
  checkOptionKeys(opts, AUGMENT_KEYS, 'augment');
  const o = opts ?? {};
  let crop: ResolvedAugment['crop'] = null;
  if (o.randomResizedCrop !== undefined && o.randomResizedCrop !== false) {
    const rrc = o.randomResizedCrop;
    checkOptionKeys(rrc, ['scale', 'ratio'], 'augment.randomResizedCrop');
    const scale = checkPair(rrc.scale, 'augment.randomResizedCrop.scale', 0, 1);
    if (!(scale[1] > 0))
      throw new Error(`augment.randomResizedCrop.scale: expected a positive maximum, got [${scale.join(', ')}]`);
    const ratio = checkPair(
      rrc.ratio ?? [3 / 4, 4 / 3],
      'augment.randomResizedCrop.ratio',
      Number.MIN_VALUE,
      Number.MAX_VALUE,
    );
    crop = { scale, ratio };
  }
  if (o.flip !== undefined && typeof o.flip !== 'boolean')
    throw new Error(`augment.flip: expected a boolean, got ${String(o.flip)}`);
  const size = o.imageSize;
  if (size !== undefined && !(Number.isInteger(size) && size > 0))
    throw new Error(`augment.imageSize: expected a positive integer, got ${String(size)}`);
  if ((o.mean === undefined) !== (o.std === undefined))
    throw new Error('augment.mean, augment.std: give both or neither');
  const interpolation = checkFilter(o.interpolation ?? 'bilinear', 'augment.interpolation');
  const mean = o.mean === undefined ? null : checkChannelValues(o.mean, channels, 'augment.mean', false);
  let policy: RandAugmentPolicy | null = null;
  if (o.randAugment !== undefined && o.randAugment !== false) {
    if (channels !== 1 && channels !== 3)
      throw new Error(
        `augment.randAugment: RandAugment's operations are Pillow's, for grey or RGB images; these have ${channels} channels`,
      );
    // timm fills with the mean in bytes; without a normalisation, with its default grey 128.
    const fill = mean ? Array.from(mean) : [128 / 255];
    policy = randAugmentPolicy(o.randAugment, fill, interpolation, 'augment.randAugment');
  }
  return {
    crop,
    interpolation,
    flip: o.flip ?? false,
    randAugment: policy,
    erasing: checkRange(o.randomErasing ?? 0, 0, 1, 'augment.randomErasing'),
    mix: checkMixOptions({
      mixup: o.mixup ?? 0,
      cutmix: o.cutmix ?? 0,
      mixProb: o.mixProb ?? 1,
      labelSmoothing: o.labelSmoothing ?? 0,
    }),
    mean,
    std: o.std === undefined ? null : checkChannelValues(o.std, channels, 'augment.std', true),
    height: size ?? height,
    width: size ?? width,
    cropPct: checkRange(o.cropPct ?? 1, Number.MIN_VALUE, 1, 'augment.cropPct'),
  };
}

/** timm's RandomResizedCropAndInterpolation.get_params (torchvision's RandomResizedCrop box). */
export function randomResizedCropBox(
  rng: ImageRng,
  height: number,
  width: number,
  scale: [number, number],
  ratio: [number, number],
): CropBox {
  const area = height * width;
  const logLo = Math.log(ratio[0]),
    logHi = Math.log(ratio[1]);
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
  let w = width,
    h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** (x - mean[c]) / std[c] per channel of a [channels, height, width] image, in place. */
export function normalize(pixels: Float32Array, channels: number, mean: Float32Array, std: Float32Array): void {
  const plane = pixels.length / channels;
  for (let c = 0; c < channels; c++) {
    const m = mean[c],
      inv = 1 / std[c];
    for (let k = c * plane; k < (c + 1) * plane; k++) pixels[k] = (pixels[k] - m) * inv;
  }
}

/** timm's RandomErasing (mode 'pixel', one box): with probability p fills a random box of a
 *  [channels, height, width] image with N(0, 1) noise, in place. Returns the box, or null. */
export function randomErasing(
  rng: ImageRng,
  pixels: Float32Array,
  channels: number,
  height: number,
  width: number,
  p: number,
): CropBox | null {
  if (!(rng.uniform() < p)) return null;
  const area = height * width;
  const logLo = Math.log(0.3),
    logHi = Math.log(1 / 0.3);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = rng.uniform(0.02, 1 / 3) * area;
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const h = Math.round(Math.sqrt(target * aspect));
    const w = Math.round(Math.sqrt(target / aspect));
    if (w < width && h < height) {
      const top = rng.int(0, height - h + 1),
        left = rng.int(0, width - w + 1);
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

/** One decoded image through the per-image transform; returns [channels, a.height, a.width] floats.
 *  `rng` is used only when something random is on. */
export function transformImage(img: ByteImage, a: ResolvedAugment, rng: ImageRng): Float32Array {
  const { height, width } = a;
  let out: ByteImage;
  if (a.crop)
    out = resize(
      img,
      width,
      height,
      a.interpolation,
      randomResizedCropBox(rng, img.height, img.width, a.crop.scale, a.crop.ratio),
    );
  else if (img.width === width && img.height === height && a.cropPct === 1) out = img;
  else if (height === width) out = resizeAndCenterCrop(img, height, a.cropPct, a.interpolation);
  else
    throw new Error(
      `augment: a ${img.width}x${img.height} image cannot be resized and centre-cropped to ${width}x${height}; give a square imageSize`,
    );
  if (a.flip && rng.uniform() < 0.5) out = flipHorizontal(out);
  if (a.randAugment) out = randAugment(out, a.randAugment, rng);
  const pixels = toPlanarFloat(out);
  if (a.mean && a.std) normalize(pixels, img.channels, a.mean, a.std);
  if (a.erasing > 0) randomErasing(rng, pixels, img.channels, height, width, a.erasing);
  return pixels;
}
