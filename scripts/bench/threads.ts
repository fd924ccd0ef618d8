// Bounds our backends to the thread count the PyTorch peer gets: ff.setNumThreads for this
// process's ops, and FOURIERFORMER_NUM_THREADS for the child processes it starts (the memory
// probes inherit the variable).
import { setNumThreads } from '../../lib';

/** How ours was bounded, for the results. */
export const OUR_THREADS_MECHANISM = 'ff.setNumThreads (FOURIERFORMER_NUM_THREADS for child processes)';

export function boundOurThreads(threads: number): void {
  setNumThreads(threads);
  process.env.FOURIERFORMER_NUM_THREADS = String(threads);
}
