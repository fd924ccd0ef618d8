// Learning-rate schedules. A schedule is a multiplier of each group's base learning rate as a
// function of the step (torch.optim.lr_scheduler.LambdaLR); LRScheduler applies one to an
// optimizer: construct it (lr = base * f(0)), then call step() after each optimizer.step().
//
//   const sched = new LRScheduler(opt, warmupCosine({ warmupSteps: 2000, totalSteps: 100000 }));
import { checkRange, Optimizer, BaseOptions } from './optimizer';

export type Schedule = (step: number) => number;

function checkSteps(warmupSteps: number, totalSteps: number): void {
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
    throw new Error(`warmupSteps: expected a non-negative integer, got ${warmupSteps}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1)
    throw new Error(`totalSteps: expected a positive integer, got ${totalSteps}`);
  if (warmupSteps > totalSteps) throw new Error(`warmupSteps: ${warmupSteps} exceeds totalSteps ${totalSteps}`);
}

/**
 * Linear warm-up from 0 to 1 over warmupSteps, then a half cosine from 1 down to minRatio at
 * totalSteps (minRatio after it). The paper's LM: 2000 warm-up steps then cosine.
 */
export function warmupCosine(opts: { warmupSteps: number; totalSteps: number; minRatio?: number }): Schedule {
  const { warmupSteps, totalSteps } = opts;
  const minRatio = checkRange(opts.minRatio ?? 0, 'minRatio', 0, 1);
  checkSteps(warmupSteps, totalSteps);
  return (step) => {
    if (step < warmupSteps) return step / warmupSteps;
    const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}

/**
 * The paper's language-model code (lmtool-fwms train.py, scheduler 'cosine' with warmup_step):
 * torch's CosineAnnealingLR(T_max = totalSteps, eta_min = minRatio x lr) stepped with the step
 * count, its first warmupSteps overridden by a linear warm-up. The code sets the learning rate after
 * each optimizer step, so step 0 runs at the full rate (the optimizer's initial value), steps
 * 1 .. warmupSteps - 1 at s / warmupSteps, and step s >= warmupSteps at the cosine counted from 0:
 * minRatio + (1 - minRatio)(1 + cos(pi s / totalSteps)) / 2. `step` is the 0-based step index.
 */
export function cosineFromStepZero(opts: { warmupSteps: number; totalSteps: number; minRatio?: number }): Schedule {
  const { warmupSteps, totalSteps } = opts;
  const minRatio = checkRange(opts.minRatio ?? 0, 'minRatio', 0, 1);
  checkSteps(warmupSteps, totalSteps);
  return (step) => {
    if (step === 0) return 1;
    if (step < warmupSteps) return step / warmupSteps;
    return minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos((Math.PI * Math.min(step, totalSteps)) / totalSteps));
  };
}

/**
 * timm's CosineLRScheduler (t_in_epochs, warmup_prefix False, one cycle) as DeiT's main.py steps it:
 * the learning rate changes once per epoch, and lr_scheduler.step(epoch) runs after epoch `epoch`,
 * so epoch e trains at timm's value for t = max(e - 1, 0) (epochs 0 and 1 both at warmupLr):
 *   t < warmupEpochs:  warmupLr + t (lr - warmupLr) / warmupEpochs
 *   t < epochs:        minLr + (lr - minLr)(1 + cos(pi t / epochs)) / 2    (counted from epoch 0)
 *   after:             minLr
 * warmupLr and minLr are absolute rates (DeiT: 1e-6 and 1e-5); the multiplier is relative to `lr`,
 * the rate every parameter group starts from. `step` is the 0-based step index.
 */
export function timmCosineEpochs(opts: {
  lr: number;
  warmupEpochs: number;
  epochs: number;
  stepsPerEpoch: number;
  warmupLr: number;
  minLr: number;
}): Schedule {
  const { lr, warmupEpochs, epochs, stepsPerEpoch, warmupLr, minLr } = opts;
  checkRange(lr, 'lr', Number.MIN_VALUE);
  checkRange(warmupLr, 'warmupLr', 0);
  checkRange(minLr, 'minLr', 0);
  if (!(warmupEpochs >= 0) || !(epochs > 0) || !(warmupEpochs <= epochs))
    throw new Error(
      `warmupEpochs, epochs: expected 0 <= warmupEpochs <= epochs and epochs > 0, got ${warmupEpochs}, ${epochs}`,
    );
  if (!Number.isInteger(stepsPerEpoch) || stepsPerEpoch < 1)
    throw new Error(`stepsPerEpoch: expected a positive integer, got ${stepsPerEpoch}`);
  return (step) => {
    const t = Math.max(Math.floor(step / stepsPerEpoch) - 1, 0);
    let rate: number;
    if (t < warmupEpochs) rate = warmupLr + (t * (lr - warmupLr)) / warmupEpochs;
    else if (t < epochs) rate = minLr + 0.5 * (lr - minLr) * (1 + Math.cos((Math.PI * t) / epochs));
    else rate = minLr;
    return rate / lr;
  };
}

/** The learning-rate schedules a training run can name. */
export type ScheduleKind = 'cosine-after-warmup' | 'cosine-from-step-0' | 'timm-cosine-epochs';
export const SCHEDULE_KINDS: readonly ScheduleKind[] = [
  'cosine-after-warmup',
  'cosine-from-step-0',
  'timm-cosine-epochs',
];

export interface ScheduleSettings {
  kind: ScheduleKind;
  /** The peak learning rate (every parameter group's starting rate). */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** The cosine's floor as a share of lr (the step schedules). */
  minRatio: number;
  /** timm-cosine-epochs: steps per epoch and the absolute warm-up start and floor. */
  stepsPerEpoch?: number;
  warmupLr?: number;
  minLr?: number;
}

/**
 * The multiplier of the base rate for each 0-based step index:
 *   'cosine-after-warmup'  warmupCosine at step + 1 (no step at rate 0): a linear warm-up, then a
 *                          cosine over the remaining steps to minRatio;
 *   'cosine-from-step-0'   cosineFromStepZero (the paper's LM code);
 *   'timm-cosine-epochs'   timmCosineEpochs (DeiT's), epochs = steps / stepsPerEpoch.
 */
export function stepSchedule(o: ScheduleSettings): Schedule {
  const warmupSteps = Math.min(o.warmupSteps, o.totalSteps);
  switch (o.kind) {
    case 'cosine-after-warmup': {
      const f = warmupCosine({ warmupSteps, totalSteps: o.totalSteps, minRatio: o.minRatio });
      return (step) => f(step + 1);
    }
    case 'cosine-from-step-0':
      return cosineFromStepZero({ warmupSteps, totalSteps: o.totalSteps, minRatio: o.minRatio });
    case 'timm-cosine-epochs': {
      const e = o.stepsPerEpoch;
      if (e === undefined || o.warmupLr === undefined || o.minLr === undefined)
        throw new Error("schedule: 'timm-cosine-epochs' needs stepsPerEpoch, warmupLr and minLr");
      return timmCosineEpochs({
        lr: o.lr,
        warmupEpochs: warmupSteps / e,
        epochs: o.totalSteps / e,
        stepsPerEpoch: e,
        warmupLr: o.warmupLr,
        minLr: o.minLr,
      });
    }
    default:
      throw new Error(`schedule: expected one of ${SCHEDULE_KINDS.join(', ')}, got ${JSON.stringify(o.kind)}`);
  }
}

/** Linear warm-up from 0 to 1 over warmupSteps, then linear decay to endRatio at totalSteps. */
export function linearDecay(opts: { warmupSteps?: number; totalSteps: number; endRatio?: number }): Schedule {
  const warmupSteps = opts.warmupSteps ?? 0;
  const { totalSteps } = opts;
  const endRatio = checkRange(opts.endRatio ?? 0, 'endRatio', 0, 1);
  checkSteps(warmupSteps, totalSteps);
  return (step) => {
    if (step < warmupSteps) return step / warmupSteps;
    const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return 1 - (1 - endRatio) * progress;
  };
}

/** Sets every group's lr to its base lr times schedule(step); step() advances by one. */
export class LRScheduler {
  readonly baseLrs: number[];
  /** The number of step() calls so far (torch's last_epoch). */
  lastStep = 0;

  constructor(
    readonly optimizer: Optimizer<BaseOptions>,
    readonly schedule: Schedule,
  ) {
    if (typeof schedule !== 'function') throw new Error('schedule: expected a function of the step');
    this.baseLrs = optimizer.paramGroups.map((g) => g.lr);
    this.apply();
  }

  step(): void {
    this.lastStep += 1;
    this.apply();
  }

  /** The learning rates set by the last step. */
  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): { lastStep: number; baseLrs: number[] } {
    return { lastStep: this.lastStep, baseLrs: [...this.baseLrs] };
  }

  loadStateDict(dict: { lastStep: number; baseLrs: number[] }): void {
    if (!Number.isInteger(dict?.lastStep) || dict.lastStep < 0)
      throw new Error('dict.lastStep: expected a non-negative integer');
    if (!Array.isArray(dict.baseLrs) || dict.baseLrs.length !== this.baseLrs.length) {
      throw new Error(`dict.baseLrs: expected ${this.baseLrs.length} learning rates`);
    }
    dict.baseLrs.forEach((lr, i) => {
      this.baseLrs[i] = checkRange(lr, `dict.baseLrs[${i}]`, 0);
    });
    this.lastStep = dict.lastStep;
    this.apply();
  }

  private apply(): void {
    const f = this.schedule(this.lastStep);
    if (!Number.isFinite(f) || f < 0)
      throw new Error(`schedule: returned ${f} at step ${this.lastStep}; expected a finite multiplier >= 0`);
    this.optimizer.paramGroups.forEach((g, i) => {
      g.lr = this.baseLrs[i] * f;
    });
  }
}
