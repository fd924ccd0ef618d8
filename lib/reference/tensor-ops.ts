// Pure-TypeScript float64 reference of the tensor ops and their gradients, for tests only: plain
// index arithmetic over full multi-indices, sharing no shortcut (no dim merging, no fast paths)
// with the kernels it checks.
import type { RefArray } from './fourier-metric';

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1] * shape[d + 1];
  return s;
}

/** The multi-index of flat position i in shape. */
function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/**
 * The flat position in `shape` of the multi-index `idx` of a broadcast result (right-aligned;
 * size-1 dims read index 0).
 */
function broadcastIndex(idx: readonly number[], shape: readonly number[]): number {
  const lead = idx.length - shape.length;
  const st = stridesOf(shape);
  let off = 0;
  for (let d = 0; d < shape.length; d++) off += (shape[d] === 1 ? 0 : idx[lead + d]) * st[d];
  return off;
}

export function broadcastShapeRef(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    return da === 1 ? db : da;
  });
}

export type BinaryRefOp = 'add' | 'sub' | 'mul' | 'div';

const BINARY: Record<BinaryRefOp, (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
};

/** a op b with NumPy broadcasting. */
export function binaryRef(op: BinaryRefOp, a: RefArray, b: RefArray): RefArray {
  const shape = broadcastShapeRef(a.shape, b.shape);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    out[i] = BINARY[op](a.data[broadcastIndex(idx, a.shape)], b.data[broadcastIndex(idx, b.shape)]);
  }
  return { data: out, shape };
}

/** dL/da and dL/db of a op b given g = dL/d(a op b), each summed over what was broadcast. */
export function binaryGradRef(op: BinaryRefOp, a: RefArray, b: RefArray, g: RefArray): { da: RefArray; db: RefArray } {
  const da = new Float64Array(a.data.length);
  const db = new Float64Array(b.data.length);
  for (let i = 0; i < g.data.length; i++) {
    const idx = unravel(i, g.shape);
    const ia = broadcastIndex(idx, a.shape);
    const ib = broadcastIndex(idx, b.shape);
    const x = a.data[ia];
    const y = b.data[ib];
    const gi = g.data[i];
    if (op === 'add') {
      da[ia] += gi;
      db[ib] += gi;
    }
    if (op === 'sub') {
      da[ia] += gi;
      db[ib] -= gi;
    }
    if (op === 'mul') {
      da[ia] += gi * y;
      db[ib] += gi * x;
    }
    if (op === 'div') {
      da[ia] += gi / y;
      db[ib] -= (gi * x) / (y * y);
    }
  }
  return { da: { data: da, shape: [...a.shape] }, db: { data: db, shape: [...b.shape] } };
}

/**
 * erf in float64: the everywhere-convergent series 2/sqrt(pi) e^{-x^2} sum 2^n x^{2n+1} /
 * (1*3*...*(2n+1)), all terms positive.
 */
export function erfRef(x: number): number {
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  let term = a;
  let sum = a;
  for (let n = 1; term > 1e-17 * sum; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}

export type UnaryRefOp = 'gelu_tanh' | 'gelu_erf' | 'relu' | 'exp' | 'log' | 'tanh';

const C = Math.sqrt(2 / Math.PI);

/** f(x) and f'(x) of each unary op in float64. */
export const UNARY_REF: Record<UnaryRefOp, { f: (x: number) => number; df: (x: number) => number }> = {
  gelu_tanh: {
    f: (x) => 0.5 * x * (1 + Math.tanh(C * (x + 0.044715 * x ** 3))),
    df: (x) => {
      const t = Math.tanh(C * (x + 0.044715 * x ** 3));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * 0.044715 * x * x);
    },
  },
  gelu_erf: {
    f: (x) => 0.5 * x * (1 + erfRef(x / Math.SQRT2)),
    df: (x) => 0.5 * (1 + erfRef(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
  },
  relu: { f: (x) => Math.max(x, 0), df: (x) => (x > 0 ? 1 : 0) },
  exp: { f: Math.exp, df: Math.exp },
  log: { f: Math.log, df: (x) => 1 / x },
  tanh: { f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2 },
};

export function unaryRef(op: UnaryRefOp, x: RefArray): RefArray {
  return { data: x.data.map(UNARY_REF[op].f), shape: [...x.shape] };
}

export function unaryGradRef(op: UnaryRefOp, x: RefArray, g: RefArray): RefArray {
  return { data: x.data.map((v, i) => UNARY_REF[op].df(v) * g.data[i]), shape: [...x.shape] };
}

/** The sum over `axes` (distinct, in [0, ndim)); keepDims leaves them as size 1. */
export function sumRef(x: RefArray, axes: readonly number[], keepDims = false): RefArray {
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Float64Array(sizeOf(kept));
  for (let i = 0; i < x.data.length; i++) out[broadcastIndex(unravel(i, x.shape), kept)] += x.data[i];
  return { data: out, shape: keepDims ? kept : x.shape.filter((_, i) => !axes.includes(i)) };
}

export function meanRef(x: RefArray, axes: readonly number[], keepDims = false): RefArray {
  const s = sumRef(x, axes, keepDims);
  const count = axes.reduce((n, a) => n * x.shape[a], 1);
  return { data: s.data.map((v) => v / count), shape: s.shape };
}

/** x broadcast to `shape` (NumPy rules). */
export function broadcastToRef(x: RefArray, shape: readonly number[]): RefArray {
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) out[i] = x.data[broadcastIndex(unravel(i, shape), x.shape)];
  return { data: out, shape: [...shape] };
}

/** Result dim d is x's dim dims[d]. */
export function permuteRef(x: RefArray, dims: readonly number[]): RefArray {
  const shape = dims.map((d) => x.shape[d]);
  const st = stridesOf(x.shape);
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    out[i] = x.data[idx.reduce((off, v, d) => off + v * st[dims[d]], 0)];
  }
  return { data: out, shape };
}

/** x[..., start:end, ...] along axis. */
export function sliceRef(x: RefArray, axis: number, start: number, end: number): RefArray {
  const shape = x.shape.map((d, i) => (i === axis ? end - start : d));
  const st = stridesOf(x.shape);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    idx[axis] += start;
    out[i] = x.data[idx.reduce((off, v, d) => off + v * st[d], 0)];
  }
  return { data: out, shape };
}

/** The arrays joined along axis. */
export function concatRef(xs: readonly RefArray[], axis: number): RefArray {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((n, x) => n + x.shape[axis], 0);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    let k = 0;
    while (idx[axis] >= xs[k].shape[axis]) idx[axis] -= xs[k++].shape[axis];
    const st = stridesOf(xs[k].shape);
    out[i] = xs[k].data[idx.reduce((off, v, d) => off + v * st[d], 0)];
  }
  return { data: out, shape };
}
