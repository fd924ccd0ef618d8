// Containers (torch.nn.ModuleList, torch.nn.Sequential): submodules registered under their
// index, so parameters are named blocks.0.attn.qkv.weight and so on.
import type { Tensor } from '../tensor';
import { Module } from './module';

export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  append(m: M): this {
    this.items.push(this.registerModule(String(this.items.length), m));
    return this;
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items.at(i);
    if (m === undefined) throw new Error(`i: index ${i} out of range for a ModuleList of ${this.items.length}`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** A module with forward(x: Tensor): Tensor. */
export interface TensorModule extends Module {
  forward(x: Tensor): Tensor;
}

/** Applies its modules in order. */
export class Sequential extends ModuleList<TensorModule> {
  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this) y = m.forward(y);
    return y;
  }
}
