// timm's RandAugment (timm 0.3.2, timm/data/auto_augment.py, the version DeiT pins), configured by
// timm's string: 'rand-m9-mstd0.5-inc1' is magnitude 9, magnitude noise std 0.5, and the
// 'increasing' operations (severity grows with the magnitude); 'n' sets the number of operations
// per image (2). For each image, `numOps` operations are drawn uniformly with replacement from
// the 15; each is applied with probability 0.5, at a magnitude drawn from N(m, mstd) and clipped
// to [0, 10]; a level function maps the magnitude to the operation's argument, negating it with
// probability 0.5 where the operation has a sign:
//   AutoContrast, Equalize, Invert                        no argument
//   Rotate                                                +-30 m/10 degrees
//   Posterize(Increasing)    bits kept                    int(4 m/10)      (inc: 4 - int(4 m/10))
//   Solarize(Increasing)     threshold                    int(256 m/10)    (inc: 256 - int(256 m/10))
//   SolarizeAdd              added below 128              int(110 m/10)
//   Color/Contrast/Brightness/Sharpness(Increasing)       1.8 m/10 + 0.1   (inc: 1 +- 0.9 m/10)
//   ShearX, ShearY                                        +-0.3 m/10
//   TranslateXRel, TranslateYRel                          +-0.45 m/10 of the width / height
// The affine ones fill with the dataset mean in bytes (round(255 mean), timm's img_mean) and
// resample with the training interpolation (DeiT: bicubic; without one, timm draws bilinear or
// bicubic per operation). The operations are Pillow's (lib/data/image-ops.ts). Random draws come
// from the caller's ImageRng in timm's order (choice, apply?, magnitude, sign, interpolation).
import type { ByteImage } from './byte-image';
import * as ops from './image-ops';
import type { TransformFilter } from './image-ops';
import type { ImageRng } from './image-rng';

const MAX_LEVEL = 10;

export interface RandAugmentSpec {
  magnitude: number;
  magnitudeStd: number;
  numOps: number;
  increasing: boolean;
}

export interface RandAugmentPolicy extends RandAugmentSpec {
  /** The operations' names, in timm's order. */
  ops: readonly string[];
  /** Fill colour of the affine operations, one byte per channel. */
  fill: number[];
  /** Resampling of the affine operations; 'random' draws bilinear or bicubic each time (timm's default). */
  interpolation: TransformFilter | 'random';
}

const STANDARD = [
  'AutoContrast',
  'Equalize',
  'Invert',
  'Rotate',
  'Posterize',
  'Solarize',
  'SolarizeAdd',
  'Color',
  'Contrast',
  'Brightness',
  'Sharpness',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
] as const;
const INCREASING = [
  'AutoContrast',
  'Equalize',
  'Invert',
  'Rotate',
  'PosterizeIncreasing',
  'SolarizeIncreasing',
  'SolarizeAdd',
  'ColorIncreasing',
  'ContrastIncreasing',
  'BrightnessIncreasing',
  'SharpnessIncreasing',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
] as const;

/** Parses timm's RandAugment string ('rand-m9-mstd0.5-inc1'); errors name `what`. */
export function parseRandAugment(spec: string, what = 'randAugment'): RandAugmentSpec {
  if (typeof spec !== 'string' || !spec.startsWith('rand'))
    throw new Error(
      `${what}: expected timm's RandAugment string such as 'rand-m9-mstd0.5-inc1', got ${JSON.stringify(spec)}`,
    );
  const parts = spec.split('-');
  if (parts[0] !== 'rand')
    throw new Error(`${what}: expected the string to start with 'rand-', got ${JSON.stringify(spec)}`);
  const out: RandAugmentSpec = { magnitude: MAX_LEVEL, magnitudeStd: 0, numOps: 2, increasing: false };
  for (const part of parts.slice(1)) {
    const m = /^([a-z]+)(\d.*)$/.exec(part);
    const value = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(value))
      throw new Error(
        `${what}: cannot read '${part}' of ${JSON.stringify(spec)} (expected m<int>, n<int>, mstd<number> or inc1)`,
      );
    if (m[1] === 'm' && Number.isInteger(value)) out.magnitude = value;
    else if (m[1] === 'n' && Number.isInteger(value) && value >= 0) out.numOps = value;
    else if (m[1] === 'mstd' && value >= 0) out.magnitudeStd = value;
    else if (m[1] === 'inc' && value === 1) out.increasing = true;
    else
      throw new Error(
        `${what}: unsupported section '${part}' of ${JSON.stringify(spec)} (expected m<int>, n<int>, mstd<number >= 0> or inc1)`,
      );
  }
  return out;
}

/** The policy of a RandAugment string for images of a given mean (timm's img_mean = round(255 mean)). */
export function randAugmentPolicy(
  spec: string,
  mean: number[],
  interpolation: TransformFilter | 'random',
  what = 'randAugment',
): RandAugmentPolicy {
  const s = parseRandAugment(spec, what);
  return {
    ...s,
    ops: s.increasing ? INCREASING : STANDARD,
    fill: mean.map((m) => Math.min(255, Math.round(255 * m))),
    interpolation,
  };
}

/** timm's _randomly_negate: -v with probability 0.5. */
function signed(v: number, rng: ImageRng): number {
  return rng.uniform() > 0.5 ? -v : v;
}

function enhanceFactor(op: string, level: number, rng: ImageRng): number {
  return op.endsWith('Increasing') ? 1 + signed((level / MAX_LEVEL) * 0.9, rng) : (level / MAX_LEVEL) * 1.8 + 0.1;
}

/** One operation at magnitude `level` (already noised and clipped). */
function applyOp(img: ByteImage, op: string, level: number, p: RandAugmentPolicy, rng: ImageRng): ByteImage {
  const affineFilter = (): TransformFilter =>
    p.interpolation === 'random' ? (rng.uniform() < 0.5 ? 'bilinear' : 'bicubic') : p.interpolation;
  const fill = img.channels === p.fill.length ? p.fill : [p.fill[0]];
  switch (op) {
    case 'AutoContrast':
      return ops.autoContrast(img);
    case 'Equalize':
      return ops.equalize(img);
    case 'Invert':
      return ops.invert(img);
    case 'Rotate': {
      const deg = signed((level / MAX_LEVEL) * 30, rng);
      return ops.rotate(img, deg, affineFilter(), fill);
    }
    case 'Posterize': {
      const bits = Math.trunc((level / MAX_LEVEL) * 4);
      return bits >= 8 ? img : ops.posterize(img, bits);
    }
    case 'PosterizeIncreasing':
      return ops.posterize(img, 4 - Math.trunc((level / MAX_LEVEL) * 4));
    case 'Solarize':
      return ops.solarize(img, Math.trunc((level / MAX_LEVEL) * 256));
    case 'SolarizeIncreasing':
      return ops.solarize(img, 256 - Math.trunc((level / MAX_LEVEL) * 256));
    case 'SolarizeAdd':
      return ops.solarizeAdd(img, Math.trunc((level / MAX_LEVEL) * 110));
    case 'Color':
    case 'ColorIncreasing':
      return ops.color(img, enhanceFactor(op, level, rng));
    case 'Contrast':
    case 'ContrastIncreasing':
      return ops.contrast(img, enhanceFactor(op, level, rng));
    case 'Brightness':
    case 'BrightnessIncreasing':
      return ops.brightness(img, enhanceFactor(op, level, rng));
    case 'Sharpness':
    case 'SharpnessIncreasing':
      return ops.sharpness(img, enhanceFactor(op, level, rng));
    case 'ShearX': {
      const f = signed((level / MAX_LEVEL) * 0.3, rng);
      return ops.shearX(img, f, affineFilter(), fill);
    }
    case 'ShearY': {
      const f = signed((level / MAX_LEVEL) * 0.3, rng);
      return ops.shearY(img, f, affineFilter(), fill);
    }
    case 'TranslateXRel': {
      const pct = signed((level / MAX_LEVEL) * 0.45, rng);
      return ops.translateX(img, pct * img.width, affineFilter(), fill);
    }
    case 'TranslateYRel': {
      const pct = signed((level / MAX_LEVEL) * 0.45, rng);
      return ops.translateY(img, pct * img.height, affineFilter(), fill);
    }
    default:
      throw new Error(`RandAugment: unknown operation '${op}'`);
  }
}

/** What one image went through: each drawn operation, whether it ran, and its magnitude. */
export interface RandAugmentStep {
  op: string;
  applied: boolean;
  magnitude: number;
}

/** RandAugment of one image; `trace`, when given, receives the draws. */
export function randAugment(img: ByteImage, p: RandAugmentPolicy, rng: ImageRng, trace?: RandAugmentStep[]): ByteImage {
  const chosen = Array.from({ length: p.numOps }, () => p.ops[rng.int(0, p.ops.length)]);
  let out = img;
  for (const op of chosen) {
    if (rng.uniform() > 0.5) {
      trace?.push({ op, applied: false, magnitude: NaN });
      continue;
    }
    const level = Math.min(
      MAX_LEVEL,
      Math.max(0, p.magnitudeStd > 0 ? p.magnitude + p.magnitudeStd * rng.normal() : p.magnitude),
    );
    trace?.push({ op, applied: true, magnitude: level });
    out = applyOp(out, op, level, p, rng);
  }
  return out;
}
