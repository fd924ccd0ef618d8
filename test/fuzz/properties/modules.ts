// nn modules' forward and backward, and the optimizers' step.
//   - MultiHeadAttention and TransformerBlock are wiring around ops that the other properties
//     check against the float64 reference; here each must give, bit for bit, what the same ops
//     applied by hand give (its qkv split into heads, the attention kind, the residual and
//     LayerNorm order of 'pre' / 'post'), and the same gradients for every parameter.
//   - Adam, AdamW and SGD against the reference's step rules, step by step from the float32
//     parameters. The state (m, v, momentum buffers) is a running sum of gradients g' = g (+ wd p
//     for Adam and SGD): each step rounds it a few times, so after k steps it is off by 4kU times
//     the same running sum of |g| + |wd p| (not of g': the sum may cancel). An Adam update
//     u = lr m^ / (sqrt(v^) + eps) is then off by lr/bc1 (dm / den + |m| dsqrt(v) / den^2) plus
//     4U |u|, with dsqrt(v) <= min(dv / (2 sqrt v), sqrt dv); an SGD update by lr times its
//     buffer's error; and p by 3U |p| (the decay, the subtraction). Gradients stay above 1e-15 in magnitude: a float32
//     state squares them (v ~ g^2), and below ~1e-19 g^2 underflows, which with eps = 0 turns the
//     update into m / 0 in any float32 Adam (PyTorch's too); that is the format, not a bug.
//   - clipGradNorm_: the norm is a sum of squares (accumulated in double: U relative after the
//     float squares, 2U), and clipping scales by maxNorm / (norm + 1e-6) (3U).
import fc from 'fast-check';
import * as ff from '../../../lib';
import { check, expectClose, expectExact, U } from '../check';
import { property } from '../property';
import { make, seed, size, ValueSpec, valuesOf, values } from '../values';

const ref = ff.reference;

interface AttentionModuleCase {
  block: boolean;
  B: number;
  N: number;
  H: number;
  Dh: number;
  attention: ff.nn.AttentionKind;
  causal: boolean;
  qkvBias: boolean;
  radius: ff.nn.RadiusSharing;
  radiusInit: number;
  stable: boolean;
  norm: 'pre' | 'post';
  activation: 'gelu' | 'relu';
  init: number;
  x: ValueSpec;
  g: ValueSpec;
}

export const attentionModuleProperty = property<AttentionModuleCase>({
  name: 'nn.attention',
  weight: 2,
  arbitrary: () =>
    fc
      .record({
        block: fc.boolean(),
        B: size(3),
        N: size(64),
        H: size(4),
        Dh: size(32),
        attention: fc.constantFrom<ff.nn.AttentionKind>('fourier', 'dot'),
        causal: fc.boolean(),
        qkvBias: fc.boolean(),
        radius: fc.constantFrom<ff.nn.RadiusSharing>('shared', 'head', 'feature', 'head-feature'),
        radiusInit: fc.constantFrom(0.5, 1, 2, 1e-3, 1e3),
        stable: fc.boolean(),
        norm: fc.constantFrom<'pre' | 'post'>('pre', 'post'),
        activation: fc.constantFrom<'gelu' | 'relu'>('gelu', 'relu'),
        init: seed,
        x: values(1e2),
        g: values(1e2),
      })
      .map((c) => ({ ...c, N: Math.min(c.N, Math.floor(4096 / (c.B * c.H * c.Dh)) || 1) })),
  run(c, env) {
    const C = c.H * c.Dh;
    const common = {
      device: env.device,
      generator: new ff.Generator(c.init),
      attention: c.attention,
      causal: c.causal,
      qkvBias: c.qkvBias,
      radius: c.radius,
      radiusInit: c.radiusInit,
      stable: c.stable,
    };
    const m = c.block
      ? new ff.nn.TransformerBlock(C, c.H, { ...common, norm: c.norm, activation: c.activation, ffDim: 2 * C })
      : new ff.nn.MultiHeadAttention(C, c.H, common);
    try {
      m.eval();
      const x = make([c.B, c.N, C], c.x, env.device, true);
      const y = m.forward(x.t);
      check(y.shape.join() === [c.B, c.N, C].join(), () => `shape ${y.shape}`);
      const g = valuesOf(c.g, y.size);
      y.backward(ff.tensor(g, [...y.shape], { device: env.device }));
      const got = m.parameters().map((p) => (p.grad ? p.grad.toFloat32Array() : null));
      const dx = x.t.grad?.toFloat32Array();
      m.zeroGrad();
      // The same ops by hand.
      const x2 = ff.tensor(x.values, [c.B, c.N, C], { device: env.device, requiresGrad: true });
      const y2 = c.block
        ? blockByHand(m as ff.nn.TransformerBlock, x2)
        : attentionByHand(m as ff.nn.MultiHeadAttention, x2);
      expectExact('forward (the module against its ops by hand)', y.toFloat32Array(), y2.toFloat32Array());
      y2.backward(ff.tensor(g, [...y.shape], { device: env.device }));
      m.parameters().forEach((p, i) => {
        const want = p.grad ? p.grad.toFloat32Array() : null;
        check((got[i] === null) === (want === null), () => `parameter ${i}: a gradient in one run only`);
        if (want && got[i])
          expectExact(`grad of parameter ${i} ${m.namedParameters()[i][0]}`, got[i] as Float32Array, want);
      });
      if (dx) expectExact('dx', dx, x2.grad?.toFloat32Array() ?? new Float32Array(0));
    } finally {
      m.dispose();
    }
  },
});

function attentionByHand(m: ff.nn.MultiHeadAttention, x: ff.Tensor): ff.Tensor {
  const [B, N] = x.shape;
  const H = m.numHeads,
    Dh = m.headDim;
  const qkv = ff.linear(x, m.qkv.weight, m.qkv.bias);
  const heads = ff.permute(ff.reshape(qkv, [B, N, 3, H, Dh]), [2, 0, 3, 1, 4]);
  const [q, k, v] = [0, 1, 2].map((i) => ff.reshape(ff.slice(heads, 0, i, i + 1), [B, H, N, Dh]));
  const fourier = (m as unknown as { fourier: ff.FourierAttentionOptions }).fourier;
  const h = m.R
    ? ff.fourierAttention(q, k, v, m.R, { ...fourier, causal: m.causal })
    : ff.dotProductAttention(q, k, v, { causal: m.causal });
  return ff.linear(ff.reshape(ff.permute(h, [0, 2, 1, 3]), [B, N, m.dModel]), m.proj.weight, m.proj.bias);
}

function blockByHand(b: ff.nn.TransformerBlock, x: ff.Tensor): ff.Tensor {
  const ln = (l: ff.nn.LayerNorm, y: ff.Tensor) => ff.layerNorm(y, l.weight, l.bias, { eps: l.eps });
  const ffn = (y: ff.Tensor) => {
    const h = ff.linear(y, b.fc1.weight, b.fc1.bias);
    return ff.linear(b.activation === 'gelu' ? ff.gelu(h) : ff.relu(h), b.fc2.weight, b.fc2.bias);
  };
  const attn = (y: ff.Tensor) => attentionByHand(b.attn, y);
  if (b.norm === 'pre') {
    const h = ff.add(x, attn(ln(b.ln1, x)));
    return ff.add(h, ffn(ln(b.ln2, h)));
  }
  const h = ln(b.ln1, ff.add(x, attn(x)));
  return ln(b.ln2, ff.add(h, ffn(h)));
}

// ---- optimizers -----------------------------------------------------------------------------

interface OptimCase {
  kind: 'Adam' | 'AdamW' | 'SGD';
  n: number;
  steps: number;
  lr: number;
  wd: number;
  eps: number | undefined;
  momentum: number;
  nesterov: boolean;
  dampening: number;
  p: ValueSpec;
  g: ValueSpec;
  groups: boolean;
}

export const optimizerProperty = property<OptimCase>({
  name: 'optim',
  weight: 2,
  arbitrary: () =>
    fc
      .record({
        kind: fc.constantFrom<OptimCase['kind']>('Adam', 'AdamW', 'SGD'),
        n: size(4096),
        steps: fc.integer({ min: 1, max: 4 }),
        lr: fc.constantFrom(1e-3, 0.1, 1, 0, 1e-8),
        wd: fc.constantFrom(0, 0.01, 0.5),
        eps: fc.constantFrom(undefined, 1e-6, 1e-3, 1),
        momentum: fc.constantFrom(0, 0.9, 0.5),
        nesterov: fc.boolean(),
        dampening: fc.constantFrom(0, 0.1),
        p: values(1e4),
        g: values(1e4, ['uniform', 'positive', 'constant', 'grid', 'near']).map((v) => ({
          ...v,
          scale: Math.max(v.scale, 1e-15),
        })),
        groups: fc.boolean(),
      })
      .map((c) => (c.nesterov && (c.momentum === 0 || c.dampening !== 0) ? { ...c, nesterov: false } : c)),
  run(c, env) {
    const p = make([c.n], c.p, env.device, true);
    let opt: ff.optim.Optimizer<ff.optim.BaseOptions>;
    if (c.kind === 'SGD') {
      const o = { lr: c.lr, momentum: c.momentum, dampening: c.dampening, weightDecay: c.wd, nesterov: c.nesterov };
      opt = c.groups ? new ff.optim.SGD([{ params: [p.t], ...o }], { lr: 0.5 }) : new ff.optim.SGD([p.t], o);
    } else {
      const o: Partial<ff.optim.AdamOptions> = { lr: c.lr, weightDecay: c.wd };
      if (c.eps !== undefined) o.eps = c.eps;
      const Opt = c.kind === 'Adam' ? ff.optim.Adam : ff.optim.AdamW;
      opt = c.groups ? new Opt([{ params: [p.t], ...o }]) : new Opt([p.t], o);
    }
    try {
      const want = new Float64Array(c.n);
      const tol = new Float64Array(c.n);
      const adam = { m: new Float64Array(c.n), v: new Float64Array(c.n), step: 0 };
      let buf: Float64Array | null = null;
      // Running magnitudes of the state: m and the buffer (sums of |g'|), v (of |g'|^2).
      const Mm = new Float64Array(c.n),
        Mv = new Float64Array(c.n);
      const [b1, b2] = [0.9, 0.999];
      for (let k = 1; k <= c.steps; k++) {
        const g = valuesOf({ ...c.g, seed: c.g.seed + k }, c.n);
        p.t.grad = ff.tensor(g, [c.n], { device: env.device });
        // The reference's step from the float32 parameters the optimizer saw.
        const pf = Float64Array.from(p.t.toFloat32Array());
        const before = Float64Array.from(pf);
        if (c.kind === 'SGD')
          buf = ref.sgdStepRef(pf, g, buf, {
            lr: c.lr,
            momentum: c.momentum,
            dampening: c.dampening,
            weightDecay: c.wd,
            nesterov: c.nesterov,
          });
        else
          ref.adamStepRef(pf, g, adam, {
            lr: c.lr,
            beta1: b1,
            beta2: b2,
            eps: c.eps ?? 1e-8,
            weightDecay: c.wd,
            decoupled: c.kind === 'AdamW',
          });
        opt.step();
        opt.zeroGrad();
        for (let i = 0; i < c.n; i++) {
          const mag = Math.abs(g[i]) + (c.kind === 'AdamW' ? 0 : c.wd * Math.abs(before[i]));
          let du: number;
          if (c.kind === 'SGD') {
            Mm[i] = k === 1 || c.momentum === 0 ? mag : c.momentum * Mm[i] + (1 - c.dampening) * mag;
            du = c.lr * (4 * k * U * Mm[i] * (1 + c.momentum) + 2 * U * mag);
          } else {
            Mm[i] = b1 * Mm[i] + (1 - b1) * mag;
            Mv[i] = b2 * Mv[i] + (1 - b2) * mag * mag;
            const bc1 = 1 - b1 ** k,
              bc2 = 1 - b2 ** k;
            const sv = Math.sqrt(adam.v[i] / bc2);
            const den = sv + (c.eps ?? 1e-8);
            const dv = (4 * k * U * Mv[i]) / bc2;
            const dsv = Math.min(sv > 0 ? dv / (2 * sv) : Infinity, Math.sqrt(dv));
            const u = Math.abs(pf[i] - before[i] * (c.kind === 'AdamW' ? 1 - c.lr * c.wd : 1));
            du = (c.lr / bc1) * ((4 * k * U * Mm[i]) / den + (Math.abs(adam.m[i]) * dsv) / (den * den)) + 4 * U * u;
          }
          tol[i] = du + 3 * U * (Math.abs(before[i]) + Math.abs(pf[i]));
          want[i] = pf[i];
        }
        expectClose(`${c.kind} step ${k}`, p.t.toFloat32Array(), want, tol);
      }
    } finally {
      opt.dispose();
    }
  },
});

interface ClipCase {
  n: number;
  parts: number;
  maxNorm: number;
  g: ValueSpec;
}

export const clipProperty = property<ClipCase>({
  name: 'optim.clipGradNorm_',
  weight: 1,
  arbitrary: () =>
    fc.record({
      n: size(4096),
      parts: fc.integer({ min: 1, max: 4 }),
      maxNorm: fc.constantFrom(0, 1e-6, 0.25, 1, 1e4),
      g: values(1e4),
    }),
  run(c, env) {
    const params = Array.from({ length: c.parts }, (_, i) => {
      const t = ff.zeros([c.n], { device: env.device, requiresGrad: true });
      t.grad = ff.tensor(valuesOf({ ...c.g, seed: c.g.seed + i }, c.n), [c.n], { device: env.device });
      return t;
    });
    const grads = params.map((p) => (p.grad as ff.Tensor).toFloat32Array());
    let sq = 0;
    for (const g of grads) for (const x of g) sq += x * x;
    const norm = Math.sqrt(sq);
    const got = ff.optim.clipGradNorm_(params, c.maxNorm);
    expectClose('norm', [got], [norm], 4 * U * norm);
    const coef = c.maxNorm / (norm + 1e-6);
    params.forEach((p, i) => {
      const want = Float64Array.from(grads[i], (x) => (coef < 1 ? x * coef : x));
      expectClose(
        `grad ${i}`,
        (p.grad as ff.Tensor).toFloat32Array(),
        want,
        Float64Array.from(want, (w) => 6 * U * Math.abs(w)),
      );
    });
  },
});

export const moduleProperties = [attentionModuleProperty, optimizerProperty, clipProperty];
