// Training checkpoints: one safetensors file (so PyTorch's safetensors reads the weights) holding
// everything a run needs to continue exactly where it stopped:
//   tensors   model.<name>                 the model's stateDict()
//             optimizer.<index>.<key>      optimizer state tensors (exp_avg, exp_avg_sq, ...)
//             grad.<name>                  with `grads`, the parameters' gradients (a run that
//                                          carries them from step to step needs them to resume)
//   metadata  format, step, config, rng (the generator's seed and counter), optimizer (its
//             hyperparameters and per-parameter numbers), scheduler, extra — JSON strings
// Written atomically (lib/io/safetensors.ts). Resuming on cpu continues bit-identically: the
// weights and moments are stored exactly, and the generator resumes at the same counter.
import type { Module } from '../nn/module';
import type { BaseOptions, Optimizer, OptimizerStateDict, ParamState } from '../optim/optimizer';
import type { LRScheduler } from '../optim/schedules';
import { readSafetensors, readSafetensorsHeader, saveSafetensors } from '../io/safetensors';
import type { Device } from '../native';
import { defaultGenerator, Generator, RngState } from '../random';
import { keep } from '../scope';
import { Tensor } from '../tensor';

const FORMAT = 'fourierformer.checkpoint/1';

export interface CheckpointContents {
  model: Module;
  optimizer?: Optimizer<BaseOptions>;
  scheduler?: LRScheduler;
  /** The generator whose state is saved; the default generator when left out. */
  generator?: Generator;
  /** The number of optimizer steps taken. */
  step: number;
  /** The run's configuration (JSON-serialisable), to rebuild the model before loading. */
  config?: unknown;
  /** Anything else the loop needs to resume (data order, best loss...), JSON-serialisable. */
  extra?: unknown;
  /** Save the parameters' current gradients too (restored by loadCheckpoint). */
  grads?: boolean;
}

/** What a checkpoint says about itself, read from its header alone. */
export interface CheckpointInfo {
  step: number;
  config: unknown;
  extra: unknown;
  rng: RngState;
}

function json(value: unknown, what: string): string {
  const s = JSON.stringify(value ?? null);
  if (s === undefined) throw new Error(`${what}: is not JSON-serialisable`);
  return s;
}

/** Saves model, optimizer and scheduler state, RNG state, step and config to one file, atomically. */
export function saveCheckpoint(file: string, c: CheckpointContents): void {
  if (c === null || typeof c !== 'object' || c.model === undefined)
    throw new Error('contents: expected { model, step, ... }');
  if (!Number.isSafeInteger(c.step) || c.step < 0)
    throw new Error(`contents.step: expected a non-negative integer, got ${String(c.step)}`);
  const tensors: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(c.model.stateDict())) tensors[`model.${name}`] = t;
  if (c.grads) for (const [name, p] of c.model.namedParameters()) if (p.grad !== null) tensors[`grad.${name}`] = p.grad;
  const metadata: Record<string, string> = {
    format: FORMAT,
    step: String(c.step),
    config: json(c.config, 'contents.config'),
    extra: json(c.extra, 'contents.extra'),
    rng: json((c.generator ?? defaultGenerator).getState(), 'contents.generator'),
  };
  if (c.optimizer) {
    const sd = c.optimizer.stateDict();
    const numbers: Record<string, Record<string, number>> = {};
    for (const [index, s] of Object.entries(sd.state)) {
      for (const [key, v] of Object.entries(s)) {
        if (v instanceof Tensor) tensors[`optimizer.${index}.${key}`] = v;
        else (numbers[index] ??= {})[key] = v;
      }
    }
    metadata.optimizer = json({ paramGroups: sd.paramGroups, numbers }, 'contents.optimizer');
  }
  if (c.scheduler) metadata.scheduler = json(c.scheduler.stateDict(), 'contents.scheduler');
  saveSafetensors(file, tensors, metadata);
}

function parseMetadata(metadata: Record<string, string>, file: string): CheckpointInfo {
  if (metadata.format !== FORMAT) {
    throw new Error(
      `${file}: not a fourierformer checkpoint (its metadata has format ${JSON.stringify(metadata.format)}, expected '${FORMAT}')`,
    );
  }
  return {
    step: Number(metadata.step),
    config: JSON.parse(metadata.config),
    extra: JSON.parse(metadata.extra),
    rng: JSON.parse(metadata.rng) as RngState,
  };
}

/** Step, config, extra and RNG state of a checkpoint, without loading its tensors. */
export function readCheckpointInfo(file: string): CheckpointInfo {
  return parseMetadata(readSafetensorsHeader(file).metadata, file);
}

export interface LoadCheckpointTargets {
  model: Module;
  optimizer?: Optimizer<BaseOptions>;
  scheduler?: LRScheduler;
  /** Receives the saved RNG state; the default generator when left out. */
  generator?: Generator;
}

/**
 * Restores a checkpoint into a model built from the same config (and its optimizer, scheduler
 * and generator, when given). Returns what the checkpoint says about itself.
 */
export function loadCheckpoint(file: string, into: LoadCheckpointTargets): CheckpointInfo {
  if (into === null || typeof into !== 'object' || into.model === undefined)
    throw new Error('into: expected { model, optimizer?, scheduler?, generator? }');
  const device: Device | undefined = into.model.parameters()[0]?.device;
  const { tensors, metadata } = readSafetensors(file, { device });
  try {
    const info = parseMetadata(metadata, file);
    const weights: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(tensors)) if (name.startsWith('model.')) weights[name.slice(6)] = t;
    into.model.loadStateDict(weights);
    for (const [name, p] of into.model.namedParameters()) {
      const g = tensors[`grad.${name}`];
      if (g === undefined) continue;
      p.grad?.dispose();
      p.grad = keep(g.clone());
    }
    if (into.optimizer) {
      if (metadata.optimizer === undefined) throw new Error(`${file}: holds no optimizer state`);
      const saved = JSON.parse(metadata.optimizer) as {
        paramGroups: OptimizerStateDict['paramGroups'];
        numbers: Record<string, Record<string, number>>;
      };
      const state: Record<number, ParamState> = {};
      for (const [index, numbers] of Object.entries(saved.numbers)) state[Number(index)] = { ...numbers };
      for (const [name, t] of Object.entries(tensors)) {
        const m = /^optimizer\.(\d+)\.(.+)$/.exec(name);
        if (m) (state[Number(m[1])] ??= {})[m[2]] = t;
      }
      into.optimizer.loadStateDict({ state, paramGroups: saved.paramGroups });
    }
    if (into.scheduler) {
      if (metadata.scheduler === undefined) throw new Error(`${file}: holds no scheduler state`);
      into.scheduler.loadStateDict(JSON.parse(metadata.scheduler));
    }
    (into.generator ?? defaultGenerator).setState(info.rng);
    return info;
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}
