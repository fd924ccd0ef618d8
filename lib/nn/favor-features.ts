// The random projection of a Performer layer (FAVOR+, ff.performerAttention) as module state:
// M orthogonal random features of the rows the attention reads, drawn at construction from the
// model's generator and kept as a buffer (so a checkpoint restores the same features), and
// optionally redrawn every `redraw` training forwards, as the Performer paper does (0: never, the
// default, as google-research/scenic). Draw k (k = 0 at construction) comes from its own
// Generator(seed + k), seed drawn once from the model's generator, and the training forwards so
// far are a buffer: a resumed run redraws exactly where and what the uninterrupted one would.
import { noGrad } from '../autograd/grad-mode';
import { checkDevice, Device } from '../native';
import { checkOptions } from '../options';
import { checkGenerator, defaultGenerator, Generator } from '../random';
import { full, Tensor } from '../tensor';
import { checkFeatures } from './linear';
import { Module } from './module';
import { orthogonalRandomFeatures } from './random-features';

export interface FavorFeaturesOptions {
  /** How many random features M (64 by default). */
  features?: number;
  /** Redraw the features every this many training forwards (0, the default: never). */
  redraw?: number;
  device?: Device;
  generator?: Generator;
}

/** Checks a count of random features (an integer in [1, 4096]). */
export function checkRandomFeatures(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 4096)
    throw new Error(`${what}: expected an integer in [1, 4096], got ${String(n)}`);
  return n;
}

/** Checks a redraw interval (a non-negative integer; 0 = never). */
export function checkRedraw(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
    throw new Error(`${what}: expected a non-negative integer (0: never), got ${String(n)}`);
  return n;
}

export class FavorFeatures extends Module {
  /** The current projection [M, F] (a buffer; no gradient). */
  readonly projection: Tensor;
  /** Training forwards so far ([1], a buffer, so that redraws resume in place). */
  readonly forwards: Tensor;
  readonly redraw: number;
  private readonly seed: number;

  constructor(
    readonly dim: number,
    opts: FavorFeaturesOptions = {},
  ) {
    super();
    checkFeatures(dim, 'dim');
    checkOptions(opts, ['features', 'redraw', 'device', 'generator']);
    const M = checkRandomFeatures(opts.features === undefined ? 64 : opts.features, 'opts.features');
    this.redraw = checkRedraw(opts.redraw === undefined ? 0 : opts.redraw, 'opts.redraw');
    if (opts.device !== undefined) checkDevice(opts.device, 'opts.device');
    checkGenerator(opts.generator, 'opts.generator');
    const u = (opts.generator ?? defaultGenerator).uint32(2);
    this.seed = (u[0] % 2 ** 21) * 2 ** 32 + u[1];
    this.projection = this.registerBuffer('projection', this.draw(M, 0, opts.device));
    this.forwards = this.registerBuffer('forwards', full([1], 0, { device: opts.device }));
  }

  private draw(M: number, k: number, device: Device | undefined): Tensor {
    return orthogonalRandomFeatures(M, this.dim, { generator: new Generator(this.seed + k), device });
  }

  /**
   * The projection for this forward: in training mode counts the forward, and on every `redraw`-th
   * one (after the first) draws new features into the buffer first.
   */
  next(): Tensor {
    if (!this.training || this.redraw === 0) return this.projection;
    noGrad(() => {
      const n = this.forwards.item();
      if (n > 0 && n % this.redraw === 0) {
        const fresh = this.draw(this.projection.shape[0], n / this.redraw, this.projection.device);
        this.projection.backend.copyInto(this.projection.storage('projection'), fresh.storage('projection'));
        fresh.dispose();
      }
      this.forwards.backend.uploadInto(this.forwards.storage('forwards'), Float32Array.of(n + 1));
    });
    return this.projection;
  }
}
