// The fused decoding step (TransformerBlock.decodeStep, csrc/binding/decode_step.cpp): one native
// call per block and token, writing into the key-value cache's preallocated stores. Against the
// op-by-op cached path (fusedStep: false) and against recomputing the whole prefix, 1e-5 relative:
// Fourier (default and stable) and dot, pre- and post-LN, with and without biases, ReLU and GELU,
// at every position up to the last of the context and in windows after the text passed it; the
// blocks it does not cover fall back to the op path; greedy tokens equal on every backend; bad
// arguments of the native step throw errors naming them.
import * as ff from '../lib';
import * as models from '../lib/models';
import type { Storage } from '../lib/native';
import { decodeNative } from '../lib/nn/kv-cache';
import { available, device, relErr, uniform } from './helpers/compare';

const dev = () => ({ device: device() });

const LM: models.LanguageModelConfig = {
  vocabSize: 20,
  dModel: 16,
  numLayers: 2,
  numHeads: 2,
  ffDim: 32,
  context: 12,
  dropout: 0.1,
  attention: 'fourier',
  cutoffs: [],
  tieWeights: true,
};

/**
 * A model with weights spread beyond the init (rows far from uniform): each parameter uniform in
 * [-0.4, 0.4], R in [0.5, 2.5].
 */
function model(cfg: Partial<models.LanguageModelConfig>, seed = 1, on = device()): models.LanguageModel {
  const m = new models.LanguageModel({ ...LM, ...cfg }, { device: on, generator: new ff.Generator(seed) });
  ff.noGrad(() =>
    m.namedParameters().forEach(([name, p], i) => {
      const u = uniform(p.size, -0.4, 0.4, 1000 * seed + i);
      p.backend.uploadInto(p.storage(), name.endsWith('.R') ? u.map((x) => 1.5 + 2.5 * x) : u);
    }),
  );
  return m;
}

const stream = (n: number, V = 20) => Array.from({ length: n }, (_, i) => (7 * i + 3 + ((i * i) % 5)) % V);

/** Log-probabilities after each of ids from the whole prefix (no cache). */
function recomputed(m: models.LanguageModel, ids: number[]): Float32Array[] {
  return ids.map((_, t) =>
    ff.noGrad(() =>
      ff.tidy(() => m.logProbs(ff.tensor(ids.slice(0, t + 1), [1, t + 1], dev()), { last: true }).toFloat32Array()),
    ),
  );
}

/** With a cache: `prefill` tokens in the causal pass, then one at a time, fused or op by op. */
function cached(m: models.LanguageModel, ids: number[], prefill: number, fusedStep: boolean): Float32Array[] {
  const cache = new ff.nn.KVCache(m.blocks.length);
  const out: Float32Array[] = [];
  ff.noGrad(() => {
    const V = m.config.vocabSize;
    const first = ff.tidy(() =>
      m.logProbs(ff.tensor(ids.slice(0, prefill), [1, prefill], dev()), { cache }).toFloat32Array(),
    );
    for (let t = 0; t < prefill; t++) out.push(first.slice(t * V, (t + 1) * V));
    for (let t = prefill; t < ids.length; t++)
      out.push(ff.tidy(() => m.logProbs(ff.tensor([ids[t]], [1, 1], dev()), { cache, fusedStep }).toFloat32Array()));
  });
  expect(cache.length).toBe(ids.length);
  cache.dispose();
  return out;
}

/** How many times the blocks' decodeStep ran the fused step (returned a tensor) during fn. */
function fusedSteps(m: models.LanguageModel, fn: () => void): number {
  let n = 0;
  const spies = [...m.blocks].map((b) => {
    const original = b.decodeStep.bind(b);
    return jest.spyOn(b, 'decodeStep').mockImplementation((x, c) => {
      const y = original(x, c);
      if (y !== null) n++;
      return y;
    });
  });
  try {
    fn();
  } finally {
    spies.forEach((s) => s.mockRestore());
  }
  return n;
}

describe(`fused decoding step on ${device()}`, () => {
  const kinds = [
    { name: 'fourier', cfg: { attention: 'fourier' as const } },
    {
      name: 'fourier stable, pre-LN, radius per head and feature',
      cfg: { attention: 'fourier' as const, stable: true, norm: 'pre' as const, radius: 'head-feature' as const },
    },
    {
      name: 'fourier, adaptive softmax, radius shared, no projection bias',
      cfg: { attention: 'fourier' as const, cutoffs: [6, 12], projBias: false, radius: 'shared' as const },
    },
    { name: 'dot', cfg: { attention: 'dot' as const } },
    {
      name: 'dot, pre-LN, adaptive softmax untied',
      cfg: { attention: 'dot' as const, norm: 'pre' as const, cutoffs: [6, 12], tieWeights: false },
    },
  ];
  for (const k of kinds) {
    test(`${k.name}: fused = op by op = recomputed prefix at every position up to the context's last (1e-5)`, () => {
      const m = model(k.cfg);
      m.eval();
      const ids = stream(LM.context);
      const full = recomputed(m, ids);
      for (const prefill of [1, 5]) {
        let fused: Float32Array[] = [];
        expect(fusedSteps(m, () => (fused = cached(m, ids, prefill, true)))).toBe(2 * (LM.context - prefill));
        const ops = cached(m, ids, prefill, false);
        for (let t = 0; t < ids.length; t++) {
          expect(relErr(fused[t], ops[t])).toBeLessThan(1e-5);
          expect(relErr(fused[t], full[t])).toBeLessThan(1e-5);
        }
      }
      expect(relErr(full[LM.context - 2], full[LM.context - 1])).toBeGreaterThan(1e-2);
      m.dispose();
    });
  }

  test('after the window passed the context: each rebuilt window, stepped fused, equals recomputing it (1e-5); greedy generation equal both ways', () => {
    for (const cfg of [
      { attention: 'fourier' as const },
      { attention: 'fourier' as const, stable: true },
      { attention: 'dot' as const },
    ]) {
      const m = model(cfg, 2);
      m.eval();
      const text = stream(LM.context + 7);
      for (const shift of [1, 4, 7]) {
        const window = text.slice(shift, shift + LM.context);
        const full = recomputed(m, window);
        const fused = cached(m, window, LM.context - 5, true);
        window.forEach((_, t) => expect(relErr(fused[t], full[t])).toBeLessThan(1e-5));
      }
      for (const shift of [1, 3]) {
        const o = { temperature: 0, maxNewTokens: 2 * LM.context, shift };
        const a = m.generate(stream(3), o);
        expect(a.windowDropped).toBeGreaterThan(0);
        expect(m.generate(stream(3), { ...o, fusedStep: false }).tokens).toEqual(a.tokens);
        expect(m.generate(stream(3), { ...o, useCache: false }).tokens).toEqual(a.tokens);
      }
      m.dispose();
    }
  });

  const blockCases = [
    { attention: 'fourier' as const, stable: false, norm: 'post' as const, activation: 'relu' as const, bias: false },
    { attention: 'fourier' as const, stable: true, norm: 'pre' as const, activation: 'gelu' as const, bias: true },
    { attention: 'fourier' as const, stable: false, norm: 'pre' as const, activation: 'gelu' as const, bias: true },
    { attention: 'dot' as const, stable: false, norm: 'pre' as const, activation: 'gelu' as const, bias: true },
    { attention: 'dot' as const, stable: false, norm: 'post' as const, activation: 'relu' as const, bias: false },
  ];
  for (const c of blockCases) {
    test(`blocks ${c.attention}${c.stable ? ' stable' : ''}, ${c.norm}-LN, ${c.activation}, biases ${c.bias ? 'on' : 'off'}, batch 2: fused = op path = causal pass (1e-5); the cache grows`, () => {
      const [B, T, d] = [2, 9, 16];
      const blocks = [0, 1].map(
        (i) =>
          new ff.nn.TransformerBlock(d, 2, {
            attention: c.attention,
            stable: c.stable,
            causal: true,
            norm: c.norm,
            activation: c.activation,
            qkvBias: c.bias,
            projBias: c.bias,
            ffDim: 24,
            radiusInit: 1.5,
            radius: i === 0 ? 'head' : 'feature',
            lnEps: i === 0 ? 1e-5 : 1e-6,
            dropout: 0.2,
            device: device(),
            generator: new ff.Generator(5 + i),
          }),
      );
      // q and k within sinc's first lobe mostly (as test/generate.test.ts's block test says why)
      ff.noGrad(() =>
        blocks.forEach((b, i) => {
          b.eval();
          const qkv = b.attn.qkv.weight;
          qkv.backend.uploadInto(qkv.storage(), uniform(qkv.size, -0.3, 0.3, 40 + i));
          for (const ln of [b.ln1, b.ln2])
            ln.bias?.backend.uploadInto(ln.bias.storage(), uniform(d, -0.5, 0.5, 50 + i));
        }),
      );
      const x = uniform(B * T * d, -1, 1, 7);
      const rowsOf = (from: number, to: number) => {
        const out = new Float32Array(B * (to - from) * d);
        for (let b = 0; b < B; b++) out.set(x.subarray((b * T + from) * d, (b * T + to) * d), b * (to - from) * d);
        return out;
      };
      const full = ff.noGrad(() =>
        ff.tidy(() => {
          let h = ff.tensor(x, [B, T, d], dev());
          for (const b of blocks) h = b.forward(h);
          return h.toFloat32Array();
        }),
      );
      const run = (fused: boolean) => {
        const caches = blocks.map(() => new ff.nn.LayerKVCache());
        const rows: Float32Array[] = [];
        ff.noGrad(() => {
          rows.push(
            ff.tidy(() => {
              let h = ff.tensor(rowsOf(0, 2), [B, 2, d], dev());
              blocks.forEach((b, i) => (h = b.forward(h, caches[i])));
              return h.toFloat32Array();
            }),
          );
          for (let t = 2; t < T; t++) {
            rows.push(
              ff.tidy(() => {
                let h = ff.tensor(rowsOf(t, t + 1), [B, 1, d], dev());
                blocks.forEach((b, i) => {
                  const y = fused ? b.decodeStep(h, caches[i]) : null;
                  if (fused) expect(y).not.toBeNull();
                  h = y ?? b.forward(h, caches[i]);
                });
                return h.toFloat32Array();
              }),
            );
          }
        });
        // no reserve(): stores of 2 rows, grown to 4, 8, 16
        expect(caches[0].capacity).toBe(16);
        expect(caches[0].length).toBe(T);
        caches.forEach((cache) => cache.reset());
        return rows;
      };
      const [fused, ops] = [run(true), run(false)];
      const at = (rows: Float32Array[], b: number, t: number) => {
        const [chunk, i, n] = t < 2 ? [rows[0], t, 2] : [rows[t - 1], 0, 1];
        return chunk.subarray((b * n + i) * d, (b * n + i + 1) * d);
      };
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const ref = full.subarray((b * T + t) * d, (b * T + t + 1) * d);
          expect(relErr(at(fused, b, t), ref)).toBeLessThan(1e-5);
          expect(relErr(at(ops, b, t), ref)).toBeLessThan(1e-5);
        }
      }
      expect(relErr(at(fused, 0, T - 1), at(fused, 1, T - 1))).toBeGreaterThan(1e-2);
      for (const b of blocks) b.dispose();
    });
  }

  test('blocks the step does not cover run op by op: neural, performer, Fourier over fewer features; training with dropout', () => {
    const d = 16;
    for (const o of [
      { attention: 'neural' as const },
      { attention: 'performer' as const },
      { attention: 'fourier' as const, features: 4 },
    ]) {
      const b = new ff.nn.TransformerBlock(d, 2, {
        ...o,
        causal: true,
        device: device(),
        generator: new ff.Generator(1),
      });
      b.eval();
      expect(b.canDecodeFused).toBe(false);
      const cache = new ff.nn.LayerKVCache();
      ff.noGrad(() =>
        ff.tidy(() => {
          b.forward(ff.tensor(uniform(2 * d, -1, 1, 3), [1, 2, d], dev()), cache);
          expect(b.decodeStep(ff.tensor(uniform(d, -1, 1, 4), [1, 1, d], dev()), cache)).toBeNull();
        }),
      );
      expect(cache.length).toBe(2);
      cache.reset();
      b.dispose();
    }
    const b = new ff.nn.TransformerBlock(d, 2, { causal: true, dropout: 0.1, device: device() });
    expect(b.canDecodeFused).toBe(false); // training mode, dropout 0.1
    b.eval();
    expect(b.canDecodeFused).toBe(true);
    b.dispose();
    // a model mixing neural (op path) and dot blocks (fused) still equals its recomputed prefix
    const m = model({ attention: 'neural', neuralLayers: [0] });
    m.eval();
    const ids = stream(LM.context);
    const full = recomputed(m, ids);
    let fused: Float32Array[] = [];
    expect(fusedSteps(m, () => (fused = cached(m, ids, 3, true)))).toBe(LM.context - 3);
    ids.forEach((_, t) => expect(relErr(fused[t], full[t])).toBeLessThan(1e-5));
    m.dispose();
  });

  test('bad arguments of the native step and of decodeStep throw errors naming them', () => {
    const [d, H, FF, cap] = [8, 2, 12, 4];
    const b = new ff.nn.TransformerBlock(d, H, { causal: true, ffDim: FF, device: device() });
    b.eval();
    const cache = new ff.nn.LayerKVCache();
    ff.noGrad(() =>
      ff.tidy(() => {
        const x = ff.tensor(uniform(d, -1, 1, 1), [1, 1, d], dev());
        expect(() => b.decodeStep(x, cache)).toThrow(/cache: decodeStep continues a filled cache/);
        cache.reserve(cap);
        b.forward(ff.tensor(uniform(2 * d, -1, 1, 2), [1, 2, d], dev()), cache);
        expect(() => b.decodeStep(ff.tensor(uniform(2 * d, -1, 1, 3), [1, 2, d], dev()), cache)).toThrow(
          /x: expected one token per sequence \[B, 1, 8\], got \[1, 2, 8\]/,
        );
        const [k, v] = cache.stores(1, H, d / H, d / H, device(), 0);
        const native = decodeNative(x);
        const s = (t: ff.Tensor | null) => (t === null ? null : t.storage());
        const params = () => [
          s(b.ln1.weight),
          s(b.ln1.bias),
          s(b.attn.qkv.weight),
          s(b.attn.qkv.bias),
          s(b.attn.proj.weight),
          s(b.attn.proj.bias),
          s(b.attn.R),
          s(b.ln2.weight),
          s(b.ln2.bias),
          s(b.fc1.weight),
          s(b.fc1.bias),
          s(b.fc2.weight),
          s(b.fc2.bias),
        ];
        const args = (): Parameters<typeof native.decodeBlock> => [
          x.storage(),
          params(),
          k.storage(),
          v.storage(),
          [1, d, H, FF, k.shape[2], 2, 1, d / H],
          'fourier',
          'post',
          'relu',
          1e-5,
          1e-5,
          4,
          1e-6,
          false,
          0,
        ];
        const call = (i: number, value: unknown) => () => {
          const a = args() as unknown[];
          a[i] = value;
          return (native.decodeBlock as (...xs: unknown[]) => unknown)(...a);
        };
        const y = (native.decodeBlock as (...xs: unknown[]) => Storage)(...args());
        x.backend.free(y); // the arguments below differ from a valid call in one place each
        const ps = (i: number, value: Storage | null) => params().map((p, j) => (j === i ? value : p));
        const dims = (i: number, value: number) => args()[4].map((n, j) => (j === i ? value : n));
        expect(call(0, null)).toThrow(/^x: expected a tensor storage/);
        expect(call(0, k.storage())).toThrow(/^x: expected 8 elements, got 32/);
        expect(call(1, 'w')).toThrow(/^params: expected an array of 13 storages or nulls/);
        expect(call(1, params().slice(1))).toThrow(/^params: expected 13 entries, got 12/);
        expect(call(1, ps(2, null))).toThrow(/^params\[2\] \(qkv.weight\): expected a storage, got null/);
        expect(call(1, ps(6, null))).toThrow(/^params\[6\] \(R\): expected a storage, got null/);
        expect(call(1, ps(9, s(b.ln1.weight)))).toThrow(/^params\[9\] \(fc1.weight\): expected 96 elements, got 8/);
        expect(call(1, ps(10, 3 as unknown as Storage))).toThrow(/^params\[10\] \(fc1.bias\): expected a storage/);
        expect(call(1, ps(0, k.storage()))).toThrow(/^params\[0\] \(ln1.weight\): expected 8 elements, got 32/);
        expect(call(2, x.storage())).toThrow(/^kCache: expected 32 elements, got 8/);
        expect(call(3, k.storage())).toThrow(/^vCache: must not be the same storage as kCache/);
        expect(call(4, [1, d, H])).toThrow(/^dims: expected 8 integers \[B, C, H, FF, capacity, position, rH, rD\]/);
        expect(call(4, dims(5, cap))).toThrow(/^dims.position: the cache of capacity 4 is full \(position 4\)/);
        expect(call(4, dims(2, 3))).toThrow(/^dims.H: expected a divisor of C = 8, got 3/);
        expect(call(4, dims(6, 3))).toThrow(/^dims.rH: expected 1 or H = 2/);
        expect(call(4, dims(0, 0))).toThrow(/^dims.B: expected an integer >= 1, got 0/);
        expect(call(5, 'neural')).toThrow(/^attention: expected one of 'dot', 'fourier', got 'neural'/);
        expect(call(6, 'mid')).toThrow(/^norm: expected one of 'post', 'pre', got 'mid'/);
        expect(call(7, 'tanh')).toThrow(/^activation: expected one of 'relu', 'gelu', 'gelu_tanh', got 'tanh'/);
        expect(call(8, -1)).toThrow(/^lnEps1: expected a finite number >= 0/);
        expect(call(9, NaN)).toThrow(/^lnEps2: expected a finite number >= 0/);
        expect(call(10, 0)).toThrow(/^power: expected an integer in \[1, 64\]/);
        const odd = () =>
          (native.decodeBlock as (...xs: unknown[]) => unknown)(
            ...args().map((a, i) => (i === 10 ? 3 : i === 12 ? true : a)),
          );
        expect(odd).toThrow(/^power: stable: true needs an even power/);
        const nanR = ff.full([d / H], NaN, dev());
        expect(() =>
          x.backend.toArray(
            (native.decodeBlock as (...xs: unknown[]) => Storage)(
              ...args().map((a, i) => (i === 1 ? ps(6, nanR.storage()) : a)),
            ),
          ),
        ).toThrow(/R: must be finite, got nan/);
        expect(() => native.kvCacheWrite(k.storage(), x.storage(), [H, 2, d / H, cap, 3])).toThrow(
          /^dims.at: rows 3 .. 5 pass the cache's capacity 4/,
        );
        expect(() => native.kvCacheWrite(k.storage(), x.storage(), [H, 1, d / H, cap, 1, 0])).toThrow(
          /^dims: expected 5 integers \[BH, T, D, capacity, at\]/,
        );
        expect(() => native.kvCacheWrite(k.storage(), k.storage(), [H, cap, d / H, cap, 0])).toThrow(
          /^rows: must not be the cache's own storage/,
        );
      }),
    );
    expect(() => ff.tidy(() => b.decodeStep(ff.tensor(uniform(d, -1, 1, 1), [1, 1, d], dev()), cache))).toThrow(
      /decodeStep: incremental decoding runs without grad/,
    );
    cache.reset();
    b.dispose();
  });
});

const others = (['cuda-emu', 'cuda'] as ff.Device[]).filter(available);
const onCpu = device() === 'cpu' && others.length > 0 ? describe : describe.skip;

onCpu(`greedy tokens through the fused step, every backend (cpu, ${others.join(', ')})`, () => {
  test('the same tokens on every backend, fused and op by op, Fourier default and stable and dot, past the context', () => {
    for (const cfg of [
      { attention: 'fourier' as const },
      { attention: 'fourier' as const, stable: true },
      { attention: 'dot' as const, cutoffs: [6, 12] },
    ]) {
      const source = model(cfg, 3, 'cpu');
      const state = source.stateDict();
      const runs = ['cpu' as ff.Device, ...others].map((d) => {
        const m = new models.LanguageModel({ ...LM, ...cfg }, { device: d });
        m.loadStateDict(state);
        const o = { temperature: 0, maxNewTokens: LM.context + 4 };
        const out = [m.generate(stream(4), o).tokens, m.generate(stream(4), { ...o, fusedStep: false }).tokens];
        m.dispose();
        return out;
      });
      expect(runs[0][1]).toEqual(runs[0][0]);
      for (const r of runs.slice(1)) expect(r).toEqual(runs[0]);
      source.dispose();
    }
  });
});
