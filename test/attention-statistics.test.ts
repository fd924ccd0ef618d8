// MultiHeadAttention.attentionStatistics against the float64 reference attention maps (row mass,
// rows under eps, entropy, largest weight), the models' per-layer statistics, the trainer's
// metrics.jsonl records and its underflow warning, and the results' attention table.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import * as ff from '../lib';
import { attentionMapRef } from '../lib/reference/attention-maps';
import { readMetrics } from '../lib/train/metrics-log';
import { attentionTable, RunResult } from '../lib/train/results-table';
import { train } from '../lib/train/trainer';
import { device, uniform } from './helpers/compare';

const dev = () => ({ device: device() });

/** Row statistics of reference maps [B, H, N, N] (rows of the eps form sum to the row mass). */
function refStats(P: Float64Array, N: number, causal: boolean, eps: number | null) {
  const rows = P.length / N;
  let mass = 0,
    under = 0,
    ent = 0,
    norm = 0,
    normRows = 0,
    top = 0;
  for (let r = 0; r < rows; r++) {
    const n = causal ? (r % N) + 1 : N;
    const w = Array.from(P.subarray(r * N, r * N + n));
    const m = w.reduce((a, b) => a + b, 0);
    mass += m;
    // m = S / (S + eps) < 1/2 exactly when S < eps
    if (eps !== null && m < 0.5) under += 1;
    const h = -w.reduce((a, x) => a + (x > 0 ? (x / m) * Math.log(x / m) : 0), 0);
    ent += h;
    top += Math.max(...w) / m;
    if (n > 1) {
      norm += h / Math.log(n);
      normRows += 1;
    }
  }
  return { mass: mass / rows, under: under / rows, entropy: ent / rows, normalized: norm / normRows, top: top / rows };
}

describe(`MultiHeadAttention.attentionStatistics on ${device()}`, () => {
  const cases = [
    { attention: 'fourier', causal: true, stable: false, radiusInit: 0.5, features: undefined },
    // R 3 over Dh 8: most rows fall under eps
    { attention: 'fourier', causal: false, stable: false, radiusInit: 3, features: undefined },
    { attention: 'fourier', causal: true, stable: true, radiusInit: 3, features: undefined },
    { attention: 'fourier', causal: true, stable: false, radiusInit: 2, features: 1 },
    { attention: 'dot', causal: true, stable: false, radiusInit: 1, features: undefined },
    { attention: 'dot', causal: false, stable: false, radiusInit: 1, features: undefined },
    { attention: 'neural', causal: true, stable: false, radiusInit: 1, features: undefined },
    { attention: 'neural', causal: false, stable: false, radiusInit: 1, features: undefined },
  ] as const;
  for (const c of cases) {
    test(`${JSON.stringify(c)}: equal to the statistics of the reference map`, () => {
      const [B, N, C, H] = [2, 7, 16, 2];
      const mha = new ff.nn.MultiHeadAttention(C, H, {
        ...dev(),
        ...c,
        radius: 'head-feature',
        generator: new ff.Generator(7),
      });
      const xv = uniform(B * N * C, -2, 2, 5);
      const before = ff.memory().numTensors;
      const x = ff.tensor(xv, [B, N, C], dev());
      const s = mha.attentionStatistics(x);
      x.dispose();
      expect(ff.memory().numTensors).toBe(before);
      const ref = attentionMapRef(ff.reference.refArray(xv, [B, N, C]), ff.reference.refParams(mha.stateDict()), {
        numHeads: H,
        attention: c.attention,
        causal: c.causal,
        stable: c.stable,
        features: c.features,
      });
      const r = refStats(ref.data as Float64Array, N, c.causal, c.attention === 'fourier' && !c.stable ? 1e-6 : null);
      expect(s.kind).toBe(c.attention);
      expect(s.rows).toBe(B * H * N);
      expect(s.entropy).toBeCloseTo(r.entropy, 4);
      expect(s.normalizedEntropy).toBeCloseTo(r.normalized, 4);
      expect(s.maxWeight).toBeCloseTo(r.top, 4);
      if (c.attention !== 'fourier') {
        expect([s.underflow, s.rowMass, s.radius]).toEqual([null, null, null]);
      } else {
        expect(s.rowMass as number).toBeCloseTo(c.stable ? 1 : r.mass, 4);
        if (!c.stable) expect(s.underflow).toBeCloseTo(r.under, 10);
        expect(s.radius).toEqual({
          mean: Math.fround(c.radiusInit),
          min: Math.fround(c.radiusInit),
          max: Math.fround(c.radiusInit),
        });
      }
      if (c.radiusInit === 3 && !c.stable) expect(s.underflow as number).toBeGreaterThan(0.5);
      mha.dispose();
    });
  }

  test('rows are taken in chunks: a long sequence gives the statistics of its parts', () => {
    // 2^22 scores per chunk: B 1, H 1, N 2100 makes two chunks of rows
    const [N, C] = [2100, 4];
    const mha = new ff.nn.MultiHeadAttention(C, 1, {
      ...dev(),
      causal: true,
      radiusInit: 0.7,
      generator: new ff.Generator(2),
    });
    const xv = uniform(N * C, -1, 1, 9);
    ff.tidy(() => {
      const s = mha.attentionStatistics(ff.tensor(xv, [1, N, C], dev()));
      expect(s.rows).toBe(N);
      expect(s.underflow).toBe(0);
      // the first row sees only itself: K = 1, entropy 0; later rows spread their weight
      expect(s.entropy).toBeGreaterThan(1);
      expect(s.normalizedEntropy).toBeGreaterThan(0.5);
    });
    mha.dispose();
  });
});

describe(`models' attention statistics and their log on ${device()}`, () => {
  const lmConfig = (attention: ff.nn.AttentionKind, radiusInit: number): ff.models.LanguageModelConfig => ({
    vocabSize: 30,
    dModel: 16,
    numLayers: 2,
    numHeads: 2,
    ffDim: 16,
    context: 8,
    dropout: 0,
    attention,
    radiusInit,
    cutoffs: [],
    tieWeights: true,
  });

  test('LanguageModel: one entry per layer, matching the layer called alone', () => {
    const model = new ff.models.LanguageModel(lmConfig('fourier', 1), { ...dev(), generator: new ff.Generator(1) });
    ff.tidy(() => {
      const ids = ff.tensor(
        Float32Array.from({ length: 16 }, (_, i) => (i * 7) % 30),
        [2, 8],
        dev(),
      );
      const stats = model.attentionStatistics(ids);
      expect(stats.map((s) => s.kind)).toEqual(['fourier', 'fourier']);
      const maps = model.attentionMaps(ids);
      // the eps form: each map row sums to its row mass
      const P = maps[0].toFloat32Array();
      let mass = 0;
      for (let r = 0; r < P.length / 8; r++) for (let j = 0; j < 8; j++) mass += P[r * 8 + j];
      expect(stats[0].rowMass as number).toBeCloseTo(mass / (P.length / 8), 4);
    });
    model.dispose();
  });

  test('the trainer logs the statistics with each validation and warns once when a layer underflows', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-stats-'));
    // R 40 over Dh 8: every off-diagonal K is tiny, so nearly every row is under eps
    const model = new ff.models.LanguageModel(lmConfig('fourier', 40), { ...dev(), generator: new ff.Generator(1) });
    const opt = new ff.optim.Adam(model.parameters(), { lr: 1e-3 });
    const ids = ff.tensor(
      Float32Array.from({ length: 16 }, (_, i) => (i * 5) % 30),
      [2, 8],
      dev(),
    );
    const lines: string[] = [];
    const stream = Object.assign(
      new Writable({
        write: (chunk: Buffer, _e: string, cb: () => void) => {
          lines.push(String(chunk));
          cb();
        },
      }),
      { isTTY: false },
    );
    try {
      await train(
        {
          model,
          itemsName: 'tokens',
          batch: () => null,
          items: () => 16,
          loss: () => model.loss(ids, ids),
          validate: () => ({ perplexity: 1 }),
          diagnose: () => model.attentionStatistics(ids),
          metric: 'perplexity',
          higherIsBetter: false,
        },
        {
          runDir: dir,
          label: 'fourier',
          config: {},
          optimizer: opt,
          generator: new ff.Generator(1),
          steps: 4,
          warmupSteps: 0,
          clip: 0,
          evalEvery: 2,
          logEvery: 2,
          progress: { quiet: true, stream },
        },
      );
      const valid = readMetrics(path.join(dir, 'metrics.jsonl')).filter((r) => r.type === 'valid');
      expect(valid.length).toBe(2);
      for (const r of valid) {
        if (r.type !== 'valid') continue;
        expect(r.attentionStats?.length).toBe(2);
        expect(r.attentionStats?.[0].underflow as number).toBeGreaterThan(0.5);
      }
      const warnings = lines
        .join('')
        .split('\n')
        .filter((l) => /warning: attention layer/.test(l));
      expect(warnings.length).toBe(2); // layers 0 and 1, each once over both validations
      expect(warnings[0]).toMatch(/rows have sum_j K_ij < eps/);
    } finally {
      ids.dispose();
      opt.dispose();
      model.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the results' attention table", () => {
  test('a row per run and layer; runs without statistics left out', () => {
    const base: Omit<RunResult, 'attention'> = {
      kind: 'lm',
      parameters: 1,
      steps: 1,
      items: 1,
      trainSeconds: 1,
      checkpointStep: 1,
      metrics: {},
      redundancy: null,
      evaluation: '',
    };
    const stats = (kind: ff.nn.AttentionKind) => ({
      kind,
      rows: 10,
      underflow: kind === 'fourier' ? 0.25 : null,
      rowMass: kind === 'fourier' ? 0.75 : null,
      entropy: 1.5,
      normalizedEntropy: 0.5,
      maxWeight: 0.4,
      radius: kind === 'fourier' ? { mean: 2, min: 1, max: 3 } : null,
    });
    const table = attentionTable([
      { ...base, attention: 'fourier', attentionStats: [stats('fourier'), stats('fourier')] },
      { ...base, attention: 'dot', attentionStats: [stats('dot')] },
      { ...base, attention: 'old' },
    ]) as string;
    const lines = table.split('\n');
    expect(lines.length).toBe(2 + 3);
    expect(lines[2]).toMatch(
      /\| fourier\s+\|\s+0 \|\s+25\.0% \|\s+0\.750 \|\s+1\.50 \|\s+0\.500 \|\s+0\.400 \| 2\.00 \[1\.00, 3\.00\] \|/,
    );
    expect(lines[4]).toMatch(/\| dot\s+\|\s+0 \|\s+- \|\s+- \|/);
    expect(attentionTable([{ ...base, attention: 'old' }])).toBeNull();
  });
});
