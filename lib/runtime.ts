// The training runtime's public surface: modules (ff.nn), optimizers and schedules (ff.optim),
// safetensors files, checkpoints and the seeded random generator.
export * as nn from './nn';
export * as optim from './optim';
export { saveSafetensors, loadSafetensors, readSafetensors, readSafetensorsHeader } from './io/safetensors';
export type { SafetensorsEntry, SafetensorsHeader, LoadSafetensorsOptions } from './io/safetensors';
export { saveCheckpoint, loadCheckpoint, readCheckpointInfo } from './train/checkpoint';
export type { CheckpointContents, CheckpointInfo, LoadCheckpointTargets } from './train/checkpoint';
export { Generator, defaultGenerator, manualSeed, getRngState, setRngState, DEFAULT_SEED } from './random';
export type { RngState } from './random';
