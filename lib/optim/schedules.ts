// Learning-rate schedules. A schedule is a multiplier of each group's base learning rate as a
// function of the step (torch.optim.lr_scheduler.LambdaLR); LRScheduler applies one to an
// optimizer: construct it (lr = base * f(0)), then call step() after each optimizer.step().
//
//   const sched = new LRScheduler(opt, warmupCosine({ warmupSteps: 2000, totalSteps: 100000 }));
import { checkRange, Optimizer, BaseOptions } from './optimizer';

export type Schedule = (step: number) => number;

function checkSteps(warmupSteps: number, totalSteps: number): void {
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new Error(`warmupSteps: expected a non-negative integer, got ${warmupSteps}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new Error(`totalSteps: expected a positive integer, got ${totalSteps}`);
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

  constructor(readonly optimizer: Optimizer<BaseOptions>, readonly schedule: Schedule) {
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
    if (!Number.isInteger(dict?.lastStep) || dict.lastStep < 0) throw new Error('dict.lastStep: expected a non-negative integer');
    if (!Array.isArray(dict.baseLrs) || dict.baseLrs.length !== this.baseLrs.length) {
      throw new Error(`dict.baseLrs: expected ${this.baseLrs.length} learning rates`);
    }
    dict.baseLrs.forEach((lr, i) => { this.baseLrs[i] = checkRange(lr, `dict.baseLrs[${i}]`, 0); });
    this.lastStep = dict.lastStep;
    this.apply();
  }

  private apply(): void {
    const f = this.schedule(this.lastStep);
    if (!Number.isFinite(f) || f < 0) throw new Error(`schedule: returned ${f} at step ${this.lastStep}; expected a finite multiplier >= 0`);
    this.optimizer.paramGroups.forEach((g, i) => { g.lr = this.baseLrs[i] * f; });
  }
}
