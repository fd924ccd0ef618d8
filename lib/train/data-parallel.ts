// What a training run does differently when a launcher started several ranks (lib/distributed),
// shared by the language-model and vision runs:
//   - each rank reads rows [r B/N, (r+1) B/N) of every batch of B (B must divide by N);
//   - the model is wrapped in DistributedDataParallel (rank 0's weights everywhere, gradients
//     averaged in buckets during backward), and ranks after 0 draw dropout from streams of their
//     own (seeds derived from the run's seed), so that their shards get independent masks;
//   - the optimizer is optionally ZeRO-1 (optimizer state sharded over the ranks);
//   - rank 0 does what writes files (the corpus cache first, reports, plots) and shares its
//     results, so that every rank follows the same path through the run.
// With one rank all of this is the single-process run, unchanged.
import * as dist from '../distributed';
import type { Module } from '../nn/module';
import { DistributedDataParallel } from '../nn/distributed-data-parallel';
import type { Generator } from '../random';

export interface ParallelSettings {
  /** ZeRO-1: shard the optimizer state over the ranks. */
  zero: boolean;
  /** DistributedDataParallel's bucket size in MiB. */
  bucketMB: number;
}

export const DEFAULT_PARALLEL: ParallelSettings = { zero: false, bucketMB: 25 };

/** This rank's rows of a batch of `batchSize`. */
export function shardRows(batchSize: number, what = '--batch-size'): { from: number; to: number } {
  const n = dist.worldSize(),
    r = dist.rank();
  if (batchSize % n !== 0)
    throw new Error(`${what}: ${batchSize} does not split into equal shards over ${n} ranks; give a multiple of ${n}`);
  return { from: (r * batchSize) / n, to: ((r + 1) * batchSize) / n };
}

/** The seed of rank r's dropout stream: the run's seed on rank 0, a distinct one on the others. */
export function rankSeed(seed: number, rank: number): number {
  return rank === 0 ? seed : (seed + rank * 2654435761) % 2 ** 53;
}

/**
 * Wraps the model for several ranks (null with one): DistributedDataParallel, and this rank's
 * own dropout stream. Call it right after building the model, before the optimizer.
 */
export function wrapForRanks(
  model: Module,
  generator: Generator,
  settings: ParallelSettings = DEFAULT_PARALLEL,
): DistributedDataParallel | null {
  if (dist.worldSize() === 1) return null;
  const ddp = new DistributedDataParallel(model, { bucketMB: settings.bucketMB });
  const { seed, offset } = generator.getState();
  generator.setState({ seed: rankSeed(seed, dist.rank()), offset });
  return ddp;
}

/** Runs fn on rank 0, then (after a barrier) on the other ranks: what fills a cache goes first. */
export function leadFirst<T>(fn: () => T): T {
  if (dist.worldSize() === 1) return fn();
  if (dist.rank() === 0) {
    const value = fn();
    dist.barrier();
    return value;
  }
  dist.barrier();
  return fn();
}

/** Rank 0's value of fn() on every rank; fn runs on rank 0 only (what writes reports). */
export async function onLead<T>(fn: () => T | Promise<T>): Promise<T> {
  if (dist.worldSize() === 1) return fn();
  const value = dist.rank() === 0 ? await fn() : (null as T);
  return dist.broadcastObject(value, 0);
}
