// Embedding (torch.nn.Embedding): a lookup table weight [numEmbeddings, embeddingDim]; ids are
// float32 tensors holding integers in [0, numEmbeddings). Init N(0, 1) as PyTorch's (language
// models usually re-initialise it, e.g. N(0, 0.02) with init.normal_).
import { embedding } from '../ops/embedding';
import type { Device } from '../native';
import { checkGenerator, Generator } from '../random';
import { checkOptions } from '../options';
import { Tensor, zeros } from '../tensor';
import { normal_ } from './init';
import { checkFeatures } from './linear';
import { Module } from './module';

export interface EmbeddingOptions {
  device?: Device;
  generator?: Generator;
}

export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options?: EmbeddingOptions,
  ) {
    super();
    checkFeatures(numEmbeddings, 'numEmbeddings');
    checkFeatures(embeddingDim, 'embeddingDim');
    const opts = checkOptions(options, ['device', 'generator']);
    checkGenerator(opts.generator, 'opts.generator');
    const w = zeros([numEmbeddings, embeddingDim], { device: opts.device });
    this.weight = this.registerParameter('weight', normal_(w, 0, 1, { generator: opts.generator }));
  }

  /** ids [...] -> [..., embeddingDim]. */
  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}
