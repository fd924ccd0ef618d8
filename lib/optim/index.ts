// Optimizers, gradient clipping and learning-rate schedules (torch.optim's names).
export { Optimizer, checkRange } from './optimizer';
export type { BaseOptions, ParamGroup, ParamGroupSpec, ParamState, OptimizerStateDict } from './optimizer';
export { Adam, AdamW } from './adam';
export type { AdamOptions } from './adam';
export { SGD } from './sgd';
export type { SgdOptions } from './sgd';
export { clipGradNorm_, clipGradNormAsync_ } from './clip-grad';
export type { ClipGradNormOptions } from './clip-grad';
export {
  LRScheduler,
  warmupCosine,
  linearDecay,
  cosineFromStepZero,
  timmCosineEpochs,
  stepSchedule,
  SCHEDULE_KINDS,
} from './schedules';
export type { ScheduleKind, ScheduleSettings } from './schedules';
export type { Schedule } from './schedules';
export { weightDecayGroups, isNoDecay } from './param-groups';
export { ZeroRedundancyOptimizer } from './zero';
export type { OptimizerClass } from './zero';
