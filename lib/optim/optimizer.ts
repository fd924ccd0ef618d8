// Optimizer: the base of Adam, AdamW and SGD, with PyTorch's shape. Parameters come as a list or
// as groups with their own hyperparameters; per-parameter state (moment tensors, step counts)
// lives in `state`; zeroGrad() drops gradients; stateDict()/loadStateDict() save and restore the
// hyperparameters and the state, with parameters named by their index over all groups (as
// torch.optim does). Each step() updates a group with one fused native call per device.
import { checkOptions, describe, optBoolean } from '../options';
import { keep } from '../scope';
import { shapeString, sameShape } from '../shape';
import { checkTensor, Tensor } from '../tensor';

/** Hyperparameters every optimizer has. */
export interface BaseOptions {
  lr: number;
}

/** A parameter group as given to a constructor: its parameters and any hyperparameter overrides. */
export type ParamGroupSpec<O> = { params: Tensor[] } & Partial<O>;

/** A parameter group as the optimizer holds it: every hyperparameter filled in. */
export type ParamGroup<O> = { params: Tensor[] } & O;

/** One parameter's state: tensors (moments) and numbers (step counts). */
export type ParamState = Record<string, Tensor | number>;

/** What stateDict() returns: state keyed by parameter index, and the groups' hyperparameters. */
export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  paramGroups: (Record<string, unknown> & { params: number[] })[];
}

export abstract class Optimizer<O extends BaseOptions> {
  readonly defaults: O;
  readonly paramGroups: ParamGroup<O>[] = [];
  readonly state = new Map<Tensor, ParamState>();

  constructor(params: Tensor[] | ParamGroupSpec<O>[], defaults: O) {
    this.defaults = { ...defaults };
    this.checkOptions(this.defaults, 'options');
    if (!Array.isArray(params) || params.length === 0)
      throw new Error('params: expected a non-empty array of tensors or parameter groups');
    const groups: ParamGroupSpec<O>[] =
      params[0] instanceof Tensor
        ? [{ params: params as Tensor[] } as ParamGroupSpec<O>]
        : (params as ParamGroupSpec<O>[]);
    groups.forEach((g, i) => this.addParamGroup(g, `params[${i}]`));
  }

  /** Adds a group (torch's add_param_group): hyperparameters it leaves out come from the defaults. */
  addParamGroup(spec: ParamGroupSpec<O>, what = 'paramGroup'): void {
    if (spec === null || typeof spec !== 'object' || !Array.isArray(spec.params)) {
      throw new Error(`${what}: expected { params: Tensor[], ...options }, got ${describe(spec)}`);
    }
    checkOptions(spec, ['params', ...Object.keys(this.defaults)], what);
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    spec.params.forEach((p, i) => {
      checkTensor(p, `${what}.params[${i}]`);
      if (!p.isLeaf)
        throw new Error(
          `${what}.params[${i}]: an optimizer can only update leaf tensors (parameters), not results of ops`,
        );
      if (seen.has(p))
        throw new Error(
          `${what}.params[${i}]: the tensor appears in more than one place among the optimizer's parameters`,
        );
      seen.add(p);
    });
    const group = { ...this.defaults, ...spec, params: [...spec.params] } as ParamGroup<O>;
    this.checkOptions(group, what);
    this.paramGroups.push(group);
  }

  /** Throws an Error naming the option when a hyperparameter is out of range. */
  protected abstract checkOptions(options: O, what: string): void;

  /** Updates every parameter that has a gradient. */
  abstract step(): void;

  /** Drops the gradients (setToNone, the default, as torch) or fills them with zeros. */
  zeroGrad(setToNone = true): void {
    optBoolean(setToNone, 'setToNone', true);
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (p.grad === null) continue;
        if (setToNone) {
          p.grad.dispose();
          p.grad = null;
        } else p.grad.backend.fill(p.grad.storage(), 0);
      }
    }
  }

  /** The state of p, created on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (s === undefined) {
      s = {};
      this.state.set(p, s);
    }
    return s;
  }

  /** A zero tensor shaped like p on p's device, kept out of tidy() scopes (state outlives a step). */
  protected zerosLike(p: Tensor): Tensor {
    const b = p.backend;
    const s = b.alloc(p.size);
    b.fill(s, 0);
    return keep(new Tensor(s, p.shape, p.device));
  }

  /** The parameters of a group that have gradients, split by device (one native call each). */
  protected withGrads(group: ParamGroup<O>): Tensor[][] {
    const byDevice = new Map<string, Tensor[]>();
    group.params.forEach((p, i) => {
      if (p.grad === null) return;
      checkTensor(p, `params[${i}]`);
      checkTensor(p.grad, `params[${i}].grad`);
      const list = byDevice.get(p.device) ?? [];
      list.push(p);
      byDevice.set(p.device, list);
    });
    return [...byDevice.values()];
  }

  /** Hyperparameters and state; tensors in the result are the optimizer's own (not copies). */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...options } = g;
      return {
        ...options,
        params: params.map((p) => {
          index.set(p, index.size);
          return index.size - 1;
        }),
      };
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[i] = { ...s };
    }
    return { state, paramGroups };
  }

  /**
   * Restores hyperparameters and state saved by stateDict() of an optimizer over parameters of
   * the same shapes, in the same order. State tensors are copied (to each parameter's device).
   */
  loadStateDict(dict: OptimizerStateDict): void {
    if (
      dict === null ||
      typeof dict !== 'object' ||
      !Array.isArray(dict.paramGroups) ||
      dict.state === null ||
      typeof dict.state !== 'object'
    ) {
      throw new Error('dict: expected { state, paramGroups } from an optimizer stateDict()');
    }
    if (dict.paramGroups.length !== this.paramGroups.length) {
      throw new Error(
        `dict.paramGroups: has ${dict.paramGroups.length} groups, this optimizer has ${this.paramGroups.length}`,
      );
    }
    const params: Tensor[] = [];
    dict.paramGroups.forEach((saved, gi) => {
      const group = this.paramGroups[gi];
      if (!Array.isArray(saved.params) || saved.params.length !== group.params.length) {
        throw new Error(
          `dict.paramGroups[${gi}].params: has ${saved.params?.length} parameters, this group has ${group.params.length}`,
        );
      }
      saved.params.forEach((id, k) => {
        if (id !== params.length)
          throw new Error(`dict.paramGroups[${gi}].params[${k}]: expected index ${params.length}, got ${String(id)}`);
        params.push(group.params[k]);
      });
      const { params: _ids, ...options } = saved;
      this.checkOptions({ ...group, ...options } as unknown as O, `dict.paramGroups[${gi}]`);
    });
    const restored = new Map<Tensor, ParamState>();
    for (const [key, s] of Object.entries(dict.state)) {
      const p = params[Number(key)];
      if (p === undefined) throw new Error(`dict.state.${key}: no parameter has index ${key}`);
      const copy: ParamState = {};
      for (const [name, v] of Object.entries(s)) {
        if (typeof v === 'number') copy[name] = v;
        else {
          checkTensor(v, `dict.state.${key}.${name}`);
          if (!sameShape(v.shape, p.shape)) {
            throw new Error(
              `dict.state.${key}.${name}: shape ${shapeString(v.shape)} does not match the parameter's ${shapeString(p.shape)}`,
            );
          }
          copy[name] = keep(v.to(p.device));
        }
      }
      restored.set(p, copy);
    }
    dict.paramGroups.forEach((saved, gi) => {
      const { params: _ids, ...options } = saved;
      Object.assign(this.paramGroups[gi], options);
    });
    this.disposeState();
    for (const [p, s] of restored) this.state.set(p, s);
  }

  /** Frees the state tensors (moments); the parameters are not the optimizer's to free. */
  dispose(): void {
    this.disposeState();
  }

  private disposeState(): void {
    for (const s of this.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    this.state.clear();
  }
}

/** Checks a number option: finite and within [lo, hi]. */
export function checkRange(value: unknown, what: string, lo: number, hi = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi) {
    throw new Error(`${what}: expected a number in [${lo}, ${hi}], got ${String(value)}`);
  }
  return value;
}
