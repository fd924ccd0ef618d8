// Adam and AdamW (torch.optim.Adam / AdamW): each step updates every parameter of a group, its
// two moment tensors and the weight decay in ONE fused native kernel (csrc/cpu/adamw.cpp,
// csrc/cuda/adamw.cu), with PyTorch's bias-corrected rule.
import { checkRange, Optimizer, ParamGroup, ParamGroupSpec } from './optimizer';
import { checkOptions } from '../options';
import { Tensor } from '../tensor';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

const ADAM_OPTIONS = ['lr', 'betas', 'eps', 'weightDecay'] as const;

export class Adam extends Optimizer<AdamOptions> {
  /** AdamW decays the weights (p *= 1 - lr wd); Adam adds wd p to the gradient (L2). */
  protected readonly decoupled: boolean = false;

  constructor(params: Tensor[] | ParamGroupSpec<AdamOptions>[], options?: Partial<AdamOptions>) {
    super(params, {
      lr: 1e-3,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 0,
      ...checkOptions(options, ADAM_OPTIONS, 'options'),
    });
  }

  protected checkOptions(o: AdamOptions, what: string): void {
    checkRange(o.lr, `${what}.lr`, 0);
    if (!Array.isArray(o.betas) || o.betas.length !== 2) throw new Error(`${what}.betas: expected [beta1, beta2]`);
    checkRange(o.betas[0], `${what}.betas[0]`, 0, 1 - Number.EPSILON);
    checkRange(o.betas[1], `${what}.betas[1]`, 0, 1 - Number.EPSILON);
    checkRange(o.eps, `${what}.eps`, 0);
    checkRange(o.weightDecay, `${what}.weightDecay`, 0);
  }

  step(): void {
    for (const group of this.paramGroups) this.stepGroup(group);
  }

  private stepGroup(group: ParamGroup<AdamOptions>): void {
    for (const params of this.withGrads(group)) {
      // Parameters that missed steps (no gradient then) have their own count: one call per count.
      const byStep = new Map<number, Tensor[]>();
      for (const p of params) {
        const s = this.stateOf(p);
        if (s.exp_avg === undefined) {
          s.step = 0;
          s.exp_avg = this.zerosLike(p);
          s.exp_avg_sq = this.zerosLike(p);
        }
        s.step = (s.step as number) + 1;
        const list = byStep.get(s.step as number) ?? [];
        list.push(p);
        byStep.set(s.step as number, list);
      }
      for (const [step, list] of byStep) {
        const storages = (key: string) => list.map((p) => (this.stateOf(p)[key] as Tensor).storage(key));
        list[0].backend.adamStep(
          list.map((p) => p.storage('param')),
          list.map((p) => (p.grad as Tensor).storage('grad')),
          storages('exp_avg'),
          storages('exp_avg_sq'),
          group.lr,
          group.betas[0],
          group.betas[1],
          group.eps,
          group.weightDecay,
          step,
          this.decoupled,
        );
      }
    }
  }
}

export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;

  constructor(params: Tensor[] | ParamGroupSpec<AdamOptions>[], options?: Partial<AdamOptions>) {
    super(params, { weightDecay: 1e-2, ...checkOptions(options, ADAM_OPTIONS, 'options') });
  }
}
