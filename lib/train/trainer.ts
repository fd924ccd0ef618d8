// The training loop shared by the language model and the vision transformer. A task says how to
// get the batch of a step, its loss, and how to validate; the loop does the rest:
//   - each step inside tidy(): zeroGrad (unless carryGrads), loss, backward, gradient clipping, optimizer step, then
//     the learning-rate schedule (lib/optim/schedules.ts stepSchedule) advances;
//   - every evalEvery steps and at the end: validation (model.eval(), no grad), a 'valid' record
//     in metrics.jsonl, last.safetensors, and best.safetensors when the metric improved;
//   - the mean loss, learning rate and throughput every logEvery steps into metrics.jsonl, and on
//     the terminal a progress bar (lib/train/progress.ts);
//   - a budget of steps, and optionally of time (timeLimit seconds): then the schedule's length
//     is fitted to the time from the measured step and validation times (re-fitted every 25
//     steps and at validations), so that the cosine reaches its end when the time runs out;
//   - every sampleEvery steps, a line of the model's output in the log (task.sample: a language
//     model's text, as llm.c prints), which leaves the training state as it was;
//   - stopAfter (or Ctrl-C) stops early with a checkpoint; resume continues from one exactly:
//     same step, weights, optimizer moments, schedule, random generator (dropout) and the
//     partial loss average, so a resumed run's losses and log equal the uninterrupted run's.
// The batch of step s must be a function of s alone (the tasks read their data in order).
// Data-parallel (lib/distributed, several ranks): every rank runs this loop on its own shard of
// each batch (the task's batch() gives it) with the model wrapped in DistributedDataParallel by
// the task; the logged loss and throughput are the global ones (one small all-reduce per step,
// which also agrees on stopping: Ctrl-C on any rank, the time limit on rank 0, whose fitted
// schedule length every rank takes); validate() and items() are the task's, split and reduced;
// rank 0 alone writes config.json, metrics.jsonl and checkpoints, which hold every rank's
// generator state so that --resume continues each rank exactly.
import * as fs from 'fs';
import * as path from 'path';
import { runBackward } from '../autograd/engine';
import * as dist from '../distributed';
import type { AttentionStatistics } from '../nn/attention-statistics';
import type { Module } from '../nn/module';
import { Adam, AdamW } from '../optim/adam';
import { clipGradNormAsync_ } from '../optim/clip-grad';
import type { BaseOptions, Optimizer } from '../optim/optimizer';
import { weightDecayGroups } from '../optim/param-groups';
import { LRScheduler, ScheduleKind, stepSchedule } from '../optim/schedules';
import { ZeroRedundancyOptimizer } from '../optim/zero';
import type { Generator, RngState } from '../random';
import { tidy } from '../scope';
import type { Tensor } from '../tensor';
import { loadCheckpoint, readCheckpointInfo, saveCheckpoint } from './checkpoint';
import { appendMetric, truncateMetrics } from './metrics-log';
import { ProgressOptions, TrainingProgress } from './progress';

export type Metrics = Record<string, number>;

export interface TrainTask<B> {
  model: Module;
  /** What a batch holds, for the throughput: 'tokens' or 'images'. */
  itemsName: string;
  /** The batch of step `step` (0-based); a function of the step alone. */
  batch(step: number): B | Promise<B>;
  /** The mean training loss of a batch (called inside tidy, in training mode). */
  loss(batch: B): Tensor;
  /** Tokens or images in a batch. */
  items(batch: B): number;
  /** Validation metrics (called in eval mode; it runs its forward passes without grad). */
  validate(): Metrics | Promise<Metrics>;
  /** What each attention layer does with its rows, after each validation (eval mode, no grad); logged with it. */
  diagnose?(): AttentionStatistics[] | Promise<AttentionStatistics[]>;
  /** The metric that picks the best checkpoint, and which way is better. */
  metric: string;
  higherIsBetter: boolean;
  /** A line of the model's output for the log every sampleEvery steps (a language model's text). */
  sample?: () => string;
}

export interface TrainerOptions {
  /** Where config.json, metrics.jsonl, last.safetensors and best.safetensors go. */
  runDir: string;
  /** The run's name in progress lines ('fourier', 'dot'). */
  label: string;
  /** The run's configuration (JSON), saved in config.json and in every checkpoint. */
  config: unknown;
  optimizer: Optimizer<BaseOptions>;
  /** The generator of the model's random numbers (dropout), saved and restored with checkpoints. */
  generator: Generator;
  /** The schedule's length and the most steps to take. */
  steps: number;
  warmupSteps: number;
  /** The cosine's floor as a share of the base learning rate (default 0). */
  minLrRatio?: number;
  /** The schedule's formula (lib/optim/schedules.ts stepSchedule; default 'cosine-after-warmup'). */
  schedule?: ScheduleKind;
  /** 'timm-cosine-epochs': the steps of an epoch, and the warm-up's first and the floor's absolute rates. */
  stepsPerEpoch?: number;
  warmupLr?: number;
  minLr?: number;
  /** Seconds of training (validations included) after which the run stops; null: none. */
  timeLimit?: number | null;
  /** Stop (with a checkpoint) once this step is reached; the schedule still spans `steps`. */
  stopAfter?: number | null;
  /** The gradients' largest global norm; 0: no clipping. */
  clip: number;
  /**
   * Never zero the gradients: each step adds its gradients to the previous step's clipped ones
   * (the paper's LM code, whose train.py has model.zero_grad() commented out). Checkpoints then
   * hold the gradients too. Default false.
   */
  carryGrads?: boolean;
  evalEvery: number;
  logEvery: number;
  /** A checkpoint to continue from. */
  resume?: string | null;
  /**
   * Steps between task.sample() lines in the log (null or 0: none). Sampling must leave the
   * training state as it was.
   */
  sampleEvery?: number | null;
  progress?: Omit<ProgressOptions, 'logEvery'>;
}

export interface TrainOutcome {
  /** Steps taken in all, and the schedule's length. */
  step: number;
  totalSteps: number;
  /** Tokens or images seen in all. */
  items: number;
  /** Training seconds in all (sessions before a resume included). */
  seconds: number;
  stoppedBy: 'steps' | 'time' | 'stop-after' | 'interrupt';
  best: { step: number; metrics: Metrics } | null;
  last: { step: number; metrics: Metrics } | null;
  lastCheckpoint: string;
  bestCheckpoint: string | null;
}

/** With a time limit, the schedule's length is re-fitted every so many steps (and at validations). */
const REFIT_EVERY = 25;

/** What a checkpoint's `extra` holds for the loop. */
interface LoopState {
  totalSteps: number;
  items: number;
  seconds: number;
  window: { sum: number; count: number; items: number };
  best: { step: number; metrics: Metrics } | null;
  last: { step: number; metrics: Metrics } | null;
  /** Several ranks: each rank's generator state, in rank order. */
  ranks?: { rng: RngState[] };
}

/**
 * The optimizer of a run: 'adam' (the paper's LM; weight decay, when > 0, as an L2 term) or
 * 'adamw' (DeiT; decoupled decay). Either way LayerNorms, biases and the radii R get no decay.
 * zero: wrapped in ZeroRedundancyOptimizer (its state sharded over the ranks of a distributed run).
 */
export function makeOptimizer(
  model: Module,
  o: { optimizer: 'adam' | 'adamw'; lr: number; weightDecay: number },
  zero = false,
): Optimizer<BaseOptions> {
  const groups = weightDecayGroups(model, o.weightDecay);
  if (o.optimizer !== 'adam' && o.optimizer !== 'adamw')
    throw new Error(`optimizer: expected 'adam' or 'adamw', got ${JSON.stringify(o.optimizer)}`);
  const kind = o.optimizer === 'adam' ? Adam : AdamW;
  return zero ? new ZeroRedundancyOptimizer(groups, kind, { lr: o.lr }) : new kind(groups, { lr: o.lr });
}

function checkInt(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
    throw new Error(`${what}: expected an integer >= ${min}, got ${String(v)}`);
  return v;
}

function checkOptions(o: TrainerOptions): void {
  checkInt(o.steps, 'steps', 1);
  checkInt(o.warmupSteps, 'warmupSteps', 0);
  checkInt(o.evalEvery, 'evalEvery', 1);
  checkInt(o.logEvery, 'logEvery', 1);
  if (o.stopAfter !== undefined && o.stopAfter !== null) checkInt(o.stopAfter, 'stopAfter', 1);
  if (o.sampleEvery !== undefined && o.sampleEvery !== null) checkInt(o.sampleEvery, 'sampleEvery', 0);
  if (o.timeLimit !== undefined && o.timeLimit !== null && !(typeof o.timeLimit === 'number' && o.timeLimit > 0)) {
    throw new Error(`timeLimit: expected a number of seconds > 0, got ${String(o.timeLimit)}`);
  }
  if (!(typeof o.clip === 'number' && o.clip >= 0))
    throw new Error(`clip: expected a number >= 0, got ${String(o.clip)}`);
}

function formatMetrics(m: Metrics): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4)}`)
    .join(', ');
}

/** Rows of a layer under eps above this share make the log warn: the layer's attention output is mostly ~0. */
export const UNDERFLOW_WARNING = 0.5;

/**
 * Logs a warning the first time a Fourier layer (eps form) has more than half its rows with
 * sum_j K_ij < eps, and when it recovers; `underflowing` holds the layers warned about.
 */
function warnUnderflow(
  stats: AttentionStatistics[],
  label: string,
  step: number,
  underflowing: Set<number>,
  log: (line: string) => void,
): void {
  stats.forEach((s, layer) => {
    if (s.kind !== 'fourier' || s.underflow === null || s.rowMass === 1) return;
    const bad = s.underflow > UNDERFLOW_WARNING;
    if (bad && !underflowing.has(layer)) {
      underflowing.add(layer);
      log(
        `${label} step ${step}: warning: attention layer ${layer}: ${(100 * s.underflow).toFixed(0)}% of rows have sum_j K_ij < eps (mean row mass ${s.rowMass?.toFixed(3)}): ` +
          'their attention output is ~0. A smaller --radius-init, --fourier-stable or fewer --fourier-features keep rows above eps.',
      );
    } else if (!bad && underflowing.delete(layer)) {
      log(
        `${label} step ${step}: attention layer ${layer} recovered: ${(100 * s.underflow).toFixed(0)}% of rows under eps`,
      );
    }
  });
}

/** Trains `task.model` as the options say; see the file's header. */
export async function train<B>(task: TrainTask<B>, opts: TrainerOptions): Promise<TrainOutcome> {
  checkOptions(opts);
  const { optimizer, generator, runDir } = opts;
  const { model } = task;
  const lead = dist.rank() === 0;
  const world = dist.worldSize();
  if (lead) fs.mkdirSync(runDir, { recursive: true });
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  const lastFile = path.join(runDir, 'last.safetensors');
  const bestFile = path.join(runDir, 'best.safetensors');

  const state: LoopState = {
    totalSteps: opts.steps,
    items: 0,
    seconds: 0,
    window: { sum: 0, count: 0, items: 0 },
    best: null,
    last: null,
  };
  // Every group starts from the optimizer's rate; the schedule follows the (possibly refitted) length.
  const baseLr = optimizer.paramGroups[0].lr;
  const scheduleOf = (totalSteps: number) =>
    stepSchedule({
      kind: opts.schedule ?? 'cosine-after-warmup',
      lr: baseLr,
      warmupSteps: opts.warmupSteps,
      totalSteps,
      minRatio: opts.minLrRatio ?? 0,
      stepsPerEpoch: opts.stepsPerEpoch,
      warmupLr: opts.warmupLr,
      minLr: opts.minLr,
    });
  scheduleOf(opts.steps); // checks the settings before anything is written
  const schedule = (s: number) => scheduleOf(state.totalSteps)(s);
  let step = 0;
  let scheduler: LRScheduler;
  if (opts.resume) {
    const info = readCheckpointInfo(opts.resume);
    const extra = info.extra as Partial<LoopState> | null;
    if (
      extra === null ||
      typeof extra !== 'object' ||
      !Number.isInteger(extra.totalSteps) ||
      extra.window === undefined
    ) {
      throw new Error(
        `${opts.resume}: holds no training-loop state (not written by the training loop?); expected a last.safetensors of a run`,
      );
    }
    Object.assign(state, extra);
    scheduler = new LRScheduler(optimizer, schedule);
    step = loadCheckpoint(opts.resume, { model, optimizer, scheduler, generator }).step;
    const rng = extra.ranks?.rng;
    delete state.ranks;
    if (world > 1 && rng?.length === world) generator.setState(rng[dist.rank()]);
    if (lead) truncateMetrics(metricsFile, step);
  } else {
    if (lead) {
      for (const f of [metricsFile, lastFile, bestFile]) fs.rmSync(f, { force: true });
      fs.writeFileSync(path.join(runDir, 'config.json'), JSON.stringify(opts.config, null, 2) + '\n');
    }
    scheduler = new LRScheduler(optimizer, schedule);
  }

  const progress = new TrainingProgress(opts.label, task.itemsName, { ...opts.progress, logEvery: opts.logEvery });
  const params = model.parameters();
  const startStep = step;
  const sessionStart = performance.now();
  const elapsed = () => state.seconds + (performance.now() - sessionStart) / 1000;
  let stepSeconds = 0;
  let stepsTimed = 0;
  let evalSeconds = 0;
  let windowTrainSeconds = 0;
  let lastLr = optimizer.paramGroups[0].lr;
  let stoppedBy: TrainOutcome['stoppedBy'] = 'steps';
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress.log(`${opts.label}: interrupted; stopping after this step with a checkpoint (Ctrl-C again to quit now)`);
  };
  process.on('SIGINT', onSigint);

  /** Fits the schedule's length to the time left, from the measured step and validation times. */
  const fitToTime = () => {
    if (!opts.timeLimit || stepsTimed === 0) return;
    const perStep = stepSeconds / stepsTimed + evalSeconds / opts.evalEvery;
    const left = opts.timeLimit - elapsed() - evalSeconds;
    state.totalSteps = Math.max(step + 1, Math.min(opts.steps, step + Math.floor(left / perStep)));
    if (world > 1) state.totalSteps = dist.broadcastObject(state.totalSteps, 0);
  };

  // Every rank takes part (the ZeRO state and the generators are gathered); rank 0 writes.
  const save = (file: string, withOptimizer: boolean) => {
    const zero = withOptimizer && optimizer instanceof ZeroRedundancyOptimizer ? optimizer : null;
    zero?.consolidateStateDict();
    const ranks = world > 1 ? { rng: dist.allGatherObject(generator.getState()) } : undefined;
    if (lead) {
      saveCheckpoint(file, {
        model,
        generator,
        step,
        config: opts.config,
        extra: { ...state, seconds: elapsed(), ...(ranks ? { ranks } : {}) },
        grads: opts.carryGrads === true,
        ...(withOptimizer ? { optimizer, scheduler } : {}),
      });
    }
    zero?.releaseConsolidated();
    dist.barrier();
  };

  const validate = async () => {
    const t0 = performance.now();
    model.eval();
    let metrics: Metrics;
    let attention: AttentionStatistics[] | undefined;
    try {
      metrics = await task.validate();
      attention = lead ? await task.diagnose?.() : undefined;
    } finally {
      model.train();
    }
    const value = metrics[task.metric];
    if (typeof value !== 'number')
      throw new Error(`validate: returned no '${task.metric}' metric (got ${Object.keys(metrics).join(', ')})`);
    state.last = { step, metrics };
    const improved =
      state.best === null ||
      (task.higherIsBetter ? value > state.best.metrics[task.metric] : value < state.best.metrics[task.metric]);
    if (improved) state.best = { step, metrics };
    if (lead)
      appendMetric(metricsFile, {
        type: 'valid',
        step,
        seconds: elapsed(),
        metrics,
        ...(attention ? { attentionStats: attention } : {}),
      });
    if (improved) save(bestFile, false);
    save(lastFile, true);
    progress.log(`${opts.label} step ${step}: valid ${formatMetrics(metrics)}${improved ? ' (best)' : ''}`);
    if (attention) warnUnderflow(attention, opts.label, step, underflowing, (line) => progress.log(line));
    evalSeconds = (performance.now() - t0) / 1000;
    if (step < state.totalSteps) fitToTime(); // the last step stays the last
  };

  const underflowing = new Set<number>();
  const flushWindow = (lr: number) => {
    const w = state.window;
    if (w.count === 0) return;
    const rate = windowTrainSeconds > 0 ? w.items / windowTrainSeconds : 0;
    if (lead) appendMetric(metricsFile, { type: 'train', step, loss: w.sum / w.count, lr, rate, seconds: elapsed() });
    state.window = { sum: 0, count: 0, items: 0 };
    windowTrainSeconds = 0;
  };

  // Several ranks: the stop decisions agreed on at the end of the last step.
  let timeUp = false;
  let anyInterrupted = false;
  model.train();
  try {
    while (step < state.totalSteps) {
      if (opts.stopAfter && step >= opts.stopAfter) {
        stoppedBy = 'stop-after';
        break;
      }
      if (opts.timeLimit && (world > 1 ? timeUp : elapsed() >= opts.timeLimit)) {
        stoppedBy = 'time';
        break;
      }
      await new Promise((resolve) => setImmediate(resolve)); // lets Ctrl-C and prefetching run
      if (world > 1 ? anyInterrupted : interrupted) {
        stoppedBy = 'interrupt';
        break;
      }
      dist.setStatus(`${opts.label} step ${step + 1}`);
      const batch = await task.batch(step);
      const lr = optimizer.paramGroups[0].lr;
      lastLr = lr;
      const t0 = performance.now();
      let loss = tidy(() => {
        if (!opts.carryGrads) optimizer.zeroGrad();
        const l = task.loss(batch);
        runBackward(l);
        if (opts.clip > 0) clipGradNormAsync_(params, opts.clip);
        optimizer.step();
        return l.item();
      });
      let items = task.items(batch);
      if (world > 1) {
        const late = lead && opts.timeLimit ? elapsed() >= opts.timeLimit : false;
        const sums = dist.allReduceNumbers(
          [loss, items, interrupted ? 1 : 0, late ? 1 : 0],
          'sum',
          `the loss of ${opts.label} step ${step + 1}`,
        );
        loss = sums[0] / world;
        items = sums[1];
        anyInterrupted = sums[2] > 0;
        timeUp = sums[3] > 0;
      }
      if (!Number.isFinite(loss))
        throw new Error(
          `${opts.label}: the training loss is ${loss} at step ${step + 1}; lower the learning rate (--lr) or raise the warm-up (--warmup)`,
        );
      scheduler.step();
      step += 1;
      const seconds = (performance.now() - t0) / 1000;
      if (step > startStep + 1) {
        // the first step of a session warms caches up: not timed
        stepSeconds += seconds;
        stepsTimed += 1;
      }
      windowTrainSeconds += seconds;
      state.items += items;
      state.window.sum += loss;
      state.window.count += 1;
      state.window.items += items;
      if (step === startStep + 11 || (step - startStep) % REFIT_EVERY === 0) fitToTime();
      const eta =
        (state.totalSteps - step) *
        ((stepsTimed > 0 ? stepSeconds / stepsTimed : seconds) + evalSeconds / opts.evalEvery);
      progress.update({
        step,
        total: state.totalSteps,
        loss: state.window.sum / state.window.count,
        lr,
        rate: state.window.items / Math.max(1e-9, windowTrainSeconds),
        eta,
      });
      if (step % opts.logEvery === 0 || step === state.totalSteps) flushWindow(lr);
      if (task.sample && opts.sampleEvery && step % opts.sampleEvery === 0)
        progress.log(`${opts.label} step ${step} sample: ${task.sample()}`);
      if (step % opts.evalEvery === 0 || step === state.totalSteps) await validate();
    }
    if (stoppedBy === 'time' && step > 0 && state.last?.step !== step) {
      flushWindow(lastLr);
      await validate();
    } else if (stoppedBy !== 'steps' && state.last?.step !== step) save(lastFile, true);
  } finally {
    process.removeListener('SIGINT', onSigint);
    progress.stop();
  }
  return {
    step,
    totalSteps: state.totalSteps,
    items: state.items,
    seconds: elapsed(),
    stoppedBy,
    best: state.best,
    last: state.last,
    lastCheckpoint: lastFile,
    bestCheckpoint: state.best ? bestFile : null,
  };
}
