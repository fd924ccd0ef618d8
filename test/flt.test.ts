// FLT (MultiHeadAttention 'flt': FAVOR+ with the learned spectral RPE) against the float64
// reference lib/reference/flt.ts: the snippets of text and grid positions, the layer's output
// (causal, non-causal, 2-D patches with a class token), its gradients in the spectrum parameters
// and the input against central differences of the float64 layer, and, with many random features,
// the exact softmax attention with the RPE as a logit bias that FLT estimates.
import * as ff from '../lib';
import { device, relErr, uniform } from './helpers/compare';

const dev = () => ({ device: device() });
const ref = ff.reference;

interface Setting {
  causal: boolean;
  grid?: [number, number];
  prefix?: number;
  features?: number;
}

/** An 'flt' layer of width 16, 2 heads (Dh 8), 8 frequencies, 3 components, its spectrum set to nonzero values. */
function fltLayer(
  s: Setting,
  seed: number,
  spectrum: { w: [number, number]; mu: number; lv: number } = { w: [-0.3, 0.3], mu: 0.3, lv: 0.3 },
): ff.nn.MultiHeadAttention {
  const m = new ff.nn.MultiHeadAttention(16, 2, {
    attention: 'flt',
    causal: s.causal,
    randomFeatures: s.features ?? 24,
    rpeFrequencies: 8,
    rpeComponents: 3,
    rpeGrid: s.grid,
    rpePrefixTokens: s.prefix,
    ...dev(),
    generator: new ff.Generator(seed),
  });
  const rpe = m.rpe as ff.nn.SpectralRPE;
  const state: Record<string, ff.Tensor> = {
    weights: ff.tensor(uniform(rpe.weights.size, spectrum.w[0], spectrum.w[1], seed + 1), rpe.weights.shape, dev()),
    means: ff.tensor(uniform(rpe.means.size, -spectrum.mu, spectrum.mu, seed + 2), rpe.means.shape, dev()),
    logVariances: ff.tensor(
      uniform(rpe.logVariances.size, -spectrum.lv, spectrum.lv, seed + 3),
      rpe.logVariances.shape,
      dev(),
    ),
  };
  rpe.loadStateDict(state, { strict: false });
  for (const t of Object.values(state)) t.dispose();
  m.eval();
  return m;
}

const arr = (t: ff.Tensor): ff.reference.RefArray => ref.refArray(t.toFloat32Array(), [...t.shape]);

function spectrumOf(m: ff.nn.MultiHeadAttention): ff.reference.SpectrumRef {
  const rpe = m.rpe as ff.nn.SpectralRPE;
  return {
    weights: arr(rpe.weights),
    means: arr(rpe.means),
    logVariances: arr(rpe.logVariances),
    frequencies: arr(rpe.frequencies),
  };
}

function layerOf(m: ff.nn.MultiHeadAttention): ff.reference.FltLayerRef {
  const rpe = m.rpe as ff.nn.SpectralRPE;
  return {
    numHeads: m.numHeads,
    causal: m.causal,
    qkvWeight: arr(m.qkv.weight),
    qkvBias: m.qkv.bias ? arr(m.qkv.bias) : null,
    projWeight: arr(m.proj.weight),
    projBias: m.proj.bias ? arr(m.proj.bias) : null,
    spectrum: spectrumOf(m),
    projection: arr((m.favor as ff.nn.FavorFeatures).projection),
    grid: rpe.grid,
    prefixTokens: rpe.prefixTokens,
  };
}

const SETTINGS: [string, Setting, number][] = [
  ['text, causal', { causal: true }, 9],
  ['text, non-causal', { causal: false }, 9],
  ['2-D patches [2, 3] and a class token, non-causal', { causal: false, grid: [2, 3], prefix: 1 }, 7],
];

describe(`FLT against the float64 reference on ${device()}`, () => {
  test('snippets of text positions (from a cache offset) and of grid positions with a prefix token', () => {
    for (const [s, first, N] of [
      [{ causal: true }, 3, 6],
      [{ causal: false, grid: [3, 2], prefix: 1 }, 0, 7],
    ] as [Setting, number, number][]) {
      const m = fltLayer(s, 101);
      const rpe = m.rpe as ff.nn.SpectralRPE;
      ff.tidy(() => {
        const got = rpe.snippets(first, N).toFloat32Array();
        const want = ref.fltSnippetsRef(
          spectrumOf(m),
          ref.fltPositionsRef(first, N, s.grid ?? null, s.prefix ?? 0),
          m.headDim,
        );
        expect(got.length).toBe(want.data.length);
        expect(relErr(got, want.data)).toBeLessThan(2e-5);
        // the snippets' products are the RPE, a function of r_i - r_j alone
        const bias = ref.fltBiasRef(spectrumOf(m), ref.fltPositionsRef(first, N, s.grid ?? null, s.prefix ?? 0));
        const [H, , w] = want.shape;
        const prod = new Float64Array(H * N * N);
        for (let h = 0; h < H; h++)
          for (let i = 0; i < N; i++)
            for (let j = 0; j < N; j++) {
              let p = 0;
              for (let c = 0; c < w; c++) p += got[(h * N + i) * w + c] * got[(h * N + j) * w + c];
              prod[(h * N + i) * N + j] = p / Math.sqrt(m.headDim); // with the scale 1/sqrt(Dh)
            }
        expect(relErr(prod, bias.data)).toBeLessThan(1e-4);
      });
      m.dispose();
    }
  });

  for (const [name, s, N] of SETTINGS) {
    test(`${name}: the layer's output`, () => {
      const m = fltLayer(s, 111);
      ff.noGrad(() =>
        ff.tidy(() => {
          const xv = uniform(2 * N * 16, -1, 1, 112);
          const got = m.forward(ff.tensor(xv, [2, N, 16], dev())).toFloat32Array();
          const want = ref.fltLayerRef(layerOf(m), ref.refArray(xv, [2, N, 16]));
          expect(relErr(got, want.data)).toBeLessThan(1e-4);
        }),
      );
      m.dispose();
    });

    test(`${name}: gradients in w, mu, log sigma^2 and x against central differences of the float64 layer`, () => {
      const m = fltLayer(s, 121);
      const rpe = m.rpe as ff.nn.SpectralRPE;
      const xv = uniform(N * 16, -1, 1, 122),
        Wout = uniform(N * 16, -1, 1, 123);
      const L = layerOf(m);
      const loss = (x: Float64Array, spectrum: ff.reference.SpectrumRef) =>
        ref
          .fltLayerRef({ ...L, spectrum }, ref.refArray(x, [1, N, 16]))
          .data.reduce((acc, v, i) => acc + v * Wout[i], 0);
      const x0 = Float64Array.from(xv);
      const x = ff.tensor(xv, [1, N, 16], { ...dev(), requiresGrad: true });
      ff.tidy(() => {
        m.forward(x).backward(ff.tensor(Wout, [1, N, 16], dev()));
      });
      const h = 1e-5;
      // one random direction per parameter: the directional derivative both ways
      const params: [string, ff.Tensor, keyof ff.reference.SpectrumRef][] = [
        ['w', rpe.weights, 'weights'],
        ['mu', rpe.means, 'means'],
        ['log sigma^2', rpe.logVariances, 'logVariances'],
      ];
      params.forEach(([label, p, key], n) => {
        const dir = uniform(p.size, -1, 1, 130 + n);
        const shifted = (t: number) => {
          const base = L.spectrum[key];
          return { ...L.spectrum, [key]: { data: base.data.map((v, i) => v + t * dir[i]), shape: base.shape } };
        };
        const fd = (loss(x0, shifted(h)) - loss(x0, shifted(-h))) / (2 * h);
        const g = (p.grad as ff.Tensor).toFloat32Array();
        const analytic = g.reduce((acc, v, i) => acc + v * dir[i], 0);
        expect([label, Math.abs(fd) > 1e-6]).toEqual([label, true]);
        expect([label, Math.abs(analytic - fd) < 5e-3 * Math.abs(fd) + 1e-8]).toEqual([label, true]);
      });
      const dx = uniform(N * 16, -1, 1, 140);
      const fdx =
        (loss(
          x0.map((v, i) => v + h * dx[i]),
          L.spectrum,
        ) -
          loss(
            x0.map((v, i) => v - h * dx[i]),
            L.spectrum,
          )) /
        (2 * h);
      const gx = (x.grad as ff.Tensor).toFloat32Array().reduce((acc, v, i) => acc + v * dx[i], 0);
      expect(Math.abs(gx - fdx) / Math.abs(fdx)).toBeLessThan(5e-3);
      x.dispose();
      m.dispose();
    });
  }

  test('with 4096 random features the layer approaches softmax(q k^T / sqrt(Dh) + RPE) v, not the same without the RPE', () => {
    for (const [, s, N] of SETTINGS) {
      // weights giving an RPE of about 1 at r = 0 (rho is (2 pi)^(d/2) tau / exp(-|xi|^2 / 2))
      const w = s.grid ? 0.25 / (2 * Math.PI) : 0.25;
      const m = fltLayer({ ...s, features: 4096 }, 151, { w: [0.4 * w, w], mu: 0.5, lv: 0.3 });
      ff.noGrad(() =>
        ff.tidy(() => {
          const xv = uniform(N * 16, -0.5, 0.5, 152);
          const got = m.forward(ff.tensor(xv, [1, N, 16], dev())).toFloat32Array();
          const L = layerOf(m),
            x = ref.refArray(xv, [1, N, 16]);
          const withRpe = relErr(got, ref.fltExactLayerRef(L, x).data);
          const without = relErr(got, ref.fltExactLayerRef(L, x, false).data);
          expect(withRpe).toBeLessThan(0.03);
          expect(without).toBeGreaterThan(5 * withRpe);
        }),
      );
      m.dispose();
    }
  });
});
