// The key-value cache of incremental decoding (Hugging Face's StaticCache, grown on demand): per
// attention layer, the keys and values of the n tokens read so far, so that each new token costs
// one query row against the cached keys instead of a forward pass over the whole prefix.
//   const cache = new KVCache(model.blocks.length);
//   model.logProbs(prompt, { cache });      // the prompt: the causal pass, fills the cache
//   model.logProbs(next, { cache });        // one token: [B, 1] against every cached key
// Storage: per layer k [B, H, capacity, Dh] and v [B, H, capacity, Dv], rows 0 .. n - 1 in use.
// The capacity is what reserve() asked for (LanguageModel reserves its context) or the first
// update's length, at least; an update past it moves the rows to a store twice as large (or as
// large as needed). So a token's keys and values cost one copy of their own row: the fused
// decoding step (TransformerBlock.decodeStep, csrc/binding/decode_step.cpp) writes them in place
// and reads the n + 1 rows of each (b, h) slice where they lie. The op-by-op path (update())
// writes the new rows in place too and hands its attention op a copy of the n + T rows in use
// ([B, H, n + T, Dh], what the fused ops read densely): a copy of n rows per token and layer,
// as the concatenation of a growing cache costs.
// The cache owns its stores: they live outside tidy() scopes until reset() or dispose(). It
// serves inference: appending with grad enabled throws (the cached rows would have to keep the
// graph of every earlier step alive).
import { isGradEnabled } from '../autograd/grad-mode';
import { slice } from '../ops/layout';
import type { Device, Storage } from '../native';
import { keep } from '../scope';
import { shapeString } from '../shape';
import { Tensor, zeros } from '../tensor';

/** The native functions of the cache and the fused decoding step (csrc/binding/decode_step.cpp). */
export interface DecodeNative {
  kvCacheWrite(cache: Storage, rows: Storage, dims: number[]): void;
  decodeBlock(
    x: Storage,
    params: (Storage | null)[],
    kCache: Storage,
    vCache: Storage,
    dims: number[],
    attention: 'dot' | 'fourier',
    norm: 'pre' | 'post',
    activation: 'relu' | 'gelu' | 'gelu_tanh',
    lnEps1: number,
    lnEps2: number,
    power: number,
    eps: number,
    stable: boolean,
    scale: number,
  ): Storage;
}

/** The decoding functions of the addon that holds t. */
export function decodeNative(t: Tensor): DecodeNative {
  return t.backend as unknown as DecodeNative;
}

/** One attention layer's keys and values so far. */
export class LayerKVCache {
  private k: Tensor | null = null;
  private v: Tensor | null = null;
  private n = 0;
  private reserved = 0;

  /** The tokens cached (0 before the first update). */
  get length(): number {
    return this.n;
  }

  /** The tokens the stores hold room for (0 before the first update). */
  get capacity(): number {
    return this.k === null ? 0 : this.k.shape[2];
  }

  /** Room for `tokens` in the stores made from now on (the model's context: one store for a whole window). */
  reserve(tokens: number): void {
    if (!Number.isInteger(tokens) || tokens < 1)
      throw new Error(`tokens: expected a positive integer, got ${String(tokens)}`);
    this.reserved = tokens;
  }

  /**
   * The stores k [B, H, capacity, Dh] and v [B, H, capacity, Dv] with room for `more` tokens
   * after those cached (the cache's own tensors: do not dispose them). Makes or grows them as
   * needed; B, H, Dh and Dv must be those of the tokens cached.
   */
  stores(B: number, H: number, Dh: number, Dv: number, device: Device, more: number): [Tensor, Tensor] {
    if (isGradEnabled())
      throw new Error('KVCache: incremental decoding runs without grad; call it inside ff.noGrad(() => ...)');
    if (this.k !== null && this.v !== null) {
      const [b, h, , dh] = this.k.shape;
      const dv = this.v.shape[3];
      if (B !== b || H !== h || Dh !== dh || Dv !== dv || device !== this.k.device) {
        throw new Error(
          `KVCache: new keys [${B}, ${H}, ${more}, ${Dh}] and values [${B}, ${H}, ${more}, ${Dv}] on ${device} do not continue the cached [${b}, ${h}, ${this.n}, ${dh}] and [${b}, ${h}, ${this.n}, ${dv}] on ${this.k.device}`,
        );
      }
      if (this.n + more <= this.capacity) return [this.k, this.v];
    }
    const cap = Math.max(this.n + more, this.reserved, 2 * this.capacity);
    const nk = keep(zeros([B, H, cap, Dh], { device }));
    const nv = keep(zeros([B, H, cap, Dv], { device }));
    if (this.k !== null && this.v !== null && this.n > 0) {
      const [ok, ov] = [slice(this.k, 2, 0, this.n), slice(this.v, 2, 0, this.n)];
      this.write(nk, ok, 0);
      this.write(nv, ov, 0);
      ok.dispose();
      ov.dispose();
    }
    this.k?.dispose();
    this.v?.dispose();
    this.k = nk;
    this.v = nv;
    return [nk, nv];
  }

  /** Counts `tokens` more rows as cached (after the fused step wrote them into the stores). */
  advance(tokens: number): void {
    if (this.n + tokens > this.capacity)
      throw new Error(`KVCache: ${tokens} more tokens pass the capacity ${this.capacity} (${this.n} cached)`);
    this.n += tokens;
  }

  /** store[:, :, at .. at + T) = rows [B, H, T, D]. */
  private write(store: Tensor, rows: Tensor, at: number): void {
    const [B, H, T, D] = rows.shape;
    decodeNative(store).kvCacheWrite(store.storage('cache'), rows.storage('rows'), [B * H, T, D, store.shape[2], at]);
  }

  /**
   * Appends k [B, H, T, Dh] and v [B, H, T, Dv] to the cache and returns the keys and values of
   * every token so far, [B, H, n + T, ...] (copies, tracked by the enclosing tidy() scope).
   */
  update(k: Tensor, v: Tensor): [Tensor, Tensor] {
    if (
      k.ndim !== 4 ||
      v.ndim !== 4 ||
      v.shape[0] !== k.shape[0] ||
      v.shape[1] !== k.shape[1] ||
      v.shape[2] !== k.shape[2]
    ) {
      throw new Error(
        `KVCache: expected keys [B, H, T, Dh] and values [B, H, T, Dv], got ${shapeString(k.shape)} and ${shapeString(v.shape)}`,
      );
    }
    const [B, H, T, Dh] = k.shape;
    const [sk, sv] = this.stores(B, H, Dh, v.shape[3], k.device, T);
    this.write(sk, k, this.n);
    this.write(sv, v, this.n);
    this.n += T;
    return [slice(sk, 2, 0, this.n), slice(sv, 2, 0, this.n)];
  }

  /** Keeps the first `tokens` cached (Hugging Face's crop): the next token is fed at that position again. */
  crop(tokens: number): void {
    if (!Number.isInteger(tokens) || tokens < 0 || tokens > this.n)
      throw new Error(`tokens: expected an integer in [0, ${this.n}] (the tokens cached), got ${String(tokens)}`);
    this.n = tokens;
  }

  /** Empties the layer's cache, freeing its stores. */
  reset(): void {
    this.k?.dispose();
    this.v?.dispose();
    this.k = null;
    this.v = null;
    this.n = 0;
  }
}

/** The caches of a model's attention layers, in layer order. */
export class KVCache {
  readonly layers: LayerKVCache[];

  constructor(numLayers: number) {
    if (!Number.isInteger(numLayers) || numLayers < 1)
      throw new Error(`numLayers: expected a positive integer, got ${String(numLayers)}`);
    this.layers = Array.from({ length: numLayers }, () => new LayerKVCache());
  }

  /** The tokens cached: the position of the next token fed. */
  get length(): number {
    return this.layers[0].length;
  }

  /** Room for `tokens` in every layer's stores made from now on (LanguageModel reserves its context). */
  reserve(tokens: number): void {
    for (const l of this.layers) l.reserve(tokens);
  }

  /** Keeps the first `tokens` cached in every layer. */
  crop(tokens: number): void {
    for (const l of this.layers) l.crop(tokens);
  }

  /** Empties every layer (a new sequence, or a window recomputed after the context filled). */
  reset(): void {
    for (const l of this.layers) l.reset();
  }

  dispose(): void {
    this.reset();
  }
}
