// CIFAR-10 in its binary version (cifar-10-batches-bin): data_batch_1.bin .. data_batch_5.bin for
// training and test_batch.bin for testing, each a sequence of 3073-byte records: the label byte,
// then the 32x32 image as three planes (red, green, blue), row-major. The official files hold
// 10000 records each; any whole number of records is accepted (small synthetic sets for tests).
// Class names come from batches.meta.txt (one a line) when the directory has it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ByteImageDataset, checkLabels, checkSplit, ImageDataset, Split } from './image-dataset';

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

const SIDE = 32;
const IMAGE_BYTES = 3 * SIDE * SIDE;
const RECORD_BYTES = 1 + IMAGE_BYTES;

function readBatchFile(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read the CIFAR-10 batch file (${(e as Error).message})`, { cause: e });
  }
  if (bytes.length === 0 || bytes.length % RECORD_BYTES !== 0) {
    throw new Error(`${file}: ${bytes.length} bytes is not a whole number of ${RECORD_BYTES}-byte CIFAR-10 records`);
  }
  return bytes;
}

function readClassNames(dir: string): string[] {
  const file = path.join(dir, 'batches.meta.txt');
  if (!fs.existsSync(file)) return CIFAR10_CLASSES;
  const names = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (names.length !== CIFAR10_CLASSES.length) {
    throw new Error(`${file}: expected ${CIFAR10_CLASSES.length} class names, one a line, found ${names.length}`);
  }
  return names;
}

export function loadCifar10(dir: string, split: Split): ImageDataset {
  if (typeof dir !== 'string' || dir === '')
    throw new Error(`dir: expected the CIFAR-10 directory, got ${String(dir)}`);
  checkSplit(split);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(
      `${dir}: CIFAR-10 directory not found (expected data_batch_1.bin .. data_batch_5.bin, test_batch.bin)`,
    );
  }
  const names = split === 'train' ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`) : ['test_batch.bin'];
  const files = names.map((n) => path.join(dir, n));
  const buffers = files.map(readBatchFile);
  const count = buffers.reduce((n, b) => n + b.length / RECORD_BYTES, 0);
  const pixels = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  let at = 0;
  buffers.forEach((bytes, f) => {
    const records = bytes.length / RECORD_BYTES;
    const fileLabels = new Uint8Array(records);
    for (let r = 0; r < records; r++) {
      const rec = bytes.subarray(r * RECORD_BYTES, (r + 1) * RECORD_BYTES);
      fileLabels[r] = rec[0];
      pixels.set(rec.subarray(1), (at + r) * IMAGE_BYTES);
    }
    checkLabels(fileLabels, CIFAR10_CLASSES.length, files[f]);
    labels.set(fileLabels, at);
    at += records;
  });
  return new ByteImageDataset(`cifar10/${split}`, pixels, labels, 3, SIDE, SIDE, readClassNames(dir));
}
