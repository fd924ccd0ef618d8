// Valid-but-unusual calls of the attention ops against the float64 reference: fourierMetric,
// fourierAttention and dotProductAttention, forward and backward, with sizes 1 .. 1024, D and
// Dv 1 .. 256, values of magnitude 1e-30 .. 1e4, R of either sign from 1e-30 to 1e30 (and 0),
// every R shape, causal, stable, power, eps, scale, and q given as a view (a permute or a slice
// of a leaf, so the gradient flows back through a layout op). Tolerances: fourier-bounds.ts and
// dot-bounds.ts derive them from each problem's conditioning.
import fc from 'fast-check';
import * as ff from '../../../lib';
import { check, expectClose, fail, gamma } from '../check';
import { dotBounds } from '../dot-bounds';
import { attentionBounds, metricBounds } from '../fourier-bounds';
import { property } from '../property';
import { gradOf, make, size, ValueSpec, valuesOf, values, withinBudget } from '../values';

const ref = ff.reference;
type RefArray = ff.reference.RefArray;

/** Reference work (pair x feature evaluations) a case may cost; the emulator's time follows it. */
const BUDGET = 3e5;

interface Dims {
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  D: number;
  Dv: number;
}

/** Sizes within a budget; causal problems get Nq = Nk (the smaller of the two). */
const dimsArb = (budget: number, cost: (d: Dims) => number) =>
  fc
    .record({ B: size(4), H: size(4), Nq: size(1024), Nk: size(1024), D: size(256), Dv: size(256) })
    .map((d) => withinBudget(d, cost, budget));

const causalDims = (d: Dims, causal: boolean): Dims =>
  causal ? { ...d, Nq: Math.min(d.Nq, d.Nk), Nk: Math.min(d.Nq, d.Nk) } : d;

/** R's shape: one of the broadcast forms [], [1], [D], [H, 1], [H, D], [1, 1], [1, D]. */
type RForm = 'scalar' | 'one' | 'D' | 'H1' | 'HD' | '11' | '1D';
const rShapeOf = (form: RForm, H: number, D: number): number[] =>
  ({ scalar: [], one: [1], D: [D], H1: [H, 1], HD: [H, D], '11': [1, 1], '1D': [1, D] })[form];

/** R: magnitudes 1e-30 .. 1e30 of either sign, 0, and the usual 0.5 .. 2. */
const radius: fc.Arbitrary<ValueSpec> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('positive' as const), scale: fc.constantFrom(1, 2, 4), seed: fc.nat() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom('constant' as const, 'uniform' as const),
      scale: fc.integer({ min: -30, max: 30 }).map((e) => 10 ** e),
      seed: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('constant' as const),
      scale: fc.constantFrom(0, -2, 1e30, 1e-30),
      seed: fc.nat(),
    }),
  },
);

/** How q reaches the op: the leaf itself, a permute of a [B, Nq, H, D] leaf, or a slice of a wider one. */
type View = 'none' | 'permute' | 'slice';

interface QView {
  t: ff.Tensor;
  leaf: ff.Tensor;
  values: Float32Array;
  ref: RefArray;
  /** The leaf's gradient from q's. */
  toLeaf(g: RefArray): RefArray;
}

function makeQ(view: View, dims: Dims, spec: ValueSpec, device: ff.Device, grad: boolean): QView {
  const { B, H, Nq, D } = dims;
  if (view === 'permute') {
    const leaf = make([B, Nq, H, D], spec, device, grad);
    const r = ref.permuteRef(leaf.ref, [0, 2, 1, 3]);
    return {
      t: ff.permute(leaf.t, [0, 2, 1, 3]),
      leaf: leaf.t,
      values: Float32Array.from(r.data),
      ref: r,
      toLeaf: (g) => ref.permuteRef(g, [0, 2, 1, 3]),
    };
  }
  if (view === 'slice') {
    const leaf = make([B, H, Nq, D + 2], spec, device, grad);
    const r = ref.sliceRef(leaf.ref, 3, 1, D + 1);
    const toLeaf = (g: RefArray): RefArray => {
      const out = new Float64Array(B * H * Nq * (D + 2));
      for (let row = 0; row < B * H * Nq; row++)
        for (let d = 0; d < D; d++) out[row * (D + 2) + d + 1] = g.data[row * D + d];
      return { data: out, shape: [B, H, Nq, D + 2] };
    };
    return { t: ff.slice(leaf.t, 3, 1, D + 1), leaf: leaf.t, values: Float32Array.from(r.data), ref: r, toLeaf };
  }
  const leaf = make([B, H, Nq, D], spec, device, grad);
  return { t: leaf.t, leaf: leaf.t, values: leaf.values, ref: leaf.ref, toLeaf: (g) => g };
}

/** The same map applied to a tolerance array (permute and pad like the gradient). */
const tolToLeaf = (q: QView, tol: Float64Array, shape: number[]): Float64Array => q.toLeaf({ data: tol, shape }).data;

/** Checks h^ within [lo, hi] elementwise, and that the reference itself is (a check of the bound). */
function expectInRange(what: string, got: Float32Array, want: RefArray, lo: Float64Array, hi: Float64Array): void {
  for (let n = 0; n < got.length; n++) {
    check(
      (want.data[n] >= lo[n] && want.data[n] <= hi[n]) || Number.isNaN(lo[n]),
      () =>
        `${what}: the bound [${lo[n]}, ${hi[n]}] at [${n}] excludes the reference ${want.data[n]} (a fault of the test's bound)`,
    );
    const g = got[n];
    if (!(Number.isFinite(g) && g >= lo[n] && g <= hi[n])) {
      fail(
        `${what}: [${n}] is ${g}, outside [${lo[n].toPrecision(7)}, ${hi[n].toPrecision(7)}] (reference ${want.data[n].toPrecision(7)})`,
      );
    }
  }
}

interface MetricCase {
  dims: Dims;
  power: number | undefined;
  rForm: RForm;
  R: ValueSpec;
  q: ValueSpec;
  k: ValueSpec;
  g: ValueSpec;
  backward: boolean;
  view: View;
}

export const fourierMetricProperty = property<MetricCase>({
  name: 'fourierMetric',
  weight: 3,
  arbitrary: () =>
    fc.record({
      backward: fc.boolean(),
      dims: dimsArb(BUDGET, (d) => d.B * d.H * d.Nq * d.Nk * d.D * d.D),
      power: fc.oneof(fc.constant(undefined), fc.constantFrom(1, 2, 3, 4, 8), fc.integer({ min: 1, max: 64 })),
      rForm: fc.constantFrom<RForm>('scalar', 'one', 'D', 'H1', 'HD', '11', '1D'),
      R: radius,
      q: values(),
      k: values(),
      g: values(),
      view: fc.constantFrom<View>('none', 'none', 'permute', 'slice'),
    }),
  run(c, env) {
    const { B, H, Nq, Nk, D } = c.dims;
    const power = c.power ?? 4;
    const rShape = rShapeOf(c.rForm, H, D);
    const q = makeQ(c.view, c.dims, c.q, env.device, c.backward);
    const k = make([B, H, Nk, D], c.k, env.device, c.backward);
    const R = make(rShape, c.R, env.device, c.backward);
    const K = ff.fourierMetric(q.t, k.t, R.t, c.power === undefined ? undefined : { power });
    check(K.shape.join() === [B, H, Nq, Nk].join(), () => `K: shape ${K.shape}`);
    const problem = { q: q.values, k: k.values, R: R.values, rShape, B, H, Nq, Nk, D, power };
    const gVals = c.backward ? valuesOf(c.g, K.size) : undefined;
    const tol = metricBounds(problem, gVals);
    expectClose('K', K.toFloat32Array(), ref.fourierMetricRef(q.ref, k.ref, R.ref, power).data, tol.K);
    if (!c.backward) return;
    K.backward(ff.tensor(gVals as Float32Array, [...K.shape], { device: env.device }));
    const want = ref.fourierMetricGradRef(
      q.ref,
      k.ref,
      R.ref,
      ref.refArray(gVals as Float32Array, [B, H, Nq, Nk]),
      power,
    );
    expectClose('dq', gradOf(q.leaf), q.toLeaf(want.dq).data, tolToLeaf(q, tol.dq as Float64Array, [B, H, Nq, D]));
    expectClose('dk', gradOf(k.t), want.dk.data, tol.dk as Float64Array);
    expectClose('dR', gradOf(R.t), want.dR.data, tol.dR as Float64Array);
  },
});

interface FourierCase {
  dims: Dims;
  causal: boolean;
  stable: boolean;
  power: number | undefined;
  eps: number | undefined;
  rForm: RForm;
  R: ValueSpec;
  q: ValueSpec;
  k: ValueSpec;
  v: ValueSpec;
  dout: ValueSpec;
  backward: boolean;
  view: View;
}

export const fourierAttentionProperty = property<FourierCase>({
  name: 'fourierAttention',
  weight: 6,
  arbitrary: () =>
    fc
      .record({
        backward: fc.boolean(),
        causal: fc.boolean(),
        stable: fc.boolean(),
        dims: dimsArb(BUDGET, (d) => d.B * d.H * d.Nq * d.Nk * Math.max(d.D, d.Dv) * Math.min(d.D, 16)),
        power: fc.oneof(fc.constant(undefined), fc.constantFrom(1, 2, 3, 4, 8), fc.integer({ min: 1, max: 64 })),
        eps: fc.oneof(fc.constant(undefined), fc.constantFrom(0, 1e-30, 1e-6, 1, 1e4)),
        rForm: fc.constantFrom<RForm>('scalar', 'one', 'D', 'H1', 'HD', '11', '1D'),
        R: radius,
        q: values(),
        k: values(),
        v: values(),
        dout: values(),
        view: fc.constantFrom<View>('none', 'none', 'permute', 'slice'),
      })
      .map((c) => {
        // causal needs Nq == Nk; stable needs an even power.
        const dims = causalDims(c.dims, c.causal);
        const power = c.stable && c.power !== undefined && c.power % 2 === 1 ? c.power + 1 : c.power;
        return { ...c, dims, power };
      }),
  run(c, env) {
    const { B, H, Nq, Nk, D, Dv } = c.dims;
    const power = c.power ?? 4;
    const eps = c.eps ?? 1e-6;
    const rShape = rShapeOf(c.rForm, H, D);
    const q = makeQ(c.view, c.dims, c.q, env.device, c.backward);
    const k = make([B, H, Nk, D], c.k, env.device, c.backward);
    const v = make([B, H, Nk, Dv], c.v, env.device, c.backward);
    const R = make(rShape, c.R, env.device, c.backward);
    const opts: ff.FourierAttentionOptions = { causal: c.causal, stable: c.stable };
    if (c.power !== undefined) opts.power = c.power;
    if (c.eps !== undefined) opts.eps = c.eps;
    const h = ff.fourierAttention(q.t, k.t, v.t, R.t, opts);
    check(h.shape.join() === [B, H, Nq, Dv].join(), () => `h: shape ${h.shape}`);
    const dout = c.backward ? valuesOf(c.dout, h.size) : undefined;
    const problem = {
      q: q.values,
      k: k.values,
      v: v.values,
      R: R.values,
      rShape,
      B,
      H,
      Nq,
      Nk,
      D,
      Dv,
      power,
      causal: c.causal,
      eps,
      stable: c.stable,
      dout,
    };
    const o = { power, causal: c.causal, eps, stable: c.stable };
    const bounds = attentionBounds(problem);
    expectInRange(
      'h',
      h.toFloat32Array(),
      ref.fourierAttentionRef(q.ref, k.ref, v.ref, R.ref, o),
      bounds.hLo,
      bounds.hHi,
    );
    if (!c.backward) return;
    h.backward(ff.tensor(dout as Float32Array, [B, H, Nq, Dv], { device: env.device }));
    const want = ref.fourierAttentionGradRef(
      q.ref,
      k.ref,
      v.ref,
      R.ref,
      ref.refArray(dout as Float32Array, [B, H, Nq, Dv]),
      o,
    );
    // Where the float64 reference's own row sum underflows to a subnormal (every K below 1e-308,
    // eps = 0), its G / S overflows and its gradient is Inf or NaN: those entries are checked for
    // finiteness only.
    const unverifiable = (w: RefArray, tol: Float64Array): [Float64Array, Float64Array] => [
      w.data.map((x) => (Number.isFinite(x) ? x : 0)),
      tol.map((t, i) => (Number.isFinite(w.data[i]) ? t : Infinity)),
    ];
    const [wq, tq] = unverifiable(q.toLeaf(want.dq), tolToLeaf(q, bounds.dq as Float64Array, [B, H, Nq, D]));
    expectClose('dq', gradOf(q.leaf), wq, tq);
    expectClose('dk', gradOf(k.t), ...unverifiable(want.dk, bounds.dk as Float64Array));
    const dv = gradOf(v.t);
    expectClose('dv', dv, want.dv.data, bounds.dv as Float64Array);
    if (power % 2 === 0) expectWeightsInvariant('dv', dv, dout as Float32Array, c.dims, c.causal, bounds.weightSlack);
    expectClose('dR', gradOf(R.t), ...unverifiable(want.dR, bounds.dR as Float64Array));
  },
});

/**
 * An invariant, not a rounding bound: the weights a kernel applies are a probability
 * distribution (each in [0, 1]; K >= 0 for even powers), however ill-conditioned the logits or
 * radii make their values. So dv_je = sum_i P_ij dout_ie obeys |dv_je| <= sum_i |dout_ie|, up
 * to the float sums and, for Fourier attention, the rounding of log K and of the row's log sum
 * (slack per row; |log K| < 1e5 for any float input). Dot-product logits are unbounded, so there
 * a kernel must keep the row maximum and the log-sum apart: a float lse = m + log l at
 * |m| > 2^24 cannot hold log l, and weights exp(s - lse) no longer sum to 1 (issue 27, item 4).
 */
function expectWeightsInvariant(
  what: string,
  dv: Float32Array,
  dout: Float32Array,
  d: Dims,
  causal: boolean,
  slack: Float64Array | null,
): void {
  const { B, H, Nq, Nk, Dv } = d;
  for (let bh = 0; bh < B * H; bh++)
    for (let j = 0; j < Nk; j++)
      for (let e = 0; e < Dv; e++) {
        let s = 0;
        for (let i = causal ? j : 0; i < Nq; i++)
          s += Math.abs(dout[(bh * Nq + i) * Dv + e]) * (slack ? slack[bh * Nq + i] : 1 + gamma(Nk + 4));
        const got = dv[(bh * Nk + j) * Dv + e];
        check(
          Math.abs(got) <= s * (1 + gamma(Nq + 2)) + Nq * 1.2e-38,
          () =>
            `${what}: [${(bh * Nk + j) * Dv + e}] is ${got}, but weights in [0, 1] bound it by sum_i |dout_i| = ${s} (the weights do not sum to 1)`,
        );
      }
}

interface DotCase {
  dims: Dims;
  causal: boolean;
  scale: number | undefined;
  q: ValueSpec;
  k: ValueSpec;
  v: ValueSpec;
  dout: ValueSpec;
  backward: boolean;
  view: View;
}

export const dotAttentionProperty = property<DotCase>({
  name: 'dotProductAttention',
  weight: 4,
  arbitrary: () =>
    fc
      .record({
        backward: fc.boolean(),
        causal: fc.boolean(),
        dims: dimsArb(BUDGET * 4, (d) => d.B * d.H * d.Nq * d.Nk * Math.max(d.D, d.Dv)),
        scale: fc.oneof(fc.constant(undefined), fc.constantFrom(0, 1, -1, 10, 1e-30, 1e4)),
        q: values(),
        k: values(),
        v: values(),
        dout: values(),
        view: fc.constantFrom<View>('none', 'none', 'permute', 'slice'),
      })
      .map((c) => ({ ...c, dims: causalDims(c.dims, c.causal) })),
  run(c, env) {
    const { B, H, Nq, Nk, D, Dv } = c.dims;
    const q = makeQ(c.view, c.dims, c.q, env.device, c.backward);
    const k = make([B, H, Nk, D], c.k, env.device, c.backward);
    const v = make([B, H, Nk, Dv], c.v, env.device, c.backward);
    const out = ff.dotProductAttention(
      q.t,
      k.t,
      v.t,
      c.scale === undefined ? { causal: c.causal } : { causal: c.causal, scale: c.scale },
    );
    const scale = c.scale ?? 1 / Math.sqrt(D);
    const dout = c.backward ? valuesOf(c.dout, out.size) : undefined;
    const bounds = dotBounds({
      q: q.values,
      k: k.values,
      v: v.values,
      B,
      H,
      Nq,
      Nk,
      D,
      Dv,
      causal: c.causal,
      scale,
      dout,
    });
    const o = { causal: c.causal, scale };
    expectInRange('out', out.toFloat32Array(), ref.dotAttentionRef(q.ref, k.ref, v.ref, o), bounds.hLo, bounds.hHi);
    if (!c.backward) return;
    out.backward(ff.tensor(dout as Float32Array, [B, H, Nq, Dv], { device: env.device }));
    const want = ref.dotAttentionGradRef(q.ref, k.ref, v.ref, ref.refArray(dout as Float32Array, [B, H, Nq, Dv]), o);
    expectClose('dq', gradOf(q.leaf), q.toLeaf(want.dq).data, tolToLeaf(q, bounds.dq as Float64Array, [B, H, Nq, D]));
    expectClose('dk', gradOf(k.t), want.dk.data, bounds.dk as Float64Array);
    const dv = gradOf(v.t);
    expectClose('dv', dv, want.dv.data, bounds.dv as Float64Array);
    expectWeightsInvariant('dv', dv, dout as Float32Array, c.dims, c.causal, null);
  },
});

export const attentionProperties = [fourierMetricProperty, fourierAttentionProperty, dotAttentionProperty];
