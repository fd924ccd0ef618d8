// Text generation: the key-value cache against recomputing the whole prefix (the language model
// with Fourier and dot attention, full and adaptive softmax, post- and pre-LN; blocks with
// stable Fourier attention), the window sliding past the context, the sampler's rules and
// distribution, one checkpoint giving the same tokens on every backend, and bad input.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ff from '../lib';
import * as models from '../lib/models';
import { resolveSampling, sampleToken } from '../lib/models/sampling';
import { loadCheckpoint, saveCheckpoint } from '../lib/train/checkpoint';
import { available, device, relErr, uniform } from './helpers/compare';

const dev = () => ({ device: device() });

const LM: models.LanguageModelConfig = {
  vocabSize: 20,
  dModel: 16,
  numLayers: 2,
  numHeads: 2,
  ffDim: 32,
  context: 10,
  dropout: 0.1,
  attention: 'fourier',
  cutoffs: [],
  tieWeights: true,
};

/**
 * A model whose weights are spread far beyond the init's N(0, 0.02), so that attention rows are
 * far from uniform and the logits far apart: each parameter uniform in [-a, a] (a = 0.4), R in [0.5, 2.5].
 */
function model(cfg: Partial<models.LanguageModelConfig>, seed = 1, on = device()): models.LanguageModel {
  const m = new models.LanguageModel({ ...LM, ...cfg }, { device: on, generator: new ff.Generator(seed) });
  ff.noGrad(() =>
    m.namedParameters().forEach(([name, p], i) => {
      const u = uniform(p.size, -0.4, 0.4, 1000 * seed + i);
      const values = name.endsWith('.R') ? u.map((x) => 1.5 + 2.5 * x) : u;
      p.backend.uploadInto(p.storage(), values);
    }),
  );
  return m;
}

/** A deterministic token stream. */
const stream = (n: number, V = 20) => Array.from({ length: n }, (_, i) => (7 * i + 3 + ((i * i) % 5)) % V);

/** Log-probabilities after each of ids, recomputed from the whole prefix each time (no cache). */
function recomputed(m: models.LanguageModel, ids: number[]): Float32Array[] {
  return ids.map((_, t) =>
    ff.noGrad(() =>
      ff.tidy(() => m.logProbs(ff.tensor(ids.slice(0, t + 1), [1, t + 1], dev()), { last: true }).toFloat32Array()),
    ),
  );
}

/** The same with a cache: the first `prefill` tokens in one causal pass, then one token at a time. */
function cached(m: models.LanguageModel, ids: number[], prefill: number): Float32Array[] {
  const cache = new ff.nn.KVCache(m.blocks.length);
  const out: Float32Array[] = [];
  ff.noGrad(() => {
    const first = ff.tidy(() =>
      m.logProbs(ff.tensor(ids.slice(0, prefill), [1, prefill], dev()), { cache }).toFloat32Array(),
    );
    const V = m.config.vocabSize;
    for (let t = 0; t < prefill; t++) out.push(first.slice(t * V, (t + 1) * V));
    for (let t = prefill; t < ids.length; t++) {
      out.push(ff.tidy(() => m.logProbs(ff.tensor([ids[t]], [1, 1], dev()), { cache }).toFloat32Array()));
    }
  });
  expect(cache.length).toBe(ids.length);
  cache.dispose();
  return out;
}

describe(`key-value cache on ${device()}`, () => {
  const variants = [
    { name: 'fourier, full softmax', cfg: { attention: 'fourier' as const } },
    {
      name: 'fourier, adaptive softmax, pre-LN, radius per head',
      cfg: {
        attention: 'fourier' as const,
        cutoffs: [6, 12],
        divVal: 2,
        norm: 'pre' as const,
        radius: 'head' as const,
      },
    },
    { name: 'dot, full softmax', cfg: { attention: 'dot' as const } },
    { name: 'dot, adaptive softmax, untied', cfg: { attention: 'dot' as const, cutoffs: [6, 12], tieWeights: false } },
  ];
  for (const v of variants) {
    test(`${v.name}: cached decoding gives the log-probabilities of recomputing the whole prefix (1e-5)`, () => {
      const m = model(v.cfg);
      m.eval();
      const ids = stream(LM.context);
      const full = recomputed(m, ids);
      for (const prefill of [1, 4]) {
        const inc = cached(m, ids, prefill);
        inc.forEach((row, t) => expect(relErr(row, full[t])).toBeLessThan(1e-5));
      }
      // the rows differ from position to position: the comparison is not between constants
      expect(relErr(full[3], full[4])).toBeGreaterThan(1e-2);
      m.dispose();
    });
  }

  const blockCases = [
    { attention: 'fourier' as const, stable: false },
    { attention: 'fourier' as const, stable: true },
    { attention: 'dot' as const, stable: false },
  ];
  for (const c of blockCases) {
    test(`transformer blocks, ${c.attention}${c.stable ? ' stable' : ''}: each cached row equals the causal pass over the prefix (1e-5)`, () => {
      const [T, d] = [9, 16];
      const blocks = [0, 1].map(
        (i) =>
          new ff.nn.TransformerBlock(d, 2, {
            attention: c.attention,
            stable: c.stable,
            causal: true,
            norm: i === 0 ? 'post' : 'pre',
            ffDim: 32,
            radiusInit: 1.5,
            device: device(),
            generator: new ff.Generator(5 + i),
          }),
      );
      // q and k spread so that x = R (q - k) stays mostly within sinc's first lobe (|x| < pi):
      // near a zero of sinc, log K's sensitivity to q and k is unbounded, and the rounding of a
      // one-row product (the cached step's GEMV) against a many-row one (the prefix's GEMM)
      // alone would move a stable (eps-free, near one-hot) row by more than 1e-5
      ff.noGrad(() =>
        blocks.forEach((b, i) => {
          const qkv = b.attn.qkv.weight;
          qkv.backend.uploadInto(qkv.storage(), uniform(qkv.size, -0.3, 0.3, 40 + i));
        }),
      );
      const x = uniform(T * d, -1, 1, 7);
      const full = ff.noGrad(() =>
        ff.tidy(() => {
          let h = ff.tensor(x, [1, T, d], dev());
          for (const b of blocks) h = b.forward(h);
          return h.toFloat32Array();
        }),
      );
      const caches = blocks.map(() => new ff.nn.LayerKVCache());
      const rows: number[] = [];
      ff.noGrad(() => {
        for (const [from, to] of [[0, 3], ...Array.from({ length: T - 3 }, (_, i) => [3 + i, 4 + i])]) {
          rows.push(
            ...ff.tidy(() => {
              let h = ff.tensor(x.slice(from * d, to * d), [1, to - from, d], dev());
              blocks.forEach((b, i) => (h = b.forward(h, caches[i])));
              return h.toFloat32Array();
            }),
          );
        }
      });
      for (let t = 0; t < T; t++)
        expect(relErr(rows.slice(t * d, (t + 1) * d), full.slice(t * d, (t + 1) * d))).toBeLessThan(1e-5);
      for (const cache of caches) cache.reset();
      for (const b of blocks) b.dispose();
    });
  }

  test('the cache refuses what it cannot do, with errors that name the argument', () => {
    const m = model({});
    const cache = new ff.nn.KVCache(2);
    ff.noGrad(() =>
      ff.tidy(() => {
        m.logProbs(ff.tensor(stream(4), [1, 4], dev()), { cache });
        expect(() => m.logProbs(ff.tensor(stream(2), [1, 2], dev()), { cache })).toThrow(
          /x: a causal layer with 4 cached tokens takes one new token at a time, got 2/,
        );
        const other = new ff.nn.KVCache(2);
        expect(m.logProbs(ff.tensor(stream(7), [1, 7], dev()), { cache: other }).shape).toEqual([1, 7, 20]);
        expect(other.length).toBe(7);
        other.dispose();
        for (let t = 4; t < LM.context; t++) m.logProbs(ff.tensor([1], [1, 1], dev()), { cache });
        expect(() => m.logProbs(ff.tensor([1], [1, 1], dev()), { cache })).toThrow(
          /ids: 1 tokens after the 10 cached pass the context of 10/,
        );
        expect(() => m.logProbs(ff.tensor([1], [1, 1], dev()), { cache: new ff.nn.KVCache(3) })).toThrow(
          /opts\.cache: expected a KVCache of 2 layers/,
        );
      }),
    );
    expect(() => ff.tidy(() => m.logProbs(ff.tensor([1], [1, 1], dev()), { cache: new ff.nn.KVCache(2) }))).toThrow(
      /KVCache: incremental decoding runs without grad/,
    );
    cache.dispose();
    m.dispose();
  });
});

describe(`LanguageModel.generate on ${device()}`, () => {
  test('greedy decoding with the cache equals recomputing the window at every token, past the context; eval mode, no leak', () => {
    const m = model({});
    m.train();
    const before = ff.memory().numTensors;
    const prompt = stream(4);
    for (const shift of [1, 3]) {
      const a = m.generate(prompt, { temperature: 0, maxNewTokens: 16, shift });
      const b = m.generate(prompt, { temperature: 0, maxNewTokens: 16, shift, useCache: false });
      expect(a.tokens).toHaveLength(16);
      expect(a.tokens).toEqual(b.tokens);
      expect(new Set(a.tokens).size).toBeGreaterThan(1);
      // 4 + 15 tokens read (the 16th is only drawn) through a window of 10: 9 tokens leave it,
      // one per token from the 11th on (shift 1), or 3 at a time when it passes 10 (shift 3)
      expect(a.windowDropped).toBe(9);
      expect(a.promptDropped).toBe(0);
    }
    // greedy is the argmax of the recomputed prefix at every step, before the context fills
    const g = m.generate(prompt, { temperature: 0, maxNewTokens: 5 });
    expect(m.training).toBe(true);
    m.eval();
    const full = recomputed(m, [...prompt, ...g.tokens]);
    g.tokens.forEach((id, i) =>
      expect(id).toBe(
        models.sampleToken(full[prompt.length - 1 + i], resolveSampling({ temperature: 0 }), new ff.Generator()),
      ),
    );
    expect(ff.memory().numTensors).toBe(before);
    m.dispose();
  });

  test('sampling: a seed repeats its tokens, another seed draws others; stop ids end it; the prompt past the context is cut', () => {
    const m = model({ attention: 'dot', cutoffs: [6, 12] });
    const opts = { temperature: 1, topK: 8, topP: 0.9, maxNewTokens: 24 };
    const a = m.generate(stream(3), { ...opts, seed: 1 });
    expect(m.generate(stream(3), { ...opts, seed: 1 }).tokens).toEqual(a.tokens);
    expect(m.generate(stream(3), { ...opts, seed: 1, useCache: false }).tokens).toEqual(a.tokens);
    expect(m.generate(stream(3), { ...opts, seed: 2 }).tokens).not.toEqual(a.tokens);
    const g = new ff.Generator(1);
    expect(m.generate(stream(3), { ...opts, generator: g }).tokens).toEqual(a.tokens);
    expect(g.getState().offset).toBe(24); // one Philox counter (two uint32) per draw

    const stop = a.tokens[5];
    const first = a.tokens.indexOf(stop);
    const stopped = m.generate(stream(3), { ...opts, seed: 1, stopIds: [stop] });
    expect(stopped.tokens).toEqual(a.tokens.slice(0, first + 1));
    expect(stopped.stoppedBy).toBe('stop');
    expect(a.stoppedBy).toBe('length');

    const streamed: number[] = [];
    const long = m.generate(stream(25), { temperature: 0, maxNewTokens: 3, onToken: (id) => streamed.push(id) });
    expect(long.promptDropped).toBe(15);
    expect(long.tokens).toEqual(m.generate(stream(25).slice(15), { temperature: 0, maxNewTokens: 3 }).tokens);
    expect(streamed).toEqual(long.tokens);
    m.dispose();
  });

  test('bad input throws an error naming the argument', () => {
    const m = model({});
    const gen =
      (prompt: ArrayLike<number>, o: models.GenerateOptions = {}) =>
      () =>
        m.generate(prompt, o);
    expect(gen([])).toThrow(/promptIds: the prompt is empty; expected at least one token id/);
    expect(gen([1, 20])).toThrow(/promptIds\[1\]: expected an integer in \[0, 19\], got 20/);
    expect(gen([1.5])).toThrow(/promptIds\[0\]/);
    expect(gen('abc' as unknown as number[])).toThrow(/promptIds: expected an array of token ids/);
    expect(gen([1], { topK: 0 })).toThrow(/topK: expected a positive integer .* got 0/);
    expect(gen([1], { topP: 0 })).toThrow(/topP: expected a probability in \(0, 1\]/);
    expect(gen([1], { topP: 1.5 })).toThrow(/topP: expected a probability in \(0, 1\]/);
    expect(gen([1], { temperature: -1 })).toThrow(/temperature: expected a finite number >= 0/);
    expect(gen([1], { maxNewTokens: 0 })).toThrow(/maxNewTokens: expected an integer in \[1, inf\]/);
    expect(gen([1], { shift: 11 })).toThrow(/shift: expected an integer in \[1, 10\]/);
    expect(gen([1], { stopIds: [99] })).toThrow(/stopIds\[0\]: expected an integer in \[0, 19\]/);
    expect(gen([1], { seed: -1 })).toThrow(/seed: expected an integer in \[0, 2\^53\)/);
    m.dispose();
  });
});

describe('sampling rules', () => {
  const logp = (p: number[]) => p.map(Math.log);
  const draw = (scores: number[], o: models.SamplingOptions, n: number, seed = 3) => {
    const g = new ff.Generator(seed);
    const r = resolveSampling(o);
    const counts = new Array(scores.length).fill(0);
    for (let i = 0; i < n; i++) counts[sampleToken(scores, r, g)]++;
    return counts.map((c) => c / n);
  };

  test('greedy takes the highest score (the lower id among equals) and draws nothing', () => {
    const g = new ff.Generator(1);
    expect(sampleToken([0.1, 3, -1, 3], resolveSampling({ temperature: 0 }), g)).toBe(1);
    expect(g.getState().offset).toBe(0);
    expect(sampleToken([0.1, 3, -1, 2], resolveSampling({ topK: 1 }), g)).toBe(1);
  });

  test('the draws follow softmax(scores / T), cut to the top k and to the nucleus', () => {
    const p = [0.1, 0.45, 0.05, 0.3, 0.1];
    const n = 20000;
    const near = (got: number[], want: number[]) =>
      got.forEach((x, i) => expect(Math.abs(x - want[i])).toBeLessThan(0.015));
    near(draw(logp(p), {}, n), p);
    // T = 2: weights p^(1/2), renormalised
    const sq = p.map(Math.sqrt);
    near(
      draw(logp(p), { temperature: 2 }, n),
      sq.map((x) => x / sq.reduce((a, b) => a + b)),
    );
    // top-2: ids 1 and 3 only
    near(draw(logp(p), { topK: 2 }, n), [0, 0.6, 0, 0.4, 0]);
    // nucleus 0.7: 0.45 + 0.3 reaches it, so ids 1 and 3 again; 0.8 adds the first of the 0.1s (the lower id)
    near(draw(logp(p), { topP: 0.7 }, n), [0, 0.6, 0, 0.4, 0]);
    near(draw(logp(p), { topP: 0.8 }, n), [0.1 / 0.85, 0.45 / 0.85, 0, 0.3 / 0.85, 0]);
    // top-k then top-p on what top-k kept: top-3 = {1, 3, 0}; 0.6 of it is reached by 0.45 + 0.3
    near(draw(logp(p), { topK: 3, topP: 0.6 }, n), [0, 0.6, 0, 0.4, 0]);
    // logits shifted by a constant draw the same tokens, seed for seed
    expect(
      draw(
        logp(p).map((x) => x + 5),
        { topP: 0.9 },
        500,
      ),
    ).toEqual(draw(logp(p), { topP: 0.9 }, 500));
  });

  test('the nucleus of a large vocabulary: one dominant token, or equal weights cut by id', () => {
    const V = 5000;
    const scores = Array.from({ length: V }, (_, i) => (i === 17 ? 0 : -12 - (i % 7)));
    expect(draw(scores, { topP: 0.5 }, 50)[17]).toBe(1);
    const flat = draw(new Array(V).fill(-1), { topP: 0.5 }, 300);
    expect(flat.slice(V / 2).every((x) => x === 0)).toBe(true);
    expect(flat.slice(0, V / 2).filter((x) => x > 0).length).toBeGreaterThan(200);
  });
});

const onCpu = device() === 'cpu' ? describe : describe.skip;
const others = (['cuda-emu', 'cuda'] as ff.Device[]).filter(available);

onCpu(`one checkpoint, every backend (cpu, ${others.join(', ')})`, () => {
  test('a fixed seed gives the same tokens on every backend, greedy and sampled, with and without the cache', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-generate-'));
    const file = path.join(dir, 'model.safetensors');
    try {
      for (const cfg of [{ attention: 'fourier' as const }, { attention: 'dot' as const, cutoffs: [6, 12] }]) {
        const source = model(cfg, 3, 'cpu');
        saveCheckpoint(file, { model: source, step: 0 });
        source.dispose();
        const runs = ['cpu' as ff.Device, ...others].map((d) => {
          const m = new models.LanguageModel({ ...LM, ...cfg }, { device: d });
          loadCheckpoint(file, { model: m, generator: new ff.Generator() });
          const out = [
            m.generate(stream(4), { temperature: 0, maxNewTokens: 14 }).tokens,
            m.generate(stream(4), { temperature: 0.8, topK: 10, topP: 0.95, seed: 7, maxNewTokens: 14 }).tokens,
            m.generate(stream(4), { temperature: 1, seed: 8, maxNewTokens: 14, useCache: false }).tokens,
          ];
          m.dispose();
          return out;
        });
        for (const r of runs.slice(1)) expect(r).toEqual(runs[0]);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
