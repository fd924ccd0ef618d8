// SGD with momentum (torch.optim.SGD): one fused native kernel per group and device
// (csrc/cpu/sgd.cpp, csrc/cuda/sgd.cu), PyTorch's rule: the momentum buffer starts as the first
// gradient, then b = momentum b + (1 - dampening) g; Nesterov uses g + momentum b.
import { checkRange, Optimizer, ParamGroup, ParamGroupSpec } from './optimizer';
import { checkOptions } from '../options';
import { Tensor } from '../tensor';

export interface SgdOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SgdOptions> {
  constructor(params: Tensor[] | ParamGroupSpec<SgdOptions>[], options: Partial<SgdOptions> & { lr: number }) {
    const o = checkOptions(options, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov'], 'options');
    if (o.lr === undefined) throw new Error('options.lr: SGD needs a learning rate, got undefined');
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...o, lr: o.lr });
  }

  protected checkOptions(o: SgdOptions, what: string): void {
    checkRange(o.lr, `${what}.lr`, 0);
    checkRange(o.momentum, `${what}.momentum`, 0);
    checkRange(o.dampening, `${what}.dampening`, -Infinity);
    checkRange(o.weightDecay, `${what}.weightDecay`, 0);
    if (typeof o.nesterov !== 'boolean') throw new Error(`${what}.nesterov: expected a boolean`);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw new Error(`${what}.nesterov: Nesterov momentum needs momentum > 0 and dampening 0`);
    }
  }

  step(): void {
    for (const group of this.paramGroups) this.stepGroup(group);
  }

  private stepGroup(group: ParamGroup<SgdOptions>): void {
    for (const params of this.withGrads(group)) {
      // Buffers are made on a parameter's first step; those and the others go in separate calls.
      const first: Tensor[] = [];
      const later: Tensor[] = [];
      for (const p of params) {
        const s = this.stateOf(p);
        if (group.momentum !== 0 && s.momentum_buffer === undefined) {
          s.momentum_buffer = this.zerosLike(p);
          first.push(p);
        } else later.push(p);
      }
      for (const [list, isFirst] of [
        [first, true],
        [later, false],
      ] as const) {
        if (list.length === 0) continue;
        const buffers =
          group.momentum !== 0
            ? list.map((p) => (this.stateOf(p).momentum_buffer as Tensor).storage('momentum_buffer'))
            : [];
        list[0].backend.sgdStep(
          list.map((p) => p.storage('param')),
          list.map((p) => (p.grad as Tensor).storage('grad')),
          buffers,
          group.lr,
          group.momentum,
          group.dampening,
          group.weightDecay,
          group.nesterov,
          isFirst,
        );
      }
    }
  }
}
