// MultiHeadAttention 'performer' and 'flt' (FAVOR+, FLT's learned spectral RPE), their random
// features' redraw policy, and the models with them: the cached decoding path against the full
// causal pass, FLT's encoding depending on relative positions only, finite differences through the
// RPE parameters, the attention maps, and the LM / ViT end to end.
import * as ff from '../lib';
import { device, relErr, uniform } from './helpers/compare';

const dev = () => ({ device: device() });
const { models } = ff;

function layer(
  attention: 'performer' | 'flt',
  seed: number,
  extra: ff.nn.MultiHeadAttentionOptions = {},
): ff.nn.MultiHeadAttention {
  return new ff.nn.MultiHeadAttention(16, 2, {
    attention,
    causal: true,
    randomFeatures: 24,
    rpeFrequencies: 8,
    rpeComponents: 3,
    ...dev(),
    generator: new ff.Generator(seed),
    ...extra,
  });
}

/** Nonzero RPE parameters (scenic initialises them to 0: no encoding at first). */
function setSpectrum(m: ff.nn.MultiHeadAttention, seed: number): void {
  const rpe = m.rpe as ff.nn.SpectralRPE;
  const state: Record<string, ff.Tensor> = {};
  for (const [name, p] of rpe.namedParameters())
    state[name] = ff.tensor(uniform(p.size, -0.3, 0.3, seed + p.size), p.shape, dev());
  rpe.loadStateDict(state, { strict: false });
  for (const t of Object.values(state)) t.dispose();
}

describe(`MultiHeadAttention 'performer' and 'flt' on ${device()}`, () => {
  for (const attention of ['performer', 'flt'] as const) {
    test(`${attention}: decoding one token at a time with a KV cache gives the causal pass`, () => {
      const m = layer(attention, 11);
      if (attention === 'flt') setSpectrum(m, 12);
      m.eval();
      ff.noGrad(() =>
        ff.tidy(() => {
          const N = 9;
          const xv = uniform(N * 16, -1, 1, 13);
          const x = ff.tensor(xv, [1, N, 16], dev());
          const full = m.forward(x).toFloat32Array();
          const cache = new ff.nn.LayerKVCache();
          const steps: Float32Array[] = [m.forward(ff.slice(x, 1, 0, 3), cache).toFloat32Array()];
          for (let t = 3; t < N; t++) steps.push(m.forward(ff.slice(x, 1, t, t + 1), cache).toFloat32Array());
          const stepwise = new Float32Array(N * 16);
          let at = 0;
          for (const s of steps) {
            stepwise.set(s, at);
            at += s.length;
          }
          expect(relErr(stepwise, full)).toBeLessThan(1e-4);
          cache.reset();
        }),
      );
      m.dispose();
    });

    test(`${attention}: attention maps are causal rows summing to 1, statistics of the same weights`, () => {
      const m = layer(attention, 21);
      if (attention === 'flt') setSpectrum(m, 22);
      ff.tidy(() => {
        const x = ff.tensor(uniform(2 * 7 * 16, -1, 1, 23), [2, 7, 16], dev());
        const P = m.attentionMap(x);
        expect(P.shape).toEqual([2, 2, 7, 7]);
        const p = P.toFloat32Array();
        for (let r = 0; r < 2 * 2 * 7; r++) {
          const i = r % 7;
          let s = 0;
          for (let j = 0; j < 7; j++) {
            if (j > i) expect(p[r * 7 + j]).toBe(0);
            s += p[r * 7 + j];
          }
          expect(s).toBeCloseTo(1, 5);
        }
        const st = m.attentionStatistics(x);
        expect(st.kind).toBe(attention);
        expect(st.rows).toBe(28);
        expect(st.maxWeight).toBeGreaterThan(0);
        expect(st.normalizedEntropy).toBeGreaterThan(0);
      });
      m.dispose();
    });
  }

  test('flt: the encoding depends on r_i - r_j only, as (c^2/m) sum_k rho_k^2 cos(2 pi xi_k (r_i - r_j))', () => {
    const m = layer('flt', 31);
    setSpectrum(m, 32);
    const rpe = m.rpe as ff.nn.SpectralRPE;
    ff.tidy(() => {
      const [H, mm] = [2, 8];
      const a = rpe.snippets(0, 6).toFloat32Array(),
        b = rpe.snippets(5, 6).toFloat32Array();
      const dot = (E: Float32Array, h: number, i: number, j: number) => {
        let s = 0;
        for (let c = 0; c < 2 * mm; c++) s += E[(h * 6 + i) * 2 * mm + c] * E[(h * 6 + j) * 2 * mm + c];
        return s;
      };
      // rho from the parameters, in float64
      const xi = rpe.frequencies.toFloat32Array(),
        w = rpe.weights.toFloat32Array(),
        mu = rpe.means.toFloat32Array(),
        lv = rpe.logVariances.toFloat32Array();
      const I = w.length / H;
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < 6; i++) {
          for (let j = 0; j < 6; j++) {
            expect(dot(a, h, i, j)).toBeCloseTo(dot(b, h, i, j), 3);
            let want = 0;
            for (let k = 0; k < mm; k++) {
              const x = xi[h * mm + k];
              let tau = 0;
              for (let c = 0; c < I; c++)
                tau += w[h * I + c] * Math.exp(-((x - mu[h * I + c]) ** 2) / Math.exp(lv[h * I + c]));
              const rho = tau * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
              want += rho * rho * Math.cos(2 * Math.PI * x * (i - j));
            }
            want *= Math.sqrt(8) / mm; // c^2 = sqrt(Dh), Dh = 8
            expect(Math.abs(dot(a, h, i, j) - want)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
          }
        }
      }
    });
    m.dispose();
  });

  test('flt: gradients of the spectrum parameters agree with finite differences', () => {
    const m = layer('flt', 41);
    setSpectrum(m, 42);
    const rpe = m.rpe as ff.nn.SpectralRPE;
    const N = 6;
    const xv = uniform(N * 16, -1, 1, 43),
      Wout = uniform(N * 16, -1, 1, 44);
    const params = rpe.namedParameters();
    const base = params.map(([, p]) => p.toFloat32Array());
    const dirs = base.map((b, n) => uniform(b.length, -1, 1, 45 + n));
    const loss = (shift: number) =>
      ff.noGrad(() =>
        ff.tidy(() => {
          const state: Record<string, ff.Tensor> = {};
          params.forEach(([name, p], n) => {
            state[name] = ff.tensor(
              base[n].map((v, i) => v + shift * dirs[n][i]),
              p.shape,
              dev(),
            );
          });
          rpe.loadStateDict(state, { strict: false });
          return m
            .forward(ff.tensor(xv, [1, N, 16], dev()))
            .toFloat32Array()
            .reduce((s, v, i) => s + v * Wout[i], 0);
        }),
      );
    const h = 1e-2;
    const fd = (loss(h) - loss(-h)) / (2 * h);
    loss(0);
    const analytic = ff.tidy(() => {
      m.zeroGrad();
      m.forward(ff.tensor(xv, [1, N, 16], dev())).backward(ff.tensor(Wout, [1, N, 16], dev()));
      return params.reduce((s, [, p], n) => s + p.grad!.toFloat32Array().reduce((t, g, i) => t + g * dirs[n][i], 0), 0);
    });
    expect(Math.abs(analytic)).toBeGreaterThan(1e-4);
    expect(Math.abs(fd - analytic)).toBeLessThan(5e-3 * Math.max(1, Math.abs(analytic)));
    m.dispose();
  });

  test('redraw: new features every n training forwards, seeded; the count and features resume from a state dict', () => {
    const a = layer('performer', 51, { redrawFeatures: 2 });
    const x = ff.tensor(uniform(3 * 16, -1, 1, 52), [1, 3, 16], dev());
    const proj = () => a.favor!.projection.toFloat32Array();
    const p0 = proj();
    ff.tidy(() => {
      a.forward(x);
      a.forward(x);
    });
    expect(Array.from(proj())).toEqual(Array.from(p0));
    ff.tidy(() => {
      a.forward(x);
    });
    const p1 = proj();
    expect(Array.from(p1)).not.toEqual(Array.from(p0));
    expect(a.favor!.forwards.item()).toBe(3);
    a.eval();
    ff.tidy(() => {
      a.forward(x);
      a.forward(x);
    });
    expect(a.favor!.forwards.item()).toBe(3);
    a.train();
    // a copy built from the same seed and given the state continues the same way
    const b = layer('performer', 51, { redrawFeatures: 2 });
    ff.tidy(() => b.loadStateDict(a.stateDict()));
    ff.tidy(() => {
      a.forward(x);
      a.forward(x);
      b.forward(x);
      b.forward(x);
    });
    expect(Array.from(b.favor!.projection.toFloat32Array())).toEqual(Array.from(proj()));
    expect(Array.from(proj())).not.toEqual(Array.from(p1));
    x.dispose();
    a.dispose();
    b.dispose();
  });

  test('bad options name themselves', () => {
    expect(() => layer('performer', 1, { randomFeatures: 0 })).toThrow(/^opts.randomFeatures: /);
    expect(() => layer('performer', 1, { redrawFeatures: -1 })).toThrow(/^opts.redrawFeatures: /);
    expect(() => layer('flt', 1, { rpeGrid: [2, 0] })).toThrow(/^opts.rpeGrid: /);
    expect(() => layer('flt', 1, { rpeFrequencies: 0 })).toThrow(/^opts.rpeFrequencies: /);
    expect(() => new ff.nn.MultiHeadAttention(16, 2, { attention: 'x' as 'dot' })).toThrow(
      /^opts.attention: expected 'fourier', 'dot', 'neural', 'performer', 'flt', got/,
    );
  });
});

describe(`models with 'performer' and 'flt' on ${device()}`, () => {
  const LM: ff.models.LanguageModelConfig = {
    vocabSize: 20,
    dModel: 16,
    numLayers: 2,
    numHeads: 2,
    ffDim: 32,
    context: 8,
    dropout: 0,
    attention: 'flt',
    cutoffs: [],
    tieWeights: true,
    randomFeatures: 16,
    rpeFrequencies: 8,
    rpeComponents: 2,
  };
  for (const attention of ['performer', 'flt'] as const) {
    test(`LanguageModel '${attention}': a training step, and cached generation equals the full pass`, () => {
      const model = new models.LanguageModel({ ...LM, attention }, { ...dev(), generator: new ff.Generator(61) });
      const ids = Array.from({ length: 16 }, (_, i) => (5 * i + 3) % 20);
      ff.tidy(() => {
        const x = ff.tensor(ids, [2, 8], dev()),
          y = ff.tensor(
            ids.map((v) => (v + 1) % 20),
            [2, 8],
            dev(),
          );
        const loss = model.loss(x, y);
        expect(Number.isFinite(loss.item())).toBe(true);
        loss.backward();
        for (const [name, p] of model.namedParameters()) expect([name, p.grad !== null]).toEqual([name, true]);
      });
      model.eval();
      ff.noGrad(() =>
        ff.tidy(() => {
          const x = ff.tensor(ids.slice(0, 7), [1, 7], dev());
          const full = model.logProbs(x).toFloat32Array();
          const cache = new ff.nn.KVCache(2);
          const first = model.logProbs(ff.slice(x, 1, 0, 6), { cache }).toFloat32Array();
          const last = model.logProbs(ff.slice(x, 1, 6, 7), { cache }).toFloat32Array();
          expect(relErr(first, full.subarray(0, 6 * 20))).toBeLessThan(1e-4);
          expect(relErr(last, full.subarray(6 * 20))).toBeLessThan(1e-4);
          cache.dispose();
        }),
      );
      model.dispose();
    });
  }

  test("VisionTransformer 'flt': 2-D patch positions, the class token without one; trains a step", () => {
    const cfg: ff.models.VisionTransformerConfig = {
      imageSize: 8,
      patchSize: 4,
      channels: 2,
      numClasses: 5,
      dim: 8,
      depth: 2,
      numHeads: 2,
      mlpRatio: 2,
      qkvBias: true,
      dropPath: 0,
      attention: 'flt',
      randomFeatures: 16,
      rpeFrequencies: 4,
      rpeComponents: 2,
    };
    const model = new models.VisionTransformer(cfg, { ...dev(), generator: new ff.Generator(71) });
    const rpe = model.blocks.at(0).attn.rpe as ff.nn.SpectralRPE;
    expect(rpe.grid).toEqual([2, 2]);
    expect(rpe.prefixTokens).toBe(1);
    ff.tidy(() => {
      const E = rpe.snippets(0, 5).toFloat32Array();
      expect(E.length).toBe(2 * 5 * 8);
      const logits = model.forward(ff.tensor(uniform(2 * 2 * 8 * 8, 0, 1, 72), [2, 2, 8, 8], dev()));
      expect(logits.shape).toEqual([2, 5]);
      ff.sum(logits).backward();
      expect(rpe.weights.grad).not.toBeNull();
    });
    model.dispose();
  });
});
