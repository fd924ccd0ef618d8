export { Function } from './function';
export { Context, GradNode } from './node';
export { noGrad, isGradEnabled } from './grad-mode';
export { runBackward } from './engine';
export type { BackwardOptions } from './engine';
export { registerPostAccumulateGradHook, queueCallback } from './hooks';
export type { PostAccumulateGradHook } from './hooks';
