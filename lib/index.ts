// fourierformer: FourierFormer attention for Node.js. See README.md for the API.
// Attaches the op methods to Tensor (t.add(u), t.backward(), ...).
import './ops/tensor-methods';
export { Tensor, tensor, full, zeros, ones } from './tensor';
export type { TensorOptions } from './tensor';
export { tidy, keep, memory, cachedMemory, emptyCache } from './scope';
export type { MemoryInfo } from './scope';
export {
  getDefaultDevice,
  setDefaultDevice,
  synchronize,
  hostSyncs,
  setMatmulPrecision,
  getMatmulPrecision,
} from './device';
export type { MatmulPrecision } from './device';
export { setNumThreads, getNumThreads } from './threads';
export { DEVICES } from './native';
export type { Device } from './native';
export { fourierMetric, FourierMetric } from './ops/fourier-metric';
export type { FourierMetricOptions } from './ops/fourier-metric';
export { fourierAttention, FourierAttention } from './ops/fourier-attention';
export type { FourierAttentionOptions } from './ops/fourier-attention';
export { dotProductAttention, DotProductAttention } from './ops/dot-attention';
export type { DotProductAttentionOptions } from './ops/dot-attention';
export { performerAttention, PerformerAttention } from './ops/performer-attention';
export type { PerformerAttentionOptions } from './ops/performer-attention';
export { orthogonalRandomFeatures } from './nn/random-features';
export type { RandomFeaturesOptions } from './nn/random-features';
export { neuralAttention, NeuralAttention } from './ops/neural-attention';
export type { NeuralAttentionOptions, NeuralAttentionParams } from './ops/neural-attention';
export * from './ops/tensor-ops';
export * from './ops/nn-ops';
export { noGrad, isGradEnabled } from './autograd/grad-mode';
export * as autograd from './autograd';
export * as reference from './reference';
export { backends } from './info';
export * from './runtime';
