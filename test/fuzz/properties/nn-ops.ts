// Valid-but-unusual calls of the neural-network ops against the float64 reference, forward and
// backward. Tolerances, per op (U = 2^-24):
//   - matmul, linear: a sum of K products in float, in any order (BLAS blocks it): gamma_{K+1}
//     (|A| |B|)_ij, the classic componentwise bound; |A| |B| is the reference product of the
//     absolute values. Gradients likewise, over N (da), M (db) and the batch for a shared
//     operand.
//   - layerNorm (csrc/*/layernorm: float sums, two-pass variance): the mean is off by
//     dm = gamma_C mean|x| + U |m|; the variance of x - m^ is var + dm^2 with gamma_{C+2} var
//     of rounding and TINY for squares that flush to 0, so rstd is off by rho relative (over
//     that interval of var, plus 3U; under eps = 0 a variance that may reach 0 allows anything);
//     y_c = (x_c - m) rstd w_c + b_c is then off by |w_c| r (dm + 3U |x_c - m|) + |y_c - b_c| rho
//     + 2U |y_c| + U |b_c|. The backward's sums (mean g, mean g xhat) add gamma_C of their
//     absolute terms. Rows of nearly equal values (var << eps, or m >> std) are ill-conditioned,
//     and the tolerance says so.
//   - softmax: p_c = exp(x_c - m) / sum: exp's argument rounds (U |x_c - m|, and U (|x_c| + |m|)
//     where a kernel keeps m + log(sum) as one float: the result for inputs off by U), exp adds 2 ulp,
//     the float sum gamma_C, the division U: p_c (d_c + max_c d_c + gamma_{C+4}), d_c =
//     U |x_c - m| + 3U. log-softmax: the same in absolute terms, plus U |y_c|. The backward
//     from the saved output propagates those errors through dy - sum(dy p).
//   - crossEntropy: (sum q) lse - sum_c q_c x_c per row: lse's error (as log-softmax) times
//     sum q, plus gamma_{C+2} sum |q_c x_c|; the double row sums add U per row.
//   - embedding, gatherRows: copies (exact); their gradient scatter-adds n rows in float
//     (gamma_n of the absolute sum). dropout: x times a Philox mask (the reference's bits
//     exactly) and 1 / (1 - p): (4 + p / (1 - p)) U |y|, zero pattern exact.
import fc from 'fast-check';
import * as ff from '../../../lib';
import { abs, ANY, check, expectClose, expectExact, gamma, TINY, U } from '../check';
import { property } from '../property';
import { gradOf, make, seed, size, ValueSpec, valuesOf, values, withinBudget } from '../values';

const ref = ff.reference;
type RefArray = ff.reference.RefArray;
/** The cpu kernels' exp returns 0 below e^-87 (csrc/cpu/vec_math.h): the floor of a probability. */
const EXP_FLOOR = Math.exp(-87);
const absRef = (r: RefArray): RefArray => ({ data: abs(r.data), shape: r.shape });

// ---- matmul and linear ----------------------------------------------------------------------

interface MatmulCase {
  dims: { batch: number; M: number; N: number; K: number };
  shareA: boolean;
  shareB: boolean;
  lead: number;
  transA: boolean | undefined;
  transB: boolean | undefined;
  a: ValueSpec;
  b: ValueSpec;
  g: ValueSpec;
}

export const matmulProperty = property<MatmulCase>({
  name: 'matmul',
  weight: 2,
  arbitrary: () =>
    fc.record({
      dims: fc
        .record({ batch: size(8), M: size(1024), N: size(1024), K: size(1024) })
        .map((d) => withinBudget(d, (x) => x.batch * x.M * x.N * x.K, 2e6)),
      shareA: fc.boolean(),
      shareB: fc.boolean(),
      lead: fc.nat(2),
      transA: fc.constantFrom(undefined, true, false),
      transB: fc.constantFrom(undefined, true, false),
      a: values(),
      b: values(),
      g: values(),
    }),
  run(c, env) {
    const { M, N, K } = c.dims;
    // Batch dims [batch], [1, batch] or none; a shared operand (one matrix) has none.
    const batchDims = c.lead === 0 ? [c.dims.batch] : c.lead === 1 ? [1, c.dims.batch] : [];
    const batch = c.lead === 2 ? 1 : c.dims.batch;
    const dimsA = c.shareA && !c.shareB ? [] : batchDims;
    const dimsB = c.shareB && !c.shareA ? [] : batchDims;
    const aShape = [...dimsA, ...(c.transA ? [K, M] : [M, K])];
    const bShape = [...dimsB, ...(c.transB ? [N, K] : [K, N])];
    const a = make(aShape, c.a, env.device, true);
    const b = make(bShape, c.b, env.device, true);
    const opts = c.transA === undefined && c.transB === undefined ? undefined : { transA: c.transA, transB: c.transB };
    const y = ff.matmul(a.t, b.t, opts);
    const want = ref.matmulRef(a.ref, b.ref, c.transA ?? false, c.transB ?? false);
    check(y.shape.join() === want.shape.join(), () => `shape ${y.shape}, expected ${want.shape}`);
    const mag = ref.matmulRef(absRef(a.ref), absRef(b.ref), c.transA ?? false, c.transB ?? false);
    expectClose(
      'matmul',
      y.toFloat32Array(),
      want.data,
      Float64Array.from(mag.data, (m, i) => gamma(K + 1) * m + U * Math.abs(want.data[i]) + K * TINY),
    );
    const g = make([...y.shape], c.g, env.device);
    y.backward(g.t);
    const dWant = ref.matmulGradRef(a.ref, b.ref, g.ref, c.transA ?? false, c.transB ?? false);
    const dMag = ref.matmulGradRef(absRef(a.ref), absRef(b.ref), absRef(g.ref), c.transA ?? false, c.transB ?? false);
    const nA = N * batch,
      nB = M * batch;
    expectClose(
      'da',
      gradOf(a.t),
      dWant.da.data,
      Float64Array.from(dMag.da.data, (m, i) => gamma(nA + 1) * m + U * Math.abs(dWant.da.data[i]) + nA * TINY),
    );
    expectClose(
      'db',
      gradOf(b.t),
      dWant.db.data,
      Float64Array.from(dMag.db.data, (m, i) => gamma(nB + 1) * m + U * Math.abs(dWant.db.data[i]) + nB * TINY),
    );
  },
});

interface LinearCase {
  dims: { rows: number; lead: number; inF: number; out: number };
  bias: boolean;
  module: boolean;
  x: ValueSpec;
  w: ValueSpec;
  b: ValueSpec;
  g: ValueSpec;
}

export const linearProperty = property<LinearCase>({
  name: 'linear',
  weight: 2,
  arbitrary: () =>
    fc.record({
      dims: fc
        .record({ rows: size(256), lead: size(4), inF: size(1024), out: size(1024) })
        .map((d) => withinBudget(d, (x) => x.rows * x.lead * x.inF * x.out, 2e6)),
      bias: fc.boolean(),
      module: fc.boolean(),
      x: values(),
      w: values(),
      b: values(),
      g: values(),
    }),
  run(c, env) {
    const { rows, lead, inF, out } = c.dims;
    const x = make([lead, rows, inF], c.x, env.device, true);
    let W: ff.Tensor, bias: ff.Tensor | null, Wv: Float32Array, bv: Float32Array | null;
    let layer: ff.nn.Linear | null = null;
    if (c.module) {
      layer = new ff.nn.Linear(inF, out, { device: env.device, bias: c.bias, generator: new ff.Generator(c.w.seed) });
      W = layer.weight;
      bias = layer.bias;
      Wv = W.toFloat32Array();
      bv = bias ? bias.toFloat32Array() : null;
    } else {
      const w = make([out, inF], c.w, env.device, true);
      const b = c.bias ? make([out], c.b, env.device, true) : null;
      [W, bias, Wv, bv] = [w.t, b ? b.t : null, w.values, b ? b.values : null];
    }
    try {
      const y = layer ? layer.forward(x.t) : ff.linear(x.t, W, bias);
      const Wr = ref.refArray(Wv, [out, inF]);
      const br = bv ? ref.refArray(bv, [out]) : null;
      const want = ref.linearRef(x.ref, Wr, br);
      const mag = ref.linearRef(absRef(x.ref), absRef(Wr), br ? absRef(br) : null);
      expectClose(
        'linear',
        y.toFloat32Array(),
        want.data,
        Float64Array.from(mag.data, (m, i) => gamma(inF + 2) * m + U * Math.abs(want.data[i]) + inF * TINY),
      );
      const g = make([...y.shape], c.g, env.device);
      y.backward(g.t);
      const d = ref.linearGradRef(x.ref, Wr, g.ref);
      const dm = ref.linearGradRef(absRef(x.ref), absRef(Wr), absRef(g.ref));
      const tol = (m: RefArray, w: RefArray, n: number) =>
        Float64Array.from(m.data, (v, i) => gamma(n + 1) * v + U * Math.abs(w.data[i]) + n * TINY);
      expectClose('dx', gradOf(x.t), d.dx.data, tol(dm.dx, d.dx, out));
      expectClose('dW', gradOf(W), d.dW.data, tol(dm.dW, d.dW, rows * lead));
      if (bias) expectClose('db', gradOf(bias), d.db.data, tol(dm.db, d.db, rows * lead));
    } finally {
      layer?.dispose();
    }
  },
});

// ---- layerNorm ------------------------------------------------------------------------------

interface LayerNormCase {
  rows: number;
  C: number;
  affine: 'both' | 'weight' | 'none';
  eps: number | undefined;
  x: ValueSpec;
  w: ValueSpec;
  b: ValueSpec;
  g: ValueSpec;
}

export const layerNormProperty = property<LayerNormCase>({
  name: 'layerNorm',
  weight: 2,
  arbitrary: () =>
    fc
      .record({
        rows: size(256),
        C: size(4096),
        affine: fc.constantFrom<LayerNormCase['affine']>('both', 'weight', 'none'),
        eps: fc.constantFrom(undefined, 0, 1e-6, 1e-5, 1, 1e-30),
        x: values(),
        w: values(),
        b: values(),
        g: values(),
      })
      .map((c) => ({ ...c, rows: Math.max(1, Math.min(c.rows, Math.floor(2e5 / c.C))) })),
  run(c, env) {
    const { rows, C } = c;
    const x = make([rows, C], c.x, env.device, true);
    const w = c.affine !== 'none' ? make([C], c.w, env.device, true) : null;
    const b = c.affine === 'both' ? make([C], c.b, env.device, true) : null;
    const eps = c.eps ?? 1e-5;
    const y = ff.layerNorm(x.t, w?.t, b?.t, c.eps === undefined ? undefined : { eps: c.eps });
    const want = ref.layerNormRef(x.ref, w?.ref ?? null, b?.ref ?? null, eps);
    const g = make([rows, C], c.g, env.device);
    y.backward(g.t);
    const dWant = ref.layerNormGradRef(x.ref, w?.ref ?? null, g.ref, eps);
    const tolY = new Float64Array(rows * C),
      tolDx = new Float64Array(rows * C);
    const tolDw = new Float64Array(C),
      tolDb = new Float64Array(C);
    for (let r = 0; r < rows; r++) {
      const row = x.values.subarray(r * C, (r + 1) * C);
      const rowAny = (k: number) => {
        tolY[r * C + k] = ANY;
        tolDx[r * C + k] = ANY;
        tolDw[k] = ANY;
      };
      let m = 0,
        mAbs = 0;
      for (const v of row) {
        m += v;
        mAbs += Math.abs(v);
      }
      m /= C;
      mAbs /= C;
      let variance = 0;
      for (const v of row) variance += (v - m) ** 2;
      variance /= C;
      const rstd = 1 / Math.sqrt(variance + eps);
      const dm = gamma(C) * mAbs + U * Math.abs(m);
      // The float variance: var + dm^2, gamma_{C+2} var of rounding, and TINY for squares that
      // flush to 0. rstd's relative error over that interval; none (ANY) if it reaches 0.
      const dvar = gamma(C + 2) * variance + dm * dm + TINY;
      const rho =
        variance - dvar + eps > 0
          ? Math.max(
              Math.sqrt((variance + eps) / (variance - dvar + eps)) - 1,
              1 - Math.sqrt((variance + eps) / (variance + dvar + eps)),
            ) +
            3 * U
          : Infinity;
      if (!Number.isFinite(rho)) {
        for (let k = 0; k < C; k++) {
          rowAny(k);
          tolDb[k] += gamma(rows + 1) * Math.abs(g.values[r * C + k]);
        }
        continue;
      }
      // xhat and its error, and the backward's row sums.
      let mg = 0,
        mgAbs = 0,
        mgx = 0,
        mgxAbs = 0,
        mgdx = 0;
      const xh = new Float64Array(C),
        dxh = new Float64Array(C),
        gg = new Float64Array(C);
      for (let k = 0; k < C; k++) {
        const d = row[k] - m;
        xh[k] = d * rstd;
        dxh[k] = rstd * (dm + 3 * U * Math.abs(d)) + Math.abs(xh[k]) * rho;
        gg[k] = g.values[r * C + k] * (w ? w.values[k] : 1);
        mg += gg[k];
        mgAbs += Math.abs(gg[k]);
        mgx += gg[k] * xh[k];
        mgxAbs += Math.abs(gg[k] * xh[k]);
        mgdx += Math.abs(gg[k]) * dxh[k];
      }
      [mg, mgAbs, mgx, mgxAbs, mgdx] = [mg / C, mgAbs / C, mgx / C, mgxAbs / C, mgdx / C];
      for (let k = 0; k < C; k++) {
        const i = r * C + k;
        const wk = w ? Math.abs(w.values[k]) : 1;
        const bk = b ? Math.abs(b.values[k]) : 0;
        tolY[i] = wk * dxh[k] + 2 * U * Math.abs(want.data[i]) + U * bk;
        tolDx[i] =
          rstd *
            (gamma(C + 2) * mgAbs +
              dxh[k] * Math.abs(mgx) +
              Math.abs(xh[k]) * (gamma(C + 2) * mgxAbs + mgdx) +
              3 * U * (Math.abs(gg[k]) + Math.abs(mg) + Math.abs(xh[k] * mgx))) +
          Math.abs(dWant.dx.data[i]) * rho;
        const gk = Math.abs(g.values[i]);
        if (tolDw[k] !== ANY) tolDw[k] += gk * (dxh[k] + U * Math.abs(xh[k])) + gamma(rows + 1) * gk * Math.abs(xh[k]);
        tolDb[k] += gamma(rows + 1) * gk;
      }
    }
    expectClose('layerNorm', y.toFloat32Array(), want.data, tolY);
    expectClose('dx', gradOf(x.t), dWant.dx.data, tolDx);
    if (w) expectClose('dweight', gradOf(w.t), dWant.dw.data, tolDw);
    if (b) expectClose('dbias', gradOf(b.t), dWant.db.data, tolDb);
  },
});

// ---- softmax --------------------------------------------------------------------------------

interface SoftmaxCase {
  log: boolean;
  rows: number;
  C: number;
  axis: -1 | 'last' | undefined;
  x: ValueSpec;
  g: ValueSpec;
}

/** Per element of a row: the relative error d_c of exp(x_c - m), and the row's max and sum terms. */
function softmaxErrors(row: ArrayLike<number>): { d: Float64Array; dMax: number } {
  let m = -Infinity;
  for (let k = 0; k < row.length; k++) m = Math.max(m, row[k]);
  // A float lse = m + log(sum) rounds at U |m|: the exact result for inputs off by U relative.
  const d = Float64Array.from(row, (v) => U * (Math.abs(v - m) + Math.abs(v) + Math.abs(m)) + 3 * U);
  return { d, dMax: Math.max(...d) + gamma(row.length + 4) };
}

export const softmaxProperty = property<SoftmaxCase>({
  name: 'softmax',
  weight: 2,
  arbitrary: () =>
    fc
      .record({
        log: fc.boolean(),
        rows: size(256),
        C: size(2048),
        axis: fc.constantFrom<SoftmaxCase['axis']>(undefined, -1, 'last'),
        x: values(),
        g: values(),
      })
      .map((c) => ({ ...c, rows: Math.max(1, Math.min(c.rows, Math.floor(1e6 / (c.C * c.C)))) })),
  run(c, env) {
    const { rows, C } = c;
    const x = make([rows, C], c.x, env.device, true);
    const axis = c.axis === 'last' ? 1 : c.axis;
    const y = (c.log ? ff.logSoftmax : ff.softmax)(x.t, axis);
    const want = ref.softmaxRef(x.ref, c.log);
    const p = c.log ? ref.softmaxRef(x.ref) : want;
    const g = make([rows, C], c.g, env.device);
    y.backward(g.t);
    const dWant = ref.softmaxGradRef(x.ref, g.ref, c.log);
    const tolY = new Float64Array(rows * C),
      tolDx = new Float64Array(rows * C);
    for (let r = 0; r < rows; r++) {
      const { d, dMax } = softmaxErrors(x.values.subarray(r * C, (r + 1) * C));
      let s = 0,
        sAbs = 0,
        gSum = 0,
        gAbs = 0,
        dy = 0;
      const dp = new Float64Array(C);
      for (let k = 0; k < C; k++) {
        const i = r * C + k;
        // softmax: relative error of p; log-softmax: absolute error of y (= relative of exp(y)).
        dp[k] = d[k] + dMax + 2 * U;
        // exp is 0 below e^-87 in the cpu kernels (vec_math.h): probabilities under it may be 0.
        tolY[i] = c.log ? dp[k] + U * Math.abs(want.data[i]) : p.data[i] * dp[k] + EXP_FLOOR;
        const gi = g.values[i];
        s += gi * p.data[i];
        sAbs += Math.abs(gi * p.data[i]);
        gSum += gi;
        gAbs += Math.abs(gi);
        dy += Math.abs(gi) * p.data[i] * dp[k];
      }
      for (let k = 0; k < C; k++) {
        const i = r * C + k;
        const gi = g.values[i];
        tolDx[i] = c.log
          ? (p.data[i] * (dp[k] + 2 * U) + EXP_FLOOR) * Math.abs(gSum) +
            p.data[i] * gamma(C + 2) * gAbs +
            2 * U * Math.abs(dWant.data[i])
          : (p.data[i] * dp[k] + EXP_FLOOR) * (Math.abs(gi) + Math.abs(s)) +
            p.data[i] * (dy + gamma(C + 2) * sAbs) +
            3 * U * Math.abs(dWant.data[i]);
      }
    }
    expectClose(c.log ? 'logSoftmax' : 'softmax', y.toFloat32Array(), want.data, tolY);
    expectClose('dx', gradOf(x.t), dWant.data, tolDx);
  },
});

// ---- cross-entropy --------------------------------------------------------------------------

interface CrossEntropyCase {
  rows: number;
  C: number;
  soft: boolean;
  ignoreIndex: number | undefined;
  ignoreSome: boolean;
  labelSmoothing: number | undefined;
  reduction: ff.Reduction | undefined;
  x: ValueSpec;
  t: ValueSpec;
  g: ValueSpec;
}

export const crossEntropyProperty = property<CrossEntropyCase>({
  name: 'crossEntropy',
  weight: 2,
  arbitrary: () =>
    fc
      .record({
        rows: size(512),
        C: size(4096),
        soft: fc.boolean(),
        ignoreIndex: fc.constantFrom(undefined, -1, 0, 3),
        ignoreSome: fc.boolean(),
        labelSmoothing: fc.constantFrom(undefined, 0, 0.1, 1),
        reduction: fc.constantFrom<ff.Reduction | undefined>(undefined, 'mean', 'sum', 'none'),
        x: values(),
        t: fc.record({ kind: fc.constant('positive' as const), scale: fc.constant(1), seed }),
        g: values(),
      })
      .map((c) => ({ ...c, rows: Math.max(1, Math.min(c.rows, Math.floor(2e5 / c.C))) })),
  run(c, env) {
    const { rows, C } = c;
    const x = make([rows, C], c.x, env.device, true);
    const ignoreIndex = c.ignoreIndex ?? -100;
    let tv: Float32Array;
    if (c.soft) {
      // Rows of probabilities (each sums to 1 up to float rounding).
      const raw = valuesOf(c.t, rows * C);
      tv = new Float32Array(rows * C);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let k = 0; k < C; k++) s += raw[r * C + k];
        for (let k = 0; k < C; k++) tv[r * C + k] = s > 0 ? raw[r * C + k] / s : 1 / C;
      }
    } else {
      const raw = valuesOf(c.t, rows);
      tv = Float32Array.from(raw, (u, r) =>
        c.ignoreSome && r % 3 === 1 ? ignoreIndex : Math.min(C - 1, Math.floor(u * C)),
      );
    }
    const tShape = c.soft ? [rows, C] : [rows];
    const t = ff.tensor(tv, tShape, { device: env.device });
    const opts: ff.CrossEntropyOptions = {};
    if (c.ignoreIndex !== undefined) opts.ignoreIndex = c.ignoreIndex;
    if (c.labelSmoothing !== undefined) opts.labelSmoothing = c.labelSmoothing;
    if (c.reduction !== undefined) opts.reduction = c.reduction;
    const loss = ff.crossEntropy(x.t, t, opts);
    const o = { ignoreIndex, labelSmoothing: c.labelSmoothing ?? 0, reduction: c.reduction ?? 'mean' };
    const tr = ref.refArray(tv, tShape);
    const want = ref.crossEntropyRef(x.ref, tr, o);
    // Per row: sum q, sum |q x|, the lse error; whether ignored.
    const ls = o.labelSmoothing;
    const rowTol = new Float64Array(rows),
      rowW = new Float64Array(rows);
    let count = 0;
    const p = ref.softmaxRef(x.ref);
    const tolDx = new Float64Array(rows * C);
    for (let r = 0; r < rows; r++) {
      if (!c.soft && tv[r] === ignoreIndex) continue;
      count++;
      const row = x.values.subarray(r * C, (r + 1) * C);
      const { d, dMax } = softmaxErrors(row);
      let qSum = 0,
        qx = 0,
        m = -Infinity;
      for (let k = 0; k < C; k++) m = Math.max(m, row[k]);
      for (let k = 0; k < C; k++) {
        const q = (1 - ls) * (c.soft ? tv[r * C + k] : k === tv[r] ? 1 : 0) + ls / C;
        qSum += q;
        qx += Math.abs(q * row[k]);
      }
      const dLse = dMax + 2 * U * Math.abs(m) + 2 * U;
      rowTol[r] = qSum * dLse + gamma(C + 2) * qx + 2 * U * Math.abs(qSum * (m + 1));
      rowW[r] = 1;
      for (let k = 0; k < C; k++)
        tolDx[r * C + k] = qSum * (p.data[r * C + k] * (d[k] + dLse + 4 * U) + EXP_FLOOR) + 2 * U;
    }
    const reduction = o.reduction;
    if (reduction === 'none') {
      expectClose(
        'loss',
        loss.toFloat32Array(),
        want.data,
        Float64Array.from(rowTol, (v, r) => v + U * Math.abs(want.data[r])),
      );
    } else {
      const total = rowTol.reduce((s, v) => s + v, 0) / (reduction === 'mean' ? count : 1);
      expectClose('loss', loss.toFloat32Array(), want.data, total + 2 * U * Math.abs(want.data[0]));
    }
    const g = make([...loss.shape], c.g, env.device);
    loss.backward(g.t);
    const dWant = ref.crossEntropyGradRef(x.ref, tr, g.ref, o);
    for (let r = 0; r < rows; r++) {
      const w =
        reduction === 'none' ? Math.abs(g.values[r]) : Math.abs(g.values[0]) / (reduction === 'mean' ? count : 1);
      // Ignored rows have no gradient at all (and w is 1 / 0 when every row is ignored).
      for (let k = 0; k < C; k++)
        tolDx[r * C + k] = rowW[r] === 0 ? 0 : w * tolDx[r * C + k] + 2 * U * Math.abs(dWant.data[r * C + k]);
    }
    expectClose('dx', gradOf(x.t), dWant.data, tolDx);
  },
});

// ---- embedding, gatherRows, scatterRows ----------------------------------------------------

interface EmbeddingCase {
  fn: 'embedding' | 'gatherRows' | 'scatterRows' | 'module';
  V: number;
  D: number;
  n: number;
  ids: number;
  w: ValueSpec;
  g: ValueSpec;
  lead: number;
}

export const embeddingProperty = property<EmbeddingCase>({
  name: 'embedding',
  weight: 1,
  arbitrary: () =>
    fc
      .record({
        fn: fc.constantFrom<EmbeddingCase['fn']>('embedding', 'gatherRows', 'scatterRows', 'module'),
        V: size(4096),
        D: size(512),
        n: size(1024),
        ids: seed,
        w: values(),
        g: values(),
        lead: size(3),
      })
      .map((c) => ({
        ...c,
        V: Math.min(c.V, Math.floor(2e5 / c.D) || 1),
        n: Math.min(c.n, Math.floor(2e5 / c.D) || 1),
      })),
  run(c, env) {
    const { V, D, n } = c;
    const r = ff.reference.rng(c.ids);
    const idv = Float32Array.from({ length: n }, () => Math.floor(r() * V));
    const ids = ff.tensor(idv, [n], { device: env.device });
    const idsRef = ref.refArray(idv, [n]);
    if (c.fn === 'scatterRows') {
      const src = make([n, D], c.w, env.device, true);
      const y = ff.scatterRows(src.t, ids, V);
      const want = ref.embeddingGradRef(idsRef, src.ref, V);
      const mag = ref.embeddingGradRef(idsRef, absRef(src.ref), V);
      expectClose(
        'scatterRows',
        y.toFloat32Array(),
        want.data,
        Float64Array.from(mag.data, (m) => gamma(n) * m + n * TINY),
      );
      const g = make([V, D], c.g, env.device);
      y.backward(g.t);
      expectExact('dsrc', gradOf(src.t), ref.embeddingRef(idsRef, g.ref).data);
      return;
    }
    const layer =
      c.fn === 'module'
        ? new ff.nn.Embedding(V, D, { device: env.device, generator: new ff.Generator(c.w.seed) })
        : null;
    try {
      const w = layer ? null : make([V, D], c.w, env.device, true);
      const W = layer ? layer.weight : (w as { t: ff.Tensor }).t;
      const Wr = ref.refArray(layer ? W.toFloat32Array() : (w as { values: Float32Array }).values, [V, D]);
      const y = layer ? layer.forward(ids) : c.fn === 'embedding' ? ff.embedding(ids, W) : ff.gatherRows(W, ids);
      expectExact(c.fn, y.toFloat32Array(), ref.embeddingRef(idsRef, Wr).data);
      const g = make([...y.shape], c.g, env.device);
      y.backward(g.t);
      const want = ref.embeddingGradRef(idsRef, g.ref, V);
      const mag = ref.embeddingGradRef(idsRef, absRef(g.ref), V);
      expectClose(
        'dweight',
        gradOf(W),
        want.data,
        Float64Array.from(mag.data, (m) => gamma(n) * m + n * TINY),
      );
    } finally {
      layer?.dispose();
    }
  },
});

// ---- dropout --------------------------------------------------------------------------------

interface DropoutCase {
  path: boolean;
  p: number;
  shape: number[];
  gen: number;
  training: boolean | undefined;
  x: ValueSpec;
  g: ValueSpec;
  module: boolean;
}

export const dropoutProperty = property<DropoutCase>({
  name: 'dropout',
  weight: 1,
  arbitrary: () =>
    fc.record({
      path: fc.boolean(),
      p: fc.constantFrom(0, 0.1, 0.5, 0.9, 1, 1e-7),
      shape: fc.array(size(32), { minLength: 1, maxLength: 4 }),
      gen: seed,
      training: fc.constantFrom(undefined, true, false),
      x: values(),
      g: values(),
      module: fc.boolean(),
    }),
  run(c, env) {
    const x = make(c.shape, c.x, env.device, true);
    const gen = new ff.Generator(c.gen);
    const twin = new ff.Generator(c.gen);
    let y: ff.Tensor;
    const training = c.training ?? true;
    if (c.module) {
      const m = c.path ? new ff.nn.DropPath(c.p, gen) : new ff.nn.Dropout(c.p, gen);
      m.train(training);
      y = m.forward(x.t);
    } else {
      y = (c.path ? ff.dropPath : ff.dropout)(
        x.t,
        c.p,
        c.training === undefined ? { generator: gen } : { generator: gen, training: c.training },
      );
    }
    const n = x.values.length;
    const group = c.path ? n / c.shape[0] : 1;
    let mask: Float64Array;
    if (!training || c.p === 0) mask = new Float64Array(n).fill(1);
    else {
      const { seed: s, offset } = twin.reserve(Math.ceil(n / group / 4));
      mask = ref.dropoutMaskRef(n, group, c.p, s, offset);
    }
    const want = Float64Array.from(x.values, (v, i) => v * mask[i]);
    const got = y.toFloat32Array();
    // p rounds to float, then 1 - p (which multiplies p's rounding by p / (1 - p)), its
    // reciprocal and the product.
    const k = c.p < 1 ? 4 + c.p / (1 - c.p) : 0;
    expectClose(
      c.path ? 'dropPath' : 'dropout',
      got,
      want,
      Float64Array.from(want, (w) => k * U * Math.abs(w)),
    );
    for (let i = 0; i < n; i++)
      check(
        (mask[i] === 0) === (got[i] === 0) || x.values[i] === 0 || !Number.isFinite(mask[i]),
        () => `mask [${i}]: got ${got[i]}, mask ${mask[i]}`,
      );
    const g = make(c.shape, c.g, env.device);
    y.backward(g.t);
    const dWant = Float64Array.from(g.values, (v, i) => v * mask[i]);
    expectClose(
      'dx',
      gradOf(x.t),
      dWant,
      Float64Array.from(dWant, (w) => k * U * Math.abs(w)),
    );
  },
});

export const nnOpProperties = [
  matmulProperty,
  linearProperty,
  layerNormProperty,
  softmaxProperty,
  crossEntropyProperty,
  embeddingProperty,
  dropoutProperty,
];
