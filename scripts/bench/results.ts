// The JSON that `npm run bench` writes (docs/benchmarks.json) and scripts/bench-docs.ts reads:
// every figure with all its runs, and the conditions they were measured under.
import type { Shape } from './attention';
import type { Machine, Ours } from './machine';
import type { Figure } from './stats';

export interface PeerInfo {
  python: string;
  torch: string;
  python_version: string;
  threads: number;
  interop_threads: number;
  omp_num_threads: string | null;
  /** The ISA PyTorch's CPU kernels dispatch to (torch.backends.cpu.get_cpu_capability()). */
  cpu_capability: string;
  flush_denormal: boolean;
  /** The allocator mapped into the peer's process, read from its /proc/self/maps. */
  allocator: { name: string; path: string | null };
  device: string;
  cuda: string | null;
}

/** A figure that was not measured, and why. */
export interface Skipped {
  skipped: string;
}

export type Entry = Figure | Skipped;

export function measured(e: Entry | undefined): e is Figure {
  return e !== undefined && !('skipped' in e);
}

/** Figure names: ours_fourier, ours_dot, ours_neural, torch_sdpa, torch_materialised (Fourier),
 *  torch_neural (Neural Attention, materialised) (attention, memory); ours_dot, ours_fourier,
 *  torch_dot, torch_fourier (training step). */
export type Figures = Record<string, Entry>;

export interface MemoryEntry {
  shape: Shape;
  /** Peak resident memory growth of one fwd+bwd, MiB (or why it was not measured). */
  mib: Record<string, number | Skipped>;
}

/** The fields every results JSON starts with (Results here, LinearResults of linear-docs.ts). */
export interface RunHeader {
  schema: 1;
  /** The day of the run (UTC), YYYY-MM-DD. */
  date: string;
  command: string;
  duration_s: number;
  machine: Machine;
  ours: Ours;
  peer: PeerInfo | null;
  /** Whether ours/PyTorch ratios compare like with like, and if not, why. */
  comparable: { ok: boolean; why: string[] };
}

export interface Results extends RunHeader {
  settings: {
    rounds: number;
    threads: number;
    attention_target_ms: number;
    train_target_ms: number;
    materialised_gib: number;
  };
  attention?: { shape: Shape; group: 'model' | 'length'; figures: Figures }[];
  train?: { config: Record<string, number>; figures: Figures };
  memory?: MemoryEntry[];
}
