// Resizing 8-bit images exactly as Pillow's Image.resize (libImaging/Resample.c, unchanged from
// Pillow 4.3 to 11), which is what torchvision's Resize and timm's RandomResizedCrop call on PIL
// images: a separable convolution, horizontal pass first, with the filter (bilinear: triangle,
// support 1; bicubic: Keys' cubic with a = -0.5, support 2) stretched by the scale factor when
// shrinking (antialiasing). Each output sample's taps are clipped to the image and renormalised,
// the weights are fixed-point with 22 fractional bits, and each pass rounds to bytes. sharp
// (libvips) resizes differently (a box pre-shrink, other rounding), so the DeiT recipe's crops and
// its 256/224 evaluation resize are computed here, in JavaScript, from the bytes sharp decodes.
// Cost: (output width x kernel width) per input row used, plus (output pixels x kernel height),
// per channel; the kernel is 2 x support x max(1, scale) taps.
import { ByteImage, checkBox, checkByteImage, CropBox, crop } from './byte-image';

export type ResampleFilter = 'bilinear' | 'bicubic';

const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

function bilinear(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

function bicubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

const FILTERS: Record<ResampleFilter, { fn: (x: number) => number; support: number }> = {
  bilinear: { fn: bilinear, support: 1 },
  bicubic: { fn: bicubic, support: 2 },
};

export function checkFilter(filter: unknown, what: string): ResampleFilter {
  if (filter !== 'bilinear' && filter !== 'bicubic')
    throw new Error(`${what}: expected 'bilinear' or 'bicubic', got ${JSON.stringify(filter)}`);
  return filter;
}

/**
 * Per output sample: its first input tap, its number of taps, and the fixed-point weights (Pillow's
 * precompute_coeffs).
 */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  size: number;
}

function taps(inSize: number, outSize: number, filter: ResampleFilter): Taps {
  const { fn, support: base } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = base * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize),
    count = new Int32Array(outSize),
    weights = new Int32Array(outSize * size);
  const w = new Float64Array(size);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const n = Math.min(inSize, Math.trunc(center + support + 0.5)) - lo;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      w[k] = fn((k + lo - center + 0.5) / filterScale);
      sum += w[k];
    }
    for (let k = 0; k < n; k++) {
      const v = sum !== 0 ? w[k] / sum : w[k];
      weights[o * size + k] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    first[o] = lo;
    count[o] = n;
  }
  return { first, count, weights, size };
}

function clip8(sum: number): number {
  if (sum >= 255 * ONE) return 255;
  if (sum <= 0) return 0;
  return Math.floor(sum / ONE);
}

/** Resizes rows [rowFirst, rowFirst + rows) of img horizontally to t's output width. */
function horizontal(img: ByteImage, t: Taps, rowFirst: number, rows: number): ByteImage {
  const { channels: ch, width, data: src } = img;
  const outWidth = t.first.length;
  const data = new Uint8Array(outWidth * rows * ch);
  const { first, count, weights, size } = t;
  for (let y = 0; y < rows; y++) {
    const row = (rowFirst + y) * width * ch;
    let o = y * outWidth * ch;
    for (let x = 0; x < outWidth; x++) {
      const n = count[x],
        k0 = x * size;
      let i = row + first[x] * ch;
      if (ch === 3) {
        let s0 = HALF,
          s1 = HALF,
          s2 = HALF;
        for (let k = 0; k < n; k++, i += 3) {
          const wk = weights[k0 + k];
          s0 += src[i] * wk;
          s1 += src[i + 1] * wk;
          s2 += src[i + 2] * wk;
        }
        data[o++] = clip8(s0);
        data[o++] = clip8(s1);
        data[o++] = clip8(s2);
      } else {
        for (let c = 0; c < ch; c++) {
          let s = HALF;
          for (let k = 0; k < n; k++) s += src[i + k * ch + c] * weights[k0 + k];
          data[o++] = clip8(s);
        }
      }
    }
  }
  return { data, width: outWidth, height: rows, channels: ch };
}

/** Resizes img vertically to t's output height; t's taps index rows from rowFirst. Each output row
 *  sums whole input rows (contiguous reads); the sums are integers, exact in doubles. */
function vertical(img: ByteImage, t: Taps, rowFirst: number): ByteImage {
  const { channels, width, data: src } = img;
  const outHeight = t.first.length;
  const rowBytes = width * channels;
  const data = new Uint8Array(outHeight * rowBytes);
  const sums = new Float64Array(rowBytes);
  for (let y = 0; y < outHeight; y++) {
    sums.fill(HALF);
    const lo = t.first[y] - rowFirst,
      n = t.count[y],
      k0 = y * t.size;
    for (let k = 0; k < n; k++) {
      const wk = t.weights[k0 + k];
      const off = (lo + k) * rowBytes;
      for (let i = 0; i < rowBytes; i++) sums[i] += src[off + i] * wk;
    }
    const o = y * rowBytes;
    for (let i = 0; i < rowBytes; i++) data[o + i] = clip8(sums[i]);
  }
  return { data, width, height: outHeight, channels };
}

/**
 * img resized to width x height (Pillow's Image.resize). With `box`, the box is cropped first and
 * resized as an image of its own (torchvision's resized_crop: taps never reach outside the box).
 */
export function resize(
  img: ByteImage,
  width: number,
  height: number,
  filter: ResampleFilter,
  box?: CropBox,
): ByteImage {
  checkByteImage(img, 'img');
  checkFilter(filter, 'filter');
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1)
    throw new Error(`width, height: expected positive integers, got ${width}x${height}`);
  if (box !== undefined) checkBox(box, img.width, img.height);
  const src =
    box === undefined || (box.left === 0 && box.top === 0 && box.width === img.width && box.height === img.height)
      ? img
      : crop(img, box);
  const needH = width !== src.width,
    needV = height !== src.height;
  if (!needH && !needV) return src === img ? { ...img, data: img.data.slice() } : src;
  const tv = taps(src.height, height, filter);
  if (!needH) return vertical(src, tv, 0);
  // Only the rows the vertical pass reads go through the horizontal pass.
  const rowFirst = needV ? tv.first[0] : 0;
  const rowEnd = needV ? tv.first[height - 1] + tv.count[height - 1] : src.height;
  const across = horizontal(src, taps(src.width, width, filter), rowFirst, rowEnd - rowFirst);
  return needV ? vertical(across, tv, rowFirst) : across;
}

/** torchvision 0.8's Resize(size) of a PIL image: the shorter side to `size`, the other int(size x long / short). */
export function resizeShorterSide(img: ByteImage, size: number, filter: ResampleFilter): ByteImage {
  checkByteImage(img, 'img');
  const { width: w, height: h } = img;
  if ((w <= h && w === size) || (h <= w && h === size)) return { ...img, data: img.data.slice() };
  return w < h
    ? resize(img, size, Math.trunc((size * h) / w), filter)
    : resize(img, Math.trunc((size * w) / h), size, filter);
}

/** Python's round(): to the nearest integer, halves to the even one. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** torchvision 0.8's CenterCrop(size): the box starts at round((side - size) / 2), halves to even. */
export function centerCropBox(width: number, height: number, size: number): CropBox {
  if (size > width || size > height)
    throw new Error(`size: a ${size}x${size} centre crop does not fit a ${width}x${height} image`);
  return {
    top: roundHalfEven((height - size) / 2),
    left: roundHalfEven((width - size) / 2),
    height: size,
    width: size,
  };
}

/** The evaluation geometry: the shorter side to floor(side / cropPct), then the centre side x side crop. */
export function resizeAndCenterCrop(img: ByteImage, side: number, cropPct: number, filter: ResampleFilter): ByteImage {
  if (img.width === side && img.height === side && cropPct === 1) return img;
  const resized = resizeShorterSide(img, Math.floor(side / cropPct), filter);
  return resize(resized, side, side, filter, centerCropBox(resized.width, resized.height, side));
}
