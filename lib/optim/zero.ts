// ZeroRedundancyOptimizer: ZeRO stage 1 (torch.distributed.optim.ZeroRedundancyOptimizer; the
// sharded optimizer state of llm.c's zero_stage 1). Each rank keeps the optimizer state (Adam's
// two moments: twice the model's size) of its own share of the parameters only, so that state
// takes 1/worldSize of the memory per rank. The gradients are the data-parallel averages every
// rank already holds (DistributedDataParallel), so clipping sees the same global norm on every
// rank; each rank then steps its own parameters with the wrapped optimizer (its fused kernel,
// unchanged), and one all-gather of a flat buffer hands every rank the others' updated
// parameters bit for bit. The parameters are shared out whole, largest first to the rank with the
// fewest elements so far (as PyTorch does), which keeps the shares within one tensor of equal.
// Communication per step: the all-gather, (n-1)/n of the parameters' bytes per rank, on top of
// the gradient all-reduce. (llm.c reduce-scatters the gradients instead of all-reducing them,
// saving that much; it needs the clipping norm reduced and flat parameter shards.)
// Checkpoints: consolidateStateDict() (every rank) gathers the whole state, so that stateDict()
// gives what the wrapped optimizer alone would, and a checkpoint loads on any number of ranks.
import * as dist from '../distributed';
import { keep } from '../scope';
import { Tensor, zeros } from '../tensor';
import { BaseOptions, Optimizer, OptimizerStateDict, ParamGroupSpec, ParamState } from './optimizer';

/** An optimizer class: constructed from parameters (or groups) and options. */
export type OptimizerClass<O extends BaseOptions> = new (
  params: Tensor[] | ParamGroupSpec<O>[],
  options?: Partial<O>,
) => Optimizer<O>;

export class ZeroRedundancyOptimizer<O extends BaseOptions> extends Optimizer<O> {
  /** The wrapped optimizer over this rank's parameters (empty groups where it owns none). */
  readonly local: Optimizer<O>;
  /** The rank that owns each parameter, in the order of the groups. */
  readonly owners: number[];
  private readonly all: Tensor[];
  private readonly shard: number;
  private flat: Tensor | null = null;
  private consolidated: Map<Tensor, ParamState> | null = null;

  constructor(params: Tensor[] | ParamGroupSpec<O>[], optimizer: OptimizerClass<O>, options: Partial<O> = {}) {
    if (typeof optimizer !== 'function')
      throw new Error('optimizer: expected an optimizer class (optim.AdamW, optim.Adam, optim.SGD)');
    const probe = new optimizer(params, options);
    super(
      probe.paramGroups.map((g) => ({ ...g, params: [...g.params] })),
      probe.defaults,
    );
    probe.dispose();
    this.all = this.paramGroups.flatMap((g) => g.params);
    const world = dist.worldSize(),
      rank = dist.rank();
    const load = new Array<number>(world).fill(0);
    this.owners = new Array<number>(this.all.length);
    const bySize = this.all.map((p, i) => i).sort((a, b) => this.all[b].size - this.all[a].size || a - b);
    for (const i of bySize) {
      const r = load.indexOf(Math.min(...load));
      this.owners[i] = r;
      load[r] += this.all[i].size;
    }
    this.shard = Math.max(...load);
    const owned = new Set(this.all.filter((_, i) => this.owners[i] === rank));
    this.local = new optimizer(
      this.paramGroups.map((g) => ({ ...g, params: g.params.filter((p) => owned.has(p)) })),
      options,
    );
  }

  protected checkOptions(): void {
    // The groups were checked by the wrapped optimizer's constructor (the probe).
  }

  /** Steps this rank's parameters with the wrapped optimizer, then gathers every rank's. */
  step(): void {
    this.paramGroups.forEach((g, i) => {
      const { params: _params, ...hyper } = g;
      Object.assign(this.local.paramGroups[i], hyper);
    });
    this.local.step();
    this.gatherParameters();
  }

  private ownedBy(r: number): Tensor[] {
    return this.all.filter((_, i) => this.owners[i] === r);
  }

  /** Every rank's share of `pick(p)` for each parameter p, through one all-gather of a flat buffer. */
  private allGather(
    pick: (p: Tensor) => Tensor | null,
    write: (p: Tensor, flat: Tensor, offset: number) => void,
    what: string,
  ): void {
    const world = dist.worldSize(),
      rank = dist.rank();
    if (world === 1 || this.all.length === 0) return;
    const device = this.all[0].device;
    this.flat ??= keep(zeros([world * this.shard], { device }));
    const backend = this.flat.backend;
    backend.packInto(
      this.flat.storage(),
      this.ownedBy(rank).map((p) => pick(p)?.storage() ?? p.size),
      rank * this.shard,
    );
    dist.startAllGather(this.flat, what).wait();
    for (let r = 0; r < world; r++) {
      if (r === rank) continue;
      let offset = r * this.shard;
      for (const p of this.ownedBy(r)) {
        write(p, this.flat, offset);
        offset += p.size;
      }
    }
  }

  private gatherParameters(): void {
    this.allGather(
      (p) => p,
      (p, flat, offset) => flat.backend.unpackFrom(flat.storage(), [p.storage()], offset),
      'all-gather of the updated parameters (ZeRO-1)',
    );
  }

  /**
   * Gathers every rank's optimizer state (every rank must call it, before stateDict()), so that
   * stateDict() describes every parameter. Held until the next step or releaseConsolidated().
   */
  consolidateStateDict(): void {
    this.releaseConsolidated();
    const full = new Map<Tensor, ParamState>();
    const rank = dist.rank();
    // Numbers and the names of state tensors, per owned parameter (small: JSON).
    const mine: Record<number, { numbers: Record<string, number>; tensors: string[] }> = {};
    this.all.forEach((p, i) => {
      if (this.owners[i] !== rank) return;
      const s = this.local.state.get(p);
      if (s === undefined) return;
      const numbers: Record<string, number> = {};
      const tensors: string[] = [];
      for (const [k, v] of Object.entries(s)) {
        if (typeof v === 'number') numbers[k] = v;
        else tensors.push(k);
      }
      mine[i] = { numbers, tensors };
    });
    const described = Object.assign({}, ...dist.allGatherObject(mine)) as typeof mine;
    const keys = [...new Set(Object.values(described).flatMap((d) => d.tensors))].sort();
    for (const [index, d] of Object.entries(described)) {
      const p = this.all[Number(index)];
      const own = this.owners[Number(index)] === rank ? this.local.state.get(p) : undefined;
      full.set(p, own ? { ...own } : { ...d.numbers });
    }
    for (const key of keys) {
      this.allGather(
        (p) => (this.local.state.get(p)?.[key] as Tensor | undefined) ?? null,
        (p, flat, offset) => {
          const s = full.get(p);
          if (s === undefined || !described[this.all.indexOf(p)]?.tensors.includes(key)) return;
          const t = keep(zeros(p.shape, { device: p.device }));
          flat.backend.unpackFrom(flat.storage(), [t.storage()], offset);
          s[key] = t;
        },
        `all-gather of the optimizer state '${key}' (ZeRO-1 checkpoint)`,
      );
    }
    this.consolidated = full;
  }

  /** Frees the other ranks' state that consolidateStateDict() gathered. */
  releaseConsolidated(): void {
    if (this.consolidated === null) return;
    const rank = dist.rank();
    this.all.forEach((p, i) => {
      if (this.owners[i] === rank) return;
      for (const v of Object.values(this.consolidated?.get(p) ?? {})) if (v instanceof Tensor) v.dispose();
    });
    this.consolidated = null;
  }

  /**
   * The whole state, as the wrapped optimizer alone would give it (after consolidateStateDict()
   * when worldSize > 1).
   */
  override stateDict(): OptimizerStateDict {
    if (dist.worldSize() > 1 && this.consolidated === null) {
      throw new Error(
        'stateDict: call consolidateStateDict() on every rank first (each rank holds its own share of the state)',
      );
    }
    const source = this.consolidated ?? this.local.state;
    const paramGroups = this.paramGroups.map((g, gi) => {
      const { params, ...options } = g;
      const offset = this.paramGroups.slice(0, gi).reduce((n, x) => n + x.params.length, 0);
      return { ...options, params: params.map((_, k) => offset + k) };
    });
    const state: Record<number, ParamState> = {};
    this.all.forEach((p, i) => {
      const s = source.get(p);
      if (s !== undefined) state[i] = { ...s };
    });
    return { state, paramGroups };
  }

  /** Restores a whole state (from any number of ranks): this rank keeps its parameters' share. */
  override loadStateDict(dict: OptimizerStateDict): void {
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
    const rank = dist.rank();
    const localIndex = new Map<Tensor, number>();
    this.local.paramGroups.forEach((g) => g.params.forEach((p) => localIndex.set(p, localIndex.size)));
    const state: Record<number, ParamState> = {};
    for (const [key, s] of Object.entries(dict.state)) {
      const i = Number(key);
      const p = this.all[i];
      if (p === undefined) throw new Error(`dict.state.${key}: no parameter has index ${key}`);
      if (this.owners[i] === rank) state[localIndex.get(p) as number] = s;
    }
    const paramGroups = dict.paramGroups.map((saved, gi) => {
      const { params: _ids, ...options } = saved;
      Object.assign(this.paramGroups[gi], options);
      return { ...options, params: this.local.paramGroups[gi].params.map((p) => localIndex.get(p) as number) };
    });
    this.local.loadStateDict({ state, paramGroups });
  }

  override dispose(): void {
    this.releaseConsolidated();
    this.local.dispose();
    this.flat?.dispose();
    this.flat = null;
  }
}
