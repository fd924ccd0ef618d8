// The fused attentions and the Fourier metric at extreme inputs, against the float64 reference:
// R |q - k| up to ~1e22 (each sinc as small as 1e-22, products of them far below float's range),
// eps = 0 with subnormal row sums, dot-product logits up to ~1e10, and D, Dv up to 256 (the cuda
// kernels' widest lane groups). Each reproducer of issue 27 (items 1-5) is a test here, with a
// small sweep around it.
//
// Inputs at these magnitudes are put on a grid of 2^-8 (|values| <= 1e4) and R is a power of
// two, so q - k and R (q - k) are exact in float as in float64: the kernels and the reference
// then evaluate the sincs at the same x, and their results can be compared tightly. (With other
// values, x ~ 1e5 is rounded by ~1e-2 in float, and s'(x) / s(x) moves by tens of percent: the
// literal reproducers are checked for what survives that, finiteness and the weights.)
import * as ff from '../lib';
import { device, gradOf, pair, Pair, relErr, rng, uniform } from './helpers/compare';

const { fourierAttentionRef, fourierAttentionGradRef, dotAttentionRef, dotAttentionGradRef } = ff.reference;

const onCuda = device() !== 'cpu';

// The cpu kernels form x = R (q - k) as (c R) q - (c R) k (operands pre-scaled for the sinc
// polynomials, csrc/cpu/sinc_simd.h), rounded by ~6e-8 R (|q| + |k|): past R |q| ~ 8 they take
// the sincs at another x (~1e-6 off at R |q| = 16). Until the cpu kernels compute x exactly
// (the cpu part of issue 27), cases beyond that compare on cuda only; the cpu still runs them
// and must stay finite.
const exactX = (R: number, mag: number): boolean => onCuda || R * mag <= 8;

// Relative tolerances of well-spread results [out, dq, dk, dv, dR], on top of the floors.
const FOURIER_TOL = [1e-4, 1e-3, 1e-3, 1e-4, 1e-3];
const DOT_TOL = [1e-5, 1e-4, 1e-4, 1e-5];

/** n values uniform in (-mag, mag) on the grid 2^-8 (exact differences in float for mag <= 1e4). */
function grid(n: number, mag: number, seed: number): Float32Array {
  return uniform(n, -mag, mag, seed).map((x) => Math.round(x * 256) / 256);
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

interface Grads {
  out: Float32Array;
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
  dR?: Float32Array;
}

/** Forward and backward (with dout) of Fourier attention on the test device. */
function fourierRun(q: Pair, k: Pair, v: Pair, R: Pair, dout: Pair, opts: ff.FourierAttentionOptions): Grads {
  const h = ff.fourierAttention(q.t, k.t, v.t, R.t, opts);
  h.backward(dout.t);
  return { out: h.toFloat32Array(), dq: gradOf(q.t), dk: gradOf(k.t), dv: gradOf(v.t), dR: gradOf(R.t) };
}

function allFinite(g: Grads): boolean {
  return Object.values(g).every((a: Float32Array | undefined) => a === undefined || a.every(Number.isFinite));
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let e = 0; e < a.length; e++) m = Math.max(m, Math.abs(a[e]));
  return m;
}

/**
 * The worst ratio, over the elements, of |got - want| to what the conditioning allows there:
 * tol max|want| (the float rounding of a well-spread result) + floor[e]. The floor bounds what
 * float arithmetic cannot avoid where the result cancels: the sum of the result's terms in
 * absolute value, each times its own relative error (fourierFloors, dotErrors). <= 1 passes.
 */
function conditionedError(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
  floor: ArrayLike<number>,
): number {
  const scale = tol * maxAbs(want);
  let worst = 0;
  for (let e = 0; e < got.length; e++) {
    if (!Number.isFinite(got[e])) return Infinity;
    // 0 / 0 in float64 (eps = 0 and every K below 1e-308): the kernels' documented 0.
    if (Number.isNaN(want[e])) {
      if (got[e] !== 0) return Infinity;
      continue;
    }
    const allowed = scale + floor[e];
    const diff = Math.abs(got[e] - want[e]);
    worst = Math.max(worst, allowed > 0 ? diff / allowed : diff === 0 ? 0 : Infinity);
  }
  return worst;
}

/** The attention weights P [B,H,Nq,Nk] of a reference: its output for v = the identity. */
function weightsOf(
  attend: (v: ff.reference.RefArray) => ff.reference.RefArray,
  B: number,
  H: number,
  Nk: number,
): Float64Array {
  const eye = new Float64Array(B * H * Nk * Nk);
  for (let bh = 0; bh < B * H; bh++) for (let j = 0; j < Nk; j++) eye[(bh * Nk + j) * Nk + j] = 1;
  return attend({ data: eye, shape: [B, H, Nk, Nk] }).data;
}

/**
 * Floors for conditionedError, per element of out, dq, dk, dv and dR: the sum over the pairs
 * (i, j) of |term| u_i. A gradient's term is G_ij p P_ij (s'/s)(x_ijd) R_d (dq, dk; (q - k)
 * for dR), with |G_ij| <= dout_i . (|v_j| + |out_i|): the kernels form G_ij as
 * dout_i . (v_j - out_i) from the float out, so it carries an absolute error ~1e-7 of that bound
 * (a large relative one where one key takes nearly all the weight). u_ij = 1e-6 (1 + |log S_i|)
 * in stable mode, where S_i reaches the backward as a float log whose rounding grows with
 * |log S_i|. In the default mode K underflows below float's smallest normal (documented: the
 * cpu flushes it to 0, cuda keeps a few bits): u_ij = 1e-6 + lost_i / (S_i + eps), plus 1 for
 * such a K itself, lost_i the row's sum of them.
 */
function fourierFloors(
  q: Pair,
  k: Pair,
  v: Pair,
  R: Pair,
  dout: Pair,
  opts: ff.FourierAttentionOptions,
): Record<'out' | 'dq' | 'dk' | 'dv' | 'dR', Float64Array> {
  const [B, H, Nq, D] = q.ref.shape,
    Nk = k.ref.shape[2],
    Dv = v.ref.shape[3];
  const power = opts.power ?? 4;
  const { sincRef, sincDerivRef } = ff.reference;
  const P = weightsOf((eye) => fourierAttentionRef(q.ref, k.ref, eye, R.ref, opts), B, H, Nk);
  const out = fourierAttentionRef(q.ref, k.ref, v.ref, R.ref, opts).data;
  const rs = R.ref.shape,
    rH = rs.length === 2 ? rs[0] : 1,
    rD = rs.length === 0 ? 1 : rs[rs.length - 1];
  const f = {
    out: new Float64Array(out.length),
    dq: new Float64Array(q.ref.data.length),
    dk: new Float64Array(k.ref.data.length),
    dv: new Float64Array(v.ref.data.length),
    dR: new Float64Array(R.ref.data.length),
  };
  const Q = q.ref.data,
    K = k.ref.data,
    V = v.ref.data,
    G = dout.ref.data;
  for (let bh = 0; bh < B * H; bh++) {
    const h = bh % H;
    const rIndex = (d: number): number => (rH === 1 ? 0 : h) * rD + (rD === 1 ? 0 : d);
    for (let i = 0; i < Nq; i++) {
      const row = bh * Nq + i;
      let logS = 0;
      for (let j = 0; opts.stable && j < Nk; j++) {
        const p = P[row * Nk + j];
        if (!(p > 0)) continue;
        let logK = 0; // log S_i = log K_ij - log P_ij for any key with weight
        for (let d = 0; d < D; d++)
          logK +=
            power * Math.log(Math.abs(sincRef(R.ref.data[rIndex(d)] * (Q[row * D + d] - K[(bh * Nk + j) * D + d]))));
        logS = Math.abs(logK - Math.log(p));
        break;
      }
      // The default mode's K_ij, those below float's range, and their sum.
      const Kf = new Float64Array(Nk);
      let S = 0,
        lost = 0;
      for (let j = 0; !opts.stable && j < Nk; j++) {
        if (opts.causal && j > i) continue;
        let kij = 1;
        for (let d = 0; d < D; d++)
          kij *= sincRef(R.ref.data[rIndex(d)] * (Q[row * D + d] - K[(bh * Nk + j) * D + d])) ** power;
        Kf[j] = kij;
        S += kij;
        if (Math.abs(kij) < 2 ** -126) lost += Math.abs(kij);
      }
      const uRow = opts.stable ? 1e-6 * (1 + logS) : 1e-6 + lost / Math.abs(S + (opts.eps ?? 1e-6));
      for (let j = 0; j < Nk; j++) {
        const p = P[row * Nk + j];
        if (p === 0) continue;
        const u = uRow + (!opts.stable && Math.abs(Kf[j]) < 2 ** -126 ? 1 : 0);
        let g = 0;
        for (let e = 0; e < Dv; e++) {
          g += Math.abs(G[row * Dv + e]) * (Math.abs(V[(bh * Nk + j) * Dv + e]) + Math.abs(out[row * Dv + e]));
          f.dv[(bh * Nk + j) * Dv + e] += Math.abs(p * G[row * Dv + e]) * u;
          f.out[row * Dv + e] += Math.abs(p * V[(bh * Nk + j) * Dv + e]) * u;
        }
        for (let d = 0; d < D; d++) {
          const r = R.ref.data[rIndex(d)],
            diff = Q[row * D + d] - K[(bh * Nk + j) * D + d];
          const s = sincRef(r * diff);
          if (s === 0) continue;
          const t = Math.abs((g * power * p * sincDerivRef(r * diff)) / s) * u;
          f.dq[row * D + d] += t * Math.abs(r);
          f.dk[(bh * Nk + j) * D + d] += t * Math.abs(r);
          f.dR[rIndex(d)] += t * Math.abs(diff);
        }
      }
    }
  }
  return f;
}

interface FourierCase {
  B?: number;
  H?: number;
  Nq: number;
  Nk: number;
  D: number;
  Dv: number;
  /** |q|, |k| up to mag (on the 2^-8 grid). */
  mag: number;
  /** R = 2^log2R ([1]), or per head and feature when rShape is given. */
  log2R: number;
  rShape?: number[];
  opts: ff.FourierAttentionOptions;
}

/** A case's conditioned errors against the reference (conditionedError): [out, dq, dk, dv, dR]. */
function fourierErrors(c: FourierCase, seed: number): number[] {
  return ff.tidy(() => {
    const B = c.B ?? 1,
      H = c.H ?? 1;
    const qs = [B, H, c.Nq, c.D],
      ks = [B, H, c.Nk, c.D],
      vs = [B, H, c.Nk, c.Dv],
      os = [B, H, c.Nq, c.Dv];
    const rShape = c.rShape ?? [1];
    const r = rng(seed + 5);
    const Rv = Float32Array.from({ length: numel(rShape) }, () => 2 ** (c.log2R - Math.floor(r() * 3)));
    const q = pair(grid(numel(qs), c.mag, seed), qs);
    const k = pair(grid(numel(ks), c.mag, seed + 1), ks);
    const v = pair(uniform(numel(vs), -1, 1, seed + 2), vs);
    const R = pair(Rv, rShape);
    const dout = pair(uniform(numel(os), -1, 1, seed + 3), os, false);
    const got = fourierRun(q, k, v, R, dout, c.opts);
    expect(allFinite(got)).toBe(true);
    if (!exactX(2 ** c.log2R, c.mag)) return [0, 0, 0, 0, 0];
    const ref = fourierAttentionGradRef(q.ref, k.ref, v.ref, R.ref, dout.ref, c.opts);
    const out = fourierAttentionRef(q.ref, k.ref, v.ref, R.ref, c.opts).data;
    const f = fourierFloors(q, k, v, R, dout, c.opts);
    const tol = FOURIER_TOL;
    return [
      conditionedError(got.out, out, tol[0], f.out),
      conditionedError(got.dq, ref.dq.data, tol[1], f.dq),
      conditionedError(got.dk, ref.dk.data, tol[2], f.dk),
      conditionedError(got.dv, ref.dv.data, tol[3], f.dv),
      conditionedError(got.dR as Float32Array, ref.dR.data, tol[4], f.dR),
    ];
  });
}

/**
 * Forward and backward of dot-product attention against the reference; conditioned errors
 * [out, dq, dk, dv]. Floors as fourierFloors', from the terms G_ij P_ij scale k_j (dq) or q_i
 * (dk), P_ij dout_i (dv) and P_ij v_j (out), each with u_ij = 1e-6 + 2^-22 |scale| sum_d
 * |q_id k_jd| (1 - P_ij): the float rounding of a logit moves P_ij where the row has more than
 * one key of weight.
 */
function dotErrors(
  qv: Float32Array,
  kv: Float32Array,
  vv: Float32Array,
  shape: number[],
  Dv: number,
  opts: ff.DotProductAttentionOptions,
  seed: number,
): number[] {
  return ff.tidy(() => {
    const [B, H, N, D] = shape;
    const q = pair(qv, shape),
      k = pair(kv, shape),
      v = pair(vv, [B, H, N, Dv]);
    const dout = pair(uniform(B * H * N * Dv, -1, 1, seed), [B, H, N, Dv], false);
    const h = ff.dotProductAttention(q.t, k.t, v.t, opts);
    h.backward(dout.t);
    const got = { out: h.toFloat32Array(), dq: gradOf(q.t), dk: gradOf(k.t), dv: gradOf(v.t) };
    expect(allFinite(got)).toBe(true);
    const ref = dotAttentionGradRef(q.ref, k.ref, v.ref, dout.ref, opts);
    const out = dotAttentionRef(q.ref, k.ref, v.ref, opts).data;
    const scale = opts.scale ?? 1 / Math.sqrt(D);
    const P = weightsOf((eye) => dotAttentionRef(q.ref, k.ref, eye, opts), B, H, N);
    const f = {
      out: new Float64Array(out.length),
      dq: new Float64Array(qv.length),
      dk: new Float64Array(kv.length),
      dv: new Float64Array(vv.length),
    };
    const Q = q.ref.data,
      K = k.ref.data,
      V = v.ref.data,
      G = dout.ref.data;
    for (let bh = 0; bh < B * H; bh++)
      for (let i = 0; i < N; i++)
        for (let j = 0; j < N; j++) {
          const p = P[(bh * N + i) * N + j];
          if (p === 0) continue;
          let L = 0,
            g = 0;
          for (let d = 0; d < D; d++) L += Math.abs(Q[(bh * N + i) * D + d] * K[(bh * N + j) * D + d]);
          const u = 1e-6 + 2 ** -22 * Math.abs(scale) * L * (1 - p);
          for (let e = 0; e < Dv; e++) {
            g +=
              Math.abs(G[(bh * N + i) * Dv + e]) *
              (Math.abs(V[(bh * N + j) * Dv + e]) + Math.abs(out[(bh * N + i) * Dv + e]));
            f.dv[(bh * N + j) * Dv + e] += Math.abs(p * G[(bh * N + i) * Dv + e]) * u;
            f.out[(bh * N + i) * Dv + e] += Math.abs(p * V[(bh * N + j) * Dv + e]) * u;
          }
          for (let d = 0; d < D; d++) {
            f.dq[(bh * N + i) * D + d] += Math.abs(g * p * scale * K[(bh * N + j) * D + d]) * u;
            f.dk[(bh * N + j) * D + d] += Math.abs(g * p * scale * Q[(bh * N + i) * D + d]) * u;
          }
        }
    const tol = DOT_TOL;
    return [
      conditionedError(got.out, out, tol[0], f.out),
      conditionedError(got.dq, ref.dq.data, tol[1], f.dq),
      conditionedError(got.dk, ref.dk.data, tol[2], f.dk),
      conditionedError(got.dv, ref.dv.data, tol[3], f.dv),
    ];
  });
}

/** Every conditioned error at most 1 (within what the conditioning allows). */
function expectWithin(errors: number[], what: string): void {
  const names = ['out', 'dq', 'dk', 'dv', 'dR'];
  errors.forEach((e, n) => {
    if (!(e <= 1))
      throw new Error(`${what}: ${names[n]} is ${e.toPrecision(3)} times the error its conditioning allows`);
  });
}

describe(`Fourier attention at extreme inputs on ${device()}`, () => {
  test('issue 27.1: stable forward keeps the weight of a key at R = 1e18 (a row of one key gives v)', () => {
    ff.tidy(() => {
      const t = (a: number[], s: number[]): ff.Tensor => ff.tensor(a, s, { device: device() });
      const h = ff.fourierAttention(
        t([0.1, 0.2, 0.3], [1, 1, 1, 3]),
        t([0.4, -0.5, 0.6], [1, 1, 1, 3]),
        t([1], [1, 1, 1, 1]),
        t([1e18], [1]),
        { stable: true },
      );
      expect(Array.from(h.toFloat32Array())).toEqual([1]);
      // R = 1e3, |k| ~ 1e4: the same underflow of a lane's product of sincs, with two keys.
      const q = pair(Float32Array.of(0.5, -0.25, 1, 2), [1, 1, 1, 4]);
      const k = pair(Float32Array.of(9000.5, -8000.25, 7000, 6000.75, -9500, 8500.5, -7500.25, 9999), [1, 1, 2, 4]);
      const v = pair(Float32Array.of(1, -2, 3, 4), [1, 1, 2, 2]);
      const R = pair(Float32Array.of(1024), [1]);
      const out = ff.fourierAttention(q.t, k.t, v.t, R.t, { stable: true }).toFloat32Array();
      expect(out.every(Number.isFinite)).toBe(true);
      if (exactX(1024, 1e4))
        expect(relErr(out, fourierAttentionRef(q.ref, k.ref, v.ref, R.ref, { stable: true }).data)).toBeLessThan(1e-5);
    });
  });

  test('issue 27.2: stable backward is finite where the lane products underflow (q, k ~ 1e4, R = 10)', () => {
    ff.tidy(() => {
      const qa = Array.from({ length: 16 }, (_, i) => 1e4 * Math.sin(i + 1));
      const ka = Array.from({ length: 16 }, (_, i) => 1e4 * Math.cos(i + 1));
      const lit = (a: number[], s: number[]): Pair => pair(Float32Array.from(a), s);
      const q = lit(qa, [1, 1, 2, 8]),
        k = lit(ka, [1, 1, 2, 8]),
        v = lit([1, 2, 3, 4], [1, 1, 2, 2]);
      const R = lit([10], [1]),
        dout = pair(Float32Array.of(1, 1, 1, 1), [1, 1, 2, 2], false);
      const got = fourierRun(q, k, v, R, dout, { stable: true });
      expect(allFinite(got)).toBe(true);
      // x = 10 (q - k) ~ 1e5 is rounded in float: only the weights (one key per row) compare tightly.
      const ref = fourierAttentionGradRef(q.ref, k.ref, v.ref, R.ref, dout.ref, { stable: true });
      expect(relErr(got.out, fourierAttentionRef(q.ref, k.ref, v.ref, R.ref, { stable: true }).data)).toBeLessThan(
        1e-6,
      );
      if (exactX(10, 1e4)) expect(relErr(got.dv, ref.dv.data)).toBeLessThan(1e-6);
      // The same values on the 2^-8 grid with R = 8: x exact, every gradient compares.
      const qg = qa.map((x) => Math.round(x * 256) / 256),
        kg = ka.map((x) => Math.round(x * 256) / 256);
      const q2 = lit(qg, [1, 1, 2, 8]),
        k2 = lit(kg, [1, 1, 2, 8]),
        v2 = lit([1, 2, 3, 4], [1, 1, 2, 2]),
        R2 = lit([8], [1]);
      const g2 = fourierRun(q2, k2, v2, R2, dout, { stable: true });
      expect(allFinite(g2)).toBe(true);
      if (!exactX(8, 1e4)) return;
      const r2 = fourierAttentionGradRef(q2.ref, k2.ref, v2.ref, R2.ref, dout.ref, { stable: true });
      expect(relErr(g2.dq, r2.dq.data)).toBeLessThan(1e-4);
      expect(relErr(g2.dk, r2.dk.data)).toBeLessThan(1e-4);
      expect(relErr(g2.dR as Float32Array, r2.dR.data)).toBeLessThan(1e-4);
    });
  });

  test('issue 27.3: eps = 0 with a subnormal row sum is finite (cuda: K / S exactly; cpu flushes it to 0)', () => {
    ff.tidy(() => {
      // sinc(3.14162)^8 ~ 3e-41: a subnormal K, the only one of its row.
      const q = pair(Float32Array.of(3.14162), [1, 1, 1, 1]);
      const k = pair(Float32Array.of(0), [1, 1, 1, 1]);
      const v = pair(Float32Array.of(1), [1, 1, 1, 1]);
      const R = pair(Float32Array.of(1), [1]);
      const dout = pair(Float32Array.of(1), [1, 1, 1, 1], false);
      const opts = { power: 8, eps: 0 };
      const got = fourierRun(q, k, v, R, dout, opts);
      expect(allFinite(got)).toBe(true);
      // The cpu kernels flush subnormals to zero (csrc/cpu/threads.h): K = 0, a row without weight.
      const want = onCuda ? fourierAttentionRef(q.ref, k.ref, v.ref, R.ref, opts).data : [0];
      expect(relErr(got.out, want)).toBeLessThan(1e-4);
    });
  });

  test('sweep: stable, |q|, |k| up to 1e4, R up to 2^60 (~1e18), power 2 and 8, D 3..40', () => {
    let seed = 2700;
    for (const [mag, log2R] of [
      [1e4, 60],
      [1e4, 10],
      [100, 30],
      [1, 60],
      [1e4, 0],
      [2, 2],
    ])
      for (const power of [2, 8])
        for (const [D, Dv] of [
          [3, 2],
          [8, 5],
          [40, 16],
        ])
          for (const causal of [false, true]) {
            const c = { Nq: 6, Nk: 6, D, Dv, mag, log2R, opts: { stable: true, power, causal } };
            expectWithin(fourierErrors(c, seed), JSON.stringify(c));
            seed += 10;
          }
  });

  test('sweep: default mode at large R and magnitudes (underflow gives 0, never NaN)', () => {
    let seed = 2800;
    for (const [mag, log2R] of [
      [1e4, 60],
      [1e4, 10],
      [2, 3],
      [2, 2],
    ])
      for (const power of [1, 2, 4, 8])
        for (const eps of [1e-6, 0])
          for (const D of [3, 16]) {
            const c = { Nq: 5, Nk: 5, D, Dv: 3, mag, log2R, opts: { power, eps, causal: true } };
            // Where every K underflows in float both give 0 against a reference of ~1e-700.
            expectWithin(fourierErrors(c, seed), JSON.stringify(c));
            seed += 10;
          }
  });

  test('sweep: eps = 0, one key per row near a zero of the sinc (subnormal sums on cuda)', () => {
    ff.tidy(() => {
      // Rows i: q = pi + delta_i against k = 0, so K = sinc(q)^p from ~1e-20 down to ~1e-44.
      const n = 12;
      const deltas = Array.from({ length: n }, (_, i) => Math.fround(2 ** (-4 - i)));
      for (const power of [4, 6, 8]) {
        const q = pair(
          Float32Array.from(deltas, (d) => Math.fround(Math.PI + d)),
          [1, n, 1, 1],
        );
        const k = pair(new Float32Array(n), [1, n, 1, 1]);
        const v = pair(uniform(n * 2, -1, 1, 2900 + power), [1, n, 1, 2]);
        const R = pair(Float32Array.of(1), [1]);
        const dout = pair(uniform(n * 2, -1, 1, 2910 + power), [1, n, 1, 2], false);
        const opts = { power, eps: 0 };
        const got = fourierRun(q, k, v, R, dout, opts);
        expect(allFinite(got)).toBe(true);
        const ref = fourierAttentionRef(q.ref, k.ref, v.ref, R.ref, opts).data;
        const refv = fourierAttentionGradRef(q.ref, k.ref, v.ref, R.ref, dout.ref, opts).dv.data;
        // K below float's smallest normal: the cpu flushes the row to 0; cuda keeps the subnormal
        // K, whose few bits bound the error (|K| ~ 1e-41 has ~17).
        for (let h = 0; h < n; h++) {
          const K = Math.abs(Math.sin(q.ref.data[h]) / q.ref.data[h]) ** power;
          const out = got.out.subarray(2 * h, 2 * h + 2),
            dv = got.dv.subarray(2 * h, 2 * h + 2);
          const want = ref.subarray(2 * h, 2 * h + 2),
            wantDv = refv.subarray(2 * h, 2 * h + 2);
          if (K >= 2 ** -126 || (onCuda && K >= 2 ** -140)) {
            expect(relErr(out, want)).toBeLessThan(K >= 2 ** -126 ? 1e-4 : 2e-3);
            expect(relErr(dv, wantDv)).toBeLessThan(K >= 2 ** -126 ? 1e-4 : 2e-3);
          } else if (!onCuda) {
            expect(Array.from(out, Math.abs)).toEqual([0, 0]); // flushed to a zero of either sign
          }
        }
      }
    });
  });
});

describe(`fourierMetric at extreme inputs on ${device()}`, () => {
  test('R up to 2^60, |q|, |k| up to 1e4: K below float range is 0, representable K and gradients match', () => {
    const { fourierMetricRef, fourierMetricGradRef } = ff.reference;
    let seed = 3500;
    for (const [mag, log2R, D, power] of [
      [1e4, 60, 8, 1],
      [1e4, 60, 3, 4],
      [1, 10, 8, 1],
      [1, 10, 8, 4],
      [100, 20, 40, 2],
      [1e4, 0, 4, 2],
    ]) {
      ff.tidy(() => {
        const N = 5,
          shape = [1, 1, N, D];
        const q = pair(grid(N * D, mag, seed), shape),
          k = pair(grid(N * D, mag, seed + 1), shape);
        const R = pair(Float32Array.of(2 ** log2R), [1]),
          dK = pair(uniform(N * N, -1, 1, seed + 2), [1, 1, N, N], false);
        seed += 10;
        const K = ff.fourierMetric(q.t, k.t, R.t, { power });
        K.backward(dK.t);
        const got = [K.toFloat32Array(), gradOf(q.t), gradOf(k.t), gradOf(R.t)];
        const g = fourierMetricGradRef(q.ref, k.ref, R.ref, dK.ref, power);
        const want = [fourierMetricRef(q.ref, k.ref, R.ref, power).data, g.dq.data, g.dk.data, g.dR.data];
        // Absolute floors: float's smallest normal for K (below it: 0 or a subnormal), and
        // that times the largest |dK| p / |x| bound of a gradient term (~1) for the gradients.
        got.forEach((a, n) => {
          const floor = new Float64Array(a.length).fill(n === 0 ? 2 ** -126 : 2 ** -100);
          const e = conditionedError(a, want[n], n === 0 ? 1e-5 : 1e-4, floor);
          if (!(e <= 1))
            throw new Error(
              `mag ${mag}, R 2^${log2R}, D ${D}, power ${power}: output ${n} is ${e.toPrecision(3)} times its allowed error`,
            );
        });
      });
    }
  });
});

describe(`dot-product attention at extreme logits on ${device()}`, () => {
  test('issue 27.4: backward with logits ~1e9 (causal, scale 10) matches the reference', () => {
    const qv = Float32Array.from({ length: 8 }, (_, i) => 1e4 * Math.sin(3 * i + 1));
    const kv = Float32Array.from({ length: 8 }, (_, i) => 1e4 * Math.cos(5 * i + 2));
    ff.tidy(() => {
      const q = pair(qv, [1, 1, 4, 2]),
        k = pair(kv, [1, 1, 4, 2]),
        v = pair(Float32Array.of(1, 2, 3, 4), [1, 1, 4, 1]);
      const h = ff.dotProductAttention(q.t, k.t, v.t, { causal: true, scale: 10 });
      h.backward(ff.ones([1, 1, 4, 1], { device: device() }));
      expect(Array.from(gradOf(v.t))).toEqual([1, 3, 0, 0]);
      expect(gradOf(q.t).every(Number.isFinite) && gradOf(k.t).every(Number.isFinite)).toBe(true);
    });
    const e = dotErrors(qv, kv, Float32Array.of(1, 2, 3, 4), [1, 1, 4, 2], 1, { causal: true, scale: 10 }, 2701);
    // One-hot rows: every weight is 0 or 1 exactly, on both sides.
    expectWithin(e, 'issue 27.4');
  });

  test('sweep: |q|, |k| up to 1e4, scale up to 10, ties at large logits', () => {
    let seed = 3000;
    for (const mag of [1e4, 300, 1])
      for (const scale of [10, 1, 0.01])
        for (const [N, D] of [
          [6, 2],
          [9, 16],
        ])
          for (const causal of [false, true]) {
            const shape = [1, 2, N, D];
            const e = dotErrors(
              grid(2 * N * D, mag, seed),
              grid(2 * N * D, mag, seed + 1),
              uniform(2 * N * 3, -1, 1, seed + 2),
              shape,
              3,
              { causal, scale },
              seed + 3,
            );
            expectWithin(e, JSON.stringify({ mag, scale, N, D, causal }));
            seed += 10;
          }
  });
});

describe(`wide rows (D, Dv up to 256) on ${device()}`, () => {
  for (const [D, Dv] of [
    [192, 192],
    [256, 256],
    [256, 8],
    [8, 256],
    [200, 130],
  ]) {
    for (const stable of [false, true]) {
      test(`Fourier attention D ${D}, Dv ${Dv}, stable ${stable}`, () => {
        const c = {
          B: 1,
          H: 2,
          Nq: 7,
          Nk: 9,
          D,
          Dv,
          mag: 0.05,
          log2R: 0,
          rShape: [2, D],
          opts: { stable, eps: 0, causal: false },
        };
        expectWithin(fourierErrors(c, 4000 + D + Dv), JSON.stringify(c));
      });
    }
    test(`dot-product attention D ${D}, Dv ${Dv}`, () => {
      const N = 9,
        shape = [1, 2, N, D];
      const e = dotErrors(
        uniform(2 * N * D, -0.3, 0.3, 4100 + D),
        uniform(2 * N * D, -0.3, 0.3, 4101 + D),
        uniform(2 * N * Dv, -1, 1, 4102),
        shape,
        Dv,
        { causal: true },
        4103,
      );
      expectWithin(e, `D ${D}, Dv ${Dv}`);
    });
  }

  test('the stable kernel at D = 256 and larger inputs (every K far below float range)', () => {
    const c = { Nq: 6, Nk: 6, D: 256, Dv: 256, mag: 2, log2R: 2, opts: { stable: true, causal: true } };
    expectWithin(fourierErrors(c, 4200), JSON.stringify(c));
  });

  (onCuda ? test : test.skip)('D or Dv above 256 is refused on cuda with the limit in the message', () => {
    ff.tidy(() => {
      const z = (s: number[]): ff.Tensor => ff.zeros(s, { device: device() });
      expect(() =>
        ff.fourierAttention(
          z([1, 1, 2, 257]),
          z([1, 1, 2, 257]),
          z([1, 1, 2, 4]),
          ff.tensor([1], [1], { device: device() }),
        ),
      ).toThrow(/D and Dv up to 256, got D = 257/);
      expect(() => ff.dotProductAttention(z([1, 1, 2, 4]), z([1, 1, 2, 4]), z([1, 1, 2, 300]))).toThrow(
        /D and Dv up to 256, got D = 4, Dv = 300/,
      );
    });
  });
});
