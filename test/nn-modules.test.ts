// nn modules: Module bookkeeping (names, train/eval, state dicts), the layers against float64
// references, module gradients against central differences of those references, init helpers
// and the seeded generator.
import * as ff from '../lib';
import { available, device, relErr, uniform } from './helpers/compare';

const { refArray, refParams, multiHeadAttentionRef, transformerBlockRef, linearRef, layerNormRef } = ff.reference;
type RefArray = ff.reference.RefArray;

const dev = () => ({ device: device() });

/** The gradient of L = sum(y * W) w.r.t. every parameter, from float64 central differences of `f`. */
function refGrads(
  params: ff.reference.RefParams,
  f: (p: ff.reference.RefParams) => RefArray,
  W: Float32Array,
): Record<string, Float64Array> {
  const loss = () => f(params).data.reduce((s, y, i) => s + y * W[i], 0);
  const out: Record<string, Float64Array> = {};
  for (const [name, p] of Object.entries(params)) {
    out[name] = p.data.map((v, i) => {
      const h = 1e-6 * Math.max(1, Math.abs(v));
      p.data[i] = v + h;
      const up = loss();
      p.data[i] = v - h;
      const down = loss();
      p.data[i] = v;
      return (up - down) / (2 * h);
    });
  }
  return out;
}

/** Runs module.forward(x), backward with upstream W; returns y and every parameter's gradient. */
function nativeGrads(
  m: ff.nn.Module & { forward(x: ff.Tensor): ff.Tensor },
  xv: Float32Array,
  shape: number[],
  W: Float32Array,
) {
  return ff.tidy(() => {
    m.zeroGrad();
    const x = ff.tensor(xv, shape, dev());
    const y = m.forward(x);
    y.backward(ff.tensor(W, [...y.shape], dev()));
    const grads: Record<string, Float32Array> = {};
    for (const [name, p] of m.namedParameters()) grads[name] = p.grad!.toFloat32Array();
    m.zeroGrad();
    return { y: y.toFloat32Array(), grads };
  });
}

/**
 * Every parameter's gradient within 2e-4 (relative to its largest value) of the reference; names
 * the one that is not. A gradient that is 0 up to rounding in the reference (below 1e-8: Neural
 * Attention's last bias, which shifts every score of a row alike, or its weights where every
 * ReLU of a row's pairs agrees and the softmax cancels them) must be below 1e-6 natively.
 */
function expectGradsClose(native: Record<string, Float32Array>, ref: Record<string, Float64Array>): void {
  const zero = (name: string) => ref[name].every((g) => Math.abs(g) < 1e-8);
  const errors = Object.entries(native).map(
    ([name, g]) => [name, zero(name) ? Math.max(...g.map(Math.abs)) * 200 : relErr(g, ref[name])] as const,
  );
  expect(errors.filter(([, e]) => !(e < 2e-4))).toEqual([]);
}

class Net extends ff.nn.Module {
  readonly a: ff.nn.Linear;
  readonly blocks: ff.nn.ModuleList<ff.nn.Linear>;
  readonly scale: ff.Tensor;
  readonly running: ff.Tensor;
  constructor() {
    super();
    this.a = this.registerModule('a', new ff.nn.Linear(3, 4, dev()));
    this.blocks = this.registerModule(
      'blocks',
      new ff.nn.ModuleList([new ff.nn.Linear(4, 4, dev()), new ff.nn.Linear(4, 2, { ...dev(), bias: false })]),
    );
    this.scale = this.registerParameter('scale', ff.ones([2], dev()));
    this.running = this.registerBuffer('running', ff.zeros([2], dev()));
  }
}

describe(`nn.Module on ${device()}`, () => {
  test('names parameters, buffers and submodules as PyTorch does, in registration order', () => {
    const net = new Net();
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      'scale',
      'a.weight',
      'a.bias',
      'blocks.0.weight',
      'blocks.0.bias',
      'blocks.1.weight',
    ]);
    expect(net.namedBuffers().map(([n]) => n)).toEqual(['running']);
    expect(net.namedChildren().map(([n]) => n)).toEqual(['a', 'blocks']);
    expect(net.namedModules().map(([n]) => n)).toEqual(['', 'a', 'blocks', 'blocks.0', 'blocks.1']);
    expect(net.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(net.numParameters()).toBe(2 + 12 + 4 + 16 + 4 + 8);
    expect(Object.keys(net.stateDict())).toEqual([
      'scale',
      'running',
      'a.weight',
      'a.bias',
      'blocks.0.weight',
      'blocks.0.bias',
      'blocks.1.weight',
    ]);
    expect(net.blocks.length).toBe(2);
    expect(net.blocks.at(1).bias).toBeNull();
    net.dispose();
  });

  test('train() and eval() reach every submodule', () => {
    const net = new Net();
    expect(net.modules().every((m) => m.training)).toBe(true);
    net.eval();
    expect(net.modules().some((m) => m.training)).toBe(false);
    net.train();
    expect(net.blocks.at(0).training).toBe(true);
    net.dispose();
  });

  test('Sequential applies its modules in order; apply() visits every submodule', () => {
    const seq = new ff.nn.Sequential([
      new ff.nn.Linear(3, 5, dev()),
      new ff.nn.LayerNorm(5, dev()),
      new ff.nn.Linear(5, 2, dev()),
    ]);
    expect(seq.namedParameters().map(([n]) => n)).toEqual([
      '0.weight',
      '0.bias',
      '1.weight',
      '1.bias',
      '2.weight',
      '2.bias',
    ]);
    const xv = uniform(6, -1, 1, 9);
    const y = ff.tidy(() => seq.forward(ff.tensor(xv, [2, 3], dev())).toFloat32Array());
    const manual = ff.tidy(() =>
      seq
        .at(2)
        .forward(seq.at(1).forward(seq.at(0).forward(ff.tensor(xv, [2, 3], dev()))))
        .toFloat32Array(),
    );
    expect(Array.from(y)).toEqual(Array.from(manual));
    const visited: string[] = [];
    seq.apply((m) => visited.push(m.constructor.name));
    expect(visited).toEqual(['Linear', 'LayerNorm', 'Linear', 'Sequential']);
    seq.dispose();
  });

  test('a tied parameter is listed once by parameters() and under both names by stateDict()', () => {
    class Tied extends ff.nn.Module {
      constructor() {
        super();
        const emb = this.registerModule('emb', new ff.nn.Embedding(5, 3, dev()));
        const head = this.registerModule('head', new ff.nn.Module());
        head.registerParameter('weight', emb.weight);
      }
    }
    const t = new Tied();
    expect(t.namedParameters().map(([n]) => n)).toEqual(['emb.weight']);
    expect(Object.keys(t.stateDict())).toEqual(['emb.weight', 'head.weight']);
    t.dispose();
  });

  test('loadStateDict copies values in place (the tensors stay the same objects), from any device', () => {
    const a = new Net();
    const b = new Net();
    const params = b.parameters();
    const onCpu: Record<string, ff.Tensor> = {};
    for (const [k, t] of Object.entries(a.stateDict())) onCpu[k] = t.to('cpu');
    expect(b.loadStateDict(onCpu)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(b.parameters()).toEqual(params);
    for (const [k, t] of Object.entries(b.stateDict()))
      expect(t.toFloat32Array()).toEqual(a.stateDict()[k].toFloat32Array());
    for (const t of Object.values(onCpu)) t.dispose();
    a.dispose();
    b.dispose();
  });

  /** Net's output for a fixed input, then a backward so that every parameter has a gradient. */
  function run(net: Net): Float32Array {
    return ff.tidy(() => {
      const d = { device: net.scale.device };
      let h = net.a.forward(ff.tensor(uniform(6, -1, 1, 21), [2, 3], d));
      for (const b of net.blocks) h = b.forward(h);
      const y = ff.mul(ff.add(h, net.running), net.scale);
      y.backward(ff.ones([2, 2], d));
      return y.toFloat32Array();
    });
  }

  test('to(the device it is on) keeps every tensor; a bad device throws naming it', () => {
    const net = new Net();
    const tensors = [...net.parameters(), ...net.buffers()];
    expect(net.to(device())).toBe(net);
    expect([...net.parameters(), ...net.buffers()]).toEqual(tensors);
    expect(() => net.to('tpu' as ff.Device)).toThrow(/^device: unknown device "tpu"/);
    net.dispose();
  });

  const other: ff.Device = device() === 'cpu' ? 'cuda-emu' : 'cpu';
  (available(other) ? test : test.skip)(
    `to('${other}') moves parameters, buffers and gradients into the fields that held them`,
    () => {
      const net = new Net();
      const y = run(net);
      const state = Object.fromEntries(Object.entries(net.stateDict()).map(([k, t]) => [k, t.toFloat32Array()]));
      const grads = net.parameters().map((p) => p.grad!.toFloat32Array());
      const old = net.parameters();
      const before = ff.memory().numTensors;
      expect(net.to(other)).toBe(net);
      expect(ff.memory().numTensors).toBe(before);
      expect(old.every((p) => p.isDisposed)).toBe(true);
      for (const [k, t] of Object.entries(net.stateDict())) {
        expect(t.device).toBe(other);
        expect(t.toFloat32Array()).toEqual(state[k]);
      }
      expect(net.parameters().every((p) => p.requiresGrad)).toBe(true);
      expect(net.parameters().map((p) => p.grad!.toFloat32Array())).toEqual(grads);
      expect([net.a.weight, net.a.bias, net.scale, net.running, net.blocks.at(1).weight]).toEqual(
        ['a.weight', 'a.bias', 'scale', 'running', 'blocks.1.weight'].map((k) => net.stateDict()[k]),
      );
      net.zeroGrad();
      expect(relErr(run(net), y)).toBeLessThan(1e-6);
      net.to(device());
      expect(net.scale.device).toBe(device());
      net.dispose();
    },
  );

  (available(other) ? test : test.skip)(`to('${other}') keeps a tied parameter tied`, () => {
    class Tied extends ff.nn.Module {
      readonly emb: ff.nn.Embedding;
      readonly head: ff.nn.Module;
      constructor() {
        super();
        this.emb = this.registerModule('emb', new ff.nn.Embedding(5, 3, dev()));
        this.head = this.registerModule('head', new ff.nn.Module());
        this.head.registerParameter('weight', this.emb.weight);
      }
    }
    const t = new Tied().to(other);
    expect(t.parameters()).toEqual([t.emb.weight]);
    expect(t.head.stateDict().weight).toBe(t.emb.weight);
    expect(t.emb.weight.device).toBe(other);
    t.dispose();
  });

  test('loadStateDict: strict checks names and shapes and writes nothing on failure', () => {
    const net = new Net();
    const before = net.a.weight.toFloat32Array();
    const sd = { ...net.stateDict() };
    const extra = ff.zeros([1], dev());
    expect(() => net.loadStateDict({ ...sd, extra })).toThrow(/unexpected: extra/);
    const { scale: _s, ...missing } = sd;
    expect(() => net.loadStateDict(missing)).toThrow(/missing: scale/);
    const wrong = ff.zeros([4, 4], dev());
    expect(() => net.loadStateDict({ ...sd, 'a.weight': ff.zeros([4, 3], dev()), 'blocks.0.bias': wrong })).toThrow(
      /dict\.blocks\.0\.bias: shape \[4, 4\] does not match the module's \[4\]/,
    );
    expect(net.a.weight.toFloat32Array()).toEqual(before);
    expect(net.loadStateDict({ ...missing, extra }, { strict: false })).toEqual({
      missingKeys: ['scale'],
      unexpectedKeys: ['extra'],
    });
    for (const t of [extra, wrong]) t.dispose();
    net.dispose();
  });

  test('registration errors name what is wrong', () => {
    const m = new ff.nn.Module();
    m.registerParameter('w', ff.zeros([1], dev()));
    expect(() => m.registerParameter('w', ff.zeros([1], dev()))).toThrow(/'w' is already registered/);
    expect(() => m.registerModule('a.b', new ff.nn.Module())).toThrow(/name: expected an identifier/);
    const x = ff.tensor([1], [1], { ...dev(), requiresGrad: true });
    expect(() => m.registerParameter('y', ff.mul(x, 2))).toThrow(/y: a parameter must be a leaf tensor/);
    expect(() => new ff.nn.Linear(0, 2)).toThrow(/inFeatures: expected a positive integer/);
    expect(() => new ff.nn.MultiHeadAttention(6, 4)).toThrow(/numHeads: 4 does not divide dModel 6/);
    expect(() => new ff.nn.MultiHeadAttention(8, 2, { radius: 'row' as never })).toThrow(/opts\.radius/);
    for (const features of [0, 5, 1.5])
      expect(() => new ff.nn.MultiHeadAttention(8, 2, { features })).toThrow(
        /opts\.features: expected an integer in \[1, 4\]/,
      );
    expect(() => new ff.nn.TransformerBlock(8, 2, { norm: 'middle' as never })).toThrow(/opts\.norm/);
    x.dispose();
    m.dispose();
  });
});

describe(`nn layers on ${device()}`, () => {
  test("Linear: PyTorch's init bounds, the same weights for the same seed, and x W^T + b", () => {
    const l1 = new ff.nn.Linear(16, 8, { ...dev(), generator: new ff.Generator(7) });
    const l2 = new ff.nn.Linear(16, 8, { ...dev(), generator: new ff.Generator(7) });
    const w = l1.weight.toFloat32Array();
    expect(l2.weight.toFloat32Array()).toEqual(w);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(0.25);
    const xv = uniform(3 * 16, -1, 1, 1);
    const y = ff.tidy(() => l1.forward(ff.tensor(xv, [3, 16], dev())).toFloat32Array());
    const ref = linearRef(refArray(xv, [3, 16]), refArray(w, [8, 16]), refArray(l1.bias!.toFloat32Array(), [8]));
    expect(relErr(y, ref.data)).toBeLessThan(1e-5);
    l1.dispose();
    l2.dispose();
  });

  test('LayerNorm and Embedding forward', () => {
    const ln = new ff.nn.LayerNorm(6, { ...dev(), eps: 1e-6 });
    ff.nn.init.normal_(ln.weight!, 1, 0.1);
    const xv = uniform(12, -2, 2, 2);
    const y = ff.tidy(() => ln.forward(ff.tensor(xv, [2, 6], dev())).toFloat32Array());
    expect(
      relErr(
        y,
        layerNormRef(
          refArray(xv, [2, 6]),
          refArray(ln.weight!.toFloat32Array(), [6]),
          refArray(new Float32Array(6), [6]),
          1e-6,
        ).data,
      ),
    ).toBeLessThan(1e-5);
    const emb = new ff.nn.Embedding(10, 4, dev());
    const out = ff.tidy(() => emb.forward(ff.tensor([3, 0, 9], [3], dev())).toFloat32Array());
    const w = emb.weight.toFloat32Array();
    expect(Array.from(out)).toEqual([...w.subarray(12, 16), ...w.subarray(0, 4), ...w.subarray(36, 40)]);
    ln.dispose();
    emb.dispose();
  });

  test('Dropout: identity in eval mode, a mask fixed by the generator state in training mode', () => {
    const x = ff.ones([64], dev());
    const d = new ff.nn.Dropout(0.5, new ff.Generator(3));
    d.eval();
    expect(d.forward(x)).toBe(x);
    d.train();
    const state = d.generator!.getState();
    const a = ff.tidy(() => d.forward(x).toFloat32Array());
    d.generator!.setState(state);
    const b = ff.tidy(() => d.forward(x).toFloat32Array());
    expect(a).toEqual(b);
    expect(new Set(a)).toEqual(new Set([0, 2]));
    x.dispose();
  });

  const attentionCases: {
    attention: ff.reference.AttentionModuleRefOptions['attention'];
    causal: boolean;
    radius?: ff.nn.RadiusSharing;
    features?: number;
    stable?: boolean;
    power?: number;
    eps?: number;
    neuralDim?: number;
  }[] = [
    { attention: 'fourier', causal: true, radius: 'feature' },
    { attention: 'fourier', causal: false, radius: 'head' },
    { attention: 'fourier', causal: true, radius: 'shared' },
    { attention: 'fourier', causal: false, radius: 'head-feature' },
    // the paper's reference code in effect: one shared R over the first feature of each head
    { attention: 'fourier', causal: true, radius: 'shared', features: 1 },
    { attention: 'fourier', causal: false, radius: 'feature', features: 1, stable: true },
    { attention: 'fourier', causal: true, radius: 'head-feature', stable: true, power: 2 },
    { attention: 'fourier', causal: false, radius: 'feature', eps: 1e-3, power: 6 },
    { attention: 'dot', causal: true },
    { attention: 'dot', causal: false },
    { attention: 'neural', causal: true },
    { attention: 'neural', causal: false, neuralDim: 5 },
  ];
  for (const c of attentionCases) {
    test(`MultiHeadAttention ${JSON.stringify(c)}: forward and every parameter gradient against the float64 reference`, () => {
      const B = 2,
        N = 3,
        C = 4,
        H = 2;
      const m = new ff.nn.MultiHeadAttention(C, H, {
        ...dev(),
        ...c,
        generator: new ff.Generator(11),
        radiusInit: 1.5,
      });
      const xv = uniform(B * N * C, -1, 1, 3);
      const W = uniform(B * N * C, -1, 1, 4);
      const o = {
        numHeads: H,
        attention: c.attention,
        causal: c.causal,
        features: c.features,
        stable: c.stable,
        power: c.power,
        eps: c.eps,
      };
      const p = refParams(m.stateDict());
      const f = (q: ff.reference.RefParams) => multiHeadAttentionRef(refArray(xv, [B, N, C]), q, o);
      const native = nativeGrads(m, xv, [B, N, C], W);
      expect(relErr(native.y, f(p).data)).toBeLessThan(1e-5);
      const ref = refGrads(p, f, W);
      expectGradsClose(native.grads, ref);
      if (c.attention === 'fourier') {
        const F = c.features ?? C / H;
        const shapes = { shared: [1], head: [H, 1], feature: [F], 'head-feature': [H, F] };
        expect(m.R!.shape).toEqual(shapes[c.radius!]);
      } else expect(m.R).toBeNull();
      expect(m.score === null).toBe(c.attention !== 'neural');
      m.dispose();
    });
  }

  for (const norm of ['pre', 'post'] as const) {
    for (const attention of ['fourier', 'dot', 'neural'] as const) {
      test(`TransformerBlock ${norm}-LN ${attention}: forward and gradients against the float64 reference`, () => {
        const B = 1,
          N = 3,
          C = 4,
          H = 2;
        const activation = norm === 'pre' ? 'gelu' : 'relu';
        const m = new ff.nn.TransformerBlock(C, H, {
          ...dev(),
          norm,
          attention,
          activation,
          ffDim: 6,
          causal: true,
          generator: new ff.Generator(5),
        });
        for (const ln of [m.ln1, m.ln2]) {
          ff.nn.init.normal_(ln.weight!, 1, 0.2);
          ff.nn.init.normal_(ln.bias!, 0, 0.2);
        }
        const xv = uniform(B * N * C, -1, 1, 6);
        const W = uniform(B * N * C, -1, 1, 7);
        const o = { numHeads: H, attention, causal: true, norm, activation } as const;
        const p = refParams(m.stateDict());
        const f = (q: ff.reference.RefParams) => transformerBlockRef(refArray(xv, [B, N, C]), q, o);
        const native = nativeGrads(m, xv, [B, N, C], W);
        expect(relErr(native.y, f(p).data)).toBeLessThan(1e-5);
        const ref = refGrads(p, f, W);
        expectGradsClose(native.grads, ref);
        m.dispose();
      });
    }
  }

  test('TransformerBlock dropout and drop-path are active in training mode only', () => {
    const m = new ff.nn.TransformerBlock(8, 2, {
      ...dev(),
      dropout: 0.5,
      dropPath: 0.5,
      generator: new ff.Generator(1),
    });
    const xv = uniform(2 * 3 * 8, -1, 1, 8);
    const run = () => ff.tidy(() => m.forward(ff.tensor(xv, [2, 3, 8], dev())).toFloat32Array());
    const t1 = run();
    const t2 = run();
    expect(t1).not.toEqual(t2);
    m.eval();
    expect(run()).toEqual(run());
    m.dispose();
  });
});

describe(`init and random on ${device()}`, () => {
  test('Philox4x32-10 matches the Random123 known answer; state save/restore continues the stream', () => {
    const g = new ff.Generator(0);
    expect(Array.from(g.uint32(4))).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    const s = g.getState();
    expect(s).toEqual({ seed: 0, offset: 1 });
    const next = g.normal(7);
    g.setState(s);
    expect(g.normal(7)).toEqual(next);
    expect(g.reserve(3)).toEqual({ seed: 0, offset: 3 });
    expect(g.getState().offset).toBe(6);
    expect(() => g.setState({ seed: -1, offset: 0 })).toThrow(/state\.seed/);
    expect(() => new ff.Generator(1.5)).toThrow(/seed/);
  });

  test("manualSeed makes the default generator repeat; the default seed is PyTorch's", () => {
    const saved = ff.getRngState();
    ff.manualSeed(123);
    const a = ff.defaultGenerator.uniform(5);
    ff.manualSeed(123);
    expect(ff.defaultGenerator.uniform(5)).toEqual(a);
    expect(new ff.Generator().initialSeed()).toBe(67280421310721);
    ff.setRngState(saved);
  });

  test('normal_, truncNormal_, uniform_, zeros_, ones_ and xavierUniform_', () => {
    const t = ff.zeros([200, 50], dev());
    const g = { generator: new ff.Generator(9) };
    const stats = (v: Float32Array) => {
      const mean = v.reduce((s, x) => s + x, 0) / v.length;
      return { mean, std: Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length) };
    };
    let s = stats(ff.nn.init.normal_(t, 1, 0.02, g).toFloat32Array());
    expect(Math.abs(s.mean - 1)).toBeLessThan(1e-3);
    expect(Math.abs(s.std - 0.02)).toBeLessThan(1e-3);
    const v = ff.nn.init.truncNormal_(t, 0, 0.02, -0.04, 0.04, g).toFloat32Array();
    expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(0.04);
    s = stats(v);
    expect(Math.abs(s.std - 0.0176)).toBeLessThan(1e-3); // the std of N(0, 0.02^2) cut at 2 std
    const u = ff.nn.init.uniform_(t, -2, -1, g).toFloat32Array();
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(-1);
    expect(new Set(ff.nn.init.zeros_(t).toFloat32Array())).toEqual(new Set([0]));
    expect(new Set(ff.nn.init.ones_(t).toFloat32Array())).toEqual(new Set([1]));
    const a = Math.sqrt(6 / 250);
    expect(Math.max(...ff.nn.init.xavierUniform_(t, 1, g).toFloat32Array().map(Math.abs))).toBeLessThanOrEqual(a);
    expect(() => ff.nn.init.normal_(t, 0, -1)).toThrow(/std/);
    expect(() => ff.nn.init.xavierUniform_(ff.zeros([3], dev()))).toThrow(/at least 2 dimensions/);
    t.dispose();
  });

  test('the same seed gives the same weights on every device', () => {
    const here = new ff.nn.Linear(5, 3, { ...dev(), generator: new ff.Generator(42) });
    const cpu = new ff.nn.Linear(5, 3, { device: 'cpu', generator: new ff.Generator(42) });
    expect(here.weight.toFloat32Array()).toEqual(cpu.weight.toFloat32Array());
    here.dispose();
    cpu.dispose();
  });
});
