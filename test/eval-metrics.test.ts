// The evaluation metrics: the sliding-window plan against hand-written plans, perplexity against
// a direct window-by-window computation (batch 1), top-1/top-5 accuracy and loss on crafted
// logits through a real ImageLoader, head redundancy on a hand-computed example, and memory()
// unchanged after each evaluation.
import * as ff from '../lib';
import { ImageLoader } from '../lib/data/image-loader';
import type { ImageDataset } from '../lib/data/image-dataset';
import { LanguageModel, LanguageModelConfig, VisionTransformer } from '../lib/models';
import { evaluateAccuracy } from '../lib/train/accuracy';
import { headRedundancy } from '../lib/train/head-redundancy';
import { evaluatePerplexity, slidingWindows } from '../lib/train/perplexity';
import { device, uniform } from './helpers/compare';

const dev = () => ({ device: device() });

describe('slidingWindows', () => {
  test('10 tokens, context 4: the first window scores all 4 positions, later ones their last stride', () => {
    expect(slidingWindows(10, 4, 1)).toEqual([
      { start: 0, scoreFrom: 0 },
      { start: 1, scoreFrom: 3 },
      { start: 2, scoreFrom: 3 },
      { start: 3, scoreFrom: 3 },
      { start: 4, scoreFrom: 3 },
      { start: 5, scoreFrom: 3 },
    ]);
    // stride 2: targets 1-4, 5-6, 7-8, then a last window ending at token 9 scores target 9 only
    expect(slidingWindows(10, 4, 2)).toEqual([
      { start: 0, scoreFrom: 0 },
      { start: 2, scoreFrom: 2 },
      { start: 4, scoreFrom: 2 },
      { start: 5, scoreFrom: 3 },
    ]);
    expect(slidingWindows(9, 4, 4)).toEqual([
      { start: 0, scoreFrom: 0 },
      { start: 4, scoreFrom: 0 },
    ]);
    expect(slidingWindows(5, 4)).toEqual([{ start: 0, scoreFrom: 0 }]);
  });

  test('every token but the first is scored exactly once', () => {
    for (const [n, c, s] of [
      [37, 8, 1],
      [37, 8, 3],
      [37, 8, 8],
      [9, 8, 5],
    ]) {
      const scored: number[] = [];
      for (const w of slidingWindows(n, c, s)) for (let t = w.scoreFrom; t < c; t++) scored.push(w.start + t + 1);
      expect(scored).toEqual(Array.from({ length: n - 1 }, (_, i) => i + 1));
    }
  });

  test('bad arguments are named', () => {
    expect(() => slidingWindows(10, 4, 5)).toThrow(/stride: expected at most context 4/);
    expect(() => slidingWindows(4, 4)).toThrow(/numTokens: .* needs at least 5 tokens/);
    expect(() => slidingWindows(10, 0)).toThrow(/context: expected a positive integer/);
  });
});

const LM: Omit<LanguageModelConfig, 'attention'> = {
  vocabSize: 12,
  dModel: 8,
  numLayers: 1,
  numHeads: 2,
  ffDim: 16,
  context: 4,
  dropout: 0.1,
  cutoffs: [5],
  tieWeights: true,
};

describe(`evaluatePerplexity on ${device()}`, () => {
  for (const attention of ['fourier', 'dot'] as const) {
    test(`${attention}: batched windows give the per-window nll of batch 1, and memory() is unchanged`, () => {
      const model = new LanguageModel({ ...LM, attention }, { ...dev(), generator: new ff.Generator(4) });
      const tokens = Int32Array.from([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]);
      // directly: the windows of stride 2 written by hand, one forward each, eval mode
      model.eval();
      let total = 0;
      for (const [start, scoreFrom] of [
        [0, 0],
        [2, 2],
        [4, 2],
        [5, 3],
      ]) {
        total += ff.tidy(() => {
          const x = ff.tensor(Array.from(tokens.subarray(start, start + 4)), [1, 4], dev());
          const y = ff.tensor(Array.from(tokens.subarray(start + 1, start + 5)), [1, 4], dev());
          return model
            .loss(x, y, { reduction: 'none' })
            .toFloat32Array()
            .subarray(scoreFrom)
            .reduce((s, v) => s + v, 0);
        });
      }
      model.train();
      const before = ff.memory();
      const progress: [number, number][] = [];
      const r = evaluatePerplexity(model, tokens, {
        context: 4,
        stride: 2,
        batchSize: 3,
        onProgress: (d, t) => progress.push([d, t]),
      });
      expect(ff.memory()).toEqual(before);
      expect(model.training).toBe(true);
      expect(r.tokens).toBe(9);
      expect(r.nll).toBeCloseTo(total / 9, 5);
      expect(r.perplexity).toBeCloseTo(Math.exp(total / 9), 4);
      expect(progress).toEqual([
        [3, 4],
        [4, 4],
      ]);
      // maxTokens evaluates a prefix
      const prefix = evaluatePerplexity(model, tokens.subarray(0, 7), { context: 4, stride: 1 });
      expect(evaluatePerplexity(model, tokens, { context: 4, stride: 1, maxTokens: 7, batchSize: 2 }).nll).toBeCloseTo(
        prefix.nll,
        5,
      );
      expect(() => evaluatePerplexity(model, tokens, { context: 4, maxTokens: 0 })).toThrow(/opts\.maxTokens/);
      model.dispose();
    });
  }
});

/** A dataset of 1x1xK "images" whose pixels are the logits a pass-through classifier returns (bytes / 255). */
function logitDataset(rows: number[][], labels: number[]): ImageDataset {
  const K = rows[0].length;
  const bytes = (i: number) => Uint8Array.from(rows[i], (v) => Math.round(v * 255));
  return {
    name: 'crafted',
    length: rows.length,
    numClasses: K,
    channels: 1,
    height: 1,
    width: K,
    classNames: Array.from({ length: K }, (_, i) => `c${i}`),
    get: async (i: number) => ({ pixels: Float32Array.from(bytes(i), (v) => v / 255), label: labels[i] }),
    decode: async (i: number) => ({ image: { data: bytes(i), width: K, height: 1, channels: 1 }, label: labels[i] }),
  };
}

/** Returns its images [B, 1, 1, K] as logits [B, K]. */
class PassThrough extends ff.nn.Module {
  get device(): ff.Device {
    return device();
  }

  forward(images: ff.Tensor): ff.Tensor {
    return ff.reshape(images, [images.shape[0], images.shape[3]]);
  }
}

describe(`evaluateAccuracy on ${device()}`, () => {
  // 7 classes; the label's rank in each row: 0, 2, 4, 5, 6, and a tie (rank 1: class 0 scores the same)
  const rows = [
    [0.1, 0.9, 0.2, 0.3, 0.0, 0.4, 0.5],
    [0.6, 0.1, 0.2, 0.5, 0.7, 0.0, 0.3],
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],
    [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    [0.8, 0.2, 0.8, 0.1, 0.0, 0.3, 0.4],
  ];
  const labels = [1, 3, 4, 5, 0, 2];
  // the loader reads bytes: the logits are the rows rounded to multiples of 1/255
  const nll = (row: number[], label: number) => {
    const q = row.map((v) => Math.round(v * 255) / 255);
    return Math.log(q.reduce((s, v) => s + Math.exp(v), 0)) - q[label];
  };

  test('top-1, top-5 and the mean cross-entropy of crafted logits; maxBatches; mode and memory restored', async () => {
    const loader = new ImageLoader(logitDataset(rows, labels), { batchSize: 4 });
    const model = new PassThrough();
    const before = ff.memory();
    const progress: number[] = [];
    const r = await evaluateAccuracy(model, loader, { onProgress: (d) => progress.push(d) });
    expect(ff.memory()).toEqual(before);
    expect(model.training).toBe(true);
    expect(r.count).toBe(6);
    expect(r.top1).toBeCloseTo(1 / 6, 10);
    expect(r.top5).toBeCloseTo(4 / 6, 10); // ranks 0, 2, 4 and the tie at rank 1
    expect(r.loss).toBeCloseTo(rows.reduce((s, row, i) => s + nll(row, labels[i]), 0) / 6, 5);
    expect(progress).toEqual([1, 2]);
    const first = await evaluateAccuracy(model, loader, { maxBatches: 1 });
    expect(first.count).toBe(4);
    expect(first.top5).toBeCloseTo(3 / 4, 10);
  });

  test('a tiny vision transformer over a loader: every image counted, memory unchanged', async () => {
    const n = 5;
    const ds: ImageDataset = {
      name: 'tiny',
      length: n,
      numClasses: 3,
      channels: 1,
      height: 4,
      width: 4,
      classNames: ['a', 'b', 'c'],
      get: async (i: number) => ({ pixels: uniform(16, 0, 1, 20 + i), label: i % 3 }),
      decode: async (i: number) => ({
        image: { data: Uint8Array.from(uniform(16, 0, 255, 20 + i)), width: 4, height: 4, channels: 1 },
        label: i % 3,
      }),
    };
    const model = new VisionTransformer(
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
        dropPath: 0.1,
        attention: 'fourier',
      },
      { ...dev(), generator: new ff.Generator(1) },
    );
    const before = ff.memory();
    const r = await evaluateAccuracy(model, new ImageLoader(ds, { batchSize: 2 }));
    expect(ff.memory()).toEqual(before);
    expect(r.count).toBe(n);
    expect(r.top5).toBe(1); // 3 classes
    expect(Number.isFinite(r.loss)).toBe(true);
    model.dispose();
  });
});

describe(`headRedundancy on ${device()}`, () => {
  test('a hand-computed example: per-layer mean and population std of pairwise Frobenius distances', () => {
    // layer 0: one example, three heads; distances sqrt(0.5), sqrt(0.5), 1
    const layer0 = ff.tensor([1, 0, 0.5, 0.5, /**/ 1, 0, 0, 1, /**/ 0.5, 0.5, 0.5, 0.5], [1, 3, 2, 2], dev());
    // layer 1: two examples, two heads; distances 0 and 2 (sqrt(4 x 1))
    const layer1 = ff.tensor([1, 0, 0, 1, /**/ 1, 0, 0, 1, /**/ 1, 0, 1, 0, /**/ 0, 1, 0, 1], [2, 2, 2, 2], dev());
    const r = headRedundancy([layer0, layer1]);
    const m0 = (2 * Math.SQRT1_2 + 1) / 3;
    const s0 = Math.sqrt((2 * (Math.SQRT1_2 - m0) ** 2 + (1 - m0) ** 2) / 3);
    expect(r.perLayer[0].mean).toBeCloseTo(m0, 6);
    expect(r.perLayer[0].std).toBeCloseTo(s0, 6);
    expect(r.perLayer[1]).toEqual({ mean: 1, std: 1 });
    expect(r.mean).toBeCloseTo((m0 + 1) / 2, 6);
    expect(r.std).toBeCloseTo((s0 + 1) / 2, 6);
    expect(() => headRedundancy([ff.tensor([1, 0, 0, 1], [1, 1, 2, 2], dev())])).toThrow(
      /maps\[0\]: head redundancy needs at least 2 heads/,
    );
    expect(() => headRedundancy([layer0, ff.tensor([1, 2], [1, 2], dev())])).toThrow(
      /maps\[1\]: expected attention maps \[B, H, N, N\]/,
    );
    expect(() => headRedundancy([])).toThrow(/maps: expected a non-empty array/);
    layer0.dispose();
    layer1.dispose();
  });

  test("a language model's maps: one entry per layer, identical heads give 0", () => {
    const model = new LanguageModel({ ...LM, numLayers: 2, attention: 'dot', dropout: 0 }, dev());
    const x = ff.tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 4], dev());
    const maps = model.attentionMaps(x);
    const r = headRedundancy(maps);
    expect(r.perLayer).toHaveLength(2);
    expect(r.mean).toBeGreaterThan(0);
    maps.forEach((m) => m.dispose());
    // two copies of one head's maps are at distance 0
    const same = ff.tensor([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [1, 2, 2, 2], dev());
    expect(headRedundancy([same])).toEqual({ mean: 0, std: 0, perLayer: [{ mean: 0, std: 0 }] });
    same.dispose();
    x.dispose();
    model.dispose();
  });
});
