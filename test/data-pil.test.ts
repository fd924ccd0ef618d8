// The DeiT pipeline's byte-level operations against Pillow: test/fixtures/pil-ops.json holds
// Pillow 9.4's outputs (scripts/pil-fixtures.py) of each resize and RandAugment operation, called
// as timm 0.3.2 and torchvision 0.8 call them, on images made by a formula; every byte must match.
import * as fs from 'fs';
import * as path from 'path';
import type { ByteImage } from '../lib/data/byte-image';
import * as ops from '../lib/data/image-ops';
import { resize, resizeAndCenterCrop } from '../lib/data/resample';

interface Case {
  input: string;
  op: string;
  args: (number | string)[];
  width: number;
  height: number;
  channels: number;
  data: string;
}

const FIXTURE = path.join(__dirname, 'fixtures', 'pil-ops.json');
const FILL = [124, 116, 104];

/** scripts/pil-fixtures.py's make(): (53 x + 97 y + 71 c + 13 x y) mod 256, a saturated corner. */
function make(width: number, height: number, channels: number): ByteImage {
  const data = new Uint8Array(width * height * channels);
  let k = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        let v = (53 * x + 97 * y + 71 * c + 13 * x * y) % 256;
        if (x < 3 && y < 2) v = (x + c) % 2 ? 255 : 0;
        data[k++] = v;
      }
    }
  }
  return { data, width, height, channels };
}

const INPUTS: Record<string, ByteImage> = {
  rgb19x14: make(19, 14, 3),
  grey19x14: make(19, 14, 1),
  rgb37x29: make(37, 29, 3),
  flat5x4: { data: Uint8Array.from({ length: 60 }, (_, i) => [7, 200, 90][i % 3]), width: 5, height: 4, channels: 3 },
};

function run(c: Case): ByteImage {
  const img = INPUTS[c.input];
  const a = c.args;
  const n = (i: number) => a[i] as number;
  const f = (i: number) => a[i] as ops.TransformFilter;
  const fill = img.channels === 3 ? FILL : [FILL[0]];
  switch (c.op) {
    case 'resize':
      return resize(img, n(0), n(1), f(2));
    case 'resizedCrop':
      return resize(img, n(4), n(5), f(6), { top: n(0), left: n(1), height: n(2), width: n(3) });
    case 'resizeAndCenterCrop':
      return resizeAndCenterCrop(img, n(0), n(1), f(2));
    case 'autoContrast':
      return ops.autoContrast(img);
    case 'equalize':
      return ops.equalize(img);
    case 'invert':
      return ops.invert(img);
    case 'posterize':
      return ops.posterize(img, n(0));
    case 'solarize':
      return ops.solarize(img, n(0));
    case 'solarizeAdd':
      return ops.solarizeAdd(img, n(0));
    case 'color':
      return ops.color(img, n(0));
    case 'contrast':
      return ops.contrast(img, n(0));
    case 'brightness':
      return ops.brightness(img, n(0));
    case 'sharpness':
      return ops.sharpness(img, n(0));
    case 'rotate':
      return ops.rotate(img, n(0), f(1), fill);
    case 'shearX':
      return ops.shearX(img, n(0), f(1), fill);
    case 'shearY':
      return ops.shearY(img, n(0), f(1), fill);
    case 'translateX':
      return ops.translateX(img, n(0), f(1), fill);
    case 'translateY':
      return ops.translateY(img, n(0), f(1), fill);
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

describe('Pillow equivalence of the DeiT transforms (fixtures from Pillow 9.4)', () => {
  const cases = (JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as { cases: Case[] }).cases;

  test('the fixture covers every operation', () => {
    const covered = new Set(cases.map((c) => c.op));
    for (const op of [
      'resize',
      'resizedCrop',
      'resizeAndCenterCrop',
      'autoContrast',
      'equalize',
      'invert',
      'posterize',
      'solarize',
      'solarizeAdd',
      'color',
      'contrast',
      'brightness',
      'sharpness',
      'rotate',
      'shearX',
      'shearY',
      'translateX',
      'translateY',
    ]) {
      expect(covered.has(op)).toBe(true);
    }
  });

  test.each(cases.map((c) => [`${c.op}(${c.args.join(', ')}) of ${c.input}`, c] as const))('%s', (_, c) => {
    const out = run(c);
    expect([out.width, out.height, out.channels]).toEqual([c.width, c.height, c.channels]);
    const want = Buffer.from(c.data, 'base64');
    const wrong: string[] = [];
    for (let i = 0; i < want.length; i++)
      if (out.data[i] !== want[i]) wrong.push(`byte ${i}: ${out.data[i]} vs Pillow ${want[i]}`);
    expect(wrong.slice(0, 8)).toEqual([]);
  });
});
