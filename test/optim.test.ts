// Optimizers (fused native Adam/AdamW/SGD over parameter groups), gradient clipping, schedules
// and optimizer state dicts, against the float64 references of lib/reference/optim.ts.
import * as ff from '../lib';
import { device, relErr, uniform } from './helpers/compare';

const { adamStepRef, sgdStepRef } = ff.reference;

/** Parameters of the given sizes with seeded values; grads are set by hand (no ops needed). */
function makeParams(sizes: number[][], seed: number): ff.Tensor[] {
  return sizes.map((shape, i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return ff.tensor(uniform(n, -1, 1, seed + i), shape, { device: device(), requiresGrad: true });
  });
}

function setGrads(params: ff.Tensor[], seed: number): Float32Array[] {
  return params.map((p, i) => {
    const g = uniform(p.size, -2, 2, seed * 1000 + i);
    p.grad?.dispose();
    p.grad = ff.tensor(g, p.shape, { device: device() });
    return g;
  });
}

function disposeAll(ts: ff.Tensor[]): void {
  for (const t of ts) t.dispose();
}

describe(`optim on ${device()}`, () => {
  // Sizes chosen to cross the kernels' chunking: a tensor over one 64K chunk, and more than 32
  // tensors (the cuda launch packs at most 32), with a few small ones.
  const emu = device() === 'cuda-emu';
  const sizes: number[][] = [[3, 4], [7], [emu ? 70000 : 140000], ...Array.from({ length: 36 }, (_, i) => [i + 1])];

  for (const decoupled of [true, false]) {
    test(`${decoupled ? 'AdamW' : 'Adam'} matches the float64 reference over 5 steps`, () => {
      const params = makeParams(sizes, 1);
      const ref = params.map((p) => Float64Array.from(p.toFloat32Array()));
      const refState = params.map((p) => ({ m: new Float64Array(p.size), v: new Float64Array(p.size), step: 0 }));
      const o = { lr: 0.01, betas: [0.9, 0.99] as [number, number], eps: 1e-8, weightDecay: 0.1 };
      const opt = decoupled ? new ff.optim.AdamW(params, o) : new ff.optim.Adam(params, o);
      for (let step = 1; step <= 5; step++) {
        const grads = setGrads(params, step);
        opt.step();
        ref.forEach((r, i) =>
          adamStepRef(r, grads[i], refState[i], {
            lr: o.lr,
            beta1: 0.9,
            beta2: 0.99,
            eps: o.eps,
            weightDecay: o.weightDecay,
            decoupled,
          }),
        );
      }
      params.forEach((p, i) => expect(relErr(p.toFloat32Array(), ref[i])).toBeLessThan(1e-5));
      const s = opt.state.get(params[0])!;
      expect(s.step).toBe(5);
      expect(relErr((s.exp_avg as ff.Tensor).toFloat32Array(), refState[0].m)).toBeLessThan(1e-5);
      expect(relErr((s.exp_avg_sq as ff.Tensor).toFloat32Array(), refState[0].v)).toBeLessThan(1e-5);
      opt.dispose();
      disposeAll(params);
    });
  }

  test("Adam defaults are PyTorch's, AdamW decays by 1e-2 by default", () => {
    const [p] = makeParams([[2]], 3);
    const adam = new ff.optim.Adam([p]);
    const adamw = new ff.optim.AdamW([p]);
    expect(adam.defaults).toEqual({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    expect(adamw.defaults.weightDecay).toBe(1e-2);
    p.dispose();
  });

  test('parameter groups keep their own hyperparameters; parameters without gradients are skipped', () => {
    const [a, b, c] = makeParams([[5], [6], [4]], 10);
    const c0 = c.toFloat32Array();
    const opt = new ff.optim.AdamW(
      [
        { params: [a], weightDecay: 0.5 },
        { params: [b, c], weightDecay: 0, lr: 0.1 },
      ],
      { lr: 0.01 },
    );
    expect(opt.paramGroups[0].lr).toBe(0.01);
    expect(opt.paramGroups[1].lr).toBe(0.1);
    const refA = Float64Array.from(a.toFloat32Array());
    const refB = Float64Array.from(b.toFloat32Array());
    const sa = { m: new Float64Array(5), v: new Float64Array(5), step: 0 };
    const sb = { m: new Float64Array(6), v: new Float64Array(6), step: 0 };
    const [ga, gb] = setGrads([a, b], 4);
    opt.step();
    adamStepRef(refA, ga, sa, { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5, decoupled: true });
    adamStepRef(refB, gb, sb, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: true });
    expect(relErr(a.toFloat32Array(), refA)).toBeLessThan(1e-6);
    expect(relErr(b.toFloat32Array(), refB)).toBeLessThan(1e-6);
    expect(c.toFloat32Array()).toEqual(c0);
    expect(opt.state.has(c)).toBe(false);
    // c joins later: its own step count starts at 1 while a and b are at 2.
    setGrads([a, b, c], 5);
    opt.step();
    expect(opt.state.get(a)!.step).toBe(2);
    expect(opt.state.get(c)!.step).toBe(1);
    opt.dispose();
    disposeAll([a, b, c]);
  });

  const sgdCases = [
    { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
    { momentum: 0.9, dampening: 0, weightDecay: 0.01, nesterov: false },
    { momentum: 0.9, dampening: 0.1, weightDecay: 0, nesterov: false },
    { momentum: 0.8, dampening: 0, weightDecay: 0.05, nesterov: true },
  ];
  for (const c of sgdCases) {
    test(`SGD ${JSON.stringify(c)} matches the float64 reference over 4 steps`, () => {
      const params = makeParams(sizes.slice(0, 6), 20);
      const ref = params.map((p) => Float64Array.from(p.toFloat32Array()));
      let bufs: (Float64Array | null)[] = params.map(() => null);
      const opt = new ff.optim.SGD(params, { lr: 0.05, ...c });
      for (let step = 1; step <= 4; step++) {
        const grads = setGrads(params, 40 + step);
        opt.step();
        bufs = ref.map((r, i) => sgdStepRef(r, grads[i], bufs[i], { lr: 0.05, ...c }));
      }
      params.forEach((p, i) => expect(relErr(p.toFloat32Array(), ref[i])).toBeLessThan(1e-5));
      opt.dispose();
      disposeAll(params);
    });
  }

  test('clipGradNorm_ returns the global norm and scales the gradients to maxNorm', () => {
    const params = makeParams(sizes.slice(0, 5), 60);
    const grads = setGrads(params, 61);
    let sq = 0;
    for (const g of grads) for (const x of g) sq += x * x;
    const norm = ff.optim.clipGradNorm_(params, 1.5);
    expect(Math.abs(norm - Math.sqrt(sq)) / Math.sqrt(sq)).toBeLessThan(1e-12);
    const coef = 1.5 / (Math.sqrt(sq) + 1e-6);
    params.forEach((p, i) =>
      expect(
        relErr(
          p.grad!.toFloat32Array(),
          grads[i].map((x) => x * coef),
        ),
      ).toBeLessThan(1e-6),
    );
    // Below maxNorm nothing changes.
    const before = params.map((p) => p.grad!.toFloat32Array());
    expect(ff.optim.clipGradNorm_(params, 100)).toBeCloseTo(1.5, 5);
    params.forEach((p, i) => expect(p.grad!.toFloat32Array()).toEqual(before[i]));
    disposeAll(params);
  });

  test('clipGradNorm_: no gradients gives 0; a non-finite norm throws with errorIfNonfinite', () => {
    const [p, q] = makeParams([[3], [2]], 70);
    expect(ff.optim.clipGradNorm_([p, q], 1)).toBe(0);
    p.grad = ff.tensor([1, Infinity, 0], [3], { device: device() });
    expect(ff.optim.clipGradNorm_([p, q], 1)).toBe(Infinity);
    expect(() => ff.optim.clipGradNorm_([p, q], 1, { errorIfNonfinite: true })).toThrow(/total norm .* Infinity/);
    expect(() => ff.optim.clipGradNorm_([p], -1)).toThrow(/maxNorm/);
    disposeAll([p, q]);
  });

  test('the squared norm is the same run after run (fixed summation order)', () => {
    const params = makeParams([[emu ? 70000 : 300000], [1000]], 80);
    setGrads(params, 81);
    const first = ff.optim.clipGradNorm_(params, 1e9);
    for (let i = 0; i < 3; i++) expect(ff.optim.clipGradNorm_(params, 1e9)).toBe(first);
    disposeAll(params);
  });

  test('stateDict / loadStateDict: a restored optimizer continues exactly as the original', () => {
    const a = makeParams([[4, 3], [5]], 90);
    const b = makeParams([[4, 3], [5]], 90);
    const optA = new ff.optim.AdamW(a, { lr: 0.02 });
    setGrads(a, 91);
    optA.step();
    const optB = new ff.optim.AdamW(b, { lr: 0.5 });
    b.forEach((p, i) => p.backend.copyInto(p.storage(), a[i].storage()));
    optB.loadStateDict(optA.stateDict());
    expect(optB.paramGroups[0].lr).toBe(0.02);
    setGrads(a, 92);
    setGrads(b, 92);
    optA.step();
    optB.step();
    a.forEach((p, i) => expect(b[i].toFloat32Array()).toEqual(p.toFloat32Array()));
    const sd = optA.stateDict();
    expect(Object.keys(sd.state)).toEqual(['0', '1']);
    expect(sd.paramGroups[0].params).toEqual([0, 1]);
    optA.dispose();
    optB.dispose();
    disposeAll([...a, ...b]);
  });

  test('loadStateDict refuses a state of another shape', () => {
    const a = makeParams([[4]], 93);
    const b = makeParams([[5]], 93);
    const optA = new ff.optim.Adam(a);
    setGrads(a, 94);
    optA.step();
    const optB = new ff.optim.Adam(b);
    expect(() => optB.loadStateDict(optA.stateDict())).toThrow(
      /dict\.state\.0\.exp_avg: shape \[4\] does not match the parameter's \[5\]/,
    );
    optA.dispose();
    disposeAll([...a, ...b]);
  });

  test('weightDecayGroups: no decay on LayerNorm parameters, biases and R', () => {
    const block = new ff.nn.TransformerBlock(8, 2, { device: device(), radius: 'head-feature' });
    const names = new Map(block.namedParameters().map(([n, p]) => [p, n]));
    const [decay, noDecay] = ff.optim.weightDecayGroups(block, 0.05);
    expect(decay.weightDecay).toBe(0.05);
    expect(decay.params.map((p) => names.get(p))).toEqual([
      'attn.qkv.weight',
      'attn.proj.weight',
      'fc1.weight',
      'fc2.weight',
    ]);
    expect(noDecay.weightDecay).toBe(0);
    expect(noDecay.params.map((p) => names.get(p)).sort()).toEqual([
      'attn.R',
      'attn.proj.bias',
      'attn.qkv.bias',
      'fc1.bias',
      'fc2.bias',
      'ln1.bias',
      'ln1.weight',
      'ln2.bias',
      'ln2.weight',
    ]);
    block.dispose();
  });

  test("weightDecayGroups: a ViT's positions and cls token are not decayed either (timm's no_weight_decay)", () => {
    const vit = new ff.models.VisionTransformer(
      {
        imageSize: 4,
        patchSize: 2,
        channels: 1,
        numClasses: 3,
        dim: 8,
        depth: 1,
        numHeads: 2,
        mlpRatio: 2,
        qkvBias: true,
        dropPath: 0,
        attention: 'fourier',
        radius: 'shared',
      },
      { device: device() },
    );
    const names = new Map(vit.namedParameters().map(([n, p]) => [p, n]));
    const [decay, noDecay] = ff.optim.weightDecayGroups(vit, 0.05);
    expect(decay.params.map((p) => names.get(p)).sort()).toEqual([
      'blocks.0.attn.proj.weight',
      'blocks.0.attn.qkv.weight',
      'blocks.0.fc1.weight',
      'blocks.0.fc2.weight',
      'head.weight',
      'patchEmbed.proj.weight',
    ]);
    expect(noDecay.params.map((p) => names.get(p))).toEqual(
      expect.arrayContaining(['clsToken', 'posEmbed', 'blocks.0.attn.R', 'norm.weight']),
    );
    vit.dispose();
  });

  test('zeroGrad drops gradients (or zeroes them)', () => {
    const params = makeParams([[3]], 95);
    const opt = new ff.optim.SGD(params, { lr: 0.1 });
    setGrads(params, 96);
    opt.zeroGrad(false);
    expect(Array.from(params[0].grad!.toFloat32Array())).toEqual([0, 0, 0]);
    opt.zeroGrad();
    expect(params[0].grad).toBeNull();
    disposeAll(params);
  });

  test('bad arguments throw errors naming them', () => {
    const params = makeParams([[3]], 97);
    expect(() => new ff.optim.AdamW(params, { lr: -1 })).toThrow(
      /^options\.lr: expected a number in \[0, Infinity\], got -1/,
    );
    expect(() => new ff.optim.AdamW([{ params, lr: -1 }])).toThrow(/^params\[0\]\.lr/);
    expect(() => new ff.optim.AdamW(params, { betas: [0.9, 1] })).toThrow(/betas\[1\]/);
    expect(() => new ff.optim.SGD(params, { lr: 0.1, nesterov: true })).toThrow(/nesterov/);
    expect(() => new ff.optim.AdamW([params[0], params[0]])).toThrow(
      /params\[0\]\.params\[1\]: the tensor appears in more than one place/,
    );
    expect(() => new ff.optim.AdamW([])).toThrow(/params: expected a non-empty array/);
    const opt = new ff.optim.AdamW(params);
    const g = ff.tensor([1, 2, 3], [3], { device: device() });
    g.dispose();
    params[0].grad = g;
    expect(() => opt.step()).toThrow(/params\[0\]\.grad: the tensor \[3\] has been disposed/);
    params[0].grad = null;
    params[0].dispose();
    expect(() => new ff.optim.SGD(params, { lr: 0.1 })).toThrow(/has been disposed/);
  });

  test('the native step checks its arguments', () => {
    const b = ff.tensor([1], [1], { device: device() }).backend;
    const p = ff.tensor([1, 2], [2], { device: device() });
    const g = ff.tensor([1], [1], { device: device() });
    const s = (t: ff.Tensor) => t.storage();
    expect(() => b.adamStep([s(p)], [s(g)], [s(p)], [s(p)], 0.1, 0.9, 0.99, 1e-8, 0, 1, true)).toThrow(
      /grads\[0\]: expected 2 elements, got 1/,
    );
    expect(() => b.adamStep([s(p)], [s(p)], [s(p)], [s(p)], 0.1, 0.9, 0.99, 1e-8, 0, 1, true)).toThrow(
      /the same tensor appears twice/,
    );
    expect(() => b.squaredNorm([s(p), 3 as never])).toThrow(/tensors\[1\]: expected a tensor storage/);
    disposeAll([p, g]);
  });
});

describe('learning-rate schedules', () => {
  test('warmupCosine: linear warm-up, then a half cosine to minRatio', () => {
    const f = ff.optim.warmupCosine({ warmupSteps: 10, totalSteps: 110, minRatio: 0.1 });
    expect(f(0)).toBe(0);
    expect(f(5)).toBeCloseTo(0.5, 12);
    expect(f(10)).toBeCloseTo(1, 12);
    expect(f(60)).toBeCloseTo(0.55, 12);
    expect(f(110)).toBeCloseTo(0.1, 12);
    expect(f(500)).toBeCloseTo(0.1, 12);
  });

  test("cosineFromStepZero: the paper's LM code, step by step as PyTorch runs it", () => {
    // lmtool-fwms train.py's loop with warmup_step 5, max_step 20 and CosineAnnealingLR, run in
    // PyTorch 2.13: the rate of each step as a share of lr.
    const torch = [
      1.0, 0.2, 0.4, 0.6, 0.8, 0.853553390593, 0.793892626146, 0.72699524987, 0.654508497187, 0.57821723252, 0.5,
      0.42178276748, 0.345491502813, 0.27300475013, 0.206107373854, 0.146446609407, 0.095491502813, 0.054496737906,
      0.024471741852, 0.006155829702,
    ];
    const f = ff.optim.cosineFromStepZero({ warmupSteps: 5, totalSteps: 20 });
    torch.forEach((v, s) => expect(f(s)).toBeCloseTo(v, 11));
    const g = ff.optim.stepSchedule({ kind: 'cosine-from-step-0', lr: 1, warmupSteps: 5, totalSteps: 20, minRatio: 0 });
    expect(g(7)).toBe(f(7));
    // the text's reading, cosine after the warm-up: step s at warmupCosine(s + 1)
    const h = ff.optim.stepSchedule({
      kind: 'cosine-after-warmup',
      lr: 1,
      warmupSteps: 5,
      totalSteps: 20,
      minRatio: 0,
    });
    expect([h(0), h(4), h(19)]).toEqual([0.2, 1, 0]);
  });

  test("timmCosineEpochs: DeiT's per-epoch schedule, epoch e at timm's value for max(e - 1, 0)", () => {
    const lr = 1e-3;
    const f = ff.optim.timmCosineEpochs({
      lr,
      warmupEpochs: 5,
      epochs: 300,
      stepsPerEpoch: 10,
      warmupLr: 1e-6,
      minLr: 1e-5,
    });
    const at = (epoch: number, within = 0) => f(epoch * 10 + within) * lr;
    expect(at(0)).toBeCloseTo(1e-6, 15);
    expect(at(0, 9)).toBeCloseTo(1e-6, 15);
    expect(at(1)).toBeCloseTo(1e-6, 15); // lr_scheduler.step(0) after epoch 0 sets timm's t = 0 again
    expect(at(2)).toBeCloseTo(1e-6 + (1e-3 - 1e-6) / 5, 15);
    expect(at(5)).toBeCloseTo(1e-6 + (4 * (1e-3 - 1e-6)) / 5, 15);
    // The cosine counts from epoch 0.
    expect(at(6)).toBeCloseTo(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + Math.cos((Math.PI * 5) / 300)), 15);
    expect(at(299)).toBeCloseTo(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + Math.cos((Math.PI * 298) / 300)), 15);
    expect(at(400)).toBeCloseTo(1e-5, 15);
    expect(() =>
      ff.optim.stepSchedule({ kind: 'timm-cosine-epochs', lr, warmupSteps: 5, totalSteps: 20, minRatio: 0 }),
    ).toThrow(/needs stepsPerEpoch/);
    expect(() =>
      ff.optim.stepSchedule({
        kind: 'cosine' as 'cosine-from-step-0',
        lr,
        warmupSteps: 5,
        totalSteps: 20,
        minRatio: 0,
      }),
    ).toThrow(/schedule: expected one of/);
  });

  test('linearDecay: warm-up, then linear to endRatio', () => {
    const f = ff.optim.linearDecay({ warmupSteps: 4, totalSteps: 14 });
    expect(f(2)).toBeCloseTo(0.5, 12);
    expect(f(4)).toBe(1);
    expect(f(9)).toBeCloseTo(0.5, 12);
    expect(f(14)).toBe(0);
    expect(() => ff.optim.linearDecay({ warmupSteps: 20, totalSteps: 14 })).toThrow(/warmupSteps/);
  });

  test("LRScheduler sets each group's lr from its base lr and saves its position", () => {
    const [p, q] = makeParams([[1], [1]], 99);
    const opt = new ff.optim.AdamW([{ params: [p] }, { params: [q], lr: 0.2 }], { lr: 0.1 });
    const sched = new ff.optim.LRScheduler(opt, ff.optim.linearDecay({ warmupSteps: 2, totalSteps: 10 }));
    expect(sched.getLastLr()).toEqual([0, 0]);
    sched.step();
    expect(sched.getLastLr()).toEqual([0.05, 0.1]);
    const saved = sched.stateDict();
    const other = new ff.optim.LRScheduler(opt, ff.optim.linearDecay({ warmupSteps: 2, totalSteps: 10 }));
    other.loadStateDict(saved);
    expect(other.lastStep).toBe(1);
    expect(opt.paramGroups.map((g) => g.lr)).toEqual([0.05, 0.1]);
    disposeAll([p, q]);
  });
});
