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
import { evaluationAugment, horizontalFlip, normalize, randomErasing, randomResizedCropBox, resizedCrop, resolveAugment, transformImage, AugmentOptions } from '../lib/data/augment';
import { loadCifar10, CIFAR10_CLASSES } from '../lib/data/cifar10';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../lib/data/fashion-mnist';
import { parseIdx, readIdx } from '../lib/data/idx';
import { ByteImageDataset, ImageDataset, ImageSample } from '../lib/data/image-dataset';
import { loadImageFolder } from '../lib/data/image-folder';
import { ImageBatch, ImageLoader } from '../lib/data/image-loader';
import { deriveSeed, ImageRng } from '../lib/data/image-rng';
import { mixBatch, mixTargets } from '../lib/data/mix';

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
    expect(() => parseIdx(idxBytes([2], new Uint8Array(8), [0, 0, 0x0d, 1]), 'f.idx')).toThrow('f.idx: IDX value type 0xd is not supported');
    expect(() => parseIdx(idxBytes([2, 3, 4], body), 'f.idx', 1)).toThrow('f.idx: expected 1 IDX dimensions, the header declares 3');
    const truncated = writeFile('idx/truncated.gz', zlib.gzipSync(idxBytes([2, 3, 4], body.subarray(0, 20))));
    expect(() => readIdx(truncated)).toThrow(`${truncated}: IDX dimensions [2, 3, 4] need 24 bytes of data, the file has 20 (truncated)`);
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
  const present = ['train', 't10k'].every((p) => fs.existsSync(path.join(FASHION_MNIST_DIR, `${p}-images-idx3-ubyte.gz`)));
  const withFiles = present ? test : test.skip;
  const skipNote = present ? '' : ` (SKIPPED: ${FASHION_MNIST_DIR} is absent; apt install dataset-fashion-mnist)`;

  withFiles(`Debian's files: 60000 + 10000 images of 28x28x1 in [0, 1], balanced labels 0..9${skipNote}`, async () => {
    const train = loadFashionMnist({ split: 'train' });
    const testSet = loadFashionMnist({ split: 'test' });
    expect([train.length, testSet.length]).toEqual([60000, 10000]);
    expect([train.channels, train.height, train.width, train.numClasses]).toEqual([1, 28, 28, 10]);
    expect(train.classNames[9]).toBe('Ankle boot');
    const perClass = new Array<number>(10).fill(0);
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < testSet.length; i++) {
      const { pixels, label } = await testSet.get(i);
      perClass[label]++;
      if (i % 100 === 0) for (const v of pixels) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    }
    expect(perClass).toEqual(new Array(10).fill(1000)); // the test split has 1000 images of each class
    expect([lo, hi]).toEqual([0, 1]);
    const last = await train.get(59999);
    expect(last.pixels.length).toBe(784);
    await expect(train.get(60000)).rejects.toThrow('fashion-mnist/train: sample index 60000 out of range [0, 60000)');
  });

  test('a missing directory and image/label counts that disagree are errors naming the files', () => {
    const dir = path.join(tmp, 'fashion');
    expect(() => loadFashionMnist({ dir, split: 'test' })).toThrow(`${dir}/t10k-images-idx3-ubyte.gz: Fashion-MNIST file not found`);
    writeFile('fashion/t10k-images-idx3-ubyte.gz', zlib.gzipSync(idxBytes([3, 28, 28], new Uint8Array(3 * 784))));
    writeFile('fashion/t10k-labels-idx1-ubyte', idxBytes([2], Uint8Array.from([1, 2])));
    expect(() => loadFashionMnist({ dir, split: 'test' })).toThrow(`${dir}/t10k-labels-idx1-ubyte: 2 labels for the 3 images`);
    writeFile('fashion/t10k-labels-idx1-ubyte', idxBytes([3], Uint8Array.from([1, 2, 10])));
    expect(() => loadFashionMnist({ dir, split: 'test' })).toThrow('label 10 of sample 2 is not a class id in [0, 10)');
    expect(() => loadFashionMnist({ dir, split: 'valid' as 'test' })).toThrow(`split: expected 'train' or 'test', got "valid"`);
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
    expect([s.pixels[0], s.pixels[1], s.pixels[1024 + 5], s.pixels[2048 + 1023]]).toEqual([1, 12 / 255, 22 / 255, 32 / 255].map(Math.fround));
  });

  test('the training split concatenates data_batch_1..5 in order; batches.meta.txt names the classes', async () => {
    const dir = path.join(tmp, 'cifar-b');
    for (let k = 1; k <= 5; k++) writeFile(`cifar-b/data_batch_${k}.bin`, records(k, () => k));
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
    expect(() => loadCifar10(dir, 'test')).toThrow(`${file}: 3173 bytes is not a whole number of 3073-byte CIFAR-10 records`);
    writeFile('cifar-c/test_batch.bin', records(2, (r) => 10 + r));
    expect(() => loadCifar10(dir, 'test')).toThrow(`${file}: label 10 of sample 0 is not a class id in [0, 10)`);
    expect(() => loadCifar10(dir, 'train')).toThrow(`${path.join(dir, 'data_batch_1.bin')}: cannot read the CIFAR-10 batch file`);
    writeFile('cifar-c/test_batch.bin', records(2));
    writeFile('cifar-c/batches.meta.txt', Buffer.from('cat\ndog\n'));
    expect(() => loadCifar10(dir, 'test')).toThrow(`${path.join(dir, 'batches.meta.txt')}: expected 10 class names, one a line, found 2`);
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
    expect(() => loadImageFolder(FIXTURE, { sise: 8 } as object)).toThrow("loadImageFolder options: unknown option 'sise'");
  });
});

/** A [c, h, w] image with distinct values: 1000 c + 10 y + x / 10. */
function ramp(c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[(k * h + y) * w + x] = 1000 * k + 10 * y + x / 10;
  return out;
}

describe('augmentation', () => {
  test('random resized crop boxes lie inside the image with area and aspect ratio in range; the output has imageSize', () => {
    const scale: [number, number] = [0.08, 1], ratio: [number, number] = [3 / 4, 4 / 3];
    const bad: string[] = [];
    for (let s = 0; s < 300; s++) {
      const box = randomResizedCropBox(new ImageRng(s), 40, 30, scale, ratio);
      const inside = box.top >= 0 && box.left >= 0 && box.top + box.height <= 40 && box.left + box.width <= 30;
      const area = (box.height * box.width) / 1200, aspect = box.width / box.height;
      // rounding the sides to whole pixels moves the area and the aspect ratio a little
      if (!inside || area < 0.08 * 0.6 || aspect < (3 / 4) * 0.75 || aspect > (4 / 3) * 1.3) bad.push(JSON.stringify(box));
    }
    expect(bad).toEqual([]);
    const a = resolveAugment({ randomResizedCrop: { scale: [0.2, 1] }, imageSize: 12 }, 3, 40, 30);
    expect(transformImage(ramp(3, 40, 30), 3, 40, 30, a, new ImageRng(1)).length).toBe(3 * 12 * 12);
  });

  test('bilinear resampling (align_corners = false) of a ramp, and the identity for the whole image at its size', () => {
    const src = ramp(2, 4, 6);
    expect(resizedCrop(src, 2, 4, 6, { top: 0, left: 0, height: 4, width: 6 }, 4, 6)).toEqual(src);
    const out = resizedCrop(src, 2, 4, 6, { top: 1, left: 2, height: 2, width: 4 }, 4, 8);
    for (let c = 0; c < 2; c++) {
      for (let y = 0; y < 4; y++) {
        for (let x = 0; x < 8; x++) {
          const sy = Math.min(Math.max((y + 0.5) / 2 - 0.5, 0), 1) + 1; // 2 rows -> 4, 4 columns -> 8
          const sx = Math.min(Math.max((x + 0.5) / 2 - 0.5, 0), 3) + 2;
          expect(out[(c * 4 + y) * 8 + x]).toBeCloseTo(1000 * c + 10 * sy + sx / 10, 3);
        }
      }
    }
    expect(() => resizedCrop(src, 2, 4, 6, { top: 2, left: 0, height: 3, width: 6 }, 4, 4)).toThrow('is not inside a 4x6 image');
  });

  test('flip is a mirror of every row; with flip on, about half the images are mirrored and none changed otherwise', () => {
    const src = ramp(3, 5, 7);
    const f = src.slice();
    horizontalFlip(f, 3, 5, 7);
    const mirror = Array.from({ length: 3 * 5 * 7 }, (_, k) => src[k - (k % 7) + 6 - (k % 7)]);
    expect(Array.from(f)).toEqual(mirror);
    const a = resolveAugment({ flip: true }, 3, 5, 7);
    let mirrored = 0, other = 0;
    for (let s = 0; s < 200; s++) {
      const out = Array.from(transformImage(src, 3, 5, 7, a, new ImageRng(s)));
      if (out.every((v, k) => v === mirror[k])) mirrored++;
      else if (!out.every((v, k) => v === src[k])) other++;
    }
    expect(other).toBe(0);
    expect(mirrored).toBeGreaterThan(70);
    expect(mirrored).toBeLessThan(130);
  });

  test('random erasing replaces exactly one box of noise; normalisation is (x - mean) / std per channel', () => {
    const src = ramp(3, 20, 20);
    let erased = 0;
    const wrong: string[] = [];
    for (let s = 0; s < 50; s++) {
      const img = src.slice();
      const box = randomErasing(new ImageRng(s), img, 3, 20, 20, 0.5) ?? { top: 0, left: 0, height: 0, width: 0 };
      let changed = 0, outside = 0;
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
      if (changed !== 3 * box.height * box.width || outside !== 0 || box.height * box.width > 400 / 3 + 20) wrong.push(`seed ${s}`);
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

describe('mixup, cutmix and label smoothing', () => {
  const shape = { batchSize: 4, channels: 2, height: 6, width: 5 };
  const size = 2 * 6 * 5;
  const labels = Float32Array.from([0, 2, 1, 2]);
  /** Image i is constant 10 (i + 1): each pixel tells which image it came from. */
  const batch = (): Float32Array => Float32Array.from({ length: 4 * size }, (_, k) => 10 * (Math.floor(k / size) + 1));

  test('mixup: image i is lam x_i + (1 - lam) x_{B-1-i}, soft rows are the same mixture of one-hots and sum to 1', () => {
    for (let s = 0; s < 10; s++) {
      const images = batch();
      const { soft, lam, box } = mixBatch(images, labels, shape, 3, { mixup: 0.8, cutmix: 0, mixProb: 1, labelSmoothing: 0 }, new ImageRng(s));
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
      const { soft, lam, box } = mixBatch(images, labels, shape, 3, { mixup: 0, cutmix: 1, mixProb: 1, labelSmoothing: 0.1 }, new ImageRng(s));
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
      const r = mixBatch(batch(), labels, shape, 3, { mixup: 0.8, cutmix: 1, mixProb: 1, labelSmoothing: 0 }, new ImageRng(s));
      kinds.add(r.box ? 'cutmix' : 'mixup');
    }
    expect([...kinds].sort()).toEqual(['cutmix', 'mixup']);
    const images = batch();
    const r = mixBatch(images, labels, shape, 3, { mixup: 0.8, cutmix: 1, mixProb: 0, labelSmoothing: 0.3 }, new ImageRng(0));
    expect(images).toEqual(batch());
    expect(r.lam).toBe(1);
    expect(Array.from(r.soft!.subarray(0, 3))).toEqual([0.8, 0.1, 0.1].map(Math.fround));
    expect(mixBatch(batch(), labels, shape, 3, { mixup: 0, cutmix: 0, mixProb: 1, labelSmoothing: 0 }, new ImageRng(0)).soft).toBeNull();
    expect(Array.from(mixTargets([1, 0], 2, 0.75, 0))).toEqual([0.25, 0.75, 0.75, 0.25]);
  });
});

/** A dataset whose pixel values encode the sample index, answering after an index-dependent delay
 *  (so that samples complete out of order); it counts the calls to get(). */
class SlowDataset implements ImageDataset {
  readonly name = 'slow';
  readonly numClasses = 4;
  readonly channels = 2;
  readonly height = 6;
  readonly width = 6;
  readonly classNames = ['a', 'b', 'c', 'd'];
  calls = 0;
  constructor(readonly length: number) {}
  async get(i: number): Promise<ImageSample> {
    this.calls++;
    await new Promise((resolve) => setTimeout(resolve, (i * 7) % 5));
    const pixels = Float32Array.from({ length: 72 }, (_, k) => (i + k / 72) / this.length);
    return { pixels, label: i % 4 };
  }
}

const FULL: AugmentOptions = {
  randomResizedCrop: { scale: [0.3, 1] }, flip: true, mixup: 0.8, cutmix: 1, randomErasing: 0.25, labelSmoothing: 0.1,
  mean: [0.5, 0.4], std: [0.2, 0.3], imageSize: 8,
};

describe('ImageLoader', () => {
  test('batch shapes, the last smaller batch or dropLast, dataset order without shuffle and augmentation', async () => {
    const ds = new SlowDataset(10);
    const loader = new ImageLoader(ds, { batchSize: 4 });
    expect(loader.numBatches).toBe(3);
    expect(loader.shape).toEqual([2, 6, 6]);
    const batches = await collect(loader.epoch(0));
    expect(batches.map((b) => [b.batchSize, b.images.length, b.labels.length, b.soft])).toEqual([
      [4, 4 * 72, 4, null], [4, 4 * 72, 4, null], [2, 2 * 72, 2, null],
    ]);
    for (let i = 0; i < 10; i++) {
      const b = batches[Math.floor(i / 4)], j = i % 4;
      expect(b.images.subarray(j * 72, (j + 1) * 72)).toEqual((await ds.get(i)).pixels);
      expect(b.labels[j]).toBe(i % 4);
    }
    const dropped = new ImageLoader(ds, { batchSize: 4, dropLast: true });
    expect(dropped.numBatches).toBe(2);
    expect((await collect(dropped.epoch(0))).map((b) => b.batchSize)).toEqual([4, 4]);
  });

  test('shuffle visits every image once per epoch, in an order that changes with the epoch', async () => {
    const loader = new ImageLoader(new SlowDataset(10), { batchSize: 3, shuffle: true, seed: 5 });
    const order = async (e: number): Promise<number[]> =>
      (await collect(loader.epoch(e))).flatMap((b) => Array.from({ length: b.batchSize }, (_, j) => Math.round(b.images[j * 72] * 10)));
    const [o0, o1] = [await order(0), await order(1)];
    expect([...o0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...o1].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(o0).not.toEqual(o1);
  });

  test('the same seed and epoch give the same batches at any prefetch depth; other epochs and seeds differ', async () => {
    const run = (seed: number, epoch: number, prefetch: number): Promise<ImageBatch[]> =>
      collect(new ImageLoader(new SlowDataset(11), { batchSize: 4, shuffle: true, seed, prefetch, augment: FULL }).epoch(epoch));
    const a = await run(3, 2, 0);
    expect(a.map((b) => [b.images.length, b.soft!.length])).toEqual([[4 * 128, 16], [4 * 128, 16], [3 * 128, 12]]);
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

  test('evaluation (evaluationAugment keeps mean, std, imageSize): a bilinear resize and the normalisation, no soft targets', async () => {
    const ds = new ByteImageDataset('bytes', Uint8Array.from({ length: 3 * 16 }, (_, k) => k * 5), Uint8Array.from([0, 1, 1]), 1, 4, 4, ['x', 'y']);
    const train: AugmentOptions = { ...FULL, mean: [0.5], std: [0.25], imageSize: 2 };
    expect(evaluationAugment(train)).toEqual({ mean: [0.5], std: [0.25], imageSize: 2 });
    const loader = new ImageLoader(ds, { batchSize: 3, augment: evaluationAugment(train) });
    const [b] = await collect(loader.epoch(0));
    expect(b.soft).toBeNull();
    expect(Array.from(b.labels)).toEqual([0, 1, 1]);
    // 4 -> 2 samples at source 0.5 and 2.5: the mean of the 2x2 block's corners
    const expected = (i: number, y: number, x: number): number => {
      const v = (r: number, c: number): number => ((i * 16 + r * 4 + c) * 5) / 255;
      const r = 2 * y, c = 2 * x;
      return ((v(r, c) + v(r, c + 1) + v(r + 1, c) + v(r + 1, c + 1)) / 4 - 0.5) / 0.25;
    };
    for (let i = 0; i < 3; i++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) expect(b.images[i * 4 + y * 2 + x]).toBeCloseTo(expected(i, y, x), 5);
  });

  test('bad arguments are errors naming them', () => {
    const ds = new SlowDataset(5);
    const make = (opts: object): ImageLoader => new ImageLoader(ds, opts as never);
    expect(() => make({ batchSize: 0 })).toThrow('batchSize: expected a positive integer, got 0');
    expect(() => make({ batchSize: 1.5 })).toThrow('batchSize: expected a positive integer, got 1.5');
    expect(() => make({ batchSize: 8, dropLast: true })).toThrow('batchSize: 8 is more than the 5 images of slow');
    expect(() => make({ batchSize: 2, prefetch: -1 })).toThrow('prefetch: expected an integer >= 0, got -1');
    expect(() => make({ batchSize: 2, seed: -1 })).toThrow('seed: expected an integer >= 0, got -1');
    expect(() => make({ batchSize: 2, shufle: true })).toThrow("ImageLoader options: unknown option 'shufle'");
    expect(() => make({ batchSize: 2, shuffle: 'yes' })).toThrow('shuffle: expected a boolean, got yes');
    expect(() => make({ batchSize: 2, augment: { mixUp: 0.8 } })).toThrow("augment: unknown option 'mixUp'");
    expect(() => make({ batchSize: 2, augment: { mean: [0.5, 0.5, 0.5], std: [1, 1, 1] } })).toThrow('augment.mean: expected 1 or 2 numbers');
    expect(() => make({ batchSize: 2, augment: { mean: [0.5], std: [0] } })).toThrow('augment.std: expected positive numbers');
    expect(() => make({ batchSize: 2, augment: { mean: [0.5] } })).toThrow('augment.mean, augment.std: give both or neither');
    expect(() => make({ batchSize: 2, augment: { randomResizedCrop: { scale: [0.5, 0.2] } } })).toThrow('augment.randomResizedCrop.scale: expected min <= max');
    expect(() => make({ batchSize: 2, augment: { mixProb: 2 } })).toThrow('augment.mixProb: expected a probability in [0, 1], got 2');
    expect(() => make({ batchSize: 2, augment: { labelSmoothing: 1 } })).toThrow('augment.labelSmoothing: expected a number in [0, 1)');
    expect(() => make({ batchSize: 2, augment: { imageSize: 0 } })).toThrow('augment.imageSize: expected a positive integer, got 0');
    const loader = make({ batchSize: 2 });
    expect(() => loader.epoch(-1)).toThrow('epoch: expected an integer >= 0, got -1');
    expect(() => loader.epoch(1.5)).toThrow('epoch: expected an integer >= 0, got 1.5');
  });
});
