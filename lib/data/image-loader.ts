// Batches of images for training and evaluation (PyTorch's DataLoader with timm's transforms):
// an epoch's order (a seeded permutation when shuffle is on, else 0..n-1; with repeats > 1,
// DeiT's repeated-augmentation order, lib/data/repeated-sampler.ts), per-image transforms of the
// decoded images (lib/data/augment.ts), mixup/cutmix and label smoothing on each batch
// (lib/data/mix.ts), and prefetch: while the caller works on batch b, batches b+1 .. b+prefetch
// are already being prepared. Decoding runs where the dataset does it (sharp's worker threads for
// image folders), the JavaScript transforms run on the event loop whenever the caller awaits.
// With `replicas` R, a batch of B is laid out as the R per-replica batches of B / R that DeiT's
// data-parallel run has in one step (replica r: the epoch's positions r, r + R, ...), one after the
// other, and mixup/cutmix draw once per replica batch, as timm's Mixup does on each GPU. With
// `shard` {index, count}, a data-parallel rank's loader makes only its share of each batch: the
// replicas [index R / count, (index + 1) R / count), decoded and mixed exactly as the whole
// batch would have them (the ranks' shards together are the batch of one process). All
// randomness comes from streams named by (seed, epoch, position) (lib/data/image-rng.ts), so the
// same seed and epoch give the same batches whatever the prefetch depth and whatever order work
// completes in.
//
//   const loader = new ImageLoader(ds, { batchSize: 128, shuffle: true, seed: 0, augment: { flip: true } });
//   for await (const batch of loader.epoch(0)) { ... batch.images [B, C, H, W] ... }
import { resolveAugment, ResolvedAugment, transformImage } from './augment';
import type { AugmentOptions } from './augment';
import { checkOptionKeys, ImageDataset } from './image-dataset';
import { deriveSeed, ImageRng } from './image-rng';
import { mixBatch } from './mix';
import { REPEATED_AUG_ALIGN, repeatedAugmentationLength, repeatedAugmentationOrder } from './repeated-sampler';

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
  /** Each image this many times per epoch, DeiT's repeated augmentation (default 1: off; needs shuffle). */
  repeats?: number;
  /** The data-parallel replicas the batch stands for (default 1; more needs dropLast and divides batchSize). */
  replicas?: number;
  /** Make only the share of rank `index` of `count` (which must divide replicas): batchSize / count images. */
  shard?: { index: number; count: number };
}

/** The random streams under an epoch's seed. */
const ORDER_STREAM = 0;
const IMAGE_STREAM = 1;
const BATCH_STREAM = 2;

function checkNonNegativeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new Error(`${what}: expected an integer >= 0, got ${String(v)}`);
  return v;
}

export class ImageLoader {
  readonly numBatches: number;
  readonly batchSize: number;
  /** Samples per epoch: the dataset's length, or the repeated-augmentation order's. */
  readonly epochLength: number;
  /** The [channels, height, width] of the images in the batches. */
  readonly shape: [number, number, number];
  private readonly shuffle: boolean;
  private readonly seed: number;
  private readonly prefetch: number;
  private readonly dropLast: boolean;
  private readonly repeats: number;
  private readonly replicas: number;
  private readonly shard: { index: number; count: number };
  private readonly augment: ResolvedAugment;

  constructor(
    readonly dataset: ImageDataset,
    opts: ImageLoaderOptions,
  ) {
    checkOptionKeys(
      opts,
      ['batchSize', 'shuffle', 'seed', 'augment', 'prefetch', 'dropLast', 'repeats', 'replicas', 'shard'],
      'ImageLoader options',
    );
    if (opts === undefined) throw new Error('ImageLoader options: expected { batchSize, ... }');
    const { batchSize } = opts;
    if (typeof batchSize !== 'number' || !Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new Error(`batchSize: expected a positive integer, got ${String(batchSize)}`);
    }
    for (const key of ['shuffle', 'dropLast'] as const) {
      if (opts[key] !== undefined && typeof opts[key] !== 'boolean')
        throw new Error(`${key}: expected a boolean, got ${String(opts[key])}`);
    }
    if (dataset.length < 1) throw new Error(`${dataset.name}: the dataset is empty`);
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.seed = checkNonNegativeInt(opts.seed ?? 0, 'seed');
    this.prefetch = checkNonNegativeInt(opts.prefetch ?? 2, 'prefetch');
    this.dropLast = opts.dropLast ?? false;
    this.repeats = checkNonNegativeInt(opts.repeats ?? 1, 'repeats');
    this.replicas = checkNonNegativeInt(opts.replicas ?? 1, 'replicas');
    const shard = opts.shard ?? { index: 0, count: 1 };
    if (
      shard === null ||
      typeof shard !== 'object' ||
      !Number.isSafeInteger(shard.count) ||
      shard.count < 1 ||
      !Number.isSafeInteger(shard.index) ||
      shard.index < 0 ||
      shard.index >= shard.count
    ) {
      throw new Error(`shard: expected { index, count } with 0 <= index < count, got ${JSON.stringify(opts.shard)}`);
    }
    if (this.replicas % shard.count !== 0)
      throw new Error(`shard: ${shard.count} shards do not divide the ${this.replicas} replicas of a batch`);
    this.shard = shard;
    if (this.repeats < 1) throw new Error('repeats: expected an integer >= 1, got 0');
    if (this.replicas < 1) throw new Error('replicas: expected an integer >= 1, got 0');
    if (this.repeats > 1 && !this.shuffle)
      throw new Error('repeats: repeated augmentation draws a new order every epoch; it needs shuffle: true');
    if (this.replicas > 1 && (!this.dropLast || batchSize % this.replicas !== 0)) {
      throw new Error(
        `replicas: ${this.replicas} replicas need dropLast: true and a batchSize that they divide (got ${batchSize})`,
      );
    }
    this.augment = resolveAugment(opts.augment, dataset.channels, dataset.height, dataset.width);
    this.shape = [dataset.channels, this.augment.height, this.augment.width];
    if (this.repeats > 1 && dataset.length < REPEATED_AUG_ALIGN) {
      throw new Error(
        `repeats: repeated augmentation keeps whole multiples of ${REPEATED_AUG_ALIGN} samples per epoch, and ${dataset.name} has ${dataset.length} images; use repeats 1`,
      );
    }
    this.epochLength = this.repeats > 1 ? repeatedAugmentationLength(dataset.length, this.replicas) : dataset.length;
    this.numBatches = this.dropLast
      ? Math.floor(this.epochLength / batchSize)
      : Math.ceil(this.epochLength / batchSize);
    if (this.numBatches === 0) {
      throw new Error(
        `batchSize: ${batchSize} is more than the ${this.epochLength} samples per epoch of ${dataset.name}, and dropLast leaves no batch`,
      );
    }
  }

  /** The batches of epoch `e` (an integer >= 0), prepared `prefetch` ahead. */
  epoch(e: number): AsyncIterableIterator<ImageBatch> {
    checkNonNegativeInt(e, 'epoch');
    return this.batches(deriveSeed(this.seed, e));
  }

  /** The dataset indices of an epoch's positions, or null for 0..n-1. */
  private order(epochSeed: number): Int32Array | null {
    if (!this.shuffle) return null;
    const rng = new ImageRng(deriveSeed(epochSeed, ORDER_STREAM));
    return this.repeats > 1
      ? repeatedAugmentationOrder(this.dataset.length, this.repeats, rng, this.replicas)
      : rng.permutation(this.dataset.length);
  }

  private async *batches(epochSeed: number): AsyncGenerator<ImageBatch, void, undefined> {
    const order = this.order(epochSeed);
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
    const size = Math.min(this.batchSize, this.epochLength - first);
    const R = this.replicas,
      local = size / R;
    const [channels, height, width] = this.shape;
    const imageSize = channels * height * width;
    // This shard's replicas [r0, r1): slots [r0 * local, r1 * local) of the whole batch.
    const r0 = (this.shard.index * R) / this.shard.count,
      r1 = ((this.shard.index + 1) * R) / this.shard.count;
    const mine = (r1 - r0) * local;
    const images = new Float32Array(mine * imageSize);
    const labels = new Float32Array(mine);
    await Promise.all(
      Array.from({ length: mine }, async (_, slot) => {
        // slot r * local + t of the whole batch holds its position r + R t (replica r's t-th sample).
        const whole = slot + r0 * local;
        const position = first + (whole % local) * R + Math.floor(whole / local);
        const index = order ? order[position] : position;
        const { image, label } = await ds.decode(index);
        if (image.channels !== ds.channels)
          throw new Error(`${ds.name}: sample ${index} has ${image.channels} channels, expected ${ds.channels}`);
        const rng = new ImageRng(deriveSeed(epochSeed, IMAGE_STREAM, position));
        images.set(transformImage(image, this.augment, rng), slot * imageSize);
        labels[slot] = label;
      }),
    );
    let soft: Float32Array | null = null;
    for (let r = r0; r < r1; r++) {
      const rng = new ImageRng(deriveSeed(epochSeed, BATCH_STREAM, b * R + r));
      const at = (r - r0) * local;
      const part = mixBatch(
        images.subarray(at * imageSize, (at + local) * imageSize),
        labels.subarray(at, at + local),
        { batchSize: local, channels, height, width },
        ds.numClasses,
        this.augment.mix,
        rng,
      );
      if (part.soft === null) continue;
      soft ??= new Float32Array(mine * ds.numClasses);
      soft.set(part.soft, at * ds.numClasses);
    }
    return { images, labels, soft, batchSize: mine };
  }
}
