// The training runtime's public surface: modules (ff.nn), optimizers and schedules (ff.optim),
// data parallelism across processes (ff.distributed),
// data (ff.data), the models of the paper's experiments (ff.models), their evaluation metrics,
// safetensors files, checkpoints and the seeded random generator.
export * as nn from './nn';
export * as distributed from './distributed';
export * as optim from './optim';
export { saveSafetensors, loadSafetensors, readSafetensors, readSafetensorsHeader } from './io/safetensors';
export type { SafetensorsEntry, SafetensorsHeader, LoadSafetensorsOptions } from './io/safetensors';
export { saveCheckpoint, loadCheckpoint, readCheckpointInfo } from './train/checkpoint';
export type { CheckpointContents, CheckpointInfo, LoadCheckpointTargets } from './train/checkpoint';
export { Generator, defaultGenerator, manualSeed, getRngState, setRngState, DEFAULT_SEED } from './random';
export type { RngState } from './random';
export * as models from './models';
export { evaluatePerplexity, slidingWindows } from './train/perplexity';
export type { SlidingWindow, PerplexityOptions, PerplexityResult } from './train/perplexity';
export { evaluateAccuracy } from './train/accuracy';
export type { ImageClassifier, AccuracyOptions, AccuracyResult } from './train/accuracy';
export { headRedundancy } from './train/head-redundancy';
export type { HeadRedundancy } from './train/head-redundancy';
export * as data from './data';
