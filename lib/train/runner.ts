// The runs of an experiment, whatever its data and model: an Experiment (the language model's in
// lib/train/run-lm.ts, the vision transformer's in run-vit.ts) supplies the data, the model, the
// training task (lib/train/trainer.ts's TrainTask less the model) and the final evaluation; this
// file does what every run does around them:
//   trainRuns          each attention kind in turn with the same data, seed and budget (the
//                      paper's side-by-side pairs), then the comparison of the output folder;
//   one run            <out>/<attention>: the run record, resume check, model, optimizer and
//                      data-parallel wrapper, the training loop, the stop check (--stop-after,
//                      Ctrl-C), the best checkpoint (else the last) reloaded and evaluated, the
//                      run's report on rank 0, and everything disposed;
//   evaluateCheckpoint a checkpoint alone: its model rebuilt from the record it holds, loaded
//                      and evaluated.
import * as fs from 'fs';
import * as path from 'path';
import * as dist from '../distributed';
import type { Device } from '../native';
import type { AttentionKind } from '../nn/attention-kind';
import type { Module } from '../nn/module';
import { Generator } from '../random';
import { loadCheckpoint, readCheckpointInfo } from './checkpoint';
import { leadFirst, onLead, wrapForRanks } from './data-parallel';
import type { ValidationAxis } from './plots';
import type { RunResult } from './results-table';
import {
  attentionTitle,
  checkResumable,
  Comparison,
  resumeFile,
  sameBudget,
  RunContext,
  TrainSettings,
  writeComparison,
  writeRunReport,
} from './run-folder';
import { makeOptimizer, train, TrainerOptions, TrainTask } from './trainer';

/** What an experiment's configuration holds for the runner (LMRunConfig, ViTRunConfig). */
export interface RunConfig {
  preset: string;
  train: TrainSettings;
  epochs?: number | null;
}

/** What a run adds to its configuration in config.json and its checkpoints (LMRunRecord, ViTRunRecord). */
export interface RunRecord<MC> {
  attention: AttentionKind;
  device: Device;
  modelConfig: MC;
}

/** The final evaluation of a model: what a run's report holds besides its training figures. */
export type Evaluation = Pick<RunResult, 'metrics' | 'redundancy' | 'attentionStats' | 'evaluation'>;

/** One run, before its model exists: its record, the settings it trains with, and its training. */
export interface RunPlan<R, M, B> {
  record: R;
  settings: TrainSettings;
  /** The training task on the run's model (it may write files into the run folder on rank 0). */
  training(model: M): RunTraining<B> | Promise<RunTraining<B>>;
}

export interface RunTraining<B> {
  task: Omit<TrainTask<B>, 'model'>;
  /** What the run trains on, for its first log line (after the parameter count). */
  describe: string;
  /** The trainer options of this kind of run. */
  options?: Pick<TrainerOptions, 'stepsPerEpoch' | 'sampleEvery'>;
}

/**
 * An experiment: the parts of its runs that depend on the data and the model. C is its
 * configuration, R a run's record (C and RunRecord), D the data of all runs, M the model, B a
 * training batch.
 */
export interface Experiment<C extends RunConfig, R extends C & RunRecord<unknown>, D, M extends Module, B> {
  kind: 'lm' | 'vit';
  /** The validation metric of the reports and the comparison. */
  axis: ValidationAxis;
  /** The data of every run, loaded once (rank 0 first, lib/train/data-parallel.ts); it logs what it loaded. */
  load(cfg: C, log: (line: string) => void): D;
  /** Checks each kind's model configuration before the first run trains. */
  check?(cfg: C, data: D, attentions: readonly AttentionKind[]): void;
  /** One run of an attention kind into runDir. */
  plan(cfg: C, data: D, attention: AttentionKind, ctx: RunContext, runDir: string): RunPlan<R, M, B>;
  /** The model of a run record's configuration, initialised from generator. */
  model(config: R['modelConfig'], opts: { device: Device; generator: Generator }): M;
  /** The final evaluation of a trained (or loaded) model, labelled in the log. */
  evaluate(model: M, record: C, data: D, log: (line: string) => void, label: string): Evaluation | Promise<Evaluation>;
}

/**
 * Trains one kind of attention in <out>/<attention>, then evaluates its best checkpoint; returns
 * null when --stop-after or Ctrl-C stopped it before the end.
 */
async function runOne<C extends RunConfig, R extends C & RunRecord<unknown>, D, M extends Module, B>(
  exp: Experiment<C, R, D, M, B>,
  cfg: C,
  data: D,
  attention: AttentionKind,
  ctx: RunContext,
): Promise<RunResult | null> {
  const runDir = path.join(ctx.out, attention);
  const plan = exp.plan(cfg, data, attention, ctx, runDir);
  const { record, settings } = plan;
  const resume = resumeFile(ctx, attention, record);
  const generator = new Generator(settings.seed);
  const model = exp.model(record.modelConfig, { device: ctx.device, generator });
  const ddp = wrapForRanks(model, generator, ctx.parallel);
  const optimizer = makeOptimizer(model, settings, ctx.parallel?.zero);
  try {
    const { task, describe, options } = await plan.training(model);
    ctx.log(`${attention}: ${model.numParameters()} parameters, ${describe}, into ${runDir}`);
    const outcome = await train(
      { model, ...task },
      {
        runDir,
        label: attention,
        config: record,
        optimizer,
        generator,
        steps: settings.steps,
        warmupSteps: settings.warmup,
        minLrRatio: settings.minLrRatio,
        timeLimit: settings.timeLimit,
        schedule: settings.schedule,
        warmupLr: settings.warmupLr,
        minLr: settings.minLr,
        stopAfter: ctx.stopAfter,
        clip: settings.clip,
        carryGrads: settings.carryGrads,
        evalEvery: settings.evalEvery,
        logEvery: settings.logEvery,
        resume,
        progress: { quiet: ctx.quiet, stream: ctx.stream },
        ...options,
      },
    );
    if (outcome.stoppedBy === 'stop-after' || outcome.stoppedBy === 'interrupt') {
      ctx.log(
        `${attention}: stopped at step ${outcome.step} of ${outcome.totalSteps}; continue with --resume (checkpoint ${outcome.lastCheckpoint})`,
      );
      return null;
    }
    const info = loadCheckpoint(outcome.bestCheckpoint ?? outcome.lastCheckpoint, {
      model,
      generator: new Generator(),
    });
    const ev = await exp.evaluate(model, record, data, ctx.log, attention);
    return await onLead(async () => {
      const result: RunResult = {
        attention,
        kind: exp.kind,
        parameters: model.numParameters(),
        steps: outcome.step,
        items: outcome.items,
        trainSeconds: outcome.seconds,
        checkpointStep: info.step,
        ...ev,
      };
      await writeRunReport(runDir, result, exp.axis, `${cfg.preset}: ${attention} attention`, ctx.notes);
      return result;
    });
  } finally {
    optimizer.dispose();
    ddp?.detach();
    model.dispose();
  }
}

/**
 * Trains each attention kind in turn with the same data, seed and budget, and writes the
 * comparison of the output folder's runs; null when a run was stopped before its end.
 */
export async function trainRuns<C extends RunConfig, R extends C & RunRecord<unknown>, D, M extends Module, B>(
  exp: Experiment<C, R, D, M, B>,
  cfg: C,
  attentions: AttentionKind[],
  ctx: RunContext,
): Promise<Comparison | null> {
  checkResumable(ctx, attentions);
  const data = leadFirst(() => exp.load(cfg, ctx.log));
  exp.check?.(cfg, data, attentions);
  if (dist.rank() === 0) fs.mkdirSync(ctx.out, { recursive: true });
  let finished = true;
  let run = cfg;
  for (const attention of attentions) {
    const result = await runOne(exp, run, data, attention, ctx);
    finished = result !== null && finished;
    run = sameBudget(run, result);
  }
  return finished
    ? onLead(() => writeComparison(ctx.out, exp.axis, `${cfg.preset}: ${attentionTitle(attentions)}`, ctx.notes))
    : null;
}

/**
 * Rebuilds the model of a checkpoint from its run record, loads it and evaluates it on `data`
 * (the record's data, loaded and checked against the model by the caller).
 */
export async function evaluateCheckpoint<C extends RunConfig, R extends C & RunRecord<unknown>, D, M extends Module, B>(
  exp: Experiment<C, R, D, M, B>,
  file: string,
  record: R,
  data: D,
  o: { device: Device; log: (line: string) => void },
): Promise<RunResult> {
  const info = readCheckpointInfo(file);
  const model = exp.model(record.modelConfig, { device: o.device, generator: new Generator() });
  try {
    loadCheckpoint(file, { model, generator: new Generator() });
    const extra = info.extra as { items?: number; seconds?: number } | null;
    const ev = await exp.evaluate(model, record, data, o.log, record.attention);
    return {
      attention: record.attention,
      kind: exp.kind,
      parameters: model.numParameters(),
      steps: info.step,
      items: extra?.items ?? 0,
      trainSeconds: extra?.seconds ?? 0,
      checkpointStep: info.step,
      ...ev,
    };
  } finally {
    model.dispose();
  }
}
