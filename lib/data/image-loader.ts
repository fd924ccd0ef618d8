// Batches of images for training and evaluation (PyTorch's DataLoader with timm's transforms):
// an epoch's order (a seeded permutation when shuffle is on, else 0..n-1), per-image augmentation
// (lib/data/augment.ts), mixup/cutmix and label smoothing on each batch (lib/data/mix.ts), and
// prefetch: while the caller works on batch b, batches b+1 .. b+prefetch are already being
// prepared. Decoding runs where the dataset does it (sharp's worker threads for image folders), the
// JavaScript augmentation runs on the event loop whenever the caller awaits. All randomness comes
// from streams named by (seed, epoch, position) (lib/data/image-rng.ts), so the same seed and
// epoch give the same batches whatever the prefetch depth and whatever order work completes in.
//
//   const loader = new ImageLoader(ds, { batchSize: 128, shuffle: true, seed: 0, augment: { flip: true } });
//   for await (const batch of loader.epoch(0)) { ... batch.images [B, C, H, W] ... }
import { resolveAugment, ResolvedAugment, transformImage } from './augment';
import type { AugmentOptions } from './augment';
import { checkOptionKeys, ImageDataset } from './image-dataset';
import { deriveSeed, ImageRng } from './image-rng';
import { mixBatch } from './mix';

export type { AugmentOptions } from './augment';

export interface ImageBatch {
  /** [B, C, H, W], augmented and normalised. */
  images: Float32Array;
  /** [B] class ids. */
  labels: Float32Array;
  /** [B, numClasses] when mixup/cutmix/label smoothing made soft targets, else null. */
  soft: Float32Array | null;
  batchSize: number;
}

export interface ImageLoaderOptions {
  batchSize: number;
  /** A new random order every epoch (default false: dataset order). */
  shuffle?: boolean;
  /** The seed of the order and of the augmentation (default 0). */
  seed?: number;
  /** Augmentation and normalisation; default none (the images as the dataset gives them). */
  augment?: AugmentOptions;
  /** How many batches ahead to prepare (default 2). */
  prefetch?: number;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** The random streams under an epoch's seed. */
const ORDER_STREAM = 0;
const IMAGE_STREAM = 1;
const BATCH_STREAM = 2;

function checkNonNegativeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`${what}: expected an integer >= 0, got ${String(v)}`);
  return v;
}

export class ImageLoader {
  readonly numBatches: number;
  readonly batchSize: number;
  /** The [channels, height, width] of the images in the batches. */
  readonly shape: [number, number, number];
  private readonly shuffle: boolean;
  private readonly seed: number;
  private readonly prefetch: number;
  private readonly dropLast: boolean;
  private readonly augment: ResolvedAugment;

  constructor(readonly dataset: ImageDataset, opts: ImageLoaderOptions) {
    checkOptionKeys(opts, ['batchSize', 'shuffle', 'seed', 'augment', 'prefetch', 'dropLast'], 'ImageLoader options');
    if (opts === undefined) throw new Error('ImageLoader options: expected { batchSize, ... }');
    const { batchSize } = opts;
    if (typeof batchSize !== 'number' || !Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new Error(`batchSize: expected a positive integer, got ${String(batchSize)}`);
    }
    for (const key of ['shuffle', 'dropLast'] as const) {
      if (opts[key] !== undefined && typeof opts[key] !== 'boolean') throw new Error(`${key}: expected a boolean, got ${String(opts[key])}`);
    }
    if (dataset.length < 1) throw new Error(`${dataset.name}: the dataset is empty`);
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.seed = checkNonNegativeInt(opts.seed ?? 0, 'seed');
    this.prefetch = checkNonNegativeInt(opts.prefetch ?? 2, 'prefetch');
    this.dropLast = opts.dropLast ?? false;
    this.augment = resolveAugment(opts.augment, dataset.channels, dataset.height, dataset.width);
    this.shape = [dataset.channels, this.augment.height, this.augment.width];
    this.numBatches = this.dropLast ? Math.floor(dataset.length / batchSize) : Math.ceil(dataset.length / batchSize);
    if (this.numBatches === 0) {
      throw new Error(`batchSize: ${batchSize} is more than the ${dataset.length} images of ${dataset.name}, and dropLast leaves no batch`);
    }
  }

  /** The batches of epoch `e` (an integer >= 0), prepared `prefetch` ahead. */
  epoch(e: number): AsyncIterableIterator<ImageBatch> {
    checkNonNegativeInt(e, 'epoch');
    return this.batches(deriveSeed(this.seed, e));
  }

  private async *batches(epochSeed: number): AsyncGenerator<ImageBatch, void, undefined> {
    const n = this.dataset.length;
    const order = this.shuffle ? new ImageRng(deriveSeed(epochSeed, ORDER_STREAM)).permutation(n) : null;
    const pending = new Map<number, Promise<ImageBatch>>();
    const start = (b: number): void => {
      if (b >= this.numBatches || pending.has(b)) return;
      const promise = this.makeBatch(b, order, epochSeed);
      promise.catch(() => undefined); // a prefetched batch's error is reported when the caller reaches it
      pending.set(b, promise);
    };
    for (let b = 0; b < this.numBatches; b++) {
      for (let k = b; k <= b + this.prefetch; k++) start(k);
      const batch = await pending.get(b)!;
      pending.delete(b);
      yield batch;
    }
  }

  private async makeBatch(b: number, order: Int32Array | null, epochSeed: number): Promise<ImageBatch> {
    const ds = this.dataset;
    const first = b * this.batchSize;
    const size = Math.min(this.batchSize, ds.length - first);
    const [channels, height, width] = this.shape;
    const imageSize = channels * height * width;
    const inputSize = ds.channels * ds.height * ds.width;
    const images = new Float32Array(size * imageSize);
    const labels = new Float32Array(size);
    await Promise.all(
      Array.from({ length: size }, async (_, j) => {
        const index = order ? order[first + j] : first + j;
        const sample = await ds.get(index);
        if (sample.pixels.length !== inputSize) {
          throw new Error(`${ds.name}: sample ${index} has ${sample.pixels.length} values, expected ${ds.channels}x${ds.height}x${ds.width}`);
        }
        const rng = new ImageRng(deriveSeed(epochSeed, IMAGE_STREAM, first + j));
        images.set(transformImage(sample.pixels, ds.channels, ds.height, ds.width, this.augment, rng), j * imageSize);
        labels[j] = sample.label;
      }),
    );
    const rng = new ImageRng(deriveSeed(epochSeed, BATCH_STREAM, b));
    const { soft } = mixBatch(images, labels, { batchSize: size, channels, height, width }, ds.numClasses, this.augment.mix, rng);
    return { images, labels, soft, batchSize: size };
  }
}
