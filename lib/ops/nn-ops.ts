// The neural-network ops family: matrix products on the backend's BLAS, fused LayerNorm, softmax
// and cross-entropy, embeddings with a deterministic gradient, Philox dropout and drop-path, and
// the adaptive softmax / adaptive input pair composed from them.
export { matmul, MatMulFunction } from './matmul';
export type { MatmulOptions } from './matmul';
export { linear, LinearFunction } from './linear';
export { layerNorm, LayerNormFunction } from './layernorm';
export type { LayerNormOptions } from './layernorm';
export { softmax, logSoftmax, SoftmaxFunction } from './softmax';
export { crossEntropy, CrossEntropyFunction } from './cross-entropy';
export type { CrossEntropyOptions, Reduction } from './cross-entropy';
export { embedding, gatherRows, scatterRows, EmbeddingFunction, ScatterRowsFunction } from './embedding';
export { dropout, dropPath, DropoutFunction } from './dropout';
export type { DropoutOptions } from './dropout';
export { adaptiveLogSoftmaxWithLoss, adaptiveLogProbs, adaptiveInput } from './adaptive-softmax';
export type {
  AdaptiveSoftmaxTail,
  AdaptiveSoftmaxWeights,
  AdaptiveSoftmaxOptions,
  AdaptiveSoftmaxResult,
  AdaptiveInputCluster,
} from './adaptive-softmax';
