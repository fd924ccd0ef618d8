// Host threads, as torch.set_num_threads / get_num_threads: the cpu backend runs each op on a
// team of OpenMP threads (and the cuda-emu emulator its blocks on its workers). The count belongs
// to the calling JavaScript thread: the main thread and each worker_threads Worker have their
// own, so N workers that each set floor(cores / N) share the cores without oversubscription.
// Default: FOURIERFORMER_NUM_THREADS, else OMP_NUM_THREADS, else every core available.
import { checkThreads, loadAddon, setHostThreads } from './native';

/**
 * Sets how many threads the cpu backend's ops (and cuda-emu's emulated launches) use when called
 * from this thread (the main thread or this worker; other threads keep their own count).
 */
export function setNumThreads(n: number): void {
  setHostThreads(checkThreads(n, 'setNumThreads: n'));
}

/** The number of threads the cpu backend's ops use when called from this thread. */
export function getNumThreads(): number {
  return loadAddon('cpu').getNumThreads();
}
