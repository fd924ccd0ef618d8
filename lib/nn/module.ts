// Module: the base of every layer, with torch.nn.Module's names and meanings. A module registers
// its parameters, buffers and submodules under names (registerParameter / registerBuffer /
// registerModule, which return what they register, so a constructor reads
// `this.weight = this.registerParameter('weight', w)`); everything else follows from those maps:
// namedParameters() with dotted names in registration order, train()/eval(), stateDict() and
// loadStateDict() (which copies values into the existing tensors, so an optimizer holding the
// parameters keeps working), and to(device).
import { checkDevice, Device } from '../native';
import { checkOptions, optBoolean } from '../options';
import { keep } from '../scope';
import { sameShape, shapeString } from '../shape';
import { checkTensor, Tensor } from '../tensor';

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$|^[0-9]+$/;

function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new Error(`${what}: expected an identifier or an index without dots, got ${JSON.stringify(name)}`);
  }
  return name;
}

export class Module {
  /** Whether the module is in training mode (dropout active); see train() and eval(). */
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers_ = new Map<string, Tensor>();
  private readonly modules_ = new Map<string, Module>();

  /**
   * Registers a parameter: it gets requiresGrad and is kept out of tidy() scopes (parameters
   * live until dispose()). Returns it.
   */
  registerParameter(name: string, t: Tensor): Tensor {
    this.checkFree(checkName(name, 'name'));
    checkTensor(t, name);
    if (!t.isLeaf)
      throw new Error(
        `${name}: a parameter must be a leaf tensor (made by ff.tensor or an init helper), not the result of an op`,
      );
    t.requiresGrad = true;
    this.params.set(name, keep(t));
    return t;
  }

  /** Registers a tensor that is part of the state but not trained (running statistics). Returns it. */
  registerBuffer(name: string, t: Tensor): Tensor {
    this.checkFree(checkName(name, 'name'));
    checkTensor(t, name);
    this.buffers_.set(name, keep(t));
    return t;
  }

  /** Registers a submodule. Returns it. */
  registerModule<M extends Module>(name: string, m: M): M {
    this.checkFree(checkName(name, 'name'));
    if (!(m instanceof Module)) throw new Error(`${name}: expected a Module`);
    this.modules_.set(name, m);
    return m;
  }

  private checkFree(name: string): void {
    if (this.params.has(name) || this.buffers_.has(name) || this.modules_.has(name)) {
      throw new Error(`name: '${name}' is already registered in ${this.constructor.name}`);
    }
  }

  /** Submodules with their names, this module first under `prefix` (torch's named_modules). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [n, c] of m.modules_) visit(c, name === '' ? n : `${name}.${n}`);
    };
    visit(this, prefix);
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  namedChildren(): [string, Module][] {
    return [...this.modules_];
  }

  children(): Module[] {
    return [...this.modules_.values()];
  }

  /** Parameters with dotted names, each tensor once (a tied weight under its first name). */
  namedParameters(recurse = true): [string, Tensor][] {
    return this.namedTensors((m) => m.params, recurse);
  }

  parameters(recurse = true): Tensor[] {
    return this.namedParameters(recurse).map(([, p]) => p);
  }

  namedBuffers(recurse = true): [string, Tensor][] {
    return this.namedTensors((m) => m.buffers_, recurse);
  }

  buffers(recurse = true): Tensor[] {
    return this.namedBuffers(recurse).map(([, b]) => b);
  }

  private namedTensors(pick: (m: Module) => Map<string, Tensor>, recurse: boolean): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    const modules: [string, Module][] = recurse ? this.namedModules() : [['', this]];
    for (const [prefix, m] of modules) {
      for (const [n, t] of pick(m)) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([prefix === '' ? n : `${prefix}.${n}`, t]);
      }
    }
    return out;
  }

  /** The number of trainable values. */
  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }

  /** Calls fn on every submodule, then on this module (torch's apply). */
  apply(fn: (m: Module) => void): this {
    for (const c of this.modules_.values()) c.apply(fn);
    fn(this);
    return this;
  }

  /** Sets training mode here and in every submodule. */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new Error('mode: expected a boolean');
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Drops the gradients of every parameter (setToNone, as torch), or fills them with zeros. */
  zeroGrad(setToNone = true): void {
    optBoolean(setToNone, 'setToNone', true);
    for (const p of this.parameters()) {
      if (p.grad === null) continue;
      if (setToNone) {
        p.grad.dispose();
        p.grad = null;
      } else p.grad.backend.fill(p.grad.storage(), 0);
    }
  }

  /**
   * Parameters and buffers under their dotted names, tied tensors under every name (as torch).
   * The tensors are the module's own, not copies: save them, do not dispose them.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [prefix, m] of this.namedModulesWithDuplicates()) {
      for (const [n, t] of [...m.params, ...m.buffers_]) out[prefix === '' ? n : `${prefix}.${n}`] = t;
    }
    return out;
  }

  private namedModulesWithDuplicates(): [string, Module][] {
    const out: [string, Module][] = [];
    const visit = (m: Module, name: string, path: Set<Module>) => {
      if (path.has(m)) throw new Error(`${this.constructor.name}: the module graph has a cycle at '${name}'`);
      out.push([name, m]);
      const inner = new Set(path).add(m);
      for (const [n, c] of m.modules_) visit(c, name === '' ? n : `${name}.${n}`, inner);
    };
    visit(this, '', new Set());
    return out;
  }

  /**
   * Copies values from `dict` into the parameters and buffers of the same names (their devices
   * are kept: values may come from any device). With strict (the default), a missing or
   * unexpected name is an error; every shape must match. Nothing is written unless all checks pass.
   */
  loadStateDict(dict: Record<string, Tensor>, opts?: { strict?: boolean }): LoadStateDictResult {
    if (dict === null || typeof dict !== 'object') throw new Error('dict: expected an object of name -> Tensor');
    const strict = optBoolean(checkOptions(opts, ['strict']).strict, 'opts.strict', true);
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !(k in dict));
    const unexpectedKeys = Object.keys(dict).filter((k) => !(k in own));
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0)) {
      const parts = [];
      if (missingKeys.length) parts.push(`missing: ${missingKeys.join(', ')}`);
      if (unexpectedKeys.length) parts.push(`unexpected: ${unexpectedKeys.join(', ')}`);
      throw new Error(`dict: does not match the module's state (${parts.join('; ')})`);
    }
    const pairs: [Tensor, Tensor][] = [];
    for (const [name, target] of Object.entries(own)) {
      if (!(name in dict)) continue;
      const source = checkTensor(dict[name], `dict.${name}`);
      if (!sameShape(source.shape, target.shape)) {
        throw new Error(
          `dict.${name}: shape ${shapeString(source.shape)} does not match the module's ${shapeString(target.shape)}`,
        );
      }
      pairs.push([target, source]);
    }
    for (const [target, source] of pairs) {
      if (source.device === target.device) target.backend.copyInto(target.storage(), source.storage());
      else target.backend.uploadInto(target.storage(), source.toFloat32Array());
    }
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Moves every parameter and buffer (and gradient) to `device`, as torch's module.to(device):
   * each tensor not already there is replaced by a copy on the device, under its names and in
   * every field of a module that held it (a tied tensor stays tied), and the old one is
   * disposed. Returns this. An optimizer holds the tensors it was given: make it after moving.
   * Nothing changes if a copy fails.
   */
  to(device: Device): this {
    const target = checkDevice(device);
    const moved = new Map<Tensor, Tensor>();
    const modules = this.modules();
    try {
      for (const m of modules) {
        for (const t of [...m.params.values(), ...m.buffers_.values()]) {
          if (t.device === target || moved.has(t)) continue;
          checkTensor(t, 'parameter or buffer');
          const copy = keep(t.to(target));
          copy.requiresGrad = t.requiresGrad;
          moved.set(t, copy);
          if (t.grad !== null && !t.grad.isDisposed) copy.grad = keep(t.grad.to(target));
        }
      }
    } catch (e) {
      for (const copy of moved.values()) copy.dispose();
      throw e;
    }
    const swapped = (v: unknown): Tensor | undefined => (v instanceof Tensor ? moved.get(v) : undefined);
    for (const m of modules) {
      for (const map of [m.params, m.buffers_]) for (const [name, t] of map) map.set(name, swapped(t) ?? t);
      const fields = m as unknown as Record<string, unknown>;
      for (const key of Object.keys(fields)) {
        const v = fields[key];
        const copy = swapped(v);
        if (copy) fields[key] = copy;
        else if (Array.isArray(v))
          v.forEach((x, i) => {
            const c = swapped(x);
            if (c) v[i] = c;
          });
      }
    }
    for (const old of moved.keys()) old.dispose();
    return this;
  }

  /** Frees every parameter and buffer (and their gradients) of this module and its submodules. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const t of [...m.params.values(), ...m.buffers_.values()]) t.dispose();
    }
  }
}
