// The DeiT-tiny style vision transformer of the paper's ImageNet experiment (timm's
// VisionTransformer): a patch embedding, a learned cls token prepended, learned positions added,
// `depth` pre-LayerNorm blocks (GELU, drop-path rising linearly from 0 in the first block to
// cfg.dropPath in the last), a final LayerNorm and a linear head on the cls token. Every block's
// attention is 'fourier' (R initialised to radiusInit, 1 by default as the paper's ViT), 'dot',
// 'performer' or 'flt' (FLT's positions: each patch's (row, column); the cls token has none), or
// with 'neural' Neural Attention in the blocks of neuralLayers (the first by default, as its
// authors) and 'dot' in the others; the score networks keep their own init (lib/nn/neural-score.ts).
// Init as timm: cls token, positions and every Linear weight trunc_normal_(std 0.02) with timm's
// bounds +-2 (absolute, so about 100 std: in effect N(0, 0.02)), biases 0, LayerNorms 1 and 0;
// the patch projection keeps the convolution default.
import { noGrad } from '../autograd/grad-mode';
import { add } from '../ops/elementwise';
import { broadcastTo, concat, reshape, slice } from '../ops/layout';
import type { Device } from '../native';
import type { AttentionStatistics } from '../nn/attention-statistics';
import { ModuleList } from '../nn/containers';
import { truncNormal_, zeros_ } from '../nn/init';
import { LayerNorm } from '../nn/layernorm';
import { checkFeatures, Linear } from '../nn/linear';
import { Module } from '../nn/module';
import { scoreNetModules } from '../nn/neural-score';
import { TransformerBlock } from '../nn/transformer-block';
import type { Generator } from '../random';
import { tidy } from '../scope';
import { zeros, Tensor } from '../tensor';
import { BlockAttentionConfig, blockAttentionOptions, checkBlockAttention } from './block-attention';
import { PatchEmbed } from './patch-embed';

export interface VisionTransformerConfig extends BlockAttentionConfig {
  imageSize: number;
  patchSize: number;
  channels: number;
  numClasses: number;
  dim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  qkvBias: boolean;
  /** The drop-path rate of the last block (linearly less in earlier ones). */
  dropPath: number;
  /** LayerNorm eps (1e-6 by default, as DeiT). */
  lnEps?: number;
}

function checkRate(p: unknown, what: string): number {
  if (typeof p !== 'number' || !(p >= 0 && p < 1))
    throw new Error(`${what}: expected a rate in [0, 1), got ${String(p)}`);
  return p;
}

export class VisionTransformer extends Module {
  readonly config: VisionTransformerConfig;
  readonly patchEmbed: PatchEmbed;
  readonly clsToken: Tensor;
  readonly posEmbed: Tensor;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly norm: LayerNorm;
  readonly head: Linear;

  constructor(cfg: VisionTransformerConfig, opts: { device?: Device; generator?: Generator } = {}) {
    super();
    if (cfg === null || typeof cfg !== 'object') throw new Error('cfg: expected a VisionTransformerConfig object');
    this.config = { ...cfg };
    for (const key of ['imageSize', 'patchSize', 'channels', 'numClasses', 'dim', 'depth', 'numHeads'] as const)
      checkFeatures(cfg[key], `cfg.${key}`);
    if (typeof cfg.mlpRatio !== 'number' || !(cfg.mlpRatio > 0) || !Number.isInteger(cfg.mlpRatio * cfg.dim)) {
      throw new Error(
        `cfg.mlpRatio: expected a number > 0 with mlpRatio * dim an integer, got ${String(cfg.mlpRatio)}`,
      );
    }
    if (typeof cfg.qkvBias !== 'boolean')
      throw new Error(`cfg.qkvBias: expected a boolean, got ${String(cfg.qkvBias)}`);
    checkRate(cfg.dropPath, 'cfg.dropPath');
    checkBlockAttention(cfg, cfg.depth);
    const device = opts.device;
    const generator = opts.generator;
    const init = { generator };
    this.patchEmbed = this.registerModule(
      'patchEmbed',
      new PatchEmbed(cfg.imageSize, cfg.patchSize, cfg.channels, cfg.dim, { device, generator }),
    );
    this.clsToken = this.registerParameter(
      'clsToken',
      truncNormal_(zeros([1, 1, cfg.dim], { device }), 0, 0.02, -2, 2, init),
    );
    const tokens = this.patchEmbed.numPatches + 1;
    this.posEmbed = this.registerParameter(
      'posEmbed',
      truncNormal_(zeros([1, tokens, cfg.dim], { device }), 0, 0.02, -2, 2, init),
    );
    const lnEps = cfg.lnEps ?? 1e-6;
    const blocks = Array.from(
      { length: cfg.depth },
      (_, i) =>
        new TransformerBlock(cfg.dim, cfg.numHeads, {
          ...blockAttentionOptions(cfg, i, 1),
          qkvBias: cfg.qkvBias,
          rpeGrid: [cfg.imageSize / cfg.patchSize, cfg.imageSize / cfg.patchSize],
          rpePrefixTokens: 1,
          ffDim: cfg.mlpRatio * cfg.dim,
          norm: 'pre',
          activation: 'gelu',
          lnEps,
          dropPath: cfg.depth === 1 ? 0 : (cfg.dropPath * i) / (cfg.depth - 1),
          device,
          generator,
        }),
    );
    this.blocks = this.registerModule('blocks', new ModuleList(blocks));
    this.norm = this.registerModule('norm', new LayerNorm(cfg.dim, { eps: lnEps, device }));
    this.head = this.registerModule('head', new Linear(cfg.dim, cfg.numClasses, { device, generator }));
    const scoreNets = scoreNetModules(blocks);
    for (const m of [...this.blocks.modules(), this.head]) {
      if (!(m instanceof Linear) || scoreNets.has(m)) continue;
      truncNormal_(m.weight, 0, 0.02, -2, 2, init);
      if (m.bias !== null) zeros_(m.bias);
    }
  }

  /** The device of the parameters. */
  get device(): Device {
    return this.clsToken.device;
  }

  /**
   * Parameters the optimizer does not decay besides norms and biases: timm's no_weight_decay()
   * {pos_embed, cls_token}.
   */
  noWeightDecay(): string[] {
    return ['posEmbed', 'clsToken'];
  }

  /** The tokens entering the first block: [cls, patches] + positions, [B, numPatches + 1, dim]. */
  private embed(images: Tensor): Tensor {
    const patches = this.patchEmbed.forward(images);
    const [B, , dim] = patches.shape;
    const cls = broadcastTo(this.clsToken, [B, 1, dim]);
    return add(concat([cls, patches], 1), this.posEmbed);
  }

  /** images [B, C, imageSize, imageSize] -> logits [B, numClasses]. */
  forward(images: Tensor): Tensor {
    let x = this.embed(images);
    for (const block of this.blocks) x = block.forward(x);
    const cls = slice(this.norm.forward(x), 1, 0, 1);
    return this.head.forward(reshape(cls, [cls.shape[0], cls.shape[2]]));
  }

  /** Per block, what its attention does with its rows (MultiHeadAttention.attentionStatistics), without grad. */
  attentionStatistics(images: Tensor): AttentionStatistics[] {
    return noGrad(() =>
      tidy(() => {
        const stats: AttentionStatistics[] = [];
        let x = this.embed(images);
        for (const block of this.blocks) {
          stats.push(block.attn.attentionStatistics(block.ln1.forward(x)));
          x = block.forward(x);
        }
        return stats;
      }),
    );
  }

  /**
   * Per block, its attention weights [B, H, N, N] (N = numPatches + 1), without grad; in the
   * current train/eval mode.
   */
  attentionMaps(images: Tensor): Tensor[] {
    return noGrad(() =>
      tidy(() => {
        const maps: Tensor[] = [];
        let x = this.embed(images);
        for (const block of this.blocks) {
          maps.push(block.attn.attentionMap(block.ln1.forward(x)));
          x = block.forward(x);
        }
        return maps;
      }),
    );
  }
}
