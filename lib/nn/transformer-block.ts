// TransformerBlock: attention and a feed-forward network, each in a residual branch, with the
// LayerNorm before the branch ('pre', ViT/DeiT) or after the sum ('post', the paper's LM):
//   pre:   x = x + dropPath(dropout(attn(ln1(x))));   x = x + dropPath(dropout(ff(ln2(x))))
//   post:  x = ln1(x + dropout(attn(x)));             x = ln2(x + dropout(ff(x)))
//   ff(x) = fc2(dropout(act(fc1(x)))),  act = GELU or ReLU
import { add, gelu, relu } from '../ops/elementwise';
import type { Device } from '../native';
import type { Generator } from '../random';
import type { Tensor } from '../tensor';
import { MultiHeadAttention, MultiHeadAttentionOptions } from './attention';
import { Dropout, DropPath } from './dropout';
import type { LayerKVCache } from './kv-cache';
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

  constructor(readonly dModel: number, readonly numHeads: number, opts: TransformerBlockOptions = {}) {
    super();
    const ffDim = checkFeatures(opts.ffDim ?? 4 * dModel, 'opts.ffDim');
    this.norm = opts.norm ?? 'pre';
    if (this.norm !== 'pre' && this.norm !== 'post') throw new Error(`opts.norm: expected 'pre' or 'post', got ${JSON.stringify(this.norm)}`);
    this.activation = opts.activation ?? 'gelu';
    if (this.activation !== 'gelu' && this.activation !== 'relu') {
      throw new Error(`opts.activation: expected 'gelu' or 'relu', got ${JSON.stringify(this.activation)}`);
    }
    const layer = { device: opts.device, generator: opts.generator };
    const ln = { device: opts.device, eps: opts.lnEps };
    this.ln1 = this.registerModule('ln1', new LayerNorm(dModel, ln));
    this.attn = this.registerModule('attn', new MultiHeadAttention(dModel, numHeads, opts));
    this.ln2 = this.registerModule('ln2', new LayerNorm(dModel, ln));
    this.fc1 = this.registerModule('fc1', new Linear(dModel, ffDim, layer));
    this.fc2 = this.registerModule('fc2', new Linear(ffDim, dModel, layer));
    this.drop = this.registerModule('drop', new Dropout(opts.dropout ?? 0, opts.generator));
    this.dropPath = this.registerModule('dropPath', new DropPath(opts.dropPath ?? 0, opts.generator));
  }

  private ff(x: Tensor): Tensor {
    const h = this.fc1.forward(x);
    return this.fc2.forward(this.drop.forward(this.activation === 'gelu' ? gelu(h) : relu(h)));
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
