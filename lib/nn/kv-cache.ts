// The key-value cache of incremental decoding (Hugging Face's DynamicCache): per attention layer,
// the keys and values [B, H, n, Dh] of the n tokens read so far, so that each new token costs
// one query row against the cached keys instead of a forward pass over the whole prefix.
//   const cache = new KVCache(model.blocks.length);
//   model.logProbs(prompt, { cache });      // the prompt: the causal pass, fills the cache
//   model.logProbs(next, { cache });        // one token: [B, 1] against every cached key
// A layer's update concatenates the new rows to its tensors (a copy of n rows per token and
// layer: the same order of work as the attention row itself, and no preallocated context). The
// cache owns its tensors: they live outside tidy() scopes until reset() or dispose(). It serves
// inference: appending with grad enabled throws (the cached rows would have to keep the graph
// of every earlier step alive).
import { isGradEnabled } from '../autograd/grad-mode';
import { concat } from '../ops/layout';
import { keep } from '../scope';
import { shapeString } from '../shape';
import type { Tensor } from '../tensor';

/** One attention layer's keys and values so far. */
export class LayerKVCache {
  private k: Tensor | null = null;
  private v: Tensor | null = null;

  /** The tokens cached (0 before the first update). */
  get length(): number {
    return this.k === null ? 0 : this.k.shape[2];
  }

  /**
   * Appends k [B, H, T, Dh] and v [B, H, T, Dv] to the cache and returns the keys and values of
   * every token so far, [B, H, n + T, ...] (the cache's own tensors: do not dispose them).
   */
  update(k: Tensor, v: Tensor): [Tensor, Tensor] {
    if (isGradEnabled()) throw new Error('KVCache: incremental decoding runs without grad; call it inside ff.noGrad(() => ...)');
    if (this.k === null || this.v === null) {
      this.k = keep(k.clone());
      this.v = keep(v.clone());
      return [this.k, this.v];
    }
    const [B, H, , Dh] = this.k.shape;
    if (k.ndim !== 4 || k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== Dh || v.ndim !== 4 || v.shape[2] !== k.shape[2] || v.shape[3] !== this.v.shape[3]) {
      throw new Error(`KVCache: new keys ${shapeString(k.shape)} and values ${shapeString(v.shape)} do not continue the cached ${shapeString(this.k.shape)} and ${shapeString(this.v.shape)}`);
    }
    const nk = keep(concat([this.k, k], 2));
    const nv = keep(concat([this.v, v], 2));
    this.k.dispose();
    this.v.dispose();
    this.k = nk;
    this.v = nv;
    return [nk, nv];
  }

  /** Empties the layer's cache, freeing its tensors. */
  reset(): void {
    this.k?.dispose();
    this.v?.dispose();
    this.k = null;
    this.v = null;
  }
}

/** The caches of a model's attention layers, in layer order. */
export class KVCache {
  readonly layers: LayerKVCache[];

  constructor(numLayers: number) {
    if (!Number.isInteger(numLayers) || numLayers < 1) throw new Error(`numLayers: expected a positive integer, got ${String(numLayers)}`);
    this.layers = Array.from({ length: numLayers }, () => new LayerKVCache());
  }

  /** The tokens cached: the position of the next token fed. */
  get length(): number {
    return this.layers[0].length;
  }

  /** Empties every layer (a new sequence, or a window recomputed after the context filled). */
  reset(): void {
    for (const l of this.layers) l.reset();
  }

  dispose(): void {
    this.reset();
  }
}
