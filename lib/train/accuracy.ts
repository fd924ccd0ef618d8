// Image-classification accuracy: top-1 and top-5 (a label counts when fewer than k classes score
// above it; equal scores rank by class id) and the mean cross-entropy against the hard labels,
// over an ImageLoader's epoch 0 (or its first maxBatches batches). Runs in eval mode, without grad,
// each batch inside tidy(): memory() is unchanged afterwards. With `distributed`, each rank scores
// its own loader (its share of the images) and the counts are added up over the ranks: every rank
// returns the result over all of them.
import { noGrad } from '../autograd/grad-mode';
import * as dist from '../distributed';
import type { ImageLoader } from '../data/image-loader';
import type { Device } from '../native';
import { crossEntropy } from '../ops/cross-entropy';
import { tidy } from '../scope';
import { shapeString } from '../shape';
import { tensor, Tensor } from '../tensor';

/** What evaluateAccuracy needs of a model (a VisionTransformer is one). */
export interface ImageClassifier {
  readonly device: Device;
  readonly training: boolean;
  train(mode?: boolean): unknown;
  /** images [B, C, H, W] -> logits [B, numClasses]. */
  forward(images: Tensor): Tensor;
}

export interface AccuracyOptions {
  maxBatches?: number;
  /** Called after each batch with the batches done and their total. */
  onProgress?: (done: number, total: number) => void;
  /** Add the counts up over the ranks of a distributed run (every rank must call it, with its own share). */
  distributed?: boolean;
}

export interface AccuracyResult {
  /** Fractions in [0, 1]. */
  top1: number;
  top5: number;
  /** The mean cross-entropy (nats). */
  loss: number;
  /** How many images were scored. */
  count: number;
}

/** How many classes rank before `label` in a row of logits. */
function rankOf(logits: Float32Array, row: number, classes: number, label: number): number {
  const base = row * classes;
  const score = logits[base + label];
  let rank = 0;
  for (let c = 0; c < classes; c++) {
    const s = logits[base + c];
    if (s > score || (s === score && c < label)) rank++;
  }
  return rank;
}

export async function evaluateAccuracy(
  model: ImageClassifier,
  loader: ImageLoader,
  opts: AccuracyOptions = {},
): Promise<AccuracyResult> {
  if (opts === null || typeof opts !== 'object') throw new Error('opts: expected an object');
  const maxBatches = opts.maxBatches ?? loader.numBatches;
  if (!Number.isInteger(maxBatches) || maxBatches < 1)
    throw new Error(`opts.maxBatches: expected a positive integer, got ${String(opts.maxBatches)}`);
  const total = Math.min(maxBatches, loader.numBatches);
  const wasTraining = model.training;
  model.train(false);
  let top1 = 0,
    top5 = 0,
    lossSum = 0,
    count = 0,
    done = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      const B = batch.batchSize;
      const { logits, loss } = noGrad(() =>
        tidy(() => {
          const device = model.device;
          const images = tensor(batch.images, [B, ...loader.shape], { device });
          const out = model.forward(images);
          if (out.ndim !== 2 || out.shape[0] !== B)
            throw new Error(`model: expected logits [${B}, numClasses] from forward, got ${shapeString(out.shape)}`);
          const nll = crossEntropy(out, tensor(batch.labels, [B], { device }), { reduction: 'sum' });
          return { logits: out.toFloat32Array(), loss: nll.item() };
        }),
      );
      const classes = logits.length / B;
      for (let r = 0; r < B; r++) {
        const rank = rankOf(logits, r, classes, batch.labels[r]);
        if (rank < 1) top1++;
        if (rank < 5) top5++;
      }
      lossSum += loss;
      count += B;
      done++;
      opts.onProgress?.(done, total);
      if (done >= total) break;
    }
  } finally {
    model.train(wasTraining);
  }
  if (opts.distributed && dist.worldSize() > 1)
    [top1, top5, lossSum, count] = dist.allReduceNumbers(
      [top1, top5, lossSum, count],
      'sum',
      'the accuracy counts of the ranks',
    );
  return { top1: top1 / count, top5: top5 / count, loss: lossSum / count, count };
}
