// The paper's WikiText-103 language model (Transformer-XL's absolute-position model with no
// memory, attn_type 2, as the paper's code runs it):
//   x = dropout(embed(ids) * sqrt(dModel) + sinusoidal positions)
//   numLayers x TransformerBlock(post-LayerNorm by default, ReLU, causal, 'fourier' | 'dot' |
//   'performer' | 'flt' (FLT's positions: the token indices of the sequence read), or 'neural'
//   in the blocks of neuralLayers (the first by default) and 'dot' in the others)
//   (a final LayerNorm only with norm: 'pre'), dropout, then the output layer:
//   - cutoffs [c_0, ..., c_{k-1}]: adaptive input and adaptive softmax (lib/ops/adaptive-softmax.ts).
//     Cluster i has an embedding table E_i [V_i, d_i], d_i = dModel / divVal^i (divVal 1, the
//     reference's default: every cluster at dModel, no projections), and when d_i < dModel a
//     projection P_i [dModel, d_i]. Tied (Baevski & Auli, as the op's convention): the softmax
//     shortlist rows are E_0, cluster i's output weight is E_{i+1} and its projection P_{i+1}
//     read transposed; the head's k cluster rows, the head bias and each tail's bias are the
//     output layer's own. Untied: a head [c_0 + k, dModel] and per tail its weight and projection.
//   - cutoffs []: one table E [V, dModel] and a full softmax over logits = x E^T + b (tied), or
//     over a separate output weight.
// Positions are Transformer-XL's: the last token of a sequence is at position 0 (lib/nn/sinusoidal.ts).
// Training reads whole windows of `context` tokens, so the token at index i of a window always
// had the encoding of table row i (position context - 1 - i); logProbs() and generate() keep
// that: a token at index i of what the model reads gets row i, whatever the length read so far,
// which is what lets a key-value cache (lib/nn/kv-cache.ts) keep the keys of earlier tokens.
// Init as the paper's code (train.py weights_init): every weight, embedding and projection
// N(0, 0.02), biases 0, LayerNorm weights N(1, lnInitStd^2) (the code: 0.02; 0, the default: ones)
// and biases 0, radii R = radiusInit (2 by default); Neural Attention's projections and score network
// keep their own init (lib/nn/neural-score.ts: PyTorch's default weights, as the Neural Attention
// authors' code; biases that keep the network alive). The code's attention output
// projection has no bias (projBias false; true by default).
import { noGrad } from '../autograd/grad-mode';
import {
  adaptiveInput,
  adaptiveLogProbs,
  adaptiveLogSoftmaxWithLoss,
  AdaptiveSoftmaxTail,
} from '../ops/adaptive-softmax';
import { crossEntropy, Reduction } from '../ops/cross-entropy';
import { add, scale } from '../ops/elementwise';
import { embedding } from '../ops/embedding';
import { slice } from '../ops/layout';
import { linear } from '../ops/linear';
import { logSoftmax } from '../ops/softmax';
import type { Device } from '../native';
import type { AttentionStatistics } from '../nn/attention-statistics';
import { ModuleList } from '../nn/containers';
import { Dropout } from '../nn/dropout';
import { normal_, zeros_ } from '../nn/init';
import { KVCache } from '../nn/kv-cache';
import { LayerNorm } from '../nn/layernorm';
import { checkFeatures, Linear } from '../nn/linear';
import { Module } from '../nn/module';
import { scoreNetModules } from '../nn/neural-score';
import { SinusoidalPositions } from '../nn/sinusoidal';
import { TransformerBlock } from '../nn/transformer-block';
import type { Generator } from '../random';
import { tidy } from '../scope';
import { sameShape, shapeString } from '../shape';
import { checkTensor, Tensor, zeros } from '../tensor';
import { BlockAttentionConfig, blockAttentionOptions, checkBlockAttention } from './block-attention';
import { generate, GenerateOptions, GenerateResult } from './generate';

export interface LanguageModelConfig extends BlockAttentionConfig {
  vocabSize: number;
  dModel: number;
  numLayers: number;
  numHeads: number;
  ffDim: number;
  /** The longest sequence the model reads (the positions table). */
  context: number;
  dropout: number;
  /** Adaptive softmax cutoffs, increasing, each in [1, vocabSize); [] = full softmax. */
  cutoffs: number[];
  tieWeights: boolean;
  /** 'post' (default, the paper's) or 'pre' LayerNorm blocks. */
  norm?: 'pre' | 'post';
  /** Whether the attention output projection has a bias (true by default; the paper's code: false). */
  projBias?: boolean;
  /** LayerNorm weights from N(1, lnInitStd^2) (0 by default: ones; the paper's code: 0.02). */
  lnInitStd?: number;
  /** Adaptive clusters shrink by this factor each (1 by default, as the reference). */
  divVal?: number;
}

const INIT_STD = 0.02;

/** A parameter N(0, 0.02) of a shape. */
function weight(shape: number[], device: Device | undefined, generator: Generator | undefined): Tensor {
  return normal_(zeros(shape, { device }), 0, INIT_STD, { generator });
}

/** One adaptive cluster's input side: its table [V_i, d_i] and, when d_i < dModel, its projection [dModel, d_i]. */
class EmbeddingCluster extends Module {
  readonly weight: Tensor;
  readonly proj: Tensor | null;

  constructor(rows: number, dim: number, dModel: number, device: Device | undefined, generator: Generator | undefined) {
    super();
    this.weight = this.registerParameter('weight', weight([rows, dim], device, generator));
    this.proj = dim < dModel ? this.registerParameter('proj', weight([dModel, dim], device, generator)) : null;
  }
}

/** One adaptive tail's output side: its bias, and its weight [V_i, d_i] and projection [d_i, dModel] when untied. */
class TailCluster extends Module {
  readonly bias: Tensor;
  readonly weight: Tensor | null;
  readonly proj: Tensor | null;

  constructor(
    rows: number,
    dim: number,
    dModel: number,
    tied: boolean,
    device: Device | undefined,
    generator: Generator | undefined,
  ) {
    super();
    this.bias = this.registerParameter('bias', zeros([rows], { device }));
    this.weight = tied ? null : this.registerParameter('weight', weight([rows, dim], device, generator));
    this.proj =
      tied || dim === dModel ? null : this.registerParameter('proj', weight([dim, dModel], device, generator));
  }
}

/**
 * The output layer's own parameters. Full softmax: bias [V] and, untied, weight [V, dModel].
 * Adaptive: headBias [c_0 + k], the head's cluster rows clusterWeight [k, dModel] (tied) or the
 * whole head [c_0 + k, dModel] (untied), and one TailCluster per tail.
 */
class OutputLayer extends Module {
  readonly bias: Tensor | null = null;
  readonly weight: Tensor | null = null;
  readonly headBias: Tensor | null = null;
  readonly head: Tensor | null = null;
  readonly clusterWeight: Tensor | null = null;
  readonly tails: ModuleList<TailCluster> | null = null;

  constructor(cfg: LanguageModelConfig, dims: number[], device: Device | undefined, generator: Generator | undefined) {
    super();
    const { vocabSize: V, dModel: d, cutoffs, tieWeights: tied } = cfg;
    if (cutoffs.length === 0) {
      if (!tied) this.weight = this.registerParameter('weight', weight([V, d], device, generator));
      this.bias = this.registerParameter('bias', zeros([V], { device }));
      return;
    }
    const k = cutoffs.length;
    this.headBias = this.registerParameter('headBias', zeros([cutoffs[0] + k], { device }));
    if (tied) this.clusterWeight = this.registerParameter('clusterWeight', weight([k, d], device, generator));
    else this.head = this.registerParameter('head', weight([cutoffs[0] + k, d], device, generator));
    const bounds = [...cutoffs, V];
    this.tails = this.registerModule(
      'tails',
      new ModuleList(
        cutoffs.map((c, i) => new TailCluster(bounds[i + 1] - c, dims[i + 1], d, tied, device, generator)),
      ),
    );
  }
}

function checkConfig(cfg: LanguageModelConfig): number[] {
  if (cfg === null || typeof cfg !== 'object') throw new Error('cfg: expected a LanguageModelConfig object');
  for (const key of ['vocabSize', 'dModel', 'numLayers', 'numHeads', 'ffDim', 'context'] as const)
    checkFeatures(cfg[key], `cfg.${key}`);
  if (cfg.vocabSize < 2) throw new Error(`cfg.vocabSize: expected at least 2 tokens, got ${cfg.vocabSize}`);
  if (cfg.dModel % cfg.numHeads !== 0)
    throw new Error(`cfg.numHeads: ${cfg.numHeads} does not divide cfg.dModel ${cfg.dModel}`);
  if (cfg.dModel % 2 !== 0)
    throw new Error(`cfg.dModel: expected an even size (sinusoidal positions), got ${cfg.dModel}`);
  if (typeof cfg.dropout !== 'number' || !(cfg.dropout >= 0 && cfg.dropout < 1))
    throw new Error(`cfg.dropout: expected a rate in [0, 1), got ${String(cfg.dropout)}`);
  checkBlockAttention(cfg, cfg.numLayers);
  if (typeof cfg.tieWeights !== 'boolean')
    throw new Error(`cfg.tieWeights: expected a boolean, got ${String(cfg.tieWeights)}`);
  const norm = cfg.norm ?? 'post';
  if (norm !== 'pre' && norm !== 'post')
    throw new Error(`cfg.norm: expected 'pre' or 'post', got ${JSON.stringify(cfg.norm)}`);
  if (cfg.projBias !== undefined && typeof cfg.projBias !== 'boolean')
    throw new Error(`cfg.projBias: expected a boolean, got ${String(cfg.projBias)}`);
  if (
    cfg.lnInitStd !== undefined &&
    !(typeof cfg.lnInitStd === 'number' && cfg.lnInitStd >= 0 && Number.isFinite(cfg.lnInitStd))
  ) {
    throw new Error(`cfg.lnInitStd: expected a finite number >= 0, got ${String(cfg.lnInitStd)}`);
  }
  const c = cfg.cutoffs;
  if (
    !Array.isArray(c) ||
    c.some((x, i) => !Number.isInteger(x) || x < 1 || x >= cfg.vocabSize || (i > 0 && x <= c[i - 1]))
  ) {
    throw new Error(
      `cfg.cutoffs: expected increasing integers in [1, ${cfg.vocabSize}) (below cfg.vocabSize), or [] for a full softmax, got ${JSON.stringify(c)}`,
    );
  }
  const divVal = cfg.divVal ?? 1;
  const dims = [0, ...c].map((_, i) => cfg.dModel / divVal ** i);
  if (!Number.isInteger(divVal) || divVal < 1 || dims.some((dim) => !Number.isInteger(dim))) {
    throw new Error(
      `cfg.divVal: expected a positive integer whose powers up to ${c.length} divide cfg.dModel ${cfg.dModel}, got ${String(cfg.divVal)}`,
    );
  }
  return dims;
}

export class LanguageModel extends Module {
  readonly config: LanguageModelConfig;
  /** Input tables: one per adaptive cluster, shortlist first (one table with cutoffs []). */
  readonly embed: ModuleList<EmbeddingCluster>;
  readonly positions: SinusoidalPositions;
  readonly drop: Dropout;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly lnF: LayerNorm | null;
  readonly output: OutputLayer;

  constructor(cfg: LanguageModelConfig, opts: { device?: Device; generator?: Generator } = {}) {
    super();
    const dims = checkConfig(cfg);
    this.config = { ...cfg, cutoffs: [...cfg.cutoffs] };
    const { device, generator } = opts;
    const d = cfg.dModel;
    const bounds = [0, ...cfg.cutoffs, cfg.vocabSize];
    this.embed = this.registerModule(
      'embed',
      new ModuleList(dims.map((dim, i) => new EmbeddingCluster(bounds[i + 1] - bounds[i], dim, d, device, generator))),
    );
    this.positions = this.registerModule('positions', new SinusoidalPositions(cfg.context, d, { device }));
    this.drop = this.registerModule('drop', new Dropout(cfg.dropout, generator));
    const norm = cfg.norm ?? 'post';
    const blocks = Array.from(
      { length: cfg.numLayers },
      (_, i) =>
        new TransformerBlock(d, cfg.numHeads, {
          ...blockAttentionOptions(cfg, i, 2),
          causal: true,
          qkvBias: false,
          projBias: cfg.projBias ?? true,
          ffDim: cfg.ffDim,
          norm,
          activation: 'relu',
          dropout: cfg.dropout,
          device,
          generator,
        }),
    );
    this.blocks = this.registerModule('blocks', new ModuleList(blocks));
    const scoreNets = scoreNetModules(blocks);
    for (const m of this.blocks.modules()) {
      if (!(m instanceof Linear) || scoreNets.has(m)) continue;
      normal_(m.weight, 0, INIT_STD, { generator });
      if (m.bias !== null) zeros_(m.bias);
    }
    this.lnF = norm === 'pre' ? this.registerModule('lnF', new LayerNorm(d, { device })) : null;
    const lnStd = cfg.lnInitStd ?? 0;
    if (lnStd > 0) {
      for (const m of this.modules())
        if (m instanceof LayerNorm && m.weight !== null) normal_(m.weight, 1, lnStd, { generator });
    }
    this.output = this.registerModule('output', new OutputLayer(this.config, dims, device, generator));
  }

  /** The device of the parameters. */
  get device(): Device {
    return this.embed.at(0).weight.device;
  }

  private checkIds(t: Tensor, what: string): void {
    checkTensor(t, what);
    if (t.ndim !== 2 || t.shape[1] < 1 || t.shape[1] > this.config.context || t.shape[0] < 1) {
      throw new Error(
        `${what}: expected token ids [B, T] with 1 <= T <= context ${this.config.context}, got shape ${shapeString(t.shape)}`,
      );
    }
  }

  /**
   * The tokens entering the first block, [B, T, dModel]. Positions: Transformer-XL's T - 1 .. 0
   * (training and evaluation), or with `first` the table rows first .. first + T - 1.
   */
  private inputs(ids: Tensor, first?: number): Tensor {
    this.checkIds(ids, 'input');
    const e =
      this.config.cutoffs.length === 0
        ? embedding(ids, this.embed.at(0).weight)
        : adaptiveInput(
            ids,
            [...this.embed].map((c) => ({ weight: c.weight, proj: c.proj })),
            this.config.cutoffs,
          );
    const T = ids.shape[1];
    const pos = first === undefined ? this.positions.forward(T) : slice(this.positions.table, 0, first, first + T);
    return this.drop.forward(add(scale(e, Math.sqrt(this.config.dModel)), pos));
  }

  /**
   * The last hidden states [B, T, dModel] that the output layer scores (positions and cache:
   * inputs() and logProbs()). One token after a filled cache goes through each block's fused
   * decoding step where the block has one (TransformerBlock.decodeStep) unless `fused` is false.
   */
  private hidden(ids: Tensor, first?: number, cache?: KVCache, fused = true): Tensor {
    let x = this.inputs(ids, first);
    const step = fused && cache !== undefined && cache.length > 0 && ids.shape[1] === 1;
    for (let i = 0; i < this.blocks.length; i++) {
      const block = this.blocks.at(i);
      const layer = cache?.layers[i];
      x = (step && layer !== undefined ? block.decodeStep(x, layer) : null) ?? block.forward(x, layer);
    }
    if (this.lnF !== null) x = this.lnF.forward(x);
    return this.drop.forward(x);
  }

  /**
   * The negative log-likelihood of target [B, T] given input [B, T] (ids as float tensors):
   * the mean (default), the sum, or with reduction 'none' one value per position [B, T].
   */
  loss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
    this.checkIds(input, 'input');
    checkTensor(target, 'target');
    if (!sameShape(target.shape, input.shape))
      throw new Error(
        `target: expected the shape of input ${shapeString(input.shape)}, got ${shapeString(target.shape)}`,
      );
    if (opts === null || typeof opts !== 'object') throw new Error('opts: expected an object');
    const reduction = opts.reduction ?? 'mean';
    const h = this.hidden(input);
    const out = this.output;
    if (this.config.cutoffs.length === 0) {
      return crossEntropy(linear(h, out.weight ?? this.embed.at(0).weight, out.bias), target, { reduction });
    }
    return adaptiveLogSoftmaxWithLoss(h, target, this.adaptiveWeights(), { cutoffs: this.config.cutoffs, reduction })
      .loss;
  }

  private adaptiveWeights(): {
    head: Tensor | [Tensor, Tensor];
    headBias: Tensor | null;
    tails: AdaptiveSoftmaxTail[];
  } {
    const out = this.output;
    const tails = [...(out.tails as ModuleList<TailCluster>)];
    if (!this.config.tieWeights) {
      return {
        head: out.head as Tensor,
        headBias: out.headBias,
        tails: tails.map((t) => ({ weight: t.weight as Tensor, proj: t.proj, bias: t.bias })),
      };
    }
    const clusters = [...this.embed];
    return {
      head: [clusters[0].weight, out.clusterWeight as Tensor],
      headBias: out.headBias,
      tails: tails.map((t, i) => ({
        weight: clusters[i + 1].weight,
        proj: clusters[i + 1].proj,
        projTransposed: true,
        bias: t.bias,
      })),
    };
  }

  /**
   * Per layer, what its attention does with its rows for input [B, T]
   * (MultiHeadAttention.attentionStatistics), without grad.
   */
  attentionStatistics(input: Tensor): AttentionStatistics[] {
    return noGrad(() =>
      tidy(() => {
        const stats: AttentionStatistics[] = [];
        let x = this.inputs(input);
        for (const block of this.blocks) {
          stats.push(block.attn.attentionStatistics(block.norm === 'pre' ? block.ln1.forward(x) : x));
          x = block.forward(x);
        }
        return stats;
      }),
    );
  }

  /**
   * log p(next token | the tokens so far) after each position of ids [B, T]: [B, T, vocabSize]
   * (last: only after the last position, [B, 1, vocabSize]), in the current train/eval mode. The
   * token at index i of what the model reads sits at table row i (see the header). With a cache
   * (inside noGrad), ids continue the cached tokens: an empty cache takes any T (the prompt, the
   * causal pass), a filled one T = 1; the cache must leave room, cache.length + T <= context.
   * fusedStep (true by default): a token after a filled cache goes through each block's fused
   * decoding step where the block has one; false runs every block op by op (the reference).
   */
  logProbs(ids: Tensor, opts: { cache?: KVCache; last?: boolean; fusedStep?: boolean } = {}): Tensor {
    if (opts === null || typeof opts !== 'object') throw new Error('opts: expected an object');
    const { cache } = opts;
    this.checkIds(ids, 'ids');
    if (cache !== undefined && (!(cache instanceof KVCache) || cache.layers.length !== this.blocks.length)) {
      throw new Error(
        `opts.cache: expected a KVCache of ${this.blocks.length} layers (new KVCache(model.blocks.length))`,
      );
    }
    const first = cache?.length ?? 0;
    const T = ids.shape[1];
    if (first + T > this.config.context) {
      throw new Error(
        `ids: ${T} tokens after the ${first} cached pass the context of ${this.config.context}; start a new cache from the last tokens`,
      );
    }
    const fused = opts.fusedStep ?? true;
    if (typeof fused !== 'boolean') throw new Error(`opts.fusedStep: expected a boolean, got ${String(fused)}`);
    if (cache !== undefined && first === 0) cache.reserve(this.config.context);
    let h = this.hidden(ids, first, cache, fused);
    if (opts.last === true && T > 1) h = slice(h, 1, T - 1, T);
    const out = this.output;
    if (this.config.cutoffs.length === 0) return logSoftmax(linear(h, out.weight ?? this.embed.at(0).weight, out.bias));
    return adaptiveLogProbs(h, this.adaptiveWeights(), { cutoffs: this.config.cutoffs });
  }

  /**
   * Continues a prompt of token ids, one token at a time, in eval mode without grad, with a
   * key-value cache (lib/models/generate.ts): sampling with temperature, top-k and top-p from a
   * seeded generator, or greedy decoding at temperature 0.
   */
  generate(promptIds: ArrayLike<number>, opts: GenerateOptions = {}): GenerateResult {
    return generate(this, promptIds, opts);
  }

  /**
   * Per layer, its causal attention weights [B, H, T, T] for input [B, T], without grad; in the
   * current train/eval mode.
   */
  attentionMaps(input: Tensor): Tensor[] {
    return noGrad(() =>
      tidy(() => {
        const maps: Tensor[] = [];
        let x = this.inputs(input);
        for (const block of this.blocks) {
          maps.push(block.attn.attentionMap(block.norm === 'pre' ? block.ln1.forward(x) : x));
          x = block.forward(x);
        }
        return maps;
      }),
    );
  }
}
