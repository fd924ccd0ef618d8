// Valid-but-unusual calls of the tensor factories and the tensor ops (elementwise, reductions,
// layout) against the float64 reference, forward and backward. Tolerances, per op:
//   - layout ops (reshape, permute, transpose, slice, concat, broadcastTo) and the factories
//     move values: bit for bit (float32 rounding of the input numbers only).
//   - add, sub, mul: one correctly rounded operation, U |y|; div: 2U |y| (a kernel may multiply
//     by the reciprocal). Their gradients sum n products over what was broadcast: each product
//     rounds (4U: g / b and (g / b) out round twice more for div), the double sum adds
//     n 2^-53 sum |terms|, the result rounds (U). sum |terms| is the reference gradient of the
//     absolute values (the same sums with |a|, |b|, |g|), and n TINY covers products that
//     underflow.
//   - affine ops (scale, addScalar, neg, scalar add/sub/mul/div): alpha x + beta in at most two
//     roundings, plus U |alpha x| for 1 / c rounded to float: 3U (|alpha x| + |beta|).
//   - exp, log, tanh, relu, gelu: a function of an exact float argument, evaluated by
//     vectorised polynomials documented within ~2 ulp (erf: 1.5e-7 absolute): 4U |f(x)| plus
//     the argument's condition 4U |x f'(x)| (a range reduction rounds like the argument would),
//     plus 4U |x| for gelu, whose x (1 + erf) / 2 cancels for negative x. The gradient g f'(x)
//     likewise with f'' (|g| (4U |f'| + 4U |x f''|) + 2U |g f'|). Floor: exp is 0 below e^-87.
//   - sum and mean accumulate in double: U |y| + n 2^-53 sum |x| (mean: 2U more, for 1 / count).
import fc from 'fast-check';
import * as ff from '../../../lib';
import { abs, ANY, check, expectClose, expectExact, FLT_MAX, TINY, U } from '../check';
import { property } from '../property';
import { gradOf, make, size, ValueSpec, valuesOf, values } from '../values';

const ref = ff.reference;
type RefArray = ff.reference.RefArray;

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** A shape of rank 0 .. 5 with at most `max` elements (dims of 0 only when zeroOk). */
const shapeArb = (max: number, zeroOk = false, minRank = 0): fc.Arbitrary<number[]> =>
  fc
    .array(
      zeroOk ? fc.oneof({ weight: 12, arbitrary: size(16) }, { weight: 1, arbitrary: fc.constant(0) }) : size(16),
      { minLength: minRank, maxLength: 5 },
    )
    .map((s) => {
      const out = [...s];
      while (numel(out) > max) {
        const i = out.indexOf(Math.max(...out));
        out[i] = Math.max(1, Math.floor(out[i] / 2));
      }
      return out;
    });

/** A shape that broadcasts to `full`: a suffix of it with some dims set to 1. */
const broadcastFrom = (full: number[], drop: number, ones: number): number[] =>
  full.slice(Math.min(drop, full.length)).map((d, i) => ((ones >> i) & 1 ? 1 : d));

/** Elementwise |a| <= k U |b| + extra, as a tolerance array. */
const relTol = (want: ArrayLike<number>, k: number, extra: ArrayLike<number> | number = 0): Float64Array =>
  Float64Array.from(
    { length: want.length },
    (_, i) => k * U * Math.abs(want[i]) + (typeof extra === 'number' ? extra : extra[i]),
  );

// ---- factories ------------------------------------------------------------------------------

interface FactoryCase {
  kind: 'tensor-array' | 'tensor-f32' | 'zeros' | 'ones' | 'full';
  shape: number[];
  values: ValueSpec;
  special: boolean;
  fill: number;
  requiresGrad: boolean;
  move: boolean;
}

export const factoryProperty = property<FactoryCase>({
  name: 'factories',
  weight: 2,
  arbitrary: () =>
    fc.record({
      kind: fc.constantFrom<FactoryCase['kind']>('tensor-array', 'tensor-f32', 'zeros', 'ones', 'full'),
      shape: shapeArb(1 << 16, true),
      values: values(3e38),
      special: fc.boolean(),
      fill: fc.constantFrom(0, -0, 1, -2.5, 1e-30, 3e38, 1e39, NaN, Infinity, -Infinity),
      requiresGrad: fc.boolean(),
      move: fc.boolean(),
    }),
  run(c, env) {
    const n = numel(c.shape);
    const opts = { device: env.device, requiresGrad: c.requiresGrad };
    let want: Float32Array;
    let t: ff.Tensor;
    if (c.kind === 'tensor-array' || c.kind === 'tensor-f32') {
      // Plain numbers (float64, rounded to float32 on the way in), specials among them.
      const raw = Array.from(valuesOf(c.values, n), (x, i) =>
        c.special && i % 5 === 0 ? [NaN, Infinity, -0, 1e-45, 1e39][(i % 25) / 5] : x * (1 + 1e-9),
      );
      want = Float32Array.from(raw);
      t = c.kind === 'tensor-array' ? ff.tensor(raw, c.shape, opts) : ff.tensor(want, c.shape, opts);
    } else {
      const v = c.kind === 'zeros' ? 0 : c.kind === 'ones' ? 1 : c.fill;
      want = new Float32Array(n).fill(v);
      t =
        c.kind === 'zeros'
          ? ff.zeros(c.shape, opts)
          : c.kind === 'ones'
            ? ff.ones(c.shape, opts)
            : ff.full(c.shape, c.fill, opts);
    }
    check(
      t.shape.join() === c.shape.join() && t.size === n && t.ndim === c.shape.length,
      () => `shape ${t.shape}, size ${t.size}`,
    );
    check(
      t.requiresGrad === c.requiresGrad && t.device === env.device && t.isLeaf,
      () => `requiresGrad ${t.requiresGrad}, device ${t.device}`,
    );
    expectExact('values', t.toFloat32Array(), want);
    if (n === 1) expectExact('item()', [t.item()], want);
    expectExact('clone()', t.clone().toFloat32Array(), want);
    const d = t.detach();
    check(!d.requiresGrad && d.isLeaf, () => 'detach() kept the history');
    if (c.move && env.other !== null) {
      const there = t.to(env.other);
      check(there.device === env.other, () => `to(): device ${there.device}`);
      expectExact('to() and back', there.to(env.device).toFloat32Array(), want);
    }
  },
});

// ---- binary ops -----------------------------------------------------------------------------

interface BinaryCase {
  op: ff.BinaryOpName;
  full: number[];
  dropA: number;
  onesA: number;
  dropB: number;
  onesB: number;
  a: ValueSpec;
  b: ValueSpec;
  g: ValueSpec;
  scalar: number | null;
  method: boolean;
}

export const binaryProperty = property<BinaryCase>({
  name: 'binary',
  weight: 3,
  arbitrary: () =>
    fc.record({
      op: fc.constantFrom<ff.BinaryOpName>('add', 'sub', 'mul', 'div'),
      full: shapeArb(1 << 14),
      dropA: fc.nat(3),
      onesA: fc.nat(31),
      dropB: fc.nat(3),
      onesB: fc.nat(31),
      a: values(),
      b: values(1e4, ['uniform', 'positive', 'spread', 'near']),
      g: values(),
      scalar: fc.oneof(
        { weight: 4, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.constantFrom(0.5, -3, 1e-30, 1e4, 7) },
      ),
      method: fc.boolean(),
    }),
  run(c, env) {
    const aShape = broadcastFrom(c.full, c.dropA, c.onesA);
    const bShape = broadcastFrom(c.full, c.dropB, c.onesB);
    const a = make(aShape, c.a, env.device, true);
    if (c.scalar !== null) {
      const s = c.scalar;
      const y = c.method ? a.t[c.op](s) : ff[c.op](a.t, s);
      const alpha = c.op === 'mul' ? s : c.op === 'div' ? 1 / s : 1;
      const beta = c.op === 'add' ? s : c.op === 'sub' ? -s : 0;
      const want = Float64Array.from(a.values, (x) => alpha * x + beta);
      expectClose(
        `${c.op} scalar`,
        y.toFloat32Array(),
        want,
        Float64Array.from(a.values, (x) => 3 * U * (Math.abs(alpha * x) + Math.abs(beta))),
      );
      const g = valuesOf(c.g, y.size);
      y.backward(ff.tensor(g, [...y.shape], { device: env.device }));
      expectClose(
        `${c.op} scalar: da`,
        gradOf(a.t),
        Float64Array.from(g, (x) => alpha * x),
        Float64Array.from(g, (x) => 3 * U * Math.abs(alpha * x)),
      );
      return;
    }
    const b = make(bShape, c.b, env.device, true);
    const y = c.method ? a.t[c.op](b.t) : ff[c.op](a.t, b.t);
    const want = ref.binaryRef(c.op, a.ref, b.ref);
    check(y.shape.join() === want.shape.join(), () => `shape ${y.shape}, expected ${want.shape}`);
    expectClose(c.op, y.toFloat32Array(), want.data, relTol(want.data, c.op === 'div' ? 2 : 1));
    const g = make([...y.shape], c.g, env.device);
    y.backward(g.t);
    const dWant = ref.binaryGradRef(c.op, a.ref, b.ref, g.ref);
    const mag = ref.binaryGradRef(
      c.op,
      { data: abs(a.values), shape: aShape },
      { data: abs(b.values), shape: bShape },
      { data: abs(g.values), shape: g.ref.shape },
    );
    const terms = (shape: number[]) => numel(y.shape) / Math.max(1, numel(shape));
    // A sum whose absolute terms pass FLT_MAX may overflow in a term (g / b times a / b for
    // div) and then meet an infinity of the other sign: anything goes there.
    const tol = (m: RefArray, w: RefArray, shape: number[]) => {
      const n = terms(shape);
      return Float64Array.from(m.data, (x, i) =>
        Math.abs(x) > FLT_MAX / 4 ? ANY : (4 * U + n * 2 ** -53) * Math.abs(x) + U * Math.abs(w.data[i]) + n * TINY,
      );
    };
    expectClose(`${c.op}: da`, gradOf(a.t), dWant.da.data, tol(mag.da, dWant.da, aShape));
    expectClose(`${c.op}: db`, gradOf(b.t), dWant.db.data, tol(mag.db, dWant.db, bShape));
  },
});

// ---- unary ops ------------------------------------------------------------------------------

type UnaryName = 'gelu_erf' | 'gelu_tanh' | 'relu' | 'exp' | 'log' | 'tanh';

/** f'' of each op, for the gradient's condition (gelu_tanh by central differences of f'). */
function secondDerivative(op: UnaryName, x: number): number {
  switch (op) {
    case 'exp':
      return Math.exp(x);
    case 'log':
      return -1 / (x * x);
    case 'tanh': {
      const t = Math.tanh(x);
      return -2 * t * (1 - t * t);
    }
    case 'relu':
      return 0;
    case 'gelu_erf':
      return (Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI)) * (2 - x * x);
    case 'gelu_tanh': {
      const h = 1e-4 * (1 + Math.abs(x));
      const df = ref.UNARY_REF.gelu_tanh.df;
      return (df(x + h) - df(x - h)) / (2 * h);
    }
  }
}

interface UnaryCase {
  op: UnaryName;
  shape: number[];
  x: ValueSpec;
  g: ValueSpec;
  method: boolean;
}

export const unaryProperty = property<UnaryCase>({
  name: 'unary',
  weight: 2,
  arbitrary: () =>
    fc
      .record({
        op: fc.constantFrom<UnaryName>('gelu_erf', 'gelu_tanh', 'relu', 'exp', 'log', 'tanh'),
        shape: shapeArb(1 << 14),
        x: values(1e4),
        g: values(),
        method: fc.boolean(),
      })
      .map((c) => (c.op === 'log' ? { ...c, x: { ...c.x, kind: 'positive' as const } } : c)),
  run(c, env) {
    const x = make(c.shape, c.x, env.device, true);
    const y =
      c.op === 'gelu_erf'
        ? ff.gelu(x.t)
        : c.op === 'gelu_tanh'
          ? ff.gelu(x.t, { approximate: 'tanh' })
          : c.method
            ? x.t[c.op]()
            : ff[c.op](x.t);
    const { f, df } = ref.UNARY_REF[c.op];
    const gelu = c.op.startsWith('gelu') ? 1 : 0;
    const floor = c.op === 'exp' ? Math.exp(-87) : 0;
    const tolF = Float64Array.from(
      x.values,
      (v) => 4 * U * (Math.abs(f(v)) + Math.abs(v * df(v)) + gelu * Math.abs(v)) + floor,
    );
    expectClose(c.op, y.toFloat32Array(), ref.unaryRef(c.op, x.ref).data, tolF);
    const g = make(c.shape, c.g, env.device);
    y.backward(g.t);
    // exp and tanh take f' from their saved output y (y and 1 - y^2): y's own error then
    // carries over (times |d f'/dy|: 1 and 2|y|), and 1 - y^2 cancels (2U y^2).
    const tolG = Float64Array.from(x.values, (v, i) => {
      const gi = Math.abs(g.values[i]);
      const y = f(v);
      const fromOutput =
        c.op === 'exp' ? tolF[i] + U * Math.abs(y) : c.op === 'tanh' ? 2 * Math.abs(y) * tolF[i] + 3 * U * y * y : 0;
      // gelu_tanh's f' = (1 + t) / 2 + x (1 - t^2) c (1 + 3 0.044715 x^2) / 2: both 1 + t and 1 - t^2
      // cancel for large |x| (2U each), the second times 0.054 |x|^3 at most.
      const cubic = c.op === 'gelu_tanh' ? 0.06 * Math.abs(v) ** 3 : 0;
      return (
        gi *
        (4 * U * (Math.abs(df(v)) + Math.abs(v * secondDerivative(c.op, v)) + gelu * (1 + Math.abs(v) + cubic)) +
          2 * U * Math.abs(df(v)) +
          fromOutput +
          floor)
      );
    });
    // exp's output past float32's range is saved as Infinity, so its gradient is g * Infinity.
    const dWant = ref
      .unaryGradRef(c.op, x.ref, g.ref)
      .data.map((w, i) => (c.op === 'exp' && Math.exp(x.values[i]) > FLT_MAX ? g.values[i] * Infinity : w));
    expectClose(`${c.op}: dx`, gradOf(x.t), dWant, tolG);
  },
});

// ---- reductions -----------------------------------------------------------------------------

interface ReduceCase {
  mean: boolean;
  shape: number[];
  axes: number[] | number | null;
  keepDims: boolean;
  x: ValueSpec;
  g: ValueSpec;
  method: boolean;
}

export const reduceProperty = property<ReduceCase>({
  name: 'reduce',
  weight: 2,
  arbitrary: () =>
    fc
      .record({
        mean: fc.boolean(),
        shape: shapeArb(1 << 15, true),
        axisBits: fc.nat(63),
        negative: fc.boolean(),
        single: fc.boolean(),
        all: fc.boolean(),
        keepDims: fc.boolean(),
        x: values(),
        g: values(),
        method: fc.boolean(),
      })
      .map(({ axisBits, negative, single, all, ...c }) => {
        const r = c.shape.length;
        const list = Array.from({ length: r }, (_, i) => i)
          .filter((i) => (axisBits >> i) & 1)
          .map((i) => (negative ? i - r : i));
        const axes = all ? null : single && list.length > 0 ? list[0] : list;
        return { ...c, axes };
      }),
  run(c, env) {
    const x = make(c.shape, c.x, env.device, true);
    const axesArg = c.axes === null ? undefined : c.axes;
    const y = c.method
      ? c.mean
        ? x.t.mean(axesArg, c.keepDims)
        : x.t.sum(axesArg, c.keepDims)
      : c.mean
        ? ff.mean(x.t, axesArg, c.keepDims)
        : ff.sum(x.t, axesArg, c.keepDims);
    const r = c.shape.length;
    const axes =
      c.axes === null
        ? Array.from({ length: r }, (_, i) => i)
        : (typeof c.axes === 'number' ? [c.axes] : c.axes).map((a) => (a < 0 ? a + r : a));
    const count = axes.reduce((n, a) => n * c.shape[a], 1);
    const want = (c.mean ? ref.meanRef : ref.sumRef)(x.ref, axes, c.keepDims);
    const mag = ref.sumRef({ data: abs(x.values), shape: c.shape }, axes, c.keepDims);
    check(y.shape.join() === want.shape.join(), () => `shape ${y.shape}, expected ${want.shape}`);
    const scale = c.mean ? 1 / count : 1;
    const tol = Float64Array.from(
      want.data,
      (w, i) => (c.mean ? 3 : 1) * U * Math.abs(w) + count * 2 ** -53 * mag.data[i] * scale,
    );
    // mean over nothing (a 0-size axis) is 0 / 0: NaN, as the reference.
    expectClose(c.mean ? 'mean' : 'sum', y.toFloat32Array(), want.data, tol);
    const g = make([...y.shape], c.g, env.device);
    y.backward(g.t);
    const kept = c.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const dWant = ref.broadcastToRef({ data: g.ref.data.map((v) => v * scale), shape: kept }, c.shape);
    expectClose('dx', gradOf(x.t), dWant.data, relTol(dWant.data, c.mean ? 2 : 0));
  },
});

// ---- layout ---------------------------------------------------------------------------------

interface LayoutCase {
  op: 'reshape' | 'permute' | 'transpose' | 'slice' | 'concat' | 'broadcastTo';
  shape: number[];
  pick: number[];
  x: ValueSpec;
  g: ValueSpec;
  method: boolean;
}

export const layoutProperty = property<LayoutCase>({
  name: 'layout',
  weight: 2,
  arbitrary: () =>
    fc.record({
      op: fc.constantFrom<LayoutCase['op']>('reshape', 'permute', 'transpose', 'slice', 'concat', 'broadcastTo'),
      shape: shapeArb(1 << 14, true, 1),
      pick: fc.array(fc.nat(1000), { minLength: 8, maxLength: 8 }),
      x: values(3e38),
      g: values(),
      method: fc.boolean(),
    }),
  run(c, env) {
    const r = c.shape.length;
    const x = make(c.shape, c.x, env.device, true);
    const p = c.pick;
    let y: ff.Tensor;
    let want: RefArray;
    let back: (g: RefArray) => RefArray;
    let exactBack = true;
    switch (c.op) {
      case 'reshape': {
        // A shuffle of the factors of the size, one of them maybe -1.
        const n = numel(c.shape);
        const dims = n === 0 ? [0, ...c.shape.slice(1)] : factorise(n, p[0]);
        const arg =
          n > 0 && dims.length > 0 && p[1] % 2 === 0 ? dims.map((d, i) => (i === p[2] % dims.length ? -1 : d)) : dims;
        y = c.method ? x.t.reshape(arg) : ff.reshape(x.t, arg);
        want = { data: x.ref.data, shape: dims };
        back = (g) => ({ data: g.data, shape: c.shape });
        break;
      }
      case 'permute':
      case 'transpose': {
        const dims = Array.from({ length: r }, (_, i) => i);
        if (c.op === 'permute')
          for (let i = r - 1; i > 0; i--) {
            const j = p[i % 8] % (i + 1);
            [dims[i], dims[j]] = [dims[j], dims[i]];
          }
        const [ta, tb] = [p[0] % r, p[1] % r];
        if (c.op === 'transpose') [dims[ta], dims[tb]] = [dims[tb], dims[ta]];
        const arg = dims.map((d, i) => (p[2 + (i % 6)] % 2 === 0 ? d : d - r));
        y =
          c.op === 'permute'
            ? c.method
              ? x.t.permute(arg)
              : ff.permute(x.t, arg)
            : c.method
              ? x.t.transpose(ta - r, tb)
              : ff.transpose(x.t, ta - r, tb);
        want = ref.permuteRef(x.ref, dims);
        const inverse = dims.map((_, i) => dims.indexOf(i));
        back = (g) => ref.permuteRef(g, inverse);
        break;
      }
      case 'slice': {
        const axis = p[0] % r;
        const n = c.shape[axis];
        const s = p[1] % (n + 1),
          e = s + (p[2] % (n - s + 1));
        const neg = p[3] % 2 === 0;
        // Negative forms count from the end (-0 is 0, so s = n stays positive).
        const [sa, ea] = neg ? [s === n ? s : s - n, e === n ? undefined : e - n] : [s, e];
        y = c.method ? x.t.slice(axis - (neg ? r : 0), sa, ea) : ff.slice(x.t, axis, sa, ea);
        want = ref.sliceRef(x.ref, axis, s, e);
        back = (g) => {
          const out = new Float64Array(x.values.length);
          const inner = numel(c.shape.slice(axis + 1));
          const outer = numel(c.shape.slice(0, axis));
          for (let o = 0; o < outer; o++)
            for (let k = 0; k < e - s; k++)
              for (let m = 0; m < inner; m++) {
                out[(o * n + s + k) * inner + m] = g.data[(o * (e - s) + k) * inner + m];
              }
          return { data: out, shape: c.shape };
        };
        break;
      }
      case 'concat': {
        const axis = p[0] % r;
        const extra = c.shape.map((d, i) => (i === axis ? p[1] % 5 : d));
        const z = make(extra, { ...c.x, seed: c.x.seed + 1 }, env.device, true);
        const parts = p[2] % 2 === 0 ? [x.t, z.t] : [z.t, x.t];
        y = ff.concat(parts, axis - (p[3] % 2 === 0 ? r : 0));
        want = ref.concatRef(p[2] % 2 === 0 ? [x.ref, z.ref] : [z.ref, x.ref], axis);
        const off = p[2] % 2 === 0 ? 0 : extra[axis];
        back = (g) => ref.sliceRef(g, axis, off, off + c.shape[axis]);
        break;
      }
      case 'broadcastTo': {
        // x, with some dims set to 1, to the full shape with extra leading dims.
        const small = c.shape.map((d, i) => ((p[0] >> i) & 1 ? 1 : d));
        const lead = Array.from({ length: p[1] % 3 }, (_, i) => 1 + (p[2 + i] % 3));
        const target = [...lead, ...c.shape];
        const xs = make(small, c.x, env.device, true);
        y = ff.broadcastTo(xs.t, target);
        want = ref.broadcastToRef(xs.ref, target);
        const g = make(target, c.g, env.device);
        y.backward(g.t);
        const axes = target.map((_, i) => i).filter((i) => i < lead.length || small[i - lead.length] === 1);
        const dWant = ref.sumRef(g.ref, axes, false);
        const mag = ref.sumRef({ data: abs(g.values), shape: target }, axes, false);
        const count = numel(target) / Math.max(1, numel(small));
        expectExact('broadcastTo', y.toFloat32Array(), want.data);
        expectClose(
          'broadcastTo: dx',
          gradOf(xs.t),
          dWant.data,
          Float64Array.from(dWant.data, (w, i) => U * Math.abs(w) + count * 2 ** -53 * mag.data[i]),
        );
        exactBack = false;
        back = (gg) => gg;
        break;
      }
    }
    if (!exactBack) return;
    check(y.shape.join() === want.shape.join(), () => `${c.op}: shape ${y.shape}, expected ${want.shape}`);
    expectExact(c.op, y.toFloat32Array(), want.data);
    const g = make([...y.shape], c.g, env.device);
    y.backward(g.t);
    expectExact(`${c.op}: dx`, gradOf(x.t), back(g.ref).data);
  },
});

/** n as a product of a few factors, in an order picked by k. */
function factorise(n: number, k: number): number[] {
  const primes: number[] = [];
  let m = n;
  for (let f = 2; f * f <= m; f++)
    while (m % f === 0) {
      primes.push(f);
      m /= f;
    }
  if (m > 1) primes.push(m);
  const dims: number[] = [];
  primes.forEach((pr, i) => {
    if (dims.length === 0 || (k >> i) & 1) dims.push(pr);
    else dims[dims.length - 1] *= pr;
  });
  if ((k >> 8) & 1) dims.push(1);
  return dims.length ? dims : [1];
}

export const tensorOpProperties = [factoryProperty, binaryProperty, unaryProperty, reduceProperty, layoutProperty];
