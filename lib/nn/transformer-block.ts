// TransformerBlock: attention and a feed-forward network, each in a residual branch, with the
// LayerNorm before the branch ('pre', ViT/DeiT) or after the sum ('post', the paper's LM):
//   pre:   x = x + dropPath(dropout(attn(ln1(x))));   x = x + dropPath(dropout(ff(ln2(x))))
//   post:  x = ln1(x + dropout(attn(x)));             x = ln2(x + dropout(ff(x)))
//   ff(x) = fc2(dropout(act(fc1(x)))),  act = GELU or ReLU
// decodeStep(x, cache): the block at one token after a filled key-value cache in eval mode, as
// one native call (csrc/binding/decode_step.cpp) where it covers the block's attention.
import { add, gelu, relu } from '../ops/elementwise';
import { isGradEnabled } from '../autograd/grad-mode';
import type { Device } from '../native';
import type { Generator } from '../random';
import { Tensor } from '../tensor';
import { checkOptions, optChoice, optNumber } from '../options';
import { shapeString } from '../shape';
import {
  MULTI_HEAD_ATTENTION_OPTIONS,
  MultiHeadAttention,
  MultiHeadAttentionOptions,
  resolveAttentionOptions,
} from './attention';
import { Dropout, DropPath } from './dropout';
import { decodeNative, LayerKVCache } from './kv-cache';
import { LayerNorm } from './layernorm';
import { checkFeatures, Linear } from './linear';
import { Module } from './module';

export interface TransformerBlockOptions extends MultiHeadAttentionOptions {
  /** The feed-forward network's hidden size; 4 dModel by default. */
  ffDim?: number;
  /** 'pre' (default) or 'post' LayerNorm. */
  norm?: 'pre' | 'post';
  /** 'gelu' (default, exact) or 'relu'. */
  activation?: 'gelu' | 'relu';
  /** Dropout on each branch's output and inside the feed-forward network (0 by default). */
  dropout?: number;
  /** Drop-path (stochastic depth) rate of both branches (0 by default). */
  dropPath?: number;
  /** LayerNorm eps (1e-5 by default; DeiT: 1e-6). */
  lnEps?: number;
  device?: Device;
  generator?: Generator;
}

/** A dropout rate in [0, 1] (0 when undefined). */
function checkRate(p: unknown, what: string): number {
  return optNumber(p, what, 0, 0, 1);
}

export class TransformerBlock extends Module {
  readonly ln1: LayerNorm;
  readonly attn: MultiHeadAttention;
  readonly ln2: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly drop: Dropout;
  readonly dropPath: DropPath;
  readonly norm: 'pre' | 'post';
  readonly activation: 'gelu' | 'relu';

  constructor(
    readonly dModel: number,
    readonly numHeads: number,
    options?: TransformerBlockOptions,
  ) {
    super();
    checkFeatures(dModel, 'dModel');
    checkFeatures(numHeads, 'numHeads');
    if (dModel % numHeads !== 0) throw new Error(`numHeads: ${numHeads} does not divide dModel ${dModel}`);
    const opts = checkOptions(options, [
      ...MULTI_HEAD_ATTENTION_OPTIONS,
      'ffDim',
      'norm',
      'activation',
      'dropout',
      'dropPath',
      'lnEps',
    ]);
    const ffDim = checkFeatures(opts.ffDim === undefined ? 4 * dModel : opts.ffDim, 'opts.ffDim');
    this.norm = optChoice(opts.norm, 'opts.norm', ['pre', 'post'], 'pre');
    this.activation = optChoice(opts.activation, 'opts.activation', ['gelu', 'relu'], 'gelu');
    const layer = { device: opts.device, generator: opts.generator };
    const ln = { device: opts.device, eps: opts.lnEps };
    const attention = Object.fromEntries(MULTI_HEAD_ATTENTION_OPTIONS.map((key) => [key, opts[key]]));
    resolveAttentionOptions(attention);
    const dropout = checkRate(opts.dropout, 'opts.dropout');
    const dropPath = checkRate(opts.dropPath, 'opts.dropPath');
    if (opts.lnEps !== undefined) optNumber(opts.lnEps, 'opts.lnEps', undefined, 0);
    this.ln1 = this.registerModule('ln1', new LayerNorm(dModel, ln));
    this.attn = this.registerModule('attn', new MultiHeadAttention(dModel, numHeads, attention));
    this.ln2 = this.registerModule('ln2', new LayerNorm(dModel, ln));
    this.fc1 = this.registerModule('fc1', new Linear(dModel, ffDim, layer));
    this.fc2 = this.registerModule('fc2', new Linear(ffDim, dModel, layer));
    this.drop = this.registerModule('drop', new Dropout(dropout, opts.generator));
    this.dropPath = this.registerModule('dropPath', new DropPath(dropPath, opts.generator));
  }

  private ff(x: Tensor): Tensor {
    const h = this.fc1.forward(x);
    return this.fc2.forward(this.drop.forward(this.activation === 'gelu' ? gelu(h) : relu(h)));
  }

  /**
   * Whether decodeStep() covers this block: eval mode or no dropout, and attention the fused
   * step handles (MultiHeadAttention.decodeSettings: 'fourier' over every feature, 'dot').
   */
  get canDecodeFused(): boolean {
    const quiet = !this.training || (this.drop.p === 0 && this.dropPath.p === 0);
    return quiet && this.attn.causal && this.attn.decodeSettings() !== null;
  }

  /**
   * One token per sequence, x [B, 1, dModel], after the tokens in a filled cache, in one native
   * call (csrc/binding/decode_step.cpp): what forward(x, cache) computes in eval mode, its
   * keys and values written into the cache's stores at the next row. Null (nothing done) where
   * canDecodeFused is false: forward() is then the step. Without grad.
   */
  decodeStep(x: Tensor, cache: LayerKVCache): Tensor | null {
    const settings = this.attn.decodeSettings();
    if (settings === null || !this.canDecodeFused) return null;
    if (isGradEnabled())
      throw new Error('decodeStep: incremental decoding runs without grad; call it inside ff.noGrad(() => ...)');
    if (x.ndim !== 3 || x.shape[1] !== 1 || x.shape[2] !== this.dModel) {
      throw new Error(`x: expected one token per sequence [B, 1, ${this.dModel}], got ${shapeString(x.shape)}`);
    }
    if (cache.length === 0)
      throw new Error('cache: decodeStep continues a filled cache; the first tokens go through forward()');
    const B = x.shape[0];
    const H = this.numHeads,
      Dh = this.dModel / H;
    const [kStore, vStore] = cache.stores(B, H, Dh, Dh, x.device, 1);
    const { R } = settings;
    const [rH, rD] = R === null ? [1, 1] : R.ndim === 2 ? R.shape : R.ndim === 1 ? [1, R.shape[0]] : [1, 1];
    const p = (t: Tensor | null, what: string) => (t === null ? null : t.storage(what));
    const params = [
      p(this.ln1.weight, 'ln1.weight'),
      p(this.ln1.bias, 'ln1.bias'),
      p(this.attn.qkv.weight, 'qkv.weight'),
      p(this.attn.qkv.bias, 'qkv.bias'),
      p(this.attn.proj.weight, 'proj.weight'),
      p(this.attn.proj.bias, 'proj.bias'),
      p(R, 'R'),
      p(this.ln2.weight, 'ln2.weight'),
      p(this.ln2.bias, 'ln2.bias'),
      p(this.fc1.weight, 'fc1.weight'),
      p(this.fc1.bias, 'fc1.bias'),
      p(this.fc2.weight, 'fc2.weight'),
      p(this.fc2.bias, 'fc2.bias'),
    ];
    const dims = [B, this.dModel, H, this.fc1.outFeatures, kStore.shape[2], cache.length, rH, rD];
    const y = decodeNative(x).decodeBlock(
      x.storage('x'),
      params,
      kStore.storage('kCache'),
      vStore.storage('vCache'),
      dims,
      settings.attention,
      this.norm,
      this.activation,
      this.ln1.eps,
      this.ln2.eps,
      settings.power,
      settings.eps,
      settings.stable,
      settings.scale,
    );
    cache.advance(1);
    return new Tensor(y, [B, 1, this.dModel], x.device);
  }

  /** x [B, N, dModel] -> [B, N, dModel]; with a cache, x continues the cached tokens (MultiHeadAttention.forward). */
  forward(x: Tensor, cache?: LayerKVCache): Tensor {
    const branch = (y: Tensor) => this.dropPath.forward(this.drop.forward(y));
    if (this.norm === 'pre') {
      const h = add(x, branch(this.attn.forward(this.ln1.forward(x), cache)));
      return add(h, branch(this.ff(this.ln2.forward(h))));
    }
    const h = this.ln1.forward(add(x, branch(this.attn.forward(x, cache))));
    return this.ln2.forward(add(h, branch(this.ff(h))));
  }
}
