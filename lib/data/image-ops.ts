// The image operations of timm's RandAugment, computed as Pillow computes them on 8-bit RGB or
// grey images, so that the DeiT recipe's augmentation is timm's to the byte (checked against
// Pillow 9.4 outputs in test/fixtures/pil-ops.json; the algorithms below are those of Pillow's
// ImageOps, ImageEnhance and libImaging, unchanged for years):
//   lookup tables per channel: invert, posterize (keep the top bits), solarize (invert at or above
//     a threshold), solarize-add (add below a threshold), autocontrast (stretch each channel's
//     [min, max] to [0, 255]), equalize (Pillow's histogram equalisation per channel);
//   enhancements, Image.blend(degenerate, image, factor) in float32 and truncated to bytes:
//     colour (degenerate: the ITU-R 601-2 luma grey), contrast (the grey's rounded mean),
//     brightness (black), sharpness (the 3x3 SMOOTH filter, border pixels kept);
//   affine maps (rotate about the centre, shear, translate): each output pixel centre is mapped
//     back into the input and sampled with Pillow's transform filters (bilinear, or bicubic with
//     a = -1 as libImaging/Geometry.c has it), pixels mapped outside the image get the fill colour.
// No pure-JavaScript library reproduces Pillow's rounding, which is why these are written out.
// Cost: one pass over the pixels (two for the histogram ones), 16 taps per pixel for bicubic maps.
import { ByteImage, checkByteImage } from './byte-image';

export type TransformFilter = 'bilinear' | 'bicubic';

/** Throws unless img is a grey or RGB image (Pillow's 'L' and 'RGB' modes). */
function checkMode(img: ByteImage): ByteImage {
  checkByteImage(img, 'img');
  if (img.channels !== 1 && img.channels !== 3)
    throw new Error(`img: expected a grey or RGB image (1 or 3 channels), got ${img.channels} channels`);
  return img;
}

function mapChannels(img: ByteImage, lut: (c: number) => Uint8Array): ByteImage {
  checkMode(img);
  const { channels } = img;
  const tables = Array.from({ length: channels }, (_, c) => lut(c));
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = tables[i % channels][img.data[i]];
  return { ...img, data };
}

function table(f: (v: number) => number): Uint8Array {
  return Uint8Array.from({ length: 256 }, (_, v) => f(v));
}

function histograms(img: ByteImage): Float64Array[] {
  const h = Array.from({ length: img.channels }, () => new Float64Array(256));
  for (let i = 0; i < img.data.length; i++) h[i % img.channels][img.data[i]]++;
  return h;
}

/** ImageOps.invert: 255 - v. */
export function invert(img: ByteImage): ByteImage {
  const t = table((v) => 255 - v);
  return mapChannels(img, () => t);
}

/** ImageOps.posterize: keep the top `bits` bits (0..8) of each value. */
export function posterize(img: ByteImage, bits: number): ByteImage {
  if (!Number.isInteger(bits) || bits < 0 || bits > 8)
    throw new Error(`bits: expected an integer in [0, 8], got ${bits}`);
  const mask = ~(2 ** (8 - bits) - 1) & 255;
  const t = table((v) => v & mask);
  return mapChannels(img, () => t);
}

/** ImageOps.solarize: values at or above `threshold` become 255 - v. */
export function solarize(img: ByteImage, threshold: number): ByteImage {
  const t = table((v) => (v < threshold ? v : 255 - v));
  return mapChannels(img, () => t);
}

/** timm's solarize_add: values below `threshold` get `add` more, up to 255. */
export function solarizeAdd(img: ByteImage, add: number, threshold = 128): ByteImage {
  const t = table((v) => (v < threshold ? Math.min(255, v + add) : v));
  return mapChannels(img, () => t);
}

/** ImageOps.autocontrast (no cutoff): each channel's [lo, hi] stretched to [0, 255]. */
export function autoContrast(img: ByteImage): ByteImage {
  const hist = histograms(checkMode(img));
  return mapChannels(img, (c) => {
    const h = hist[c];
    let lo = 0,
      hi = 255;
    while (lo < 255 && h[lo] === 0) lo++;
    while (hi > 0 && h[hi] === 0) hi--;
    if (hi <= lo) return table((v) => v);
    const scale = 255 / (hi - lo),
      offset = -lo * scale;
    return table((v) => Math.min(255, Math.max(0, Math.trunc(v * scale + offset))));
  });
}

/** ImageOps.equalize: Pillow's per-channel histogram equalisation. */
export function equalize(img: ByteImage): ByteImage {
  const hist = histograms(checkMode(img));
  return mapChannels(img, (c) => {
    const h = hist[c];
    const used = Array.from(h).filter((n) => n > 0);
    if (used.length <= 1) return table((v) => v);
    const step = Math.floor((used.reduce((a, b) => a + b, 0) - used[used.length - 1]) / 255);
    if (step === 0) return table((v) => v);
    let n = Math.floor(step / 2);
    const t = new Uint8Array(256);
    for (let v = 0; v < 256; v++) {
      t[v] = Math.min(255, Math.floor(n / step));
      n += h[v];
    }
    return t;
  });
}

/**
 * Image.blend(degenerate, img, factor) as libImaging/Blend.c: float32 arithmetic, truncated,
 * clipped when extrapolating.
 */
function blend(degenerate: Uint8Array, img: ByteImage, factor: number): ByteImage {
  const alpha = Math.fround(factor);
  if (alpha === 0) return { ...img, data: degenerate.slice() };
  if (alpha === 1) return { ...img, data: img.data.slice() };
  const src = img.data;
  const data = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = Math.fround(degenerate[i] + Math.fround(alpha * (src[i] - degenerate[i])));
    data[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
  return { ...img, data };
}

/** The ITU-R 601-2 luma of each pixel (Image.convert('L'): (19595 R + 38470 G + 7471 B + 0x8000) >> 16). */
function luma(img: ByteImage): Uint8Array {
  const n = img.width * img.height;
  if (img.channels === 1) return img.data.slice();
  const out = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    const d = img.data;
    out[p] = (d[3 * p] * 19595 + d[3 * p + 1] * 38470 + d[3 * p + 2] * 7471 + 0x8000) >>> 16;
  }
  return out;
}

/** A grey plane repeated in every channel (Image.convert from 'L' to the image's mode). */
function greyToChannels(grey: Uint8Array, channels: number): Uint8Array {
  if (channels === 1) return grey;
  const out = new Uint8Array(grey.length * channels);
  for (let p = 0; p < grey.length; p++) for (let c = 0; c < channels; c++) out[p * channels + c] = grey[p];
  return out;
}

/** ImageEnhance.Color: 0 gives the grey image, 1 the image. */
export function color(img: ByteImage, factor: number): ByteImage {
  checkMode(img);
  return blend(greyToChannels(luma(img), img.channels), img, factor);
}

/** ImageEnhance.Contrast: 0 gives a flat image at the grey's mean (rounded), 1 the image. */
export function contrast(img: ByteImage, factor: number): ByteImage {
  checkMode(img);
  const grey = luma(img);
  const hist = new Float64Array(256);
  for (let p = 0; p < grey.length; p++) hist[grey[p]]++;
  let sum = 0;
  for (let v = 0; v < 256; v++) sum += v * hist[v];
  const mean = Math.trunc(sum / grey.length + 0.5);
  return blend(new Uint8Array(img.data.length).fill(mean), img, factor);
}

/** ImageEnhance.Brightness: 0 gives black, 1 the image. */
export function brightness(img: ByteImage, factor: number): ByteImage {
  checkMode(img);
  return blend(new Uint8Array(img.data.length), img, factor);
}

/**
 * Image.filter(ImageFilter.SMOOTH): the 3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13 in float32, rounded;
 * border pixels kept.
 */
function smooth(img: ByteImage): Uint8Array {
  const { width: w, height: h, channels: ch, data: src } = img;
  const out = src.slice();
  if (w < 3 || h < 3) return out;
  const k1 = Math.fround(1 / 13),
    k5 = Math.fround(5 / 13);
  const f = Math.fround;
  const stride = w * ch;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      for (let c = 0; c < ch; c++) {
        const i = (y * w + x) * ch + c;
        // Each kernel row is in[x - 1] k0 + in[x] k1 + in[x + 1] k2, left to right in float32
        // (Filter.c's KERNEL1x3), added to 0.5 in the order: row below, the row, row above.
        const below = i + stride,
          above = i - stride;
        let s = f(0.5);
        s = f(s + f(f(f(src[below - ch] * k1) + f(src[below] * k1)) + f(src[below + ch] * k1)));
        s = f(s + f(f(f(src[i - ch] * k1) + f(src[i] * k5)) + f(src[i + ch] * k1)));
        s = f(s + f(f(f(src[above - ch] * k1) + f(src[above] * k1)) + f(src[above + ch] * k1)));
        out[i] = s <= 0 ? 0 : s >= 255 ? 255 : Math.trunc(s);
      }
    }
  }
  return out;
}

/** ImageEnhance.Sharpness: 0 gives the smoothed image, 1 the image, 2 a sharpened one. */
export function sharpness(img: ByteImage, factor: number): ByteImage {
  checkMode(img);
  return blend(smooth(img), img, factor);
}

/** Pillow's cubic convolution of four samples at fraction d (libImaging/Geometry.c's BICUBIC, a = -1). */
function cubic(v1: number, v2: number, v3: number, v4: number, d: number): number {
  const p2 = -v1 + v3;
  const p3 = 2 * (v1 - v2) + v3 - v4;
  const p4 = -v1 + v2 - v3 + v4;
  return v2 + d * (p2 + d * (p3 + d * p4));
}

function checkFill(fill: number[], channels: number): number[] {
  if (
    !Array.isArray(fill) ||
    (fill.length !== channels && fill.length !== 1) ||
    fill.some((v) => !Number.isInteger(v) || v < 0 || v > 255)
  ) {
    throw new Error(
      `fill: expected ${channels === 1 ? 1 : `1 or ${channels}`} integers in [0, 255], got ${JSON.stringify(fill)}`,
    );
  }
  return fill.length === channels ? fill : Array.from({ length: channels }, () => fill[0]);
}

/**
 * Image.transform(size, AFFINE, m, resample, fillcolor): output pixel (x, y) samples the input at
 * (m0 (x + 0.5) + m1 (y + 0.5) + m2, m3 (x + 0.5) + m4 (y + 0.5) + m5); samples outside the image
 * are `fill`. Taps beyond the border repeat the border pixel.
 */
export function affine(img: ByteImage, m: readonly number[], filter: TransformFilter, fill: number[]): ByteImage {
  checkMode(img);
  if (!Array.isArray(m) || m.length !== 6 || m.some((v) => !Number.isFinite(v)))
    throw new Error(`matrix: expected 6 finite numbers, got ${JSON.stringify(m)}`);
  if (filter !== 'bilinear' && filter !== 'bicubic')
    throw new Error(`filter: expected 'bilinear' or 'bicubic', got ${JSON.stringify(filter)}`);
  const colour = checkFill(fill, img.channels);
  const { width: w, height: h, channels: ch, data: src } = img;
  const data = new Uint8Array(src.length);
  const bicubicFilter = filter === 'bicubic';
  const col = new Int32Array(4),
    row = new Int32Array(4);
  const v = new Float64Array(4);
  for (let oy = 0; oy < h; oy++) {
    for (let ox = 0; ox < w; ox++) {
      const o = (oy * w + ox) * ch;
      const xin = m[0] * (ox + 0.5) + m[1] * (oy + 0.5) + m[2];
      const yin = m[3] * (ox + 0.5) + m[4] * (oy + 0.5) + m[5];
      if (!(xin >= 0 && xin < w && yin >= 0 && yin < h)) {
        for (let c = 0; c < ch; c++) data[o + c] = colour[c];
        continue;
      }
      const x = Math.floor(xin - 0.5),
        y = Math.floor(yin - 0.5);
      const dx = xin - 0.5 - x,
        dy = yin - 0.5 - y;
      // Taps beyond the border repeat the border pixel (Geometry.c's XCLIP, and its row checks).
      const first = bicubicFilter ? -1 : 0,
        taps = bicubicFilter ? 4 : 2;
      for (let k = 0; k < taps; k++) {
        const xx = x + first + k,
          yy = y + first + k;
        col[k] = (xx < 0 ? 0 : xx < w ? xx : w - 1) * ch;
        row[k] = (yy < 0 ? 0 : yy < h ? yy : h - 1) * w * ch;
      }
      for (let c = 0; c < ch; c++) {
        if (!bicubicFilter) {
          const a0 = src[row[0] + col[0] + c],
            b0 = src[row[0] + col[1] + c];
          const a1 = src[row[1] + col[0] + c],
            b1 = src[row[1] + col[1] + c];
          const v1 = a0 + (b0 - a0) * dx,
            v2 = a1 + (b1 - a1) * dx;
          data[o + c] = Math.trunc(v1 + (v2 - v1) * dy);
        } else {
          for (let k = 0; k < 4; k++) {
            const r = row[k] + c;
            v[k] = cubic(src[r + col[0]], src[r + col[1]], src[r + col[2]], src[r + col[3]], dx);
          }
          const out = cubic(v[0], v[1], v[2], v[3], dy);
          data[o + c] = out <= 0 ? 0 : out >= 255 ? 255 : Math.trunc(out);
        }
      }
    }
  }
  return { ...img, data };
}

/** Python's round(x, 15), which Image.rotate applies to the matrix's cosine and sine. */
function round15(x: number): number {
  return Number(x.toFixed(15));
}

/** Image.rotate(degrees, resample, fillcolor): counter-clockwise about the centre, same size. */
export function rotate(img: ByteImage, degrees: number, filter: TransformFilter, fill: number[]): ByteImage {
  checkMode(img);
  const angle = ((degrees % 360) + 360) % 360;
  if (angle === 0) return { ...img, data: img.data.slice() };
  const { width: w, height: h } = img;
  const a = (-angle * Math.PI) / 180;
  const m = [round15(Math.cos(a)), round15(Math.sin(a)), 0, round15(-Math.sin(a)), round15(Math.cos(a)), 0];
  const cx = w / 2,
    cy = h / 2;
  m[2] = m[0] * -cx + m[1] * -cy + cx;
  m[5] = m[3] * -cx + m[4] * -cy + cy;
  return affine(img, m, filter, fill);
}

/** timm's shear_x: Image.transform with (1, factor, 0, 0, 1, 0). */
export function shearX(img: ByteImage, factor: number, filter: TransformFilter, fill: number[]): ByteImage {
  return affine(img, [1, factor, 0, 0, 1, 0], filter, fill);
}

/** timm's shear_y: Image.transform with (1, 0, 0, factor, 1, 0). */
export function shearY(img: ByteImage, factor: number, filter: TransformFilter, fill: number[]): ByteImage {
  return affine(img, [1, 0, 0, factor, 1, 0], filter, fill);
}

/** timm's translate_x_*: the output at x samples the input at x + pixels. */
export function translateX(img: ByteImage, pixels: number, filter: TransformFilter, fill: number[]): ByteImage {
  return affine(img, [1, 0, pixels, 0, 1, 0], filter, fill);
}

/** timm's translate_y_*: the output at y samples the input at y + pixels. */
export function translateY(img: ByteImage, pixels: number, filter: TransformFilter, fill: number[]): ByteImage {
  return affine(img, [1, 0, 0, 0, 1, pixels], filter, fill);
}
