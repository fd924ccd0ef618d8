// Bounds our cpu backend to the thread count the PyTorch peer gets. The addon sizes its OpenMP
// teams from omp_get_max_threads(), which libgomp reads from OMP_NUM_THREADS once, when the
// addon is loaded: so this sets the variable and must run before the first tensor is made (it
// throws otherwise). The variable is also what a child process (the memory probes) inherits.
// When the package has a run-time setter for its thread count, call it here instead.
import { addonPath, DEVICES } from '../../lib/native';

/** How ours was bounded, for the results. */
export const OUR_THREADS_MECHANISM = 'OMP_NUM_THREADS (read when the addon loads)';

export function boundOurThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads: expected a positive integer, got ${threads}`);
  const loaded = DEVICES.filter((d) => addonPath(d) !== undefined);
  if (loaded.length > 0) throw new Error(`boundOurThreads: the ${loaded.join(', ')} addon is already loaded; bound the threads before the first tensor op`);
  process.env.OMP_NUM_THREADS = String(threads);
}
