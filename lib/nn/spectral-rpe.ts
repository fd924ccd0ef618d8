// FLT's relative positional encoding, learned through its spectrum ("Learning a Fourier
// Transform for Linear Relative Positional Encodings in Transformers", Choromanski et al., arXiv
// 2302.01925; the formulation of google-research/scenic's performer.py, create_snippet and
// compute_ft). Per head h, a spectral density given by a Gaussian mixture,
//   tau_h(xi) = sum_{i < I} w_hi exp(-|xi - mu_hi|^2 / sigma_hi^2)   (w, mu, log sigma^2 learned,
//               all 0 at init: no RPE at first, as scenic),
// is read at m fixed frequencies xi_hk ~ N(0, I_d) (a buffer), rho_hk = tau_h(xi_hk) / p(xi_hk) with
// p the N(0, I_d) density. The token at position r (in R^d) gets the snippet
//   E_h(r) = c m^-1/2 [rho_hk cos(2 pi xi_hk . r), rho_hk sin(2 pi xi_hk . r)]_{k < m},  c = Dh^(1/4),
// appended to its query and to its key, so that
//   q~_i . k~_j = q_i . k_j + (c^2 / m) sum_k rho_hk^2 cos(2 pi xi_hk . (r_i - r_j)),
// and with performerAttention's scale 1/sqrt(Dh) the softmax logit gains
//   RPE_h(r_i - r_j) = (1/m) sum_k rho_hk^2 cos(2 pi xi_hk . (r_i - r_j)):
// a function of r_i - r_j alone (positive definite), the Monte-Carlo estimate of the Fourier
// transform of tau_h^2 / p, learned through w, mu and sigma. FAVOR+ then keeps the whole
// attention linear in N. Positions: token indices 0, 1, ... (text, d = 1) or the (row, column) of
// each patch of a grid (images, d = 2); prefix tokens (a class token) have no position: E = 0, so
// their logits carry no RPE. Cost per forward: O(H m I d) for tau, O(H N m d) for the snippets.
// Against the paper and scenic: rho multiplies both snippets, as in scenic, so the mask learned is
// the transform of tau^2 / p (the paper's estimator puts g / p on one side: the same family of
// positive-definite RPEs, parameterised differently); p is the N(0, I_d) density for every d
// (scenic's is 1/sqrt(2 pi) exp(-|xi|^2 / 2) also for d = 2, a constant factor w absorbs); the
// FAVOR+ scale is 1/sqrt(Dh), so c = Dh^(1/4) adds the RPE to the logit with weight 1 (scenic
// normalises by the extended width Dh + 2m, weighting it sqrt(Dh / (Dh + 2m))); causal layers
// work as FAVOR+ prefix sums over the extended rows (scenic's FLT is non-causal only).
// lib/reference/flt.ts is the float64 reference of all of it.
import { noGrad } from '../autograd/grad-mode';
import { concat, broadcastTo, reshape } from '../ops/layout';
import { exp, mul, neg, scale, div, sub } from '../ops/elementwise';
import { sum } from '../ops/reduce';
import { checkDevice, Device } from '../native';
import { checkOptions, describe } from '../options';
import { checkGenerator, defaultGenerator, Generator } from '../random';
import { tensor, Tensor, zeros } from '../tensor';
import { checkFeatures } from './linear';
import { Module } from './module';

export interface SpectralRPEOptions {
  /** Frequencies m of the Monte-Carlo estimate (64 by default, scenic's NUM_FT_RAND_FEATURES). */
  frequencies?: number;
  /** Gaussian components I of tau (25 by default, scenic's NUM_FT_PARAMS_PER_HEAD). */
  components?: number;
  /** Image tokens: the patch grid [rows, columns] (row-major order); text when omitted. */
  grid?: [number, number];
  /** Tokens before the positioned ones that get no RPE (a class token: 1). 0 by default. */
  prefixTokens?: number;
  device?: Device;
  generator?: Generator;
}

function checkCount(n: unknown, what: string, max: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max)
    throw new Error(`${what}: expected an integer in [1, ${max}], got ${String(n)}`);
  return n;
}

/**
 * Checks SpectralRPE's settings and fills in the defaults; name(key) is how an error names the
 * option (MultiHeadAttention's are rpeFrequencies, ...).
 */
export function resolveSpectralRPEOptions(
  opts: Omit<SpectralRPEOptions, 'device' | 'generator'>,
  name = (key: string) => `opts.${key}`,
) {
  const frequencies = checkCount(opts.frequencies === undefined ? 64 : opts.frequencies, name('frequencies'), 4096);
  const components = checkCount(opts.components === undefined ? 25 : opts.components, name('components'), 4096);
  const g = opts.grid;
  if (g !== undefined && (!Array.isArray(g) || g.length !== 2 || g.some((n) => !Number.isInteger(n) || n < 1))) {
    throw new Error(`${name('grid')}: expected [rows, columns] of positive integers, got ${describe(g)}`);
  }
  const prefixTokens = opts.prefixTokens === undefined ? 0 : opts.prefixTokens;
  if (!Number.isInteger(prefixTokens) || prefixTokens < 0)
    throw new Error(`${name('prefixTokens')}: expected a non-negative integer, got ${describe(opts.prefixTokens)}`);
  return {
    frequencies,
    components,
    grid: g === undefined ? undefined : ([g[0], g[1]] as [number, number]),
    prefixTokens,
  };
}

export class SpectralRPE extends Module {
  /** w [H, I] */
  readonly weights: Tensor;
  /** mu [H, I, d] */
  readonly means: Tensor;
  /** log sigma^2 [H, I] */
  readonly logVariances: Tensor;
  /** xi [H, m, d] (a buffer: fixed) */
  readonly frequencies: Tensor;
  readonly coordDims: number;
  readonly grid: [number, number] | null;
  readonly prefixTokens: number;

  constructor(
    readonly numHeads: number,
    readonly headDim: number,
    opts: SpectralRPEOptions = {},
  ) {
    super();
    checkFeatures(numHeads, 'numHeads');
    checkFeatures(headDim, 'headDim');
    const o = resolveSpectralRPEOptions(
      checkOptions(opts, ['frequencies', 'components', 'grid', 'prefixTokens', 'device', 'generator']),
    );
    if (opts.device !== undefined) checkDevice(opts.device, 'opts.device');
    checkGenerator(opts.generator, 'opts.generator');
    const m = o.frequencies,
      I = o.components;
    this.grid = o.grid ?? null;
    this.prefixTokens = o.prefixTokens;
    const d = this.grid ? 2 : 1;
    this.coordDims = d;
    const H = numHeads,
      device = opts.device;
    this.weights = this.registerParameter('weights', zeros([H, I], { device }));
    this.means = this.registerParameter('means', zeros([H, I, d], { device }));
    this.logVariances = this.registerParameter('logVariances', zeros([H, I], { device }));
    const g = opts.generator ?? defaultGenerator;
    this.frequencies = this.registerBuffer('frequencies', tensor(g.normal(H * m * d), [H, m, d], { device }));
  }

  /** The number of frequencies m; the snippet adds 2m features to each query and key. */
  get numFrequencies(): number {
    return this.frequencies.shape[1];
  }

  /** rho [H, m] = tau(xi) / p(xi), differentiable in w, mu and log sigma^2. */
  private ratios(): Tensor {
    const [H, m, d] = this.frequencies.shape;
    const I = this.weights.shape[1];
    const diff = sub(reshape(this.frequencies, [H, m, 1, d]), reshape(this.means, [H, 1, I, d]));
    const sq = sum(mul(diff, diff), 3);
    const bumps = exp(neg(div(sq, reshape(exp(this.logVariances), [H, 1, I]))));
    const tau = sum(mul(bumps, reshape(this.weights, [H, 1, I])), 2);
    // 1 / p(xi) = (2 pi)^(d/2) exp(|xi|^2 / 2)
    const invDensity = noGrad(() =>
      scale(exp(scale(sum(mul(this.frequencies, this.frequencies), 2), 0.5)), (2 * Math.PI) ** (d / 2)),
    );
    return mul(tau, invDensity);
  }

  /** The coordinates of token n of a sequence (null: a prefix token, no position). */
  private position(n: number): number[] | null {
    if (n < this.prefixTokens) return null;
    const t = n - this.prefixTokens;
    return this.grid ? [Math.floor(t / this.grid[1]), t % this.grid[1]] : [t];
  }

  /**
   * The snippets E [H, N, 2m] of tokens first .. first + N - 1 of a sequence: rho scaled
   * cos and sin of 2 pi xi . r (rows of prefix tokens 0).
   */
  snippets(first: number, N: number): Tensor {
    const [H, m, d] = this.frequencies.shape;
    const xi = this.frequencies.toFloat32Array();
    const trig = new Float32Array(H * N * 2 * m);
    for (let n = 0; n < N; n++) {
      const r = this.position(first + n);
      if (r === null) continue;
      for (let h = 0; h < H; h++) {
        for (let k = 0; k < m; k++) {
          let phase = 0;
          for (let c = 0; c < d; c++) phase += xi[(h * m + k) * d + c] * r[c];
          phase *= 2 * Math.PI;
          const at = (h * N + n) * 2 * m;
          trig[at + k] = Math.cos(phase);
          trig[at + m + k] = Math.sin(phase);
        }
      }
    }
    const rho = this.ratios();
    const rho2 = reshape(concat([rho, rho], 1), [H, 1, 2 * m]);
    const c = Math.sqrt(Math.sqrt(this.headDim));
    return scale(mul(tensor(trig, [H, N, 2 * m], { device: this.frequencies.device }), rho2), c / Math.sqrt(m));
  }

  /** x [B, H, N, Dh] with the snippets E [H, N, 2m] appended: [B, H, N, Dh + 2m]. */
  extend(x: Tensor, E: Tensor): Tensor {
    const [B, H, N] = x.shape;
    const w = E.shape[2];
    return concat([x, broadcastTo(reshape(E, [1, H, N, w]), [B, H, N, w])], 3);
  }
}
