// The `fourierformer` command, run in-process through main(): every bad subcommand, flag, value,
// path or file ends in one line naming it and exit code 1; `train lm --preset wt103-small`,
// overridden to a tiny model, trains on the WikiText-format fixture, checkpoints, resumes bit for
// bit and is evaluated with the sliding window by `eval lm`; `train vit` runs on the image-folder
// fixture and on Fashion-MNIST; each writes metrics.jsonl, results.md and the SVG plot.
// `generate` continues a prompt with a tiny trained run (streamed, reproducible, its notes and
// errors), and `train lm --sample-every` logs samples of the model's text.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Readable } from 'stream';
import * as ff from '../lib';
import { main } from '../lib/cli';
import { LM_PRESETS, VIT_PRESETS } from '../lib/cli/presets';
import { readMetrics } from '../lib/train/metrics-log';
import { sampleRuns } from '../lib/train/run-lm';
import { device } from './helpers/compare';

const FIXTURE_WIKI = path.join(__dirname, 'fixtures', 'wikitext-tiny');
const IMAGES = path.join(__dirname, 'fixtures', 'images');
const FASHION = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz';

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `fourierformer ...args` in this process, capturing its output and exit code. */
async function cli(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((s) => {
    stdout += String(s);
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((s) => {
    stderr += String(s);
    return true;
  });
  const log = jest.spyOn(console, 'error').mockImplementation((...s: unknown[]) => {
    stderr += s.join(' ') + '\n';
  });
  process.exitCode = 0;
  try {
    await main(['node', 'fourierformer', ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
    log.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stdout, stderr };
}

/** The one-line error of a failed run. */
async function error(...args: string[]): Promise<string> {
  const r = await cli(...args);
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0];
}

const made: string[] = [];
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-cli-'));
  made.push(dir);
  return dir;
}

/** A copy of the WikiText fixture, so that the corpus cache is not written into the repository. */
const WIKI = tmpDir();
for (const f of fs.readdirSync(FIXTURE_WIKI))
  if (f.endsWith('.tokens')) fs.copyFileSync(path.join(FIXTURE_WIKI, f), path.join(WIKI, f));

const TINY_LM = [
  'train',
  'lm',
  '--preset',
  'wt103-small',
  '--data',
  WIKI,
  '--layers',
  '1',
  '--d-model',
  '16',
  '--heads',
  '2',
  '--ff-dim',
  '32',
  '--context',
  '16',
  '--batch-size',
  '4',
  '--cutoffs',
  '200,400',
  '--steps',
  '6',
  '--warmup',
  '2',
  '--lr',
  '0.01',
  '--eval-every',
  '3',
  '--log-every',
  '1',
  '--eval-tokens',
  '0',
  '--final-stride',
  '8',
  '--quiet',
];

describe('--print-config', () => {
  const json = async (...args: string[]) => {
    const r = await cli(...args, '--print-config');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
  };

  test('prints every field of the preset as resolved by the flags, and needs no data to do so', async () => {
    expect(await json('train', 'lm', '--preset', 'wt103-small')).toEqual(
      JSON.parse(JSON.stringify(LM_PRESETS['wt103-small'])),
    );
    expect(await json('train', 'vit', '--preset', 'deit-tiny')).toEqual(
      JSON.parse(JSON.stringify(VIT_PRESETS['deit-tiny'])),
    );
    // the text's choices as flags: 4 heads, the cosine over the steps after the warm-up
    const text = await json(
      'train',
      'vit',
      '--preset',
      'deit-tiny',
      '--heads',
      '4',
      '--schedule',
      'cosine-after-warmup',
      '--batch-size',
      '512',
      '--rand-augment',
      'none',
    );
    expect([
      text.model.numHeads,
      text.train.schedule,
      text.train.batchSize,
      text.train.lr,
      text.augment.randAugment,
    ]).toEqual([4, 'cosine-after-warmup', 512, 5e-4, false]);
    const lm = await json(
      'train',
      'lm',
      '--preset',
      'wt103-medium',
      '--schedule',
      'cosine-after-warmup',
      '--no-carry-grads',
      '--warmup',
      '100',
    );
    expect([lm.train.schedule, lm.train.carryGrads, lm.train.warmup, lm.model.dModel]).toEqual([
      'cosine-after-warmup',
      false,
      100,
      256,
    ]);
    expect(await error('train', 'vit', '--preset', 'deit-tiny', '--rand-augment', 'rand-x9', '--print-config')).toMatch(
      /'--rand-augment <spec>' argument 'rand-x9' is invalid\. RandAugment: unsupported section 'x9'/,
    );
    expect(await error('train', 'vit', '--preset', 'deit-tiny', '--batch-size', '6', '--print-config')).toMatch(
      /--batch-size: 6 is not a whole number of per-replica batches \(the deit-tiny recipe splits its batch over 4 replicas\)/,
    );
    expect(await error('train', 'lm', '--schedule', 'linear', '--print-config')).toMatch(
      /'--schedule <kind>' argument 'linear' is invalid\. Allowed choices are cosine-after-warmup, cosine-from-step-0, timm-cosine-epochs/,
    );
  });

  test('the Fourier attention flags reach the model settings of both tasks', async () => {
    const flags = [
      '--radius',
      'head',
      '--radius-init',
      '0.5',
      '--power',
      '2',
      '--eps',
      '1e-9',
      '--fourier-stable',
      '--fourier-features',
      '3',
    ];
    for (const task of ['lm', 'vit']) {
      const m = (await json('train', task, ...flags)).model;
      expect([m.radius, m.radiusInit, m.power, m.eps, m.stable, m.features]).toEqual(['head', 0.5, 2, 1e-9, true, 3]);
    }
    expect((await json('train', 'lm', '--preset', 'wt103-small', '--no-fourier-stable')).model.stable).toBe(false);
    expect(await error('train', 'lm', '--fourier-features', '17', '--print-config')).toMatch(
      /--fourier-features: 17 is more than the head dimension 16/,
    );
    expect(await error('train', 'lm', '--fourier-stable', '--power', '3', '--print-config')).toMatch(
      /--power: --fourier-stable needs an even power, got 3/,
    );
    expect(await error('train', 'vit', '--radius', 'row', '--print-config')).toMatch(
      /'--radius <sharing>' argument 'row' is invalid/,
    );
  });

  test('the Performer and FLT flags reach the model configuration of both tasks', async () => {
    const flags = [
      '--attention',
      'performer,flt',
      '--random-features',
      '32',
      '--redraw-features',
      '100',
      '--rpe-frequencies',
      '16',
      '--rpe-components',
      '5',
    ];
    for (const task of ['lm', 'vit']) {
      const m = (await json('train', task, ...flags)).model;
      expect([m.randomFeatures, m.redrawFeatures, m.rpeFrequencies, m.rpeComponents]).toEqual([32, 100, 16, 5]);
    }
    expect(await error('train', 'lm', '--attention', 'linear', '--print-config')).toMatch(
      /'--attention <kinds>' argument 'linear' is invalid\. expected fourier, dot, neural, performer, flt, a comma-separated list/,
    );
  });

  test('the Neural Attention flags reach the model settings of both tasks, checked against the model', async () => {
    for (const task of ['lm', 'vit']) {
      const m = (
        await json('train', task, '--attention', 'fourier,dot,neural', '--neural-dim', '3', '--neural-layers', '1,0')
      ).model;
      expect([m.neuralDim, m.neuralLayers]).toEqual([3, [1, 0]]);
    }
    expect(await error('train', 'lm', '--neural-dim', '9', '--print-config')).toMatch(
      /--neural-dim: expected an integer in \[2, 8\]/,
    );
    expect(await error('train', 'lm', '--neural-layers', '2', '--print-config')).toMatch(
      /--neural-layers: expected distinct block indices in \[0, 2\)/,
    );
    expect(await error('train', 'lm', '--neural-layers', '0,0', '--print-config')).toMatch(
      /'--neural-layers <list>' argument '0,0' is invalid/,
    );
  });

  test('--seeds takes distinct non-negative integers, and not with --seed', async () => {
    expect(await error('train', 'lm', '--seeds', '1,1', '--print-config')).toMatch(
      /'--seeds <list>' argument '1,1' is invalid\. expected distinct non-negative integers/,
    );
    expect(await error('train', 'lm', '--seeds', '1,x', '--print-config')).toMatch(
      /'--seeds <list>' argument '1,x' is invalid/,
    );
  });
});

describe('command-line errors', () => {
  test('an unknown subcommand or flag', async () => {
    expect(await error('nope')).toMatch(/^fourierformer: unknown command 'nope'/);
    expect(await error('train', 'lm', '--nope')).toMatch(/^fourierformer: unknown option '--nope'/);
    expect(await error('eval', 'lm')).toMatch(/required option '--checkpoint <path>' not specified/);
  });

  test('a bad flag value names the flag and what it expects', async () => {
    expect(await error('train', 'lm', '--layers', 'abc')).toMatch(
      /option '--layers <n>' argument 'abc' is invalid\. expected a positive integer/,
    );
    expect(await error('train', 'lm', '--lr', '-1')).toMatch(
      /'--lr <x>' argument '-1' is invalid\. expected a number > 0/,
    );
    expect(await error('train', 'lm', '--attention', 'cosine')).toMatch(
      /'--attention <kinds>' argument 'cosine' is invalid\. expected fourier, dot, neural, performer, flt, a comma-separated list of them, or both \(fourier,dot\); got 'cosine'/,
    );
    expect(await error('train', 'lm', '--attention', 'dot,dot')).toMatch(
      /'--attention <kinds>' argument 'dot,dot' is invalid\. each kind at most once/,
    );
    expect(await error('demo', '--attention', 'dot,flash')).toMatch(
      /'--attention <kinds>' argument 'dot,flash' is invalid/,
    );
    expect(await error('train', 'lm', '--cutoffs', '6000,2000')).toMatch(
      /'--cutoffs <list>' argument '6000,2000' is invalid\. expected increasing/,
    );
    expect(await error('train', 'vit', '--device', 'tpu')).toMatch(
      /'--device <device>' argument 'tpu' is invalid\. expected one of cpu, cuda, cuda-emu/,
    );
    expect(await error('train', 'lm', '--preset', 'huge')).toMatch(
      /--preset: unknown language-model preset 'huge' \(expected one of wt103-small, wt103-medium, brown-small\)/,
    );
    expect(await error('train', 'lm', '--heads', '3')).toMatch(/--heads: 3 heads do not divide --d-model 64/);
    expect(await error('train', 'vit', '--patch-size', '5')).toMatch(/--patch-size: 5 does not divide --image-size 28/);
    expect(await error('demo', '--time-limit', '0')).toMatch(/'--time-limit <seconds>' argument '0' is invalid/);
    expect(await error('bench', '--only', 'gpu')).toMatch(/'--only <which>' argument 'gpu' is invalid/);
  });

  test('a missing data path, checkpoint or data file is named', async () => {
    expect(await error('train', 'lm', '--preset', 'wt103-small')).toMatch(
      /--data: the wt103-small preset trains on WikiText-103; give the folder/,
    );
    expect(await error('train', 'lm', '--preset', 'wt103-small', '--data', '/no/such/dir')).toMatch(
      /--data: \/no\/such\/dir does not exist \(expected a folder holding wiki\.train\.tokens/,
    );
    expect(await error('train', 'vit', '--dataset', 'cifar10')).toMatch(/--data: the cifar10 dataset needs its folder/);
    expect(await error('eval', 'lm', '--checkpoint', '/no/such.safetensors')).toMatch(
      /--checkpoint: \/no\/such\.safetensors does not exist/,
    );
    const dir = tmpDir();
    fs.copyFileSync(path.join(WIKI, 'wiki.train.tokens'), path.join(dir, 'wiki.train.tokens'));
    expect(await error(...TINY_LM.map((a) => (a === WIKI ? dir : a)), '--out', tmpDir())).toMatch(
      /wiki\.valid\.tokens/,
    );
    expect(await error('train', 'lm', '--resume', '--out', dir)).toMatch(
      /--resume: .*fourier\/last\.safetensors does not exist/,
    );
    expect(await error('train', 'lm', '--resume', path.join(dir, 'x.safetensors'))).toMatch(
      /--resume: a checkpoint file continues one run/,
    );
  });

  test('a malformed file is named', async () => {
    const dir = tmpDir();
    const bad = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(bad, 'not a safetensors file at all');
    expect(await error('eval', 'lm', '--checkpoint', bad)).toMatch(/bad\.safetensors/);
    for (const f of ['wiki.train.tokens', 'wiki.valid.tokens', 'wiki.test.tokens'])
      fs.copyFileSync(path.join(WIKI, f), path.join(dir, f));
    fs.writeFileSync(path.join(dir, 'wiki.valid.tokens'), Buffer.from([0x66, 0xff, 0xfe, 0x0a]));
    expect(await error(...TINY_LM.map((a) => (a === WIKI ? dir : a)), '--out', tmpDir())).toMatch(
      /wiki\.valid\.tokens: not UTF-8 text/,
    );
  });

  test('help is printed and exits 0', async () => {
    const r = await cli('train', 'lm', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--time-limit <seconds>/);
    expect(r.stdout).toMatch(/wt103-medium +wikitext, 16 layers, d_model 256/);
  });
});

// The training runs below need only one backend: they run on cpu (the emulator is ~50x slower;
// test/trainer.test.ts runs the loop itself on every backend).
const onCpu = device() === 'cpu' ? describe : describe.skip;

onCpu('training from the command line (cpu only: the emulator is ~50x slower)', () => {
  test('train lm --preset wt103-small (tiny) trains both kinds, checkpoints, resumes bit for bit, and eval lm scores the checkpoints', async () => {
    const full = tmpDir();
    const r = await cli(...TINY_LM, '--out', full);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\| attention +\| params/m);
    expect(r.stdout).toMatch(/^\| fourier +\|.*\|$/m);
    expect(r.stdout).toMatch(/^\| dot +\|.*\|$/m);
    expect(r.stdout).toMatch(/sliding window of 16 tokens advancing by 8/);
    for (const f of [
      'results.md',
      'curves.svg',
      'fourier/metrics.jsonl',
      'fourier/last.safetensors',
      'fourier/best.safetensors',
      'fourier/config.json',
      'fourier/results.md',
      'fourier/curves.svg',
      'dot/results.json',
    ]) {
      expect(fs.existsSync(path.join(full, f))).toBe(true);
    }
    expect(fs.readFileSync(path.join(full, 'curves.svg'), 'utf8')).toMatch(/attention: dot/);

    const parts = tmpDir();
    const stopped = await cli(...TINY_LM, '--attention', 'fourier', '--stop-after', '4', '--out', parts);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(/Stopped before the end: continue with the same command and --resume/);
    const resumed = await cli(...TINY_LM, '--attention', 'fourier', '--resume', '--out', parts);
    expect(resumed.code).toBe(0);
    const log = (dir: string) =>
      readMetrics(path.join(dir, 'fourier', 'metrics.jsonl')).map((x) =>
        x.type === 'train' ? [x.step, x.loss, x.lr] : [x.step, x.metrics],
      );
    expect(log(parts)).toEqual(log(full));
    const weights = (dir: string) => {
      const t = ff.loadSafetensors(path.join(dir, 'fourier', 'last.safetensors'));
      const out = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.toFloat32Array()]));
      for (const v of Object.values(t)) v.dispose();
      return out;
    };
    expect(weights(parts)).toEqual(weights(full));

    const ev = await cli('eval', 'lm', '--checkpoint', full, '--stride', '4');
    expect(ev.code).toBe(0);
    expect(ev.stdout).toMatch(/^\| fourier +\|/m);
    expect(ev.stdout).toMatch(/^\| dot +\|/m);
    expect(ev.stdout).toMatch(/sliding window of 16 tokens advancing by 4/);
    const evFile = await cli('eval', 'lm', '--checkpoint', path.join(full, 'dot', 'best.safetensors'));
    expect(evFile.stdout).toMatch(/^\| dot +\|/m);
    expect(evFile.stdout).not.toMatch(/^\| fourier/m);
  });

  test('train lm --attention dot,neural: a neural run beside a dot run, its first block neural, and eval lm rebuilds it', async () => {
    const out = tmpDir();
    const r = await cli(...TINY_LM, '--layers', '2', '--attention', 'dot,neural', '--out', out);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# wt103-small: dot-product vs neural attention$/m);
    expect(r.stdout).toMatch(/^\| neural +\|.*\|$/m);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'neural', 'config.json'), 'utf8'));
    expect(cfg.modelConfig.attention).toBe('neural');
    const valid = readMetrics(path.join(out, 'neural', 'metrics.jsonl')).filter((x) => x.type === 'valid');
    expect(valid.every((x) => x.type === 'valid' && x.attentionStats?.map((s) => s.kind).join() === 'neural,dot')).toBe(
      true,
    );
    const ev = await cli('eval', 'lm', '--checkpoint', path.join(out, 'neural'));
    expect(ev.code).toBe(0);
    expect(ev.stdout).toMatch(/^\| neural +\|/m);
    const trained = r.stdout
      .match(/^\| neural +\|(.*)\|$/m)![1]
      .split('|')
      .map((x) => x.trim());
    const evaluated = ev.stdout
      .match(/^\| neural +\|(.*)\|$/m)![1]
      .split('|')
      .map((x) => x.trim());
    expect(evaluated[4]).toBe(trained[4]); // the validation perplexity of the same checkpoint
  });

  test('--time-limit with both kinds: the Fourier run fits its steps to the time, the dot run takes as many', async () => {
    const out = tmpDir();
    const args = TINY_LM.map((a, i) =>
      TINY_LM[i - 1] === '--steps' ? '100000' : TINY_LM[i - 1] === '--eval-every' ? '100000' : a,
    );
    const r = await cli(...args, '--time-limit', '1', '--out', out);
    expect(r.code).toBe(0);
    const read = (file: string) => JSON.parse(fs.readFileSync(path.join(out, file), 'utf8'));
    const fourierSteps = read('fourier/results.json').steps as number;
    expect(fourierSteps).toBeGreaterThan(0);
    expect(fourierSteps).toBeLessThan(100000);
    // The dot run's budget is the Fourier run's steps (it takes them all unless it is slower and the time runs out).
    expect(read('dot/config.json').train.steps).toBe(fourierSteps);
    expect(read('dot/results.json').steps).toBeLessThanOrEqual(fourierSteps);
  });

  test('--seeds: one run per seed, the mean ± std over them, and a repeat reuses the finished seeds', async () => {
    const out = tmpDir();
    const r = await cli(...TINY_LM, '--attention', 'fourier', '--radius-init', '0.5', '--seeds', '3,4', '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# wt103-small: fourier attention, 2 seeds$/m);
    expect(r.stdout).toMatch(/^\| fourier +\| +2 \| +[\d.]+ ± [\d.]+ \|/m);
    for (const f of [
      'results.md',
      'seeds.svg',
      'seed-3/fourier/results.json',
      'seed-4/fourier/results.json',
      'seed-3/fourier/attention.svg',
    ])
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    const configs = [3, 4].map((s) =>
      JSON.parse(fs.readFileSync(path.join(out, `seed-${s}`, 'fourier', 'config.json'), 'utf8')),
    );
    expect(configs.map((c) => [c.train.seed, c.model.radiusInit])).toEqual([
      [3, 0.5],
      [4, 0.5],
    ]);
    // the attention statistics are in every validation record
    const valid = readMetrics(path.join(out, 'seed-3', 'fourier', 'metrics.jsonl')).filter((x) => x.type === 'valid');
    expect(
      valid.every(
        (x) => x.type === 'valid' && x.attentionStats?.length === 1 && x.attentionStats[0].kind === 'fourier',
      ),
    ).toBe(true);
    const again = await cli(
      ...TINY_LM,
      '--attention',
      'fourier',
      '--radius-init',
      '0.5',
      '--seeds',
      '3,4',
      '--out',
      out,
    );
    expect(again.stderr).toMatch(/seed 3: finished before; its results are reused/);
    expect(again.stdout).toBe(r.stdout);
  }, 300000);

  test('train vit on an image folder and evaluates it', async () => {
    const out = tmpDir();
    const r = await cli(
      'train',
      'vit',
      '--data',
      IMAGES,
      '--dataset',
      'folder',
      '--image-size',
      '16',
      '--patch-size',
      '8',
      '--d-model',
      '16',
      '--heads',
      '2',
      '--layers',
      '1',
      '--batch-size',
      '4',
      '--steps',
      '3',
      '--eval-every',
      '2',
      '--attention',
      'dot',
      '--quiet',
      '--out',
      out,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\| dot +\|.*\|$/m);
    expect(r.stderr).toMatch(/8 train, 1 valid, 0 test images of 3x16x16, 3 classes/);
    for (const f of ['results.md', 'curves.svg', 'dot/metrics.jsonl', 'dot/best.safetensors'])
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    const ev = await cli('eval', 'vit', '--checkpoint', out);
    expect(ev.code).toBe(0);
    expect(ev.stdout).toMatch(/^\| dot +\|/m);
  });

  test("train vit --preset deit-tiny (tiny) on an image folder: timm's transforms, the per-epoch schedule from 1e-6, lr scaled with the batch", async () => {
    const out = tmpDir();
    const r = await cli(
      'train',
      'vit',
      '--preset',
      'deit-tiny',
      '--data',
      IMAGES,
      '--image-size',
      '16',
      '--patch-size',
      '8',
      '--d-model',
      '16',
      '--heads',
      '2',
      '--layers',
      '1',
      '--batch-size',
      '4',
      '--epochs',
      '4',
      '--warmup-epochs',
      '2',
      '--repeats',
      '1',
      '--eval-every',
      '2',
      '--log-every',
      '1',
      '--attention',
      'fourier',
      '--quiet',
      '--out',
      out,
    );
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/train \d\.\d{3} ± \d\.\d{3}, valid \d\.\d{3} ± \d\.\d{3}/); // no test split: the valid images stand in
    expect(r.stdout).toMatch(/standard deviation \(population\)/);
    // 8 training images, batches of 4: 2 steps per epoch; epoch e at timm's t = max(e - 1, 0),
    // warm-up 2 epochs from 1e-6
    const lr = (5e-4 * 4) / 512;
    const timm = (t: number) =>
      t < 2 ? 1e-6 + (t * (lr - 1e-6)) / 2 : 1e-5 + 0.5 * (lr - 1e-5) * (1 + Math.cos((Math.PI * t) / 4));
    const lrs = readMetrics(path.join(out, 'fourier', 'metrics.jsonl')).flatMap((x) =>
      x.type === 'train' ? [x.lr] : [],
    );
    expect(lrs).toHaveLength(8);
    lrs.forEach((v, s) => expect(v).toBeCloseTo(timm(Math.max(Math.floor(s / 2) - 1, 0)), 12));
    const bad = await cli(
      'train',
      'vit',
      '--preset',
      'deit-tiny',
      '--data',
      IMAGES,
      '--image-size',
      '16',
      '--patch-size',
      '8',
      '--d-model',
      '16',
      '--heads',
      '2',
      '--layers',
      '1',
      '--batch-size',
      '4',
      '--steps',
      '2',
      '--attention',
      'dot',
      '--quiet',
      '--out',
      tmpDir(),
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n').pop()).toMatch(
      /repeats: repeated augmentation keeps whole multiples of 256 samples per epoch, and .* has 8 images; use repeats 1/,
    );
  });

  test('generate continues a prompt with a trained run: streamed, the same text for a seed with or without the cache, notes and errors', async () => {
    const out = tmpDir();
    const trained = await cli(...TINY_LM, '--sample-every', '3', '--out', out);
    expect(trained.code).toBe(0);
    // a sample line at steps 3 and 6 of each run, 32 tokens each
    const samples = trained.stderr.split('\n').filter((l) => / step \d+ sample: /.test(l));
    expect(samples.map((l) => l.replace(/ sample: .*/, ''))).toEqual([
      'fourier step 3',
      'fourier step 6',
      'dot step 3',
      'dot step 6',
    ]);
    for (const l of samples) expect(l.replace(/.* sample: /, '').split(' ')).toHaveLength(32);
    expect(fs.existsSync(path.join(out, 'fourier', 'vocab.json'))).toBe(true);
    // sampling leaves training as it was: the same losses and validations without it
    const plain = tmpDir();
    expect((await cli(...TINY_LM, '--attention', 'fourier', '--out', plain)).code).toBe(0);
    const log = (dir: string) =>
      readMetrics(path.join(dir, 'fourier', 'metrics.jsonl')).map((x) =>
        x.type === 'train' ? [x.step, x.loss, x.lr] : [x.step, x.metrics],
      );
    expect(log(out)).toEqual(log(plain));
    const demo = sampleRuns(out, 'cpu', () => undefined);
    expect(demo.map((x) => x.attention)).toEqual(['fourier', 'dot']);
    expect(demo[0].text.split(' ')).toHaveLength(32);

    const run = path.join(out, 'fourier');
    const gen = (...args: string[]) =>
      cli('generate', '--checkpoint', run, '--prompt', 'The lighthouse was', '--tokens', '12', ...args);
    const a = await gen();
    expect(a.stderr).toMatch(
      /^12 tokens in [\d.]+ s: [\d.]+ tokens\/s after the first \(the prompt's 3 tokens and the first draw took [\d.]+ s; key-value cache, cpu\)$/m,
    );
    expect(a.code).toBe(0);
    expect(a.stdout.startsWith('The lighthouse was')).toBe(true);
    const added = a.stdout.slice('The lighthouse was'.length).trim().split(/\s+/);
    expect(added.length).toBeGreaterThan(0);
    expect(added.length).toBeLessThanOrEqual(12);
    expect((await gen()).stdout).toBe(a.stdout);
    expect((await gen('--no-cache')).stdout).toBe(a.stdout);
    expect((await gen('--seed', '2', '--temperature', '1.5', '--top-k', 'none', '--top-p', '1')).stdout).not.toBe(
      a.stdout,
    );
    const greedy = await gen('--temperature', '0', '--tokens', '40', '--shift', '4');
    expect(greedy.code).toBe(0);
    expect(greedy.stderr).toMatch(
      /note: the text passed the model's context of 16 tokens: the oldest 28 left the window \(4 at a time/,
    );
    expect((await gen('--temperature', '0', '--tokens', '40', '--shift', '4', '--no-cache')).stdout).toBe(
      greedy.stdout,
    );

    // unknown words, a prompt longer than the context, stdin, an output folder of two runs
    const unk = await cli(
      'generate',
      '--checkpoint',
      run,
      '--prompt',
      'The zzqx lighthouse qqzx zzqx',
      '--tokens',
      '2',
    );
    expect(unk.code).toBe(0);
    expect(unk.stderr).toMatch(/note: 3 prompt words are not in the vocabulary and read as <unk>: "zzqx", "qqzx"/);
    const long = await cli(
      'generate',
      '--checkpoint',
      run,
      '--prompt',
      'the '.repeat(20) + '\nlighthouse',
      '--tokens',
      '2',
    );
    expect(long.stderr).toMatch(
      /note: the prompt has 22 tokens, more than the model's context of 16: its first 6 are dropped/,
    );
    const stdin = Object.getOwnPropertyDescriptor(process, 'stdin') as PropertyDescriptor;
    Object.defineProperty(process, 'stdin', {
      value: Readable.from([Buffer.from('The lighthouse was\n')]),
      configurable: true,
    });
    let piped: CliRun;
    try {
      piped = await cli('generate', '--checkpoint', run, '--prompt', '-', '--tokens', '12');
    } finally {
      Object.defineProperty(process, 'stdin', stdin);
    }
    expect(piped.stdout).toBe(a.stdout);
    const both = await cli('generate', '--checkpoint', out, '--prompt', 'The lighthouse', '--tokens', '3');
    expect(both.code).toBe(0);
    expect(both.stdout).toMatch(/^== fourier \(.*fourier.best\.safetensors\) ==\nThe lighthouse/m);
    expect(both.stdout).toMatch(/^== dot \(.*dot.best\.safetensors\) ==\nThe lighthouse/m);
    // without vocab.json the vocabulary is rebuilt from the corpus of the run's config
    fs.rmSync(path.join(run, 'vocab.json'));
    const rebuilt = await gen();
    expect(rebuilt.stderr).toMatch(/no vocab\.json beside it; rebuilding the vocabulary from the training data/);
    expect(rebuilt.stdout).toBe(a.stdout);

    // bad input: one line naming it
    expect(await error('generate', '--checkpoint', run, '--prompt', '  ')).toMatch(
      /^fourierformer: --prompt: the prompt is empty; give at least one word$/,
    );
    expect(await error('generate', '--checkpoint', run)).toMatch(/required option '--prompt <text>' not specified/);
    expect(await error('generate', '--checkpoint', run, '--prompt', 'a', '--top-k', '0')).toMatch(
      /option '--top-k <n>' argument '0' is invalid\. expected a positive integer/,
    );
    expect(await error('generate', '--checkpoint', run, '--prompt', 'a', '--top-p', '0')).toMatch(
      /option '--top-p <p>' argument '0' is invalid\. expected a probability in \(0, 1\]/,
    );
    expect(await error('generate', '--checkpoint', run, '--prompt', 'a', '--top-p', '1.5')).toMatch(
      /option '--top-p <p>' argument '1\.5' is invalid/,
    );
    expect(await error('generate', '--checkpoint', run, '--prompt', 'a', '--temperature', '-1')).toMatch(
      /option '--temperature <x>' argument '-1' is invalid/,
    );
    expect(await error('generate', '--checkpoint', run, '--prompt', 'a', '--shift', '17')).toMatch(
      /--shift: 17 is more than the model's context of 16/,
    );
    expect(await error('generate', '--checkpoint', '/no/such/run', '--prompt', 'a')).toMatch(
      /--checkpoint: \/no\/such\/run does not exist/,
    );
    const vit = tmpDir();
    expect(
      (
        await cli(
          'train',
          'vit',
          '--data',
          IMAGES,
          '--dataset',
          'folder',
          '--image-size',
          '16',
          '--patch-size',
          '8',
          '--d-model',
          '16',
          '--heads',
          '2',
          '--layers',
          '1',
          '--batch-size',
          '4',
          '--steps',
          '1',
          '--eval-every',
          '1',
          '--attention',
          'dot',
          '--quiet',
          '--out',
          vit,
        )
      ).code,
    ).toBe(0);
    expect(await error('generate', '--checkpoint', path.join(vit, 'dot'), '--prompt', 'a')).toMatch(
      /best\.safetensors: not a language-model checkpoint of 'fourierformer train lm' \(it holds a vision transformer\)/,
    );
  });

  (fs.existsSync(FASHION) ? test : test.skip)(
    'train vit on Fashion-MNIST (a subset), both attention kinds',
    async () => {
      const out = tmpDir();
      const r = await cli(
        'train',
        'vit',
        '--limit-train',
        '64',
        '--limit-eval',
        '32',
        '--d-model',
        '16',
        '--heads',
        '2',
        '--layers',
        '1',
        '--batch-size',
        '16',
        '--steps',
        '3',
        '--eval-every',
        '3',
        '--quiet',
        '--out',
        out,
      );
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/64 train, 32 valid, 32 test images of 1x28x28, 10 classes/);
      expect(r.stdout).toMatch(/^\| fourier +\|.*\|$/m);
      expect(r.stdout).toMatch(/^\| dot +\|.*\|$/m);
      expect(
        readMetrics(path.join(out, 'dot', 'metrics.jsonl'))
          .filter((x) => x.type === 'valid')
          .map((x) => x.step),
      ).toEqual([3]);
    },
  );
});
