// Mixup and CutMix on a batch, and label smoothing, with timm's Mixup semantics (mode 'batch',
// correct_lam): with probability mixProb a batch is mixed; when both alphas are set, CutMix is
// chosen with probability 0.5, else the one that is set; lam ~ Beta(alpha, alpha). Image i is mixed
// with image B-1-i (the batch reversed): mixup takes lam*x_i + (1-lam)*x_{B-1-i}; CutMix pastes a
// box of x_{B-1-i} whose side is sqrt(1 - lam) of the image's, centred uniformly and clipped at the
// borders, and lam becomes the share of the image left uncovered. Targets are soft:
// lam*smooth(y_i) + (1-lam)*smooth(y_{B-1-i}), smooth(y) = one-hot with 1 - s + s/K on y and s/K
// elsewhere (each row sums to 1).
import type { ImageRng } from './image-rng';

export interface MixOptions {
  mixup: number;
  cutmix: number;
  mixProb: number;
  labelSmoothing: number;
}

/** The probability of CutMix rather than mixup when both are on (timm's switch_prob). */
const SWITCH_PROB = 0.5;

export function checkMixOptions(o: MixOptions): MixOptions {
  const check = (v: number, ok: boolean, what: string, expected: string): void => {
    if (typeof v !== 'number' || !ok) throw new Error(`augment.${what}: expected ${expected}, got ${String(v)}`);
  };
  check(o.mixup, o.mixup >= 0 && Number.isFinite(o.mixup), 'mixup', 'an alpha >= 0 (0: off)');
  check(o.cutmix, o.cutmix >= 0 && Number.isFinite(o.cutmix), 'cutmix', 'an alpha >= 0 (0: off)');
  check(o.mixProb, o.mixProb >= 0 && o.mixProb <= 1, 'mixProb', 'a probability in [0, 1]');
  check(o.labelSmoothing, o.labelSmoothing >= 0 && o.labelSmoothing < 1, 'labelSmoothing', 'a number in [0, 1)');
  return o;
}

/** Whether these options make soft targets (mixing or smoothing is on). */
export function makesSoftTargets(o: MixOptions): boolean {
  return o.mixup > 0 || o.cutmix > 0 || o.labelSmoothing > 0;
}

/** timm's mixup_target: [B, numClasses] rows lam*smooth(y_i) + (1-lam)*smooth(y_{B-1-i}). */
export function mixTargets(
  labels: ArrayLike<number>,
  numClasses: number,
  lam: number,
  smoothing: number,
): Float32Array {
  const b = labels.length;
  const off = smoothing / numClasses,
    on = 1 - smoothing + off;
  const out = new Float32Array(b * numClasses).fill(off);
  for (let i = 0; i < b; i++) {
    out[i * numClasses + labels[i]] += lam * (on - off);
    out[i * numClasses + labels[b - 1 - i]] += (1 - lam) * (on - off);
  }
  return out;
}

/** A box [top, bottom) x [left, right) and the share of the image outside it. */
export interface CutmixBox {
  top: number;
  bottom: number;
  left: number;
  right: number;
  lam: number;
}

/** timm's rand_bbox + cutmix_bbox_and_lam(correct_lam = true). */
export function cutmixBox(rng: ImageRng, height: number, width: number, lam: number): CutmixBox {
  const ratio = Math.sqrt(1 - lam);
  const cutH = Math.floor(height * ratio),
    cutW = Math.floor(width * ratio);
  const cy = rng.int(0, height),
    cx = rng.int(0, width);
  const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  const top = clip(cy - (cutH >> 1), height),
    bottom = clip(cy + (cutH >> 1), height);
  const left = clip(cx - (cutW >> 1), width),
    right = clip(cx + (cutW >> 1), width);
  return { top, bottom, left, right, lam: 1 - ((bottom - top) * (right - left)) / (height * width) };
}

export interface BatchShape {
  batchSize: number;
  channels: number;
  height: number;
  width: number;
}

export interface MixResult {
  /** [B, numClasses] soft targets, or null when the options make none. */
  soft: Float32Array | null;
  /** The weight of each image's own label (1 when the batch was not mixed). */
  lam: number;
  /** The pasted box when CutMix was applied. */
  box: CutmixBox | null;
}

/** Mixes `images` ([B, C, H, W]) in place as timm's Mixup does and returns the soft targets. */
export function mixBatch(
  images: Float32Array,
  labels: ArrayLike<number>,
  shape: BatchShape,
  numClasses: number,
  o: MixOptions,
  rng: ImageRng,
): MixResult {
  const { batchSize: b, channels, height, width } = shape;
  if (!makesSoftTargets(o)) return { soft: null, lam: 1, box: null };
  let lam = 1;
  let useCutmix = false;
  if ((o.mixup > 0 || o.cutmix > 0) && rng.uniform() < o.mixProb) {
    if (o.mixup > 0 && o.cutmix > 0) useCutmix = rng.uniform() < SWITCH_PROB;
    else useCutmix = o.cutmix > 0;
    lam = rng.beta(useCutmix ? o.cutmix : o.mixup, useCutmix ? o.cutmix : o.mixup);
  }
  let box: CutmixBox | null = null;
  const size = channels * height * width;
  const original = lam === 1 ? images : images.slice(); // the partners, before any image is changed
  if (lam !== 1 && useCutmix) {
    box = cutmixBox(rng, height, width, lam);
    lam = box.lam;
    for (let i = 0; i < b; i++) {
      const dst = i * size,
        src = (b - 1 - i) * size;
      for (let c = 0; c < channels; c++) {
        for (let y = box.top; y < box.bottom; y++) {
          const row = (c * height + y) * width;
          images.set(original.subarray(src + row + box.left, src + row + box.right), dst + row + box.left);
        }
      }
    }
  } else if (lam !== 1) {
    for (let i = 0; i < b; i++) {
      const dst = i * size,
        src = (b - 1 - i) * size;
      for (let k = 0; k < size; k++) images[dst + k] = lam * original[dst + k] + (1 - lam) * original[src + k];
    }
  }
  return { soft: mixTargets(labels, numClasses, lam, o.labelSmoothing), lam, box };
}
