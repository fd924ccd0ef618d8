// Neural-network modules (torch.nn's names): Module, containers and the layers of a transformer.
export { Module } from './module';
export type { LoadStateDictResult } from './module';
export { ModuleList, Sequential } from './containers';
export type { TensorModule } from './containers';
export { Linear } from './linear';
export type { LinearOptions } from './linear';
export { LayerNorm } from './layernorm';
export type { LayerNormModuleOptions } from './layernorm';
export { Embedding } from './embedding';
export type { EmbeddingOptions } from './embedding';
export { Dropout, DropPath } from './dropout';
export { MultiHeadAttention } from './attention';
export type {
  FavorSettings,
  FourierKernelSettings,
  NeuralSettings,
  RadiusSharing,
  MultiHeadAttentionOptions,
} from './attention';
export type { AttentionKind } from './attention-kind';
export { FavorFeatures } from './favor-features';
export type { FavorFeaturesOptions } from './favor-features';
export { SpectralRPE } from './spectral-rpe';
export type { SpectralRPEOptions } from './spectral-rpe';
export { NeuralScoreNet, defaultNeuralDim } from './neural-score';
export type { AttentionStatistics } from './attention-statistics';
export { TransformerBlock } from './transformer-block';
export { KVCache, LayerKVCache } from './kv-cache';
export type { TransformerBlockOptions } from './transformer-block';
export * as init from './init';
export { SinusoidalPositions, sinusoidalEncoding } from './sinusoidal';
export { DistributedDataParallel } from './distributed-data-parallel';
export type { DistributedDataParallelOptions, DataParallelStats } from './distributed-data-parallel';
