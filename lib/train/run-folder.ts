// The folders a training command writes and the eval command reads:
//   <out>/<attention>/   config.json, metrics.jsonl, last.safetensors, best.safetensors (the
//                        trainer), results.json (the final evaluation), results.md, curves.svg,
//                        attention.svg (the attention statistics at each validation)
//   <out>/               results.md, curves.svg and attention.svg comparing every run folder of <out> that has
//                        results.json (Fourier and dot side by side)
// and how a checkpoint argument (a file, a run folder, or an output folder) names checkpoints.
import * as fs from 'fs';
import * as path from 'path';
import type { Device } from '../native';
import type { ScheduleKind } from '../optim/schedules';
import type { ParallelSettings } from './data-parallel';
import { readCheckpointInfo } from './checkpoint';
import { readMetrics } from './metrics-log';
import { RunCurves, ValidationAxis, writeAttentionPlot, writeCurves } from './plots';
import { resultsMarkdown, RunResult } from './results-table';

/** The optimisation settings of a run (both kinds). */
export interface TrainSettings {
  optimizer: 'adam' | 'adamw';
  lr: number;
  weightDecay: number;
  /** The learning-rate schedule's formula (lib/optim/schedules.ts stepSchedule). */
  schedule: ScheduleKind;
  /** Warm-up steps, then a cosine to minLrRatio x lr (the step schedules) at the last step. */
  warmup: number;
  minLrRatio: number;
  /** 'timm-cosine-epochs': the warm-up's first rate and the cosine's floor, absolute (DeiT: 1e-6, 1e-5). */
  warmupLr: number;
  minLr: number;
  steps: number;
  /** Seconds of training per run (the schedule is fitted to it); null: steps alone. */
  timeLimit: number | null;
  batchSize: number;
  /** The gradients' largest global norm; 0: no clipping. */
  clip: number;
  /** Never zero the gradients between steps (the paper's LM code; lib/train/trainer.ts). */
  carryGrads: boolean;
  seed: number;
  evalEvery: number;
  logEvery: number;
}

/** What a training command passes to the runs besides their configuration. */
export interface RunContext {
  device: Device;
  /** The output folder; each run goes to <out>/<attention>. */
  out: string;
  quiet: boolean;
  /** Where progress goes (process.stderr by default). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** true: each run continues from its own last.safetensors; a path: that checkpoint; null: fresh. */
  resume: string | true | null;
  stopAfter: number | null;
  /** Steps between samples of the model's text in the log (language models; null or 0: none). */
  sampleEvery?: number | null;
  log: (line: string) => void;
  /** Lines added under the results tables (the command, the machine). */
  notes: string[];
  /** Several ranks (lib/distributed): ZeRO-1 and the gradient buckets' size (default: no ZeRO, 25 MiB). */
  parallel?: ParallelSettings;
}

function resumePath(ctx: RunContext, attention: string): string | null {
  if (ctx.resume === null) return null;
  const file = ctx.resume === true ? path.join(ctx.out, attention, 'last.safetensors') : ctx.resume;
  if (!fs.existsSync(file))
    throw new Error(`--resume: ${file} does not exist (expected the last.safetensors of an interrupted run)`);
  return file;
}

/** Throws, before any data is loaded, when a checkpoint to resume from is missing. */
export function checkResumable(ctx: RunContext, attentions: string[]): void {
  for (const a of attentions) resumePath(ctx, a);
}

/** The checkpoint a run resumes from (or null), checked to belong to a run of the same model. */
export function resumeFile(ctx: RunContext, attention: string, record: { modelConfig: unknown }): string | null {
  const file = resumePath(ctx, attention);
  if (file === null) return null;
  const saved = readCheckpointInfo(file).config as { attention?: string; modelConfig?: Record<string, unknown> } | null;
  if (saved?.attention !== attention) {
    throw new Error(
      `--resume: ${file} is a checkpoint of ${JSON.stringify(saved?.attention)} attention, not ${attention} (pick it with --attention)`,
    );
  }
  const mine = record.modelConfig as Record<string, unknown>;
  for (const key of new Set([...Object.keys(mine), ...Object.keys(saved.modelConfig ?? {})])) {
    if (JSON.stringify(mine[key]) !== JSON.stringify(saved.modelConfig?.[key])) {
      throw new Error(
        `--resume: ${file} holds a model with ${key} ${JSON.stringify(saved.modelConfig?.[key])}, but the flags ask for ${JSON.stringify(mine[key])}`,
      );
    }
  }
  return file;
}

/**
 * The configuration of the next run of a comparison. With a time limit, the first run's schedule
 * is fitted to the time; the runs after it get the steps it took (still capped by the time), so
 * that every kind trains for the same number of steps, as the paper compares them.
 */
export function sameBudget<C extends { train: TrainSettings; epochs?: number | null }>(
  cfg: C,
  previous: RunResult | null,
): C {
  if (cfg.train.timeLimit === null || previous === null) return cfg;
  return { ...cfg, ...('epochs' in cfg ? { epochs: null } : {}), train: { ...cfg.train, steps: previous.steps } };
}

export const RESULTS_JSON = 'results.json';
export const RESULTS_MD = 'results.md';
export const CURVES_SVG = 'curves.svg';
export const ATTENTION_SVG = 'attention.svg';
export const SEEDS_SVG = 'seeds.svg';

/**
 * A comparison's title for its kinds of attention: 'Fourier vs dot-product attention', or 'neural
 * attention' for one kind.
 */
export function attentionTitle(kinds: readonly string[]): string {
  if (kinds.length === 1) return `${kinds[0]} attention`;
  const name = (k: string) => (k === 'fourier' ? 'Fourier' : k === 'dot' ? 'dot-product' : k);
  return `${kinds.map(name).join(' vs ')} attention`;
}

/** The order runs are shown in: Fourier first, then dot, then any other name. */
function runOrder(a: string, b: string): number {
  const rank = (n: string) => (n === 'fourier' ? 0 : n === 'dot' ? 1 : 2);
  return rank(a) - rank(b) || a.localeCompare(b);
}

function readResult(file: string): RunResult {
  let value: RunResult;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8')) as RunResult;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof value.attention !== 'string' ||
    (value.kind !== 'lm' && value.kind !== 'vit') ||
    typeof value.metrics !== 'object'
  ) {
    throw new Error(`${file}: expected a run's results ({ attention, kind, metrics, ... })`);
  }
  return value;
}

function curvesOf(dir: string, label: string): RunCurves {
  const file = path.join(dir, 'metrics.jsonl');
  return { label, records: fs.existsSync(file) ? readMetrics(file) : [] };
}

/** Writes a run's results.json, results.md and curves.svg; returns the paths of the last two. */
export async function writeRunReport(
  runDir: string,
  result: RunResult,
  axis: ValidationAxis,
  title: string,
  notes: string[] = [],
): Promise<{ table: string; plot: string }> {
  fs.writeFileSync(path.join(runDir, RESULTS_JSON), JSON.stringify(result, null, 2) + '\n');
  const table = path.join(runDir, RESULTS_MD);
  fs.writeFileSync(table, resultsMarkdown(title, [result], notes));
  const curves = [curvesOf(runDir, result.attention)];
  const plot = await writeCurves(path.join(runDir, CURVES_SVG), curves, axis, title);
  await writeAttentionPlot(path.join(runDir, ATTENTION_SVG), curves, title);
  return { table, plot };
}

/** An output folder's comparison: the files written, the runs' results and the markdown. */
export interface Comparison {
  table: string;
  plot: string;
  /** The attention statistics' plot (null when no run logged any). */
  attentionPlot: string | null;
  results: RunResult[];
  markdown: string;
}

/**
 * Compares the runs of an output folder (its subfolders with results.json): writes
 * <out>/results.md and <out>/curves.svg and returns them with the results.
 */
export async function writeComparison(
  outDir: string,
  axis: ValidationAxis,
  title: string,
  notes: string[] = [],
): Promise<Comparison> {
  const names = fs
    .readdirSync(outDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(outDir, e.name, RESULTS_JSON)))
    .map((e) => e.name)
    .sort(runOrder);
  if (names.length === 0) throw new Error(`${outDir}: holds no finished run (no <run>/${RESULTS_JSON})`);
  const results = names.map((n) => readResult(path.join(outDir, n, RESULTS_JSON)));
  const kinds = new Set(results.map((r) => r.kind));
  if (kinds.size > 1) throw new Error(`${outDir}: holds both language-model and vision runs; give each its own --out`);
  const markdown = resultsMarkdown(title, results, notes);
  const table = path.join(outDir, RESULTS_MD);
  fs.writeFileSync(table, markdown);
  const curves = names.map((n, i) => curvesOf(path.join(outDir, n), results[i].attention));
  const plot = await writeCurves(path.join(outDir, CURVES_SVG), curves, axis, title);
  const attentionPlot = await writeAttentionPlot(path.join(outDir, ATTENTION_SVG), curves, title);
  return { table, plot, attentionPlot, results, markdown };
}

/**
 * The checkpoints a --checkpoint argument names: a .safetensors file; a run folder (its
 * best.safetensors, else last.safetensors); or an output folder (that, for each run folder in it).
 */
export function checkpointsIn(arg: string, flag = '--checkpoint'): string[] {
  if (!fs.existsSync(arg))
    throw new Error(`${flag}: ${arg} does not exist (expected a checkpoint file, a run folder or an output folder)`);
  if (!fs.statSync(arg).isDirectory()) return [arg];
  const own = ['best.safetensors', 'last.safetensors'].map((f) => path.join(arg, f)).find((f) => fs.existsSync(f));
  if (own) return [own];
  const runs = fs
    .readdirSync(arg, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort(runOrder)
    .flatMap((n) =>
      ['best.safetensors', 'last.safetensors']
        .map((f) => path.join(arg, n, f))
        .filter((f) => fs.existsSync(f))
        .slice(0, 1),
    );
  if (runs.length === 0)
    throw new Error(
      `${flag}: ${arg} holds no checkpoint (expected best.safetensors or last.safetensors in it or in its run folders)`,
    );
  return runs;
}
