// fourierformer: FourierFormer attention for Node.js. See README.md for the API.
export { Tensor, tensor, full, zeros, ones } from './tensor';
export type { TensorOptions } from './tensor';
export { tidy, keep, memory } from './scope';
export type { MemoryInfo } from './scope';
export { getDefaultDevice, setDefaultDevice } from './device';
export { DEVICES } from './native';
export type { Device } from './native';
export { fourierMetric, FourierMetric } from './ops/fourier-metric';
export type { FourierMetricOptions } from './ops/fourier-metric';
export { fourierAttention, FourierAttention } from './ops/fourier-attention';
export type { FourierAttentionOptions } from './ops/fourier-attention';
export { dotProductAttention, DotProductAttention } from './ops/dot-attention';
export type { DotProductAttentionOptions } from './ops/dot-attention';
export { noGrad, isGradEnabled } from './autograd/grad-mode';
export * as autograd from './autograd';
export * as reference from './reference';
export { backends } from './info';
