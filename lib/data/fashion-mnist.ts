// Fashion-MNIST (Zalando): 28x28 grey images of 10 kinds of clothing, 60000 for training and 10000
// for testing, in IDX files. The default directory is where Debian's dataset-fashion-mnist package
// puts them (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-*); uncompressed files of
// the same names without .gz are read too. The whole split is read into memory once (47 MB for
// the training images) and get(i) converts one image to floats in [0, 1].
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ByteImageDataset, checkLabels, checkOptionKeys, checkSplit, ImageDataset, Split } from './image-dataset';
import { readIdx } from './idx';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** The path of `<dir>/<base>.gz`, or of `<dir>/<base>` when only the uncompressed file exists. */
function findFile(dir: string, base: string): string {
  const gz = path.join(dir, `${base}.gz`);
  if (fs.existsSync(gz)) return gz;
  const plain = path.join(dir, base);
  if (fs.existsSync(plain)) return plain;
  throw new Error(`${gz}: Fashion-MNIST file not found (nor ${plain}); on Debian: apt install dataset-fashion-mnist`);
}

export function loadFashionMnist(opts?: { dir?: string; split: Split }): ImageDataset {
  checkOptionKeys(opts, ['dir', 'split'], 'loadFashionMnist options');
  const dir = opts?.dir ?? FASHION_MNIST_DIR;
  const split = checkSplit(opts?.split ?? 'train');
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesPath = findFile(dir, `${prefix}-images-idx3-ubyte`);
  const labelsPath = findFile(dir, `${prefix}-labels-idx1-ubyte`);
  const images = readIdx(imagesPath, 3);
  const labels = readIdx(labelsPath, 1);
  const [count, height, width] = images.dims;
  if (height !== 28 || width !== 28)
    throw new Error(`${imagesPath}: expected 28x28 images, the header says ${height}x${width}`);
  if (labels.dims[0] !== count) {
    throw new Error(`${labelsPath}: ${labels.dims[0]} labels for the ${count} images of ${imagesPath}`);
  }
  checkLabels(labels.data, FASHION_MNIST_CLASSES.length, labelsPath);
  return new ByteImageDataset(
    `fashion-mnist/${split}`,
    images.data,
    labels.data,
    1,
    height,
    width,
    FASHION_MNIST_CLASSES,
  );
}
