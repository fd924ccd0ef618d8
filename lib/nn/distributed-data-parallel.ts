// DistributedDataParallel (torch.nn.parallel.DistributedDataParallel): wraps a module so that
// every rank's backward() ends with the same gradients, the average of the ranks' own, while the
// forward and backward run unchanged. Each rank feeds its own shard of the batch; with equal
// shards the averaged gradient is the gradient of the whole batch's mean loss.
//   - At wrap time every parameter and buffer is broadcast from rank 0 (all ranks start equal).
//   - The parameters are split into buckets of about bucketMB MiB, in reverse registration order
//     (the order backward tends to finish them). A post-accumulate-grad hook (lib/autograd/
//     hooks.ts) counts each parameter's gradient as finished; once a bucket's are, they are
//     copied into its flat buffer and an all-reduce (avg) of it is queued on the communicator
//     while backward goes on with the next layers: on GPUs NCCL runs on its own stream, on CPUs
//     MPI on its own thread. Buckets are queued in order on every rank (bucket k waits for
//     k - 1), as collectives must match across ranks.
//   - When backward ends (a callback it queued), the buckets not yet queued are (parameters the
//     pass never reached), every reduction is awaited and the averages are copied back into
//     .grad. Which parameters have a gradient at all is agreed on too (a parameter some rank's
//     batch never used counts as zero there; one that no rank's used keeps grad null), so every
//     rank's optimizer updates the same parameters.
//   - noSync(fn) runs fn's backward passes without reducing (gradient accumulation); the next
//     pass outside it reduces the accumulated gradients.
// Memory: one flat copy of the gradients (the buckets). Communication per step: an all-reduce of
// every gradient, 2 (n-1)/n of their bytes per rank with a ring.
import { queueCallback, registerPostAccumulateGradHook } from '../autograd/hooks';
import * as dist from '../distributed';
import { keep } from '../scope';
import { Tensor, zeros } from '../tensor';
import { Module } from './module';

export interface DistributedDataParallelOptions {
  /** The size of a gradient bucket in MiB (default 25, PyTorch's). */
  bucketMB?: number;
  /** Broadcast the buffers from rank 0 at wrap time, as the parameters (default true). */
  broadcastBuffers?: boolean;
}

interface Bucket {
  params: Tensor[];
  flat: Tensor;
  /** Parameters whose gradient this pass has finished. */
  finished: number;
  work: dist.Work | null;
  /** Whether each parameter had a gradient on this rank when the bucket was queued. */
  present: boolean[];
}

/** Communication time of the steps so far (seconds), for measurements. */
export interface DataParallelStats {
  /** Backward passes reduced. */
  passes: number;
  /** Time spent waiting at the end of backward for reductions still running (communication not hidden). */
  waitSeconds: number;
  /** Passes in which some rank had no gradient for some parameter (the ranks then agreed per parameter). */
  partialPasses: number;
}

export class DistributedDataParallel<M extends Module = Module> extends Module {
  readonly module: M;
  readonly bucketMB: number;
  readonly stats: DataParallelStats = { passes: 0, waitSeconds: 0, partialPasses: 0 };
  private readonly buckets: Bucket[] = [];
  private readonly bucketOf = new Map<Tensor, Bucket>();
  private readonly hooks: { remove(): void }[] = [];
  private next = 0;
  private inPass = false;
  private syncing = true;

  constructor(module: M, opts: DistributedDataParallelOptions = {}) {
    super();
    if (!(module instanceof Module)) throw new Error('module: expected an nn.Module');
    if (opts === null || typeof opts !== 'object') throw new Error('opts: expected { bucketMB?, broadcastBuffers? }');
    const bucketMB = opts.bucketMB ?? 25;
    if (typeof bucketMB !== 'number' || !(bucketMB > 0) || !Number.isFinite(bucketMB))
      throw new Error(`opts.bucketMB: expected a number of MiB > 0, got ${String(opts.bucketMB)}`);
    this.bucketMB = bucketMB;
    this.module = this.registerModule('module', module);
    const params = module.parameters().filter((p) => p.requiresGrad);
    if (params.length === 0) throw new Error('module: has no parameter that requires grad');
    const device = params[0].device;
    const other = params.find((p) => p.device !== device);
    if (other)
      throw new Error(
        `module: its parameters are on '${device}' and '${other.device}'; DistributedDataParallel needs one device per rank`,
      );
    this.makeBuckets(params, Math.max(1, Math.floor((bucketMB * 2 ** 20) / 4)));
    this.broadcastState(opts.broadcastBuffers ?? true);
    for (const p of params) this.hooks.push(registerPostAccumulateGradHook(p, (leaf) => this.finished(leaf)));
  }

  /** The wrapped module's forward. */
  forward(...args: unknown[]): unknown {
    const m = this.module as unknown as { forward?: (...a: unknown[]) => unknown };
    if (typeof m.forward !== 'function') throw new Error(`forward: ${this.module.constructor.name} has no forward()`);
    return m.forward(...args);
  }

  /** Runs fn (forward and backward passes) without reducing its gradients; returns what fn returns. */
  noSync<T>(fn: () => T): T {
    const was = this.syncing;
    this.syncing = false;
    try {
      return fn();
    } finally {
      this.syncing = was;
    }
  }

  /** The parameters of each bucket, in the order they are reduced. */
  bucketParameters(): Tensor[][] {
    return this.buckets.map((b) => [...b.params]);
  }

  /** Removes the hooks and frees the buckets; the wrapped module is left as it is. */
  detach(): void {
    for (const h of this.hooks) h.remove();
    this.hooks.length = 0;
    for (const b of this.buckets) b.flat.dispose();
    this.buckets.length = 0;
    this.bucketOf.clear();
  }

  /** Frees the buckets and the wrapped module's tensors. */
  override dispose(): void {
    this.detach();
    super.dispose();
  }

  private makeBuckets(params: Tensor[], capacity: number): void {
    let current: Tensor[] = [];
    let size = 0;
    const close = () => {
      if (current.length === 0) return;
      const flat = keep(zeros([size], { device: current[0].device }));
      const bucket: Bucket = { params: current, flat, finished: 0, work: null, present: [] };
      this.buckets.push(bucket);
      for (const p of current) this.bucketOf.set(p, bucket);
      current = [];
      size = 0;
    };
    for (const p of [...params].reverse()) {
      if (size > 0 && size + p.size > capacity) close();
      current.push(p);
      size += p.size;
    }
    close();
  }

  /** Rank 0's parameters (through the buckets) and buffers on every rank. */
  private broadcastState(buffers: boolean): void {
    if (dist.worldSize() === 1) return;
    for (const b of this.buckets) {
      const backend = b.flat.backend;
      backend.packInto(
        b.flat.storage(),
        b.params.map((p) => p.storage()),
        0,
      );
      dist.broadcast(b.flat, 0);
      backend.unpackFrom(
        b.flat.storage(),
        b.params.map((p) => p.storage()),
        0,
      );
    }
    if (buffers) for (const t of this.module.buffers()) dist.broadcast(t, 0);
  }

  private label(b: Bucket): string {
    return `all-reduce of gradient bucket ${this.buckets.indexOf(b) + 1} of ${this.buckets.length}`;
  }

  /** A parameter's gradient is final for this pass. */
  private finished(p: Tensor): void {
    if (!this.syncing || dist.worldSize() === 1) return;
    const bucket = this.bucketOf.get(p);
    if (bucket === undefined) return;
    if (!this.inPass) {
      this.inPass = true;
      queueCallback(() => this.endPass());
    }
    bucket.finished++;
    while (
      this.next < this.buckets.length &&
      this.buckets[this.next].finished === this.buckets[this.next].params.length
    )
      this.launch(this.buckets[this.next++]);
  }

  private launch(b: Bucket): void {
    b.present = b.params.map((p) => p.grad !== null && !p.grad.isDisposed);
    const parts = b.params.map((p, i) => (b.present[i] ? (p.grad as Tensor).storage('grad') : p.size));
    b.flat.backend.packInto(b.flat.storage(), parts, 0);
    b.work = dist.startAllReduce(b.flat, 'avg', this.label(b));
  }

  /** Queues what is left, waits for every bucket and writes the averages into .grad. */
  private endPass(): void {
    const t0 = performance.now();
    try {
      while (this.next < this.buckets.length) this.launch(this.buckets[this.next++]);
      const local = this.buckets.flatMap((b) => b.present.map((x) => (x ? 1 : 0)));
      const anyMissing = local.includes(0) ? 1 : 0;
      // Whether every rank had every gradient: then no per-parameter agreement is needed.
      const [missing] = dist.allReduceNumbers([anyMissing], 'max', 'agreement on missing gradients');
      const present = missing > 0 ? dist.allReduceNumbers(local, 'max', 'agreement on which gradients exist') : null;
      if (present !== null) this.stats.partialPasses++;
      let k = 0;
      for (const b of this.buckets) {
        (b.work as dist.Work).wait();
        const backend = b.flat.backend;
        if (present === null) {
          backend.unpackFrom(
            b.flat.storage(),
            b.params.map((p) => (p.grad as Tensor).storage('grad')),
            0,
          );
          k += b.params.length;
          continue;
        }
        let offset = 0;
        for (const p of b.params) {
          if (present[k++] > 0) {
            if (p.grad === null || p.grad.isDisposed) p.grad = keep(zeros(p.shape, { device: p.device }));
            backend.unpackFrom(b.flat.storage(), [p.grad.storage('grad')], offset);
          }
          offset += p.size;
        }
      }
    } finally {
      for (const b of this.buckets) {
        b.finished = 0;
        b.work = null;
      }
      this.next = 0;
      this.inPass = false;
      this.stats.passes++;
      this.stats.waitSeconds += (performance.now() - t0) / 1000;
    }
  }
}
