// Image data: the IDX reader (gzip, bad magic, truncation), Fashion-MNIST from Debian's files,
// CIFAR-10 binary batches (synthetic records), the image-folder fixture (test/fixtures/images:
// 3 classes x 3 tiny PNG/JPEG files of several sizes, grey, RGB and RGBA, written once with sharp),
// the augmentations' properties, mixup/cutmix/label smoothing, and the loader's batches,
// determinism (seed + epoch, any prefetch depth), prefetching and argument errors.
// Pure data code: it does not depend on the backend and runs the same in every jest project.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  evaluationAugment,
  normalize,
  randomErasing,
  randomResizedCropBox,
  resolveAugment,
  transformImage,
  AugmentOptions,
} from '../lib/data/augment';
import { ByteImage, flipHorizontal, toPlanarFloat } from '../lib/data/byte-image';
import { centerCropBox, resize } from '../lib/data/resample';
import { loadCifar10, CIFAR10_CLASSES } from '../lib/data/cifar10';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../lib/data/fashion-mnist';
import { parseIdx, readIdx } from '../lib/data/idx';
import { ByteImageDataset, DecodedSample, ImageDataset, ImageSample } from '../lib/data/image-dataset';
import { loadImageFolder } from '../lib/data/image-folder';
import { ImageBatch, ImageLoader } from '../lib/data/image-loader';
import { deriveSeed, ImageRng } from '../lib/data/image-rng';
import { mixBatch, mixTargets } from '../lib/data/mix';
import { parseRandAugment, randAugment, randAugmentPolicy, RandAugmentStep } from '../lib/data/rand-augment';
import { repeatedAugmentationLength, repeatedAugmentationOrder } from '../lib/data/repeated-sampler';

const FIXTURE = path.join(__dirname, 'fixtures', 'images');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-data-image-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** IDX bytes: magic (0, 0, 8, rank), big-endian dims, then `body`. */
function idxBytes(dims: number[], body: Uint8Array, magic = [0, 0, 8, dims.length]): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  magic.forEach((b, i) => (header[i] = b));
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(body)]);
}

function writeFile(name: string, bytes: Uint8Array): string {
  const file = path.join(tmp, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
  return file;
}

async function collect(it: AsyncIterableIterator<ImageBatch>): Promise<ImageBatch[]> {
  const out: ImageBatch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

describe('IDX files', () => {
  const body = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);

  test('a gzip-compressed and a plain file parse to the same dims and bytes', () => {
    const gz = writeFile('idx/good.idx3-ubyte.gz', zlib.gzipSync(idxBytes([2, 3, 4], body)));
    const plain = writeFile('idx/good.idx3-ubyte', idxBytes([2, 3, 4], body));
    for (const file of [gz, plain]) {
      const { dims, data } = readIdx(file, 3);
      expect(dims).toEqual([2, 3, 4]);
      expect(Array.from(data)).toEqual(Array.from(body));
    }
  });

  test('bad magic, an unsupported type, the wrong rank, truncated data and trailing bytes are errors naming the file', () => {
    const badMagic = writeFile('idx/bad-magic.gz', zlib.gzipSync(idxBytes([2, 3, 4], body, [1, 0, 8, 3])));
    expect(() => readIdx(badMagic)).toThrow(`${badMagic}: not an IDX file`);
    expect(() => parseIdx(idxBytes([2], new Uint8Array(8), [0, 0, 0x0d, 1]), 'f.idx')).toThrow(
      'f.idx: IDX value type 0xd is not supported',
    );
    expect(() => parseIdx(idxBytes([2, 3, 4], body), 'f.idx', 1)).toThrow(
      'f.idx: expected 1 IDX dimensions, the header declares 3',
    );
    const truncated = writeFile('idx/truncated.gz', zlib.gzipSync(idxBytes([2, 3, 4], body.subarray(0, 20))));
    expect(() => readIdx(truncated)).toThrow(
      `${truncated}: IDX dimensions [2, 3, 4] need 24 bytes of data, the file has 20 (truncated)`,
    );
    expect(() => parseIdx(idxBytes([2, 3], body), 'f.idx')).toThrow('(trailing bytes)');
    expect(() => parseIdx(Uint8Array.from([0, 0, 8, 3, 0, 0]), 'f.idx')).toThrow('f.idx: truncated IDX header');
  });

  test('a cut-off gzip stream and a missing file are errors naming the file', () => {
    const whole = zlib.gzipSync(idxBytes([2, 3, 4], body));
    const cut = writeFile('idx/cut.gz', whole.subarray(0, whole.length - 12));
    expect(() => readIdx(cut)).toThrow(`${cut}: not a valid gzip file`);
    const missing = path.join(tmp, 'idx', 'missing.gz');
    expect(() => readIdx(missing)).toThrow(`${missing}: cannot read the file`);
  });
});

describe('Fashion-MNIST', () => {
  const present = ['train', 't10k'].every((p) =>
    fs.existsSync(path.join(FASHION_MNIST_DIR, `${p}-images-idx3-ubyte.gz`)),
  );
  const withFiles = present ? test : test.skip;
  const skipNote = present ? '' : ` (SKIPPED: ${FASHION_MNIST_DIR} is absent; apt install dataset-fashion-mnist)`;

  withFiles(`Debian's files: 60000 + 10000 images of 28x28x1 in [0, 1], balanced labels 0..9${skipNote}`, async () => {
    const train = loadFashionMnist({ split: 'train' });
    const testSet = loadFashionMnist({ split: 'test' });
    expect([train.length, testSet.length]).toEqual([60000, 10000]);
    expect([train.channels, train.height, train.width, train.numClasses]).toEqual([1, 28, 28, 10]);
    expect(train.classNames[9]).toBe('Ankle boot');
    const perClass = new Array<number>(10).fill(0);
    let lo = Infinity,
      hi = -Infinity;
    for (let i = 0; i < testSet.length; i++) {
      const { pixels, label } = await testSet.get(i);
      perClass[label]++;
      if (i % 100 === 0) {
        for (const v of pixels) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
    expect(perClass).toEqual(new Array(10).fill(1000)); // the test split has 1000 images of each class
    expect([lo, hi]).toEqual([0, 1]);
    const last = await train.get(59999);
    expect(last.pixels.length).toBe(784);
    await expect(train.get(60000)).rejects.toThrow('fashion-mnist/train: sample index 60000 out of range [0, 60000)');
  });

  test('a missing directory and image/label counts that disagree are errors naming the files', () => {
    const dir = path.join(tmp, 'fashion');
    expect(() => loadFashionMnist({ dir, split: 'test' })).toThrow(
      `${dir}/t10k-images-idx3-ubyte.gz: Fashion-MNIST file not found`,
    );
    writeFile('fashion/t10k-images-idx3-ubyte.gz', zlib.gzipSync(idxBytes([3, 28, 28], new Uint8Array(3 * 784))));
    writeFile('fashion/t10k-labels-idx1-ubyte', idxBytes([2], Uint8Array.from([1, 2])));
    expect(() => loadFashionMnist({ dir, split: 'test' })).toThrow(
      `${dir}/t10k-labels-idx1-ubyte: 2 labels for the 3 images`,
    );
    writeFile('fashion/t10k-labels-idx1-ubyte', idxBytes([3], Uint8Array.from([1, 2, 10])));
    expect(() => loadFashionMnist({ dir, split: 'test' })).toThrow('label 10 of sample 2 is not a class id in [0, 10)');
    expect(() => loadFashionMnist({ dir, split: 'valid' as 'test' })).toThrow(
      `split: expected 'train' or 'test', got "valid"`,
    );
  });
});

describe('CIFAR-10 binary batches', () => {
  /** Records whose label is r % 10 and whose R, G, B planes hold r + 10, r + 20, r + 30 (pixel 0 of R: 255). */
  function records(n: number, labelOf = (r: number) => r % 10): Buffer {
    const out = Buffer.alloc(n * 3073);
    for (let r = 0; r < n; r++) {
      out[r * 3073] = labelOf(r);
      for (let c = 0; c < 3; c++) out.fill(r + 10 * (c + 1), r * 3073 + 1 + c * 1024, r * 3073 + 1 + (c + 1) * 1024);
      out[r * 3073 + 1] = 255;
    }
    return out;
  }

  test('a 3-record test file: labels, planar RGB in [0, 1], default class names', async () => {
    const dir = path.join(tmp, 'cifar-a');
    writeFile('cifar-a/test_batch.bin', records(3));
    const ds = loadCifar10(dir, 'test');
    expect([ds.length, ds.channels, ds.height, ds.width, ds.numClasses]).toEqual([3, 3, 32, 32, 10]);
    expect(ds.classNames).toEqual(CIFAR10_CLASSES);
    const s = await ds.get(2);
    expect(s.label).toBe(2);
    expect([s.pixels[0], s.pixels[1], s.pixels[1024 + 5], s.pixels[2048 + 1023]]).toEqual(
      [1, 12 / 255, 22 / 255, 32 / 255].map(Math.fround),
    );
  });

  test('the training split concatenates data_batch_1..5 in order; batches.meta.txt names the classes', async () => {
    const dir = path.join(tmp, 'cifar-b');
    for (let k = 1; k <= 5; k++)
      writeFile(
        `cifar-b/data_batch_${k}.bin`,
        records(k, () => k),
      );
    writeFile('cifar-b/batches.meta.txt', Buffer.from(CIFAR10_CLASSES.map((c) => c.toUpperCase()).join('\n') + '\n\n'));
    const ds = loadCifar10(dir, 'train');
    expect(ds.length).toBe(1 + 2 + 3 + 4 + 5);
    expect(ds.classNames[0]).toBe('AIRPLANE');
    const labels = await Promise.all(Array.from({ length: ds.length }, (_, i) => ds.get(i).then((s) => s.label)));
    expect(labels).toEqual([1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5]);
  });

  test('bad sizes, bad labels, missing files and bad class lists are errors naming the file', () => {
    const dir = path.join(tmp, 'cifar-c');
    const file = writeFile('cifar-c/test_batch.bin', records(2).subarray(0, 3073 + 100));
    expect(() => loadCifar10(dir, 'test')).toThrow(
      `${file}: 3173 bytes is not a whole number of 3073-byte CIFAR-10 records`,
    );
    writeFile(
      'cifar-c/test_batch.bin',
      records(2, (r) => 10 + r),
    );
    expect(() => loadCifar10(dir, 'test')).toThrow(`${file}: label 10 of sample 0 is not a class id in [0, 10)`);
    expect(() => loadCifar10(dir, 'train')).toThrow(
      `${path.join(dir, 'data_batch_1.bin')}: cannot read the CIFAR-10 batch file`,
    );
    writeFile('cifar-c/test_batch.bin', records(2));
    writeFile('cifar-c/batches.meta.txt', Buffer.from('cat\ndog\n'));
    expect(() => loadCifar10(dir, 'test')).toThrow(
      `${path.join(dir, 'batches.meta.txt')}: expected 10 class names, one a line, found 2`,
    );
    expect(() => loadCifar10(path.join(tmp, 'nowhere'), 'test')).toThrow('CIFAR-10 directory not found');
  });
});

describe('image folder', () => {
  test('the fixture: sorted classes, 9 images resized to size x size RGB in [0, 1]; grey PNGs give equal channels', async () => {
    const ds = loadImageFolder(FIXTURE, { size: 16 });
    expect(ds.classNames).toEqual(['circles', 'squares', 'stripes']);
    expect([ds.length, ds.numClasses, ds.channels, ds.height, ds.width]).toEqual([9, 3, 3, 16, 16]);
    const samples = await Promise.all(Array.from({ length: 9 }, (_, i) => ds.get(i)));
    expect(samples.map((s) => s.label)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    for (const s of samples) {
      expect(s.pixels.length).toBe(3 * 16 * 16);
      expect(Math.min(...s.pixels)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...s.pixels)).toBeLessThanOrEqual(1);
      expect(Math.max(...s.pixels) - Math.min(...s.pixels)).toBeGreaterThan(0.3); // a drawing, not a flat image
    }
    const grey = samples[1].pixels; // circles/b.png is a one-channel PNG
    expect(grey.subarray(0, 256)).toEqual(grey.subarray(256, 512));
    const one = loadImageFolder(FIXTURE, { size: 8, channels: 1 });
    expect((await one.get(4)).pixels.length).toBe(64);
  });

  test('an undecodable file is an error naming it; other files, empty classes and bad options are errors', async () => {
    const dir = path.join(tmp, 'folder');
    fs.cpSync(FIXTURE, dir, { recursive: true });
    const bad = writeFile('folder/squares/d.png', Buffer.from('not a png at all'));
    writeFile('folder/.hidden/x.txt', Buffer.from('skipped'));
    const ds = loadImageFolder(dir, { size: 8 });
    expect(ds.length).toBe(10);
    await expect(ds.get(6)).rejects.toThrow(`${bad}: cannot decode the image`);
    const loader = new ImageLoader(ds, { batchSize: 4, prefetch: 2 });
    await expect(collect(loader.epoch(0))).rejects.toThrow(`${bad}: cannot decode the image`);
    const notes = writeFile('folder/stripes/notes.txt', Buffer.from('x'));
    expect(() => loadImageFolder(dir)).toThrow(`${notes}: not an image file`);
    fs.rmSync(notes);
    fs.mkdirSync(path.join(dir, 'empty'));
    expect(() => loadImageFolder(dir)).toThrow(`${path.join(dir, 'empty')}: class folder has no`);
    expect(() => loadImageFolder(path.join(tmp, 'no-such-folder'))).toThrow('image folder not found');
    expect(() => loadImageFolder(FIXTURE, { size: 0 })).toThrow('size: expected a positive integer, got 0');
    expect(() => loadImageFolder(FIXTURE, { channels: 2 as 3 })).toThrow('channels: expected 1 or 3, got 2');
    expect(() => loadImageFolder(FIXTURE, { sise: 8 } as object)).toThrow(
      "loadImageFolder options: unknown option 'sise'",
    );
  });
});

/** An interleaved [h, w, c] byte image with distinct values: (50 c + 10 y + x) mod 256. */
function ramp(c: number, h: number, w: number): ByteImage {
  const data = new Uint8Array(c * h * w);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) data[(y * w + x) * c + k] = (50 * k + 10 * y + x) % 256;
  return { data, width: w, height: h, channels: c };
}

/** A [c, h, w] float image with distinct values: 1000 c + 10 y + x / 10. */
function floatRamp(c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++)
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[(k * h + y) * w + x] = 1000 * k + 10 * y + x / 10;
  return out;
}

/** FNV-1a of a float array's bytes, for pinning a fixed-seed output. */
function fnv(a: Float32Array): string {
  const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193) >>> 0;
  return h.toString(16);
}

const PINNED_DEIT = '4c54813c';
/** (seed, the draws, FNV-1a of the output) of RandAugment on ramp(3, 12, 12) under deriveSeed(3, seed). */
const PINNED_RA: [number, string, string][] = [
  [12, 'ColorIncreasing@9.0384 Rotate@8.9251', 'b391ca8f'],
  [19, 'SharpnessIncreasing@9.3084 ShearX@8.8572', '301fa308'],
];

const DEIT: AugmentOptions = {
  randomResizedCrop: { scale: [0.08, 1] },
  interpolation: 'bicubic',
  flip: true,
  randAugment: 'rand-m9-mstd0.5-inc1',
  randomErasing: 0.25,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  imageSize: 24,
  cropPct: 0.875,
};

describe('augmentation', () => {
  test('random resized crop boxes lie inside the image with area and aspect ratio in range; the output has imageSize', () => {
    const scale: [number, number] = [0.08, 1],
      ratio: [number, number] = [3 / 4, 4 / 3];
    const bad: string[] = [];
    for (let s = 0; s < 300; s++) {
      const box = randomResizedCropBox(new ImageRng(s), 40, 30, scale, ratio);
      const inside = box.top >= 0 && box.left >= 0 && box.top + box.height <= 40 && box.left + box.width <= 30;
      const area = (box.height * box.width) / 1200,
        aspect = box.width / box.height;
      // rounding the sides to whole pixels moves the area and the aspect ratio a little
      if (!inside || area < 0.08 * 0.6 || aspect < (3 / 4) * 0.75 || aspect > (4 / 3) * 1.3)
        bad.push(JSON.stringify(box));
    }
    expect(bad).toEqual([]);
    const a = resolveAugment({ randomResizedCrop: { scale: [0.2, 1] }, imageSize: 12 }, 3, 40, 30);
    expect(transformImage(ramp(3, 40, 30), a, new ImageRng(1)).length).toBe(3 * 12 * 12);
    // the fallback: no try fits a 100 x 4 strip at ratio 3/4..4/3, so the centre crop of ratio 4/3
    expect(randomResizedCropBox(new ImageRng(0), 4, 100, [0.9, 1], ratio)).toEqual({
      top: 0,
      left: 47,
      height: 4,
      width: 5,
    });
  });

  test('the crop is taken from the full image and resized with the chosen filter; evaluation resizes the shorter side then centre-crops', () => {
    const img = ramp(3, 45, 60);
    const rng = new ImageRng(9);
    const box = randomResizedCropBox(new ImageRng(9), 45, 60, [0.08, 1], [3 / 4, 4 / 3]);
    const a = resolveAugment(
      { randomResizedCrop: { scale: [0.08, 1] }, interpolation: 'bicubic', imageSize: 16 },
      3,
      16,
      16,
    );
    expect(transformImage(img, a, rng)).toEqual(toPlanarFloat(resize(img, 16, 16, 'bicubic', box)));
    // DeiT's evaluation at 16 / 0.8: the shorter side to 20 (60 x 45 -> 26 x 20), then the centre 16 x 16
    const ev = resolveAugment(evaluationAugment({ ...DEIT, imageSize: 16, cropPct: 0.8 }), 3, 16, 16);
    const resized = resize(img, 26, 20, 'bicubic');
    const want = toPlanarFloat(resize(resized, 16, 16, 'bicubic', { top: 2, left: 5, height: 16, width: 16 }));
    const got = transformImage(img, ev, new ImageRng(0));
    const worst = Math.max(
      ...Array.from(got, (v, k) =>
        Math.abs(v - (want[k] - DEIT.mean![Math.floor(k / 256)]) / DEIT.std![Math.floor(k / 256)]),
      ),
    );
    expect(worst).toBeLessThan(1e-5);
    // at cropPct 1 an image of the output size passes unchanged
    const same = resolveAugment({ imageSize: 45 }, 3, 45, 45);
    const sq = ramp(3, 45, 45);
    expect(transformImage(sq, same, new ImageRng(0))).toEqual(toPlanarFloat(sq));
    expect(() => centerCropBox(10, 8, 9)).toThrow('does not fit a 10x8 image');
    // torchvision's round() of the margin: (26 - 16) / 2 = 5, (21 - 16) / 2 = 2.5 -> 2 (halves to even)
    expect(centerCropBox(26, 21, 16)).toEqual({ top: 2, left: 5, height: 16, width: 16 });
    expect(centerCropBox(16, 23, 16)).toEqual({ top: 4, left: 0, height: 16, width: 16 });
  });

  test('flip is a mirror of every row; with flip on, about half the images are mirrored and none changed otherwise', () => {
    const src = ramp(3, 5, 7);
    const f = flipHorizontal(src);
    for (let y = 0; y < 5; y++)
      for (let x = 0; x < 7; x++)
        for (let c = 0; c < 3; c++) expect(f.data[(y * 7 + x) * 3 + c]).toBe(src.data[(y * 7 + 6 - x) * 3 + c]);
    const a = resolveAugment({ flip: true }, 3, 5, 7);
    const plain = Array.from(toPlanarFloat(src)),
      mirror = Array.from(toPlanarFloat(f));
    let mirrored = 0,
      other = 0;
    for (let s = 0; s < 200; s++) {
      const out = Array.from(transformImage(src, a, new ImageRng(s)));
      if (out.every((v, k) => v === mirror[k])) mirrored++;
      else if (!out.every((v, k) => v === plain[k])) other++;
    }
    expect(other).toBe(0);
    expect(mirrored).toBeGreaterThan(70);
    expect(mirrored).toBeLessThan(130);
  });

  test('the DeiT training transform at a fixed seed: the same output every time, and a pinned checksum', () => {
    const img = ramp(3, 45, 60);
    const a = resolveAugment(DEIT, 3, 24, 24);
    const out = transformImage(img, a, new ImageRng(deriveSeed(7, 1, 3)));
    expect(out.length).toBe(3 * 24 * 24);
    expect(transformImage(img, a, new ImageRng(deriveSeed(7, 1, 3)))).toEqual(out);
    expect(transformImage(img, a, new ImageRng(deriveSeed(7, 1, 4)))).not.toEqual(out);
    expect(fnv(out)).toBe(PINNED_DEIT);
  });

  test('random erasing replaces exactly one box of noise; normalisation is (x - mean) / std per channel', () => {
    const src = floatRamp(3, 20, 20);
    let erased = 0;
    const wrong: string[] = [];
    for (let s = 0; s < 50; s++) {
      const img = src.slice();
      const box = randomErasing(new ImageRng(s), img, 3, 20, 20, 0.5) ?? { top: 0, left: 0, height: 0, width: 0 };
      let changed = 0,
        outside = 0;
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < 20; y++) {
          for (let x = 0; x < 20; x++) {
            const k = (c * 20 + y) * 20 + x;
            const inside = y >= box.top && y < box.top + box.height && x >= box.left && x < box.left + box.width;
            if (img[k] !== src[k] && inside) changed++;
            else if (img[k] !== src[k]) outside++;
          }
        }
      }
      if (box.height > 0) erased++;
      if (changed !== 3 * box.height * box.width || outside !== 0 || box.height * box.width > 400 / 3 + 20)
        wrong.push(`seed ${s}`);
    }
    expect(wrong).toEqual([]);
    expect(erased).toBeGreaterThan(10);
    expect(erased).toBeLessThan(40);
    const img = Float32Array.from([0.5, 1, 0, 0.25]);
    normalize(img, 2, Float32Array.from([0.5, 0.25]), Float32Array.from([0.5, 0.25]));
    expect(Array.from(img)).toEqual([0, 1, -1, 0]);
  });

  test('Beta draws: Beta(2, 5) has mean 2/7, Beta(0.1, 0.1) stays in [0, 1] and piles up near 0 and 1', () => {
    const rng = new ImageRng(deriveSeed(7, 1));
    let sum = 0;
    for (let i = 0; i < 2000; i++) sum += rng.beta(2, 5);
    expect(sum / 2000).toBeCloseTo(2 / 7, 1);
    const small = Array.from({ length: 1000 }, () => rng.beta(0.1, 0.1));
    expect(small.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(small.filter((v) => v < 0.05 || v > 0.95).length).toBeGreaterThan(600);
  });
});

describe('RandAugment (timm 0.3.2)', () => {
  test("parses timm's strings; DeiT's is magnitude 9, noise 0.5, the increasing operations, 2 per image", () => {
    expect(parseRandAugment('rand-m9-mstd0.5-inc1')).toEqual({
      magnitude: 9,
      magnitudeStd: 0.5,
      numOps: 2,
      increasing: true,
    });
    expect(parseRandAugment('rand-n3-m5')).toEqual({ magnitude: 5, magnitudeStd: 0, numOps: 3, increasing: false });
    const p = randAugmentPolicy('rand-m9-mstd0.5-inc1', [0.485, 0.456, 0.406], 'bicubic');
    expect(p.fill).toEqual([124, 116, 104]);
    expect(p.ops).toEqual([
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
    ]);
    expect(randAugmentPolicy('rand-m9', [0.5], 'bilinear').ops).toContain('Posterize');
    expect(() => parseRandAugment('augmix-m5')).toThrow("randAugment: expected timm's RandAugment string");
    expect(() => parseRandAugment('rand-w0')).toThrow("randAugment: unsupported section 'w0'");
    expect(() => parseRandAugment('rand-inc0')).toThrow("unsupported section 'inc0'");
    expect(() => parseRandAugment('rand-mx')).toThrow("randAugment: cannot read 'mx'");
  });

  test('per image: 2 operations drawn uniformly, each applied with probability 0.5 at N(9, 0.5) clipped to [0, 10]', () => {
    const p = randAugmentPolicy('rand-m9-mstd0.5-inc1', [0.485, 0.456, 0.406], 'bicubic');
    const img = ramp(3, 12, 12);
    const counts = new Map<string, number>();
    let applied = 0,
      drawn = 0,
      sum = 0,
      sq = 0,
      above = 0;
    for (let s = 0; s < 1500; s++) {
      const trace: RandAugmentStep[] = [];
      randAugment(img, p, new ImageRng(deriveSeed(11, s)), trace);
      expect(trace.length).toBe(2);
      for (const t of trace) {
        drawn++;
        counts.set(t.op, (counts.get(t.op) ?? 0) + 1);
        if (!t.applied) continue;
        applied++;
        sum += t.magnitude;
        sq += t.magnitude * t.magnitude;
        if (t.magnitude > 10 || t.magnitude < 0) above++;
      }
    }
    expect(counts.size).toBe(15);
    // Each of the 15 within 5 sigma of its expected count.
    for (const n of counts.values()) expect(Math.abs(n - drawn / 15)).toBeLessThan(5 * Math.sqrt(drawn / 15));
    expect(Math.abs(applied / drawn - 0.5)).toBeLessThan(0.03);
    const mean = sum / applied,
      std = Math.sqrt(sq / applied - mean * mean);
    expect(above).toBe(0);
    expect(Math.abs(mean - 9)).toBeLessThan(0.05);
    expect(std).toBeGreaterThan(0.4);
    expect(std).toBeLessThan(0.55);
  });

  test('a fixed seed gives a fixed sequence of operations and a fixed image; magnitude 0 changes nothing but the level-free operations', () => {
    const p = randAugmentPolicy('rand-m9-mstd0.5-inc1', [0.485, 0.456, 0.406], 'bicubic');
    const img = ramp(3, 12, 12);
    for (const [seed, ops, hash] of PINNED_RA) {
      const trace: RandAugmentStep[] = [];
      const out = randAugment(img, p, new ImageRng(deriveSeed(3, seed)), trace);
      expect(trace.map((t) => `${t.op}${t.applied ? `@${t.magnitude.toFixed(4)}` : ''}`).join(' ')).toBe(ops);
      expect(fnv(toPlanarFloat(out))).toBe(hash);
    }
    // With m0 and no noise the increasing operations are the identity: colour etc. at factor 1,
    // posterize keeps 4 bits...
    const zero = randAugmentPolicy('rand-m0-inc1', [0.5, 0.5, 0.5], 'bicubic');
    for (let s = 0; s < 40; s++) {
      const t: RandAugmentStep[] = [];
      const o = randAugment(img, zero, new ImageRng(s), t);
      if (
        t.every(
          (x) =>
            !x.applied ||
            [
              'Rotate',
              'ColorIncreasing',
              'ContrastIncreasing',
              'BrightnessIncreasing',
              'SharpnessIncreasing',
              'ShearX',
              'ShearY',
              'TranslateXRel',
              'TranslateYRel',
              'SolarizeAdd',
              'SolarizeIncreasing',
            ].includes(x.op),
        )
      ) {
        expect(o.data).toEqual(img.data);
      }
    }
  });

  test('RandAugment needs grey or RGB images', () => {
    expect(() => resolveAugment({ randAugment: 'rand-m9' }, 2, 8, 8)).toThrow(
      "augment.randAugment: RandAugment's operations are Pillow's, for grey or RGB images; these have 2 channels",
    );
    expect(() => resolveAugment({ randAugment: 'rand-m9', interpolation: 'nearest' as 'bilinear' }, 3, 8, 8)).toThrow(
      "augment.interpolation: expected 'bilinear' or 'bicubic'",
    );
  });
});

describe('repeated augmentation (DeiT RASampler)', () => {
  test('each drawn image appears 3 times in a row; an epoch keeps floor(n / 256) x 256 positions; epochs differ', () => {
    const n = 1000;
    const o = repeatedAugmentationOrder(n, 3, new ImageRng(1));
    expect(o.length).toBe(768);
    for (let k = 0; k < 768; k += 3) {
      expect(o[k + 1]).toBe(o[k]);
      if (k + 2 < 768) expect(o[k + 2]).toBe(o[k]);
    }
    const distinct = new Set(o);
    expect(distinct.size).toBe(256);
    expect(Math.max(...distinct)).toBeLessThan(n);
    expect(repeatedAugmentationOrder(n, 3, new ImageRng(2))).not.toEqual(o);
    // replicas R: each keeps floor(floor(n / 256) x 256 / R) positions (ImageNet on DeiT's 4 GPUs: 4 x 320256)
    expect(repeatedAugmentationLength(1281167, 4)).toBe(1281024);
    expect(repeatedAugmentationOrder(2000, 3, new ImageRng(0), 3).length).toBe(1791);
    expect(() => repeatedAugmentationOrder(255, 3, new ImageRng(0))).toThrow('255 images give none');
  });
});

describe('mixup, cutmix and label smoothing', () => {
  const shape = { batchSize: 4, channels: 2, height: 6, width: 5 };
  const size = 2 * 6 * 5;
  const labels = Float32Array.from([0, 2, 1, 2]);
  /** Image i is constant 10 (i + 1): each pixel tells which image it came from. */
  const batch = (): Float32Array => Float32Array.from({ length: 4 * size }, (_, k) => 10 * (Math.floor(k / size) + 1));

  test('mixup: image i is lam x_i + (1 - lam) x_{B-1-i}, soft rows are the same mixture of one-hots and sum to 1', () => {
    for (let s = 0; s < 10; s++) {
      const images = batch();
      const { soft, lam, box } = mixBatch(
        images,
        labels,
        shape,
        3,
        { mixup: 0.8, cutmix: 0, mixProb: 1, labelSmoothing: 0 },
        new ImageRng(s),
      );
      expect(box).toBeNull();
      expect(lam).toBeGreaterThan(0);
      expect(lam).toBeLessThan(1);
      for (let i = 0; i < 4; i++) {
        expect(images[i * size + 7]).toBeCloseTo(lam * 10 * (i + 1) + (1 - lam) * 10 * (4 - i), 4);
        const row = Array.from(soft!.subarray(i * 3, i * 3 + 3));
        const expected = [0, 0, 0];
        expected[labels[i]] += lam;
        expected[labels[3 - i]] += 1 - lam;
        row.forEach((v, k) => expect(v).toBeCloseTo(expected[k], 6));
        expect(row.reduce((a, b) => a + b)).toBeCloseTo(1, 6);
      }
    }
  });

  test('cutmix: the pasted box comes from x_{B-1-i} and its share of the image is 1 - lam', () => {
    for (let s = 0; s < 10; s++) {
      const images = batch();
      const { soft, lam, box } = mixBatch(
        images,
        labels,
        shape,
        3,
        { mixup: 0, cutmix: 1, mixProb: 1, labelSmoothing: 0.1 },
        new ImageRng(s),
      );
      expect(box).not.toBeNull();
      for (let i = 0; i < 4; i++) {
        const img = images.subarray(i * size, (i + 1) * size);
        const pasted = img.filter((v) => v === 10 * (4 - i)).length;
        expect(pasted).toBe(Math.round((1 - lam) * size));
        expect(img.filter((v) => v !== 10 * (i + 1) && v !== 10 * (4 - i)).length).toBe(0);
        expect(Array.from(soft!.subarray(i * 3, i * 3 + 3)).reduce((a, b) => a + b)).toBeCloseTo(1, 6);
      }
      expect((box!.bottom - box!.top) * (box!.right - box!.left)).toBe(Math.round((1 - lam) * 30));
    }
  });

  test('both on: some batches get mixup, some cutmix; mixProb 0 leaves images alone; smoothing alone gives smoothed one-hots', () => {
    const kinds = new Set<string>();
    for (let s = 0; s < 20; s++) {
      const r = mixBatch(
        batch(),
        labels,
        shape,
        3,
        { mixup: 0.8, cutmix: 1, mixProb: 1, labelSmoothing: 0 },
        new ImageRng(s),
      );
      kinds.add(r.box ? 'cutmix' : 'mixup');
    }
    expect([...kinds].sort()).toEqual(['cutmix', 'mixup']);
    const images = batch();
    const r = mixBatch(
      images,
      labels,
      shape,
      3,
      { mixup: 0.8, cutmix: 1, mixProb: 0, labelSmoothing: 0.3 },
      new ImageRng(0),
    );
    expect(images).toEqual(batch());
    expect(r.lam).toBe(1);
    expect(Array.from(r.soft!.subarray(0, 3))).toEqual([0.8, 0.1, 0.1].map(Math.fround));
    expect(
      mixBatch(batch(), labels, shape, 3, { mixup: 0, cutmix: 0, mixProb: 1, labelSmoothing: 0 }, new ImageRng(0)).soft,
    ).toBeNull();
    expect(Array.from(mixTargets([1, 0], 2, 0.75, 0))).toEqual([0.25, 0.75, 0.75, 0.25]);
  });
});

/** A dataset whose pixel values encode the sample index, answering after an index-dependent delay
 *  (so that samples complete out of order); it counts the calls to get(). */
/** 2-channel 6 x 6 byte images whose first pixel is (i mod 256, i / 256); decoding takes a few ms, out of order. */
class SlowDataset implements ImageDataset {
  readonly name = 'slow';
  readonly numClasses = 4;
  readonly channels = 2;
  readonly height = 6;
  readonly width = 6;
  readonly classNames = ['a', 'b', 'c', 'd'];
  calls = 0;
  constructor(readonly length: number) {}
  async decode(i: number): Promise<DecodedSample> {
    this.calls++;
    await new Promise((resolve) => setTimeout(resolve, (i * 7) % 5));
    const data = Uint8Array.from({ length: 72 }, (_, k) => (k === 0 ? i % 256 : k === 1 ? i >> 8 : (10 * i + k) % 256));
    return { image: { data, width: 6, height: 6, channels: 2 }, label: i % 4 };
  }
  async get(i: number): Promise<ImageSample> {
    const { image, label } = await this.decode(i);
    return { pixels: toPlanarFloat(image), label };
  }
}

/** The sample index of an image of SlowDataset in a batch without augmentation. */
const slowIndex = (b: ImageBatch, j: number): number =>
  Math.round(b.images[j * 72] * 255) + 256 * Math.round(b.images[j * 72 + 36] * 255);

const FULL: AugmentOptions = {
  randomResizedCrop: { scale: [0.3, 1] },
  flip: true,
  mixup: 0.8,
  cutmix: 1,
  randomErasing: 0.25,
  labelSmoothing: 0.1,
  mean: [0.5, 0.4],
  std: [0.2, 0.3],
  imageSize: 8,
};

describe('ImageLoader', () => {
  test('batch shapes, the last smaller batch or dropLast, dataset order without shuffle and augmentation', async () => {
    const ds = new SlowDataset(10);
    const loader = new ImageLoader(ds, { batchSize: 4 });
    expect(loader.numBatches).toBe(3);
    expect(loader.shape).toEqual([2, 6, 6]);
    const batches = await collect(loader.epoch(0));
    expect(batches.map((b) => [b.batchSize, b.images.length, b.labels.length, b.soft])).toEqual([
      [4, 4 * 72, 4, null],
      [4, 4 * 72, 4, null],
      [2, 2 * 72, 2, null],
    ]);
    for (let i = 0; i < 10; i++) {
      const b = batches[Math.floor(i / 4)],
        j = i % 4;
      expect(b.images.subarray(j * 72, (j + 1) * 72)).toEqual((await ds.get(i)).pixels);
      expect(slowIndex(b, j)).toBe(i);
      expect(b.labels[j]).toBe(i % 4);
    }
    const dropped = new ImageLoader(ds, { batchSize: 4, dropLast: true });
    expect(dropped.numBatches).toBe(2);
    expect((await collect(dropped.epoch(0))).map((b) => b.batchSize)).toEqual([4, 4]);
  });

  test('shuffle visits every image once per epoch, in an order that changes with the epoch', async () => {
    const loader = new ImageLoader(new SlowDataset(10), { batchSize: 3, shuffle: true, seed: 5 });
    const order = async (e: number): Promise<number[]> =>
      (await collect(loader.epoch(e))).flatMap((b) => Array.from({ length: b.batchSize }, (_, j) => slowIndex(b, j)));
    const [o0, o1] = [await order(0), await order(1)];
    expect([...o0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...o1].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(o0).not.toEqual(o1);
  });

  test('the same seed and epoch give the same batches at any prefetch depth; other epochs and seeds differ', async () => {
    const run = (seed: number, epoch: number, prefetch: number): Promise<ImageBatch[]> =>
      collect(
        new ImageLoader(new SlowDataset(11), { batchSize: 4, shuffle: true, seed, prefetch, augment: FULL }).epoch(
          epoch,
        ),
      );
    const a = await run(3, 2, 0);
    expect(a.map((b) => [b.images.length, b.soft!.length])).toEqual([
      [4 * 128, 16],
      [4 * 128, 16],
      [3 * 128, 12],
    ]);
    expect(await run(3, 2, 0)).toEqual(a);
    expect(await run(3, 2, 3)).toEqual(a);
    expect((await run(3, 1, 3))[0].images).not.toEqual(a[0].images);
    expect((await run(4, 2, 3))[0].images).not.toEqual(a[0].images);
  });

  test('prefetch: when batch b arrives, batches up to b + prefetch have been asked for', async () => {
    for (const prefetch of [0, 2]) {
      const ds = new SlowDataset(20);
      const it = new ImageLoader(ds, { batchSize: 3, prefetch }).epoch(0);
      await it.next();
      expect(ds.calls).toBe(3 * (1 + prefetch));
      await it.next();
      expect(ds.calls).toBe(3 * (2 + prefetch));
    }
  });

  test('evaluation (evaluationAugment keeps the geometry and the normalisation): a resize and the normalisation, no soft targets', async () => {
    const ds = new ByteImageDataset(
      'bytes',
      Uint8Array.from({ length: 3 * 16 }, (_, k) => k * 5),
      Uint8Array.from([0, 1, 1]),
      1,
      4,
      4,
      ['x', 'y'],
    );
    const train: AugmentOptions = { ...FULL, mean: [0.5], std: [0.25], imageSize: 2 };
    expect(evaluationAugment(train)).toEqual({
      mean: [0.5],
      std: [0.25],
      imageSize: 2,
      interpolation: undefined,
      cropPct: undefined,
    });
    const loader = new ImageLoader(ds, { batchSize: 3, augment: evaluationAugment(train) });
    const [b] = await collect(loader.epoch(0));
    expect(b.soft).toBeNull();
    expect(Array.from(b.labels)).toEqual([0, 1, 1]);
    for (let i = 0; i < 3; i++) {
      const small = resize((await ds.decode(i)).image, 2, 2, 'bilinear');
      const want = Array.from(toPlanarFloat(small)).map((v) => (v - 0.5) / 0.25);
      b.images.subarray(i * 4, i * 4 + 4).forEach((v, k) => expect(v).toBeCloseTo(want[k], 5));
    }
  });

  test("repeated augmentation with DeiT's replicas: 3 copies of each image per epoch, spread over the replica batches, mixed per replica", async () => {
    const ds = new SlowDataset(600);
    const opts = { batchSize: 12, shuffle: true, seed: 2, dropLast: true, repeats: 3, replicas: 4, prefetch: 1 };
    const plain = new ImageLoader(ds, opts);
    expect(plain.epochLength).toBe(512);
    expect(plain.numBatches).toBe(42);
    const batches = await collect(plain.epoch(0));
    const seen = new Map<number, number>();
    for (const b of batches) {
      const idx = Array.from({ length: 12 }, (_, j) => slowIndex(b, j));
      idx.forEach((i) => seen.set(i, (seen.get(i) ?? 0) + 1));
      // replica r's batch is slots 3r..3r+2; an image's copies sit in different replicas
      for (let r = 0; r < 4; r++) expect(new Set(idx.slice(3 * r, 3 * r + 3)).size).toBe(3);
    }
    expect([...seen.values()].every((n) => n === 3 || n === 1 || n === 2)).toBe(true);
    expect([...seen.values()].filter((n) => n === 3).length).toBeGreaterThan(160);
    const mixed = new ImageLoader(ds, { ...opts, augment: { mixup: 1 } });
    const [m] = await collect(mixed.epoch(0));
    // each replica's 3 rows are mixed with its own lam: the soft targets' top weights differ between replicas
    const top = (r: number) => Math.max(...Array.from(m.soft!.subarray(3 * r * 4, 3 * r * 4 + 4)));
    expect(new Set([0, 1, 2, 3].map(top)).size).toBeGreaterThan(1);
    expect(() => new ImageLoader(ds, { ...opts, replicas: 5 })).toThrow(
      'replicas: 5 replicas need dropLast: true and a batchSize that they divide (got 12)',
    );
    expect(() => new ImageLoader(ds, { batchSize: 12, repeats: 3 })).toThrow(
      'repeats: repeated augmentation draws a new order every epoch; it needs shuffle: true',
    );
  });

  test('bad arguments are errors naming them', () => {
    const ds = new SlowDataset(5);
    const make = (opts: object): ImageLoader => new ImageLoader(ds, opts as never);
    expect(() => make({ batchSize: 0 })).toThrow('batchSize: expected a positive integer, got 0');
    expect(() => make({ batchSize: 1.5 })).toThrow('batchSize: expected a positive integer, got 1.5');
    expect(() => make({ batchSize: 8, dropLast: true })).toThrow(
      'batchSize: 8 is more than the 5 samples per epoch of slow',
    );
    expect(() => make({ batchSize: 2, prefetch: -1 })).toThrow('prefetch: expected an integer >= 0, got -1');
    expect(() => make({ batchSize: 2, seed: -1 })).toThrow('seed: expected an integer >= 0, got -1');
    expect(() => make({ batchSize: 2, shufle: true })).toThrow("ImageLoader options: unknown option 'shufle'");
    expect(() => make({ batchSize: 2, shuffle: 'yes' })).toThrow('shuffle: expected a boolean, got yes');
    expect(() => make({ batchSize: 2, augment: { mixUp: 0.8 } })).toThrow("augment: unknown option 'mixUp'");
    expect(() => make({ batchSize: 2, augment: { mean: [0.5, 0.5, 0.5], std: [1, 1, 1] } })).toThrow(
      'augment.mean: expected 1 or 2 numbers',
    );
    expect(() => make({ batchSize: 2, augment: { mean: [0.5], std: [0] } })).toThrow(
      'augment.std: expected positive numbers',
    );
    expect(() => make({ batchSize: 2, augment: { mean: [0.5] } })).toThrow(
      'augment.mean, augment.std: give both or neither',
    );
    expect(() => make({ batchSize: 2, augment: { randomResizedCrop: { scale: [0.5, 0.2] } } })).toThrow(
      'augment.randomResizedCrop.scale: expected min <= max',
    );
    expect(() => make({ batchSize: 2, augment: { mixProb: 2 } })).toThrow(
      'augment.mixProb: expected a probability in [0, 1], got 2',
    );
    expect(() => make({ batchSize: 2, augment: { labelSmoothing: 1 } })).toThrow(
      'augment.labelSmoothing: expected a number in [0, 1)',
    );
    expect(() => make({ batchSize: 2, augment: { imageSize: 0 } })).toThrow(
      'augment.imageSize: expected a positive integer, got 0',
    );
    const loader = make({ batchSize: 2 });
    expect(() => loader.epoch(-1)).toThrow('epoch: expected an integer >= 0, got -1');
    expect(() => loader.epoch(1.5)).toThrow('epoch: expected an integer >= 0, got 1.5');
  });
});
