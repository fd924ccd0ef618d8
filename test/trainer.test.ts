// The training loop and its outputs: a run stopped part-way and resumed from its checkpoint gives
// the uninterrupted run's losses, log and weights bit for bit (dropout on, so the generator's
// state matters); memory() stays flat over the steps; a time limit fits the schedule to the time;
// the metrics log, the progress lines, the results table and the SVG plot.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import * as ff from '../lib';
import { LanguageModel, LanguageModelConfig } from '../lib/models';
import { appendMetric, readMetrics, truncateMetrics } from '../lib/train/metrics-log';
import { curvesSvg } from '../lib/train/plots';
import { formatDuration, formatRate, formatStatus, TrainingProgress } from '../lib/train/progress';
import { markdownTable, resultsMarkdown, resultsTable, RunResult } from '../lib/train/results-table';
import { makeOptimizer, train, TrainOutcome, TrainTask } from '../lib/train/trainer';
import { device } from './helpers/compare';

const CONFIG: LanguageModelConfig = {
  vocabSize: 11,
  dModel: 8,
  numLayers: 1,
  numHeads: 2,
  ffDim: 16,
  context: 6,
  dropout: 0.1,
  attention: 'fourier',
  cutoffs: [],
  tieWeights: true,
};
const BATCH = 2;
const TOKENS = Int32Array.from({ length: 200 }, (_, i) => (i * 7 + (i >> 3)) % 11);

const made: string[] = [];
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-trainer-'));
  made.push(dir);
  return dir;
}

/** A silent stream for the progress lines. */
function sink(lines: string[] = []): NodeJS.WritableStream {
  return new Writable({
    write: (chunk, _enc, done) => {
      lines.push(String(chunk));
      done();
    },
  });
}

interface Run {
  outcome: TrainOutcome;
  losses: number[];
  weights: Record<string, Float32Array>;
  memory: number[];
}

async function run(
  runDir: string,
  o: {
    steps: number;
    stopAfter?: number;
    resume?: string;
    timeLimit?: number;
    attention?: ff.nn.AttentionKind;
    carryGrads?: boolean;
  },
): Promise<Run> {
  const generator = new ff.Generator(5);
  const model = new LanguageModel({ ...CONFIG, attention: o.attention ?? 'fourier' }, { device: device(), generator });
  const optimizer = makeOptimizer(model, { optimizer: 'adamw', lr: 0.01, weightDecay: 0.01 });
  const losses: number[] = [];
  const memory: number[] = [];
  const per = BATCH * CONFIG.context;
  const batchLoss = (i: number) => {
    const input = Float32Array.from(TOKENS.subarray(i * per, (i + 1) * per));
    const target = Float32Array.from(TOKENS.subarray(i * per + 1, (i + 1) * per + 1));
    const shape = [BATCH, CONFIG.context];
    return model.loss(ff.tensor(input, shape, { device: device() }), ff.tensor(target, shape, { device: device() }));
  };
  const task: TrainTask<number> = {
    model,
    itemsName: 'tokens',
    batch: (step) => step % Math.floor((TOKENS.length - 1) / per),
    loss: (i) => {
      memory.push(ff.memory().numTensors);
      const loss = batchLoss(i);
      losses.push(loss.item());
      return loss;
    },
    items: () => per,
    validate: () => ({ loss: ff.noGrad(() => ff.tidy(() => batchLoss(0).item())) }),
    metric: 'loss',
    higherIsBetter: false,
  };
  try {
    const outcome = await train(task, {
      runDir,
      label: 'tiny',
      config: { tiny: true },
      optimizer,
      generator,
      steps: o.steps,
      warmupSteps: 2,
      clip: 1,
      evalEvery: 3,
      logEvery: 1,
      stopAfter: o.stopAfter,
      resume: o.resume,
      timeLimit: o.timeLimit,
      progress: { stream: sink() },
      carryGrads: o.carryGrads,
    });
    const weights = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.toFloat32Array()]));
    return { outcome, losses, weights, memory };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

describe(`the training loop on ${device()}`, () => {
  test('stopped at step 4 and resumed, a run reproduces the uninterrupted losses, log and weights bit for bit', async () => {
    const a = tmpDir(),
      b = tmpDir();
    const full = await run(a, { steps: 7 });
    const first = await run(b, { steps: 7, stopAfter: 4 });
    expect(first.outcome.stoppedBy).toBe('stop-after');
    expect(first.outcome.step).toBe(4);
    const rest = await run(b, { steps: 7, resume: path.join(b, 'last.safetensors') });
    expect(rest.outcome).toMatchObject({ step: 7, stoppedBy: 'steps', totalSteps: 7 });
    expect([...first.losses, ...rest.losses]).toEqual(full.losses);
    expect(rest.weights).toEqual(full.weights);
    const strip = (dir: string) =>
      readMetrics(path.join(dir, 'metrics.jsonl')).map((r) =>
        r.type === 'train' ? { ...r, rate: 0, seconds: 0 } : { ...r, seconds: 0 },
      );
    expect(strip(b)).toEqual(strip(a));
    expect(strip(a).map((r) => `${r.type}@${r.step}`)).toEqual([
      'train@1',
      'train@2',
      'train@3',
      'valid@3',
      'train@4',
      'train@5',
      'train@6',
      'valid@6',
      'train@7',
      'valid@7',
    ]);
    expect(full.outcome.best?.step).toBe(rest.outcome.best?.step);
    for (const f of ['config.json', 'metrics.jsonl', 'last.safetensors', 'best.safetensors'])
      expect(fs.existsSync(path.join(a, f))).toBe(true);
  });

  test("carryGrads (the LM code's never-zeroed gradients): a different run, resumed bit for bit from checkpoints that hold the gradients", async () => {
    const zeroed = await run(tmpDir(), { steps: 5 });
    const full = await run(tmpDir(), { steps: 5, carryGrads: true });
    expect(full.losses[0]).toBe(zeroed.losses[0]);
    expect(full.losses[1]).toBe(zeroed.losses[1]); // the first update is the same either way...
    expect(full.weights['blocks.0.fc1.weight']).not.toEqual(zeroed.weights['blocks.0.fc1.weight']); // ...then the gradients add up
    const b = tmpDir();
    const first = await run(b, { steps: 5, stopAfter: 3, carryGrads: true });
    const rest = await run(b, { steps: 5, resume: path.join(b, 'last.safetensors'), carryGrads: true });
    expect([...first.losses, ...rest.losses]).toEqual(full.losses);
    expect(rest.weights).toEqual(full.weights);
  });

  test('memory() is the same at the start of every step after the first (validations and checkpoints included)', async () => {
    const r = await run(tmpDir(), { steps: 7, attention: 'dot' });
    expect(r.memory).toHaveLength(7);
    expect(new Set(r.memory.slice(1)).size).toBe(1);
  });

  test('a time limit fits the schedule to the time and stops within it', async () => {
    const r = await run(tmpDir(), { steps: 100000, timeLimit: 1.5 });
    expect(r.outcome.totalSteps).toBeLessThan(100000);
    expect(r.outcome.step).toBeLessThanOrEqual(r.outcome.totalSteps);
    expect(r.outcome.last?.step).toBe(r.outcome.step); // validated at the end
    // Past the limit by at most about a step and the final validation (generous for a busy machine).
    expect(r.outcome.seconds).toBeLessThan(1.5 + 3);
  });

  test('bad options and a checkpoint without loop state are named', async () => {
    const model = new LanguageModel(CONFIG, { device: device() });
    const optimizer = makeOptimizer(model, { optimizer: 'adam', lr: 1e-3, weightDecay: 0 });
    const task: TrainTask<number> = {
      model,
      itemsName: 'tokens',
      batch: () => 0,
      loss: () => ff.zeros([]),
      items: () => 1,
      validate: () => ({}),
      metric: 'x',
      higherIsBetter: true,
    };
    const base = {
      runDir: tmpDir(),
      label: 'x',
      config: {},
      optimizer,
      generator: new ff.Generator(),
      steps: 2,
      warmupSteps: 0,
      clip: 0,
      evalEvery: 1,
      logEvery: 1,
    };
    await expect(train(task, { ...base, steps: 0 })).rejects.toThrow(/steps: expected an integer >= 1, got 0/);
    await expect(train(task, { ...base, timeLimit: -1 })).rejects.toThrow(
      /timeLimit: expected a number of seconds > 0/,
    );
    const file = path.join(base.runDir, 'plain.safetensors');
    ff.saveCheckpoint(file, { model, step: 1 });
    await expect(train(task, { ...base, resume: file })).rejects.toThrow(
      /plain\.safetensors: holds no training-loop state/,
    );
    expect(() => makeOptimizer(model, { optimizer: 'sgd' as 'adam', lr: 1, weightDecay: 0 })).toThrow(
      /optimizer: expected 'adam' or 'adamw'/,
    );
    optimizer.dispose();
    model.dispose();
  });
});

describe('metrics.jsonl', () => {
  test('appends, reads back, truncates to a step, and names a malformed line', () => {
    const file = path.join(tmpDir(), 'metrics.jsonl');
    appendMetric(file, { type: 'train', step: 1, loss: 2, lr: 0.1, rate: 10, seconds: 1 });
    appendMetric(file, { type: 'valid', step: 2, seconds: 2, metrics: { perplexity: 7 } });
    appendMetric(file, { type: 'train', step: 3, loss: 1, lr: 0.1, rate: 10, seconds: 3 });
    expect(readMetrics(file).map((r) => r.step)).toEqual([1, 2, 3]);
    truncateMetrics(file, 2);
    expect(readMetrics(file)).toEqual([
      { type: 'train', step: 1, loss: 2, lr: 0.1, rate: 10, seconds: 1 },
      { type: 'valid', step: 2, seconds: 2, metrics: { perplexity: 7 } },
    ]);
    fs.appendFileSync(file, '{"type": "train", "step": 4\n');
    expect(() => readMetrics(file)).toThrow(/metrics\.jsonl:3: not valid JSON/);
    fs.writeFileSync(file, '{"type": "test", "step": 1, "seconds": 0}\n');
    expect(() => readMetrics(file)).toThrow(/metrics\.jsonl:1: expected a metrics record/);
    expect(() => readMetrics(path.join(tmpDir(), 'none.jsonl'))).toThrow(/none\.jsonl: does not exist/);
  });
});

describe('progress', () => {
  test('durations, rates and the status line', () => {
    expect([formatDuration(9.4), formatDuration(75), formatDuration(3725), formatDuration(null)]).toEqual([
      '9s',
      '1m15s',
      '1h02m',
      '?',
    ]);
    expect([formatRate(3.214), formatRate(987.6), formatRate(12345.6), formatRate(2.5e6)]).toEqual([
      '3.21',
      '988',
      '12.3k',
      '2.5M',
    ]);
    expect(
      formatStatus('fourier', { step: 120, total: 2000, loss: 5.12345, lr: 2.5e-4, rate: 3410, eta: 245 }, 'tokens'),
    ).toBe('fourier step 120/2000 loss 5.1235 lr 2.50e-4 3410 tokens/s ETA 4m05s');
  });

  test('without a terminal: a line every logEvery steps and at the last step, and the messages', () => {
    const lines: string[] = [];
    const p = new TrainingProgress('dot', 'images', { logEvery: 2, stream: sink(lines) });
    for (let step = 1; step <= 5; step++) p.update({ step, total: 5, loss: 1, lr: 1e-3, rate: 100, eta: 5 - step });
    p.log('dot step 5: valid top1 0.5');
    p.stop();
    expect(lines.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual([
      'dot step 2/5',
      'dot step 4/5',
      'dot step 5/5',
      'dot step 5:',
    ]);
    expect(() => new TrainingProgress('x', 'tokens', { logEvery: 0 })).toThrow(/logEvery: expected a positive integer/);
  });
});

describe('results and plots', () => {
  const result = (attention: string, kind: 'lm' | 'vit', metrics: RunResult['metrics']): RunResult => ({
    attention,
    kind,
    parameters: 1234567,
    steps: 300,
    items: 45200,
    trainSeconds: 241,
    checkpointStep: 300,
    metrics,
    redundancy: { train: { mean: 1.23456, std: 0.5 }, test: { mean: 1.5, std: 0.25 } },
    evaluation: 'x',
  });

  test('markdown tables: aligned columns, numbers right-aligned, one row per run', () => {
    expect(
      markdownTable(
        ['a', 'bb'],
        [
          ['x', '1'],
          ['yyyy', '22'],
        ],
      ),
    ).toBe('| a    |  bb |\n|------|----:|\n| x    |   1 |\n| yyyy |  22 |');
    expect(() => markdownTable(['a'], [['x', 'y']])).toThrow(/rows\[0\]: expected 1 cells, got 2/);
    const lm = resultsTable([
      result('fourier', 'lm', { valid: { perplexity: 101.234 }, test: { perplexity: 110.5 } }),
      result('dot', 'lm', { valid: { perplexity: 120 }, test: { perplexity: 130 } }),
    ]);
    expect(lm.split('\n')[0]).toMatch(/attention .* valid ppl \| test ppl \| +head redundancy/);
    expect(lm).toMatch(
      /\| fourier +\| +1\.23M \| +300 \| +45\.2k \| +4\.0 min \| +101\.23 \| +110\.50 \| +train 1\.235 ± 0\.500, test 1\.500 ± 0\.250 \|/,
    );
    // a results.json of an earlier version holds one { mean, std }
    const legacy = { ...result('dot', 'lm', {}), redundancy: { mean: 2, std: 1 } } as unknown as RunResult;
    expect(resultsTable([legacy])).toMatch(/\| +2\.000 ± 1\.000 \|/);
    expect(resultsMarkdown('t', [legacy])).toMatch(/standard deviation \(population\)/);
    const vit = resultsTable([result('dot', 'vit', { valid: { top1: 0.8512 }, test: { top1: 0.84, top5: 0.99 } })]);
    expect(vit).toMatch(/\| dot +\|.*\| +85\.12 \| +84\.00 \| +99\.00 \|/);
    expect(() => resultsTable([result('a', 'lm', {}), result('b', 'vit', {})])).toThrow(
      /mixes language-model and vision runs/,
    );
  });

  test('the SVG has both runs on the training-loss and validation panels', async () => {
    const records = (shift: number) => [
      { type: 'train' as const, step: 10, loss: 5 + shift, lr: 1, rate: 1, seconds: 1 },
      { type: 'valid' as const, step: 10, seconds: 1, metrics: { perplexity: 200 + shift } },
      { type: 'train' as const, step: 20, loss: 4 + shift, lr: 1, rate: 1, seconds: 2 },
      { type: 'valid' as const, step: 20, seconds: 2, metrics: { perplexity: 150 + shift } },
    ];
    const svg = await curvesSvg(
      [
        { label: 'fourier', records: records(0) },
        { label: 'dot', records: records(1) },
      ],
      { key: 'perplexity', title: 'validation perplexity', log: true },
      'demo',
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toMatch(/training loss/);
    expect(svg).toMatch(/validation perplexity/);
    expect(svg).toMatch(/validation perplexity: 151; attention: dot/);
    expect(svg).toMatch(/training loss: 4; attention: fourier/);
  });
});
