// Vision-transformer runs from a configuration, the vision transformer's parts of
// lib/train/runner.ts's runs: the images (Fashion-MNIST, CIFAR-10 or an ImageNet-style folder)
// split into train / valid / test, the augmented training loader, the model
// (lib/models/vision-transformer.ts) with Fourier or dot-product attention, its validation for
// the training loop (lib/train/trainer.ts), and the final evaluation of the best checkpoint:
// top-1/top-5 on valid and test and the heads' redundancy on images of the train and the test
// split (valid when there is no test), through the evaluation transform.
// `evaluateViTCheckpoint` evaluates a checkpoint alone.
//   Splits: Fashion-MNIST and CIFAR-10 hold out the last `validSize` training images as valid
//   and test on their test split; a folder uses <dir>/train, <dir>/val (or validation) and
//   <dir>/test when they exist, else a tenth of <dir>'s images (at least one), evenly spaced over
//   its class-sorted list, is valid and there is no test.
// On several ranks (lib/train/data-parallel.ts) each rank makes and trains on its share of every
// batch: whole replicas of the loader's layout (a run of N ranks has at least N replicas: the
// configured count, else its least common multiple with N, so each rank mixes its own images as
// DeiT's GPUs do); the evaluation sets are dealt to the ranks image by image; rank 0 alone
// writes files.
import * as fs from 'fs';
import * as path from 'path';
import { evaluationAugment } from '../data/augment';
import type { AugmentOptions } from '../data/augment';
import { loadCifar10 } from '../data/cifar10';
import { loadFashionMnist } from '../data/fashion-mnist';
import type { DecodedSample, ImageDataset, ImageSample } from '../data/image-dataset';
import { loadImageFolder } from '../data/image-folder';
import { ImageBatch, ImageLoader } from '../data/image-loader';
import * as dist from '../distributed';
import { VisionTransformer, VisionTransformerConfig } from '../models/vision-transformer';
import type { Device } from '../native';
import type { AttentionKind } from '../nn/attention-kind';
import { crossEntropy } from '../ops/cross-entropy';
import { Tensor, tensor } from '../tensor';
import { evaluateAccuracy } from './accuracy';
import { readCheckpointInfo } from './checkpoint';
import { shardRows } from './data-parallel';
import { HeadRedundancyAccumulator } from './head-redundancy';
import type { RunResult } from './results-table';
import { Comparison, RunContext, TrainSettings } from './run-folder';
import { evaluateCheckpoint, Experiment, RunRecord, trainRuns } from './runner';

export interface ViTDataSettings {
  dataset: 'fashion-mnist' | 'cifar10' | 'folder';
  /** The data folder; null: Debian's Fashion-MNIST. */
  dir: string | null;
  /** Training images held out as valid (Fashion-MNIST, CIFAR-10). */
  validSize: number;
  /** Use only this many training images (evenly spaced); null: all. */
  limitTrain: number | null;
  /** Evaluate on only this many valid and test images (evenly spaced); null: all. */
  limitEval: number | null;
}

/** The model of a run: VisionTransformerConfig less what the images and the run give, R's settings explicit. */
export interface ViTModelSettings
  extends
    Omit<VisionTransformerConfig, 'channels' | 'numClasses' | 'attention' | 'lnEps' | 'radiusInit' | 'radius'>,
    Required<Pick<VisionTransformerConfig, 'radiusInit' | 'radius'>> {}

export interface ViTEvalSettings {
  /** Validation during training on the first `batches` valid batches (0: all). */
  batches: number;
  batchSize: number;
  /** Images of the train and of the test split, evenly spaced, whose attention maps give the head redundancy. */
  redundancyImages: number;
}

/** The training loader's order: DeiT's repeated augmentation and the replicas its batch stands for. */
export interface ViTSamplerSettings {
  /** Each image this many times per epoch (DeiT's RASampler: 3; 1: a plain shuffle). */
  repeats: number;
  /** Data-parallel replicas the batch is split over (DeiT: 4 GPUs x 256); mixup draws per replica. */
  replicas: number;
}

export interface ViTRunConfig {
  kind: 'vit';
  preset: string;
  data: ViTDataSettings;
  model: ViTModelSettings;
  /** Training augmentation (imageSize comes from the model). */
  augment: Omit<AugmentOptions, 'imageSize'>;
  sampler: ViTSamplerSettings;
  train: TrainSettings;
  /** When set, the budget and warm-up in epochs (they replace train.steps and train.warmup). */
  epochs: number | null;
  warmupEpochs: number | null;
  eval: ViTEvalSettings;
}

export interface ViTRunRecord extends ViTRunConfig, RunRecord<VisionTransformerConfig> {}

export const VIT_AXIS = { key: 'top1', title: 'validation top-1 accuracy' };

/** `count` samples of a dataset spread evenly over it (all of them when count is null or larger). */
function spread(ds: ImageDataset, count: number | null): ImageDataset {
  if (count === null || count >= ds.length) return ds;
  return subset(
    ds,
    Array.from({ length: count }, (_, i) => Math.floor((i * ds.length) / count)),
    `${ds.name} (${count} of ${ds.length})`,
  );
}

/** A view of some samples of a dataset. */
function subset(ds: ImageDataset, indices: number[], name: string): ImageDataset {
  const checkIndex = (i: number): number => {
    if (!Number.isInteger(i) || i < 0 || i >= indices.length)
      throw new Error(`${name}: sample index ${String(i)} out of range [0, ${indices.length})`);
    return i;
  };
  return {
    name,
    length: indices.length,
    numClasses: ds.numClasses,
    channels: ds.channels,
    height: ds.height,
    width: ds.width,
    classNames: ds.classNames,
    get: (i: number): Promise<ImageSample> => ds.get(indices[checkIndex(i)]),
    decode: (i: number): Promise<DecodedSample> => ds.decode(indices[checkIndex(i)]),
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Train, valid and test sets of a configuration (test null for a folder without one). */
export function loadImageSplits(
  data: ViTDataSettings,
  imageSize: number,
): { train: ImageDataset; valid: ImageDataset; test: ImageDataset | null } {
  let train: ImageDataset, valid: ImageDataset, test: ImageDataset | null;
  const holdOut = (full: ImageDataset) => {
    if (data.validSize < 1 || data.validSize >= full.length)
      throw new Error(
        `--valid-size: expected 1 to ${full.length - 1} of the ${full.length} training images, got ${data.validSize}`,
      );
    const cut = full.length - data.validSize;
    return [
      subset(full, range(0, cut), `${full.name} train`),
      subset(full, range(cut, full.length), `${full.name} valid`),
    ];
  };
  if (data.dataset === 'fashion-mnist') {
    const dir = data.dir ?? undefined;
    [train, valid] = holdOut(loadFashionMnist({ dir, split: 'train' }));
    test = loadFashionMnist({ dir, split: 'test' });
  } else if (data.dataset === 'cifar10') {
    if (data.dir === null)
      throw new Error(
        '--data: the cifar10 dataset needs the folder of data_batch_1.bin .. data_batch_5.bin and test_batch.bin',
      );
    [train, valid] = holdOut(loadCifar10(data.dir, 'train'));
    test = loadCifar10(data.dir, 'test');
  } else if (data.dataset === 'folder') {
    if (data.dir === null)
      throw new Error(
        '--data: the folder dataset needs an image folder (<dir>/<class>/*.jpg, or <dir>/train and <dir>/val)',
      );
    const dir = data.dir;
    const sub = (names: string[]) =>
      names.map((n) => path.join(dir, n)).find((d) => fs.existsSync(d) && fs.statSync(d).isDirectory());
    const trainDir = sub(['train']);
    if (trainDir) {
      const validDir = sub(['val', 'validation', 'valid']);
      if (!validDir) throw new Error(`--data: ${dir} has a train folder but no val (or validation) folder beside it`);
      train = loadImageFolder(trainDir, { size: imageSize });
      valid = loadImageFolder(validDir, { size: imageSize });
      const testDir = sub(['test']);
      test = testDir ? loadImageFolder(testDir, { size: imageSize }) : null;
    } else {
      const full = loadImageFolder(dir, { size: imageSize });
      if (full.length < 2)
        throw new Error(`--data: ${dir} holds ${full.length} image; a train/valid split needs at least 2`);
      const count = Math.max(1, Math.round(full.length / 10));
      const held = new Set(Array.from({ length: count }, (_, k) => Math.floor(((k + 0.5) * full.length) / count)));
      const all = range(0, full.length);
      train = subset(
        full,
        all.filter((i) => !held.has(i)),
        `${full.name} train`,
      );
      valid = subset(
        full,
        all.filter((i) => held.has(i)),
        `${full.name} valid`,
      );
      test = null;
    }
  } else
    throw new Error(
      `--dataset: expected fashion-mnist, cifar10 or folder for a vision transformer, got ${JSON.stringify(data.dataset)}`,
    );
  for (const [name, ds] of [
    ['valid', valid],
    ['test', test],
  ] as const) {
    if (ds && ds.numClasses !== train.numClasses)
      throw new Error(
        `--data: the ${name} images have ${ds.numClasses} classes but the training images ${train.numClasses}`,
      );
  }
  return {
    train: spread(train, data.limitTrain),
    valid: spread(valid, data.limitEval),
    test: test && spread(test, data.limitEval),
  };
}

/** The model configuration of a run for a training set. */
export function vitModelConfig(
  cfg: ViTRunConfig,
  train: ImageDataset,
  attention: AttentionKind,
): VisionTransformerConfig {
  return { ...cfg.model, channels: train.channels, numClasses: train.numClasses, attention };
}

/** The batch of step s from a loader's epochs, read in order (a jump, as on resume, skips ahead within the epoch). */
function batchCursor(loader: ImageLoader): (step: number) => Promise<ImageBatch> {
  let iterator: AsyncIterableIterator<ImageBatch> | null = null;
  let expected = -1;
  return async (step: number) => {
    const n = loader.numBatches;
    if (iterator === null || step !== expected || step % n === 0) {
      await iterator?.return?.();
      iterator = loader.epoch(Math.floor(step / n));
      for (let i = 0; i < step % n; i++) await iterator.next();
    }
    const r = await iterator.next();
    if (r.done) throw new Error(`${loader.dataset.name}: the epoch ended before batch ${step % n}`);
    expected = step + 1;
    return r.value;
  };
}

/** The evaluation loader of a set: on several ranks, of this rank's images (r, r + N, ...). */
function evalLoader(ds: ImageDataset, cfg: ViTRunConfig): ImageLoader {
  const n = dist.worldSize();
  const share =
    n === 1
      ? ds
      : subset(
          ds,
          range(0, ds.length).filter((i) => i % n === dist.rank()),
          `${ds.name} (rank ${dist.rank()} of ${n})`,
        );
  return new ImageLoader(share, {
    batchSize: cfg.eval.batchSize,
    augment: evaluationAugment({ ...cfg.augment, imageSize: cfg.model.imageSize }),
  });
}

/** The replicas of a run's training batches: the configured ones, made a multiple of the ranks. */
function replicasFor(configured: number): number {
  const n = dist.worldSize();
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  return (configured * n) / gcd(configured, n);
}

/** Validation images at most whose attention statistics are logged (each validation and the final evaluation). */
const STAT_IMAGES = 32;

/** Images at a time through the model in eval mode for the head redundancy. */
const REDUNDANCY_BATCH = 8;

/** Head redundancy on `count` images of a set, evenly spaced, through the evaluation transform. */
async function vitHeadRedundancy(
  model: VisionTransformer,
  ds: ImageDataset,
  cfg: ViTRunConfig,
  count: number,
): Promise<{ mean: number; std: number; images: number }> {
  const images = spread(ds, count);
  const loader = new ImageLoader(images, {
    batchSize: Math.min(REDUNDANCY_BATCH, images.length),
    augment: evaluationAugment({ ...cfg.augment, imageSize: cfg.model.imageSize }),
    prefetch: 1,
  });
  const acc = new HeadRedundancyAccumulator();
  model.eval();
  for await (const batch of loader.epoch(0)) {
    const input = tensor(batch.images, [batch.batchSize, ...loader.shape], { device: model.device });
    const maps = model.attentionMaps(input);
    acc.add(maps);
    for (const m of maps) m.dispose();
    input.dispose();
  }
  const r = acc.result();
  return { mean: r.mean, std: r.std, images: images.length };
}

/** Top-1/top-5 on valid and test, and head redundancy on train and test images. */
export async function evaluateViT(
  model: VisionTransformer,
  cfg: ViTRunConfig,
  sets: { train: ImageDataset; valid: ImageDataset; test: ImageDataset | null },
  log: (line: string) => void,
  label: string,
): Promise<Pick<RunResult, 'metrics' | 'redundancy' | 'attentionStats' | 'evaluation'>> {
  const metrics: RunResult['metrics'] = {};
  for (const [split, ds] of [
    ['valid', sets.valid],
    ['test', sets.test],
  ] as const) {
    if (!ds) continue;
    const t0 = performance.now();
    const r = await evaluateAccuracy(model, evalLoader(ds, cfg), { distributed: true });
    metrics[split] = { top1: r.top1, top5: r.top5, loss: r.loss, images: r.count };
    log(
      `${label}: ${split} top-1 ${(100 * r.top1).toFixed(2)}%, top-5 ${(100 * r.top5).toFixed(2)}% on ${r.count} images (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  // The head redundancy and attention statistics: a few images, on rank 0 alone.
  if (dist.rank() !== 0) return { metrics, redundancy: {}, attentionStats: [], evaluation: '' };
  const redundancy: Record<string, { mean: number; std: number }> = {};
  const counts: string[] = [];
  const redundancySets: [string, ImageDataset][] = [
    ['train', sets.train],
    sets.test ? ['test', sets.test] : ['valid', sets.valid],
  ];
  for (const [split, ds] of redundancySets) {
    const r = await vitHeadRedundancy(model, ds, cfg, cfg.eval.redundancyImages);
    redundancy[split] = { mean: r.mean, std: r.std };
    counts.push(`${r.images} ${split}`);
    log(
      `${label}: ${split} head redundancy ${r.mean.toFixed(3)} ± ${r.std.toFixed(3)} (mean ± std of the heads' pairwise L2 distances, per layer, averaged over layers; ${r.images} images)`,
    );
  }
  const images = await diagnosticImages(model, cfg, sets.valid);
  const attentionStats = model.attentionStatistics(images);
  const n = images.shape[0];
  images.dispose();
  const sizes = [`${sets.valid.length} valid`, ...(sets.test ? [`${sets.test.length} test`] : [])].join(' and ');
  return {
    metrics,
    redundancy,
    attentionStats,
    evaluation: `top-1/top-5 accuracy on ${sizes} images (${sets.valid.name}${sets.test ? `; ${sets.test.name}` : ''}); head redundancy on ${counts.join(' and ')} images, evenly spaced; attention statistics on the first ${n} validation images`,
  };
}

/**
 * The first min(redundancyImages, 32) validation images (evaluation transform): the inputs of the
 * attention statistics.
 */
async function diagnosticImages(model: VisionTransformer, cfg: ViTRunConfig, valid: ImageDataset): Promise<Tensor> {
  const loader = new ImageLoader(valid, {
    batchSize: Math.min(cfg.eval.redundancyImages, STAT_IMAGES, valid.length),
    augment: evaluationAugment({ ...cfg.augment, imageSize: cfg.model.imageSize }),
    prefetch: 0,
  });
  const first = await loader.epoch(0).next();
  const batch = first.value as ImageBatch;
  return tensor(batch.images, [batch.batchSize, ...loader.shape], { device: model.device });
}

type ImageSplits = ReturnType<typeof loadImageSplits>;

/** The vision transformer's runs (lib/train/runner.ts): the images, the model, its loader and metrics. */
const VIT_EXPERIMENT: Experiment<ViTRunConfig, ViTRunRecord, ImageSplits, VisionTransformer, ImageBatch> = {
  kind: 'vit',
  axis: VIT_AXIS,
  load: (cfg, log) => {
    const t0 = performance.now();
    const sets = loadImageSplits(cfg.data, cfg.model.imageSize);
    log(
      `${sets.train.name}: ${sets.train.length} train, ${sets.valid.length} valid, ${sets.test?.length ?? 0} test images of ${sets.train.channels}x${sets.train.height}x${sets.train.width}, ${sets.train.numClasses} classes (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    return sets;
  },
  plan: (cfg, sets, attention, ctx) => {
    shardRows(cfg.train.batchSize);
    const replicas = replicasFor(cfg.sampler.replicas);
    if (cfg.train.batchSize % replicas !== 0) {
      throw new Error(
        `--batch-size: ${cfg.train.batchSize} does not split into the ${replicas} replicas of ${dist.worldSize()} ranks (the recipe's ${cfg.sampler.replicas}, a multiple of the ranks)`,
      );
    }
    const loader = new ImageLoader(sets.train, {
      batchSize: cfg.train.batchSize,
      shuffle: true,
      seed: cfg.train.seed,
      dropLast: true,
      augment: { ...cfg.augment, imageSize: cfg.model.imageSize },
      repeats: cfg.sampler.repeats,
      replicas,
      shard: { index: dist.rank(), count: dist.worldSize() },
    });
    const nb = loader.numBatches;
    const settings: TrainSettings = {
      ...cfg.train,
      ...(cfg.epochs !== null ? { steps: cfg.epochs * nb } : {}),
      ...(cfg.warmupEpochs !== null ? { warmup: cfg.warmupEpochs * nb } : {}),
    };
    const modelConfig = vitModelConfig(cfg, sets.train, attention);
    return {
      record: { ...cfg, train: settings, attention, device: ctx.device, modelConfig },
      settings,
      training: (model) => {
        const valid = evalLoader(sets.valid, cfg);
        const repeats =
          cfg.sampler.repeats > 1 ? `, each image ${cfg.sampler.repeats} times in the epochs it is drawn` : '';
        return {
          describe: `${sets.train.length} training images (${nb} batches of ${settings.batchSize} per epoch${repeats})`,
          options: { stepsPerEpoch: nb },
          task: {
            itemsName: 'images',
            batch: batchCursor(loader),
            loss: (b) => {
              const images = tensor(b.images, [b.batchSize, ...loader.shape], { device: ctx.device });
              const target = b.soft
                ? tensor(b.soft, [b.batchSize, modelConfig.numClasses], { device: ctx.device })
                : tensor(b.labels, [b.batchSize], { device: ctx.device });
              return crossEntropy(model.forward(images), target);
            },
            items: (b) => b.batchSize,
            validate: async () => {
              const maxBatches = Math.ceil(cfg.eval.batches / dist.worldSize());
              const r = await evaluateAccuracy(model, valid, {
                distributed: true,
                ...(cfg.eval.batches > 0 ? { maxBatches } : {}),
              });
              return { top1: r.top1, top5: r.top5, loss: r.loss };
            },
            diagnose: async () => {
              const images = await diagnosticImages(model, cfg, sets.valid);
              try {
                return model.attentionStatistics(images);
              } finally {
                images.dispose();
              }
            },
            metric: 'top1',
            higherIsBetter: true,
          },
        };
      },
    };
  },
  model: (config, opts) => new VisionTransformer(config, opts),
  evaluate: (model, cfg, sets, log, label) => evaluateViT(model, cfg, sets, log, label),
};

/**
 * Trains each attention kind in turn with the same data, seed and budget, and writes the
 * comparison of the output folder's runs; null when a run was stopped before its end.
 */
export function trainVisionTransformers(
  cfg: ViTRunConfig,
  attentions: AttentionKind[],
  ctx: RunContext,
): Promise<Comparison | null> {
  return trainRuns(VIT_EXPERIMENT, cfg, attentions, ctx);
}

/** Rebuilds the model of a vision checkpoint, and evaluates it (data folder and device may be overridden). */
export async function evaluateViTCheckpoint(
  file: string,
  o: { dataDir?: string; device: Device; limitEval?: number | null; log: (line: string) => void },
): Promise<RunResult> {
  const info = readCheckpointInfo(file);
  const record = info.config as ViTRunRecord | null;
  if (
    record === null ||
    typeof record !== 'object' ||
    record.kind !== 'vit' ||
    typeof record.modelConfig !== 'object'
  ) {
    throw new Error(
      `${file}: not a vision checkpoint of 'fourierformer train vit' (its config has kind ${JSON.stringify(record?.kind)})`,
    );
  }
  const data = {
    ...record.data,
    ...(o.dataDir !== undefined ? { dir: o.dataDir } : {}),
    ...(o.limitEval !== undefined ? { limitEval: o.limitEval } : {}),
  };
  const sets = loadImageSplits(data, record.model.imageSize);
  if (sets.train.numClasses !== record.modelConfig.numClasses) {
    throw new Error(
      `${file}: the model has ${record.modelConfig.numClasses} classes but the data ${sets.train.numClasses}; evaluate on the data it was trained on (--data)`,
    );
  }
  return evaluateCheckpoint(VIT_EXPERIMENT, file, record, sets, o);
}
