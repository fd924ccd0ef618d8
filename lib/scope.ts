// Memory scopes, the TensorFlow.js convention: every tensor made inside tidy(fn) is disposed
// when fn returns, except the tensors fn returns and those passed to keep().
import { backendsOf, loadedBackends } from './native';
import type { Backend, Device } from './native';

/** What a scope holds: a Tensor, through the two members scopes use (tensor.ts imports scope.ts). */
export interface Scoped {
  readonly isTensor: true;
  dispose(): void;
}

const scopes: Set<Scoped>[] = [];

/** Called by the Tensor constructor. */
export function track(t: Scoped): void {
  if (scopes.length > 0) scopes[scopes.length - 1].add(t);
}

/** Removes a tensor from every open scope, so that tidy() does not dispose it. */
export function keep<T extends Scoped>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Scoped>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ((value as { isTensor?: boolean }).isTensor === true) {
    out.add(value as Scoped);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) collect(v, out, seen);
}

/**
 * Runs fn and disposes every tensor it created, except those it returns (directly, or inside
 * arrays and plain objects) and those passed to keep(). Returned tensors move to the outer scope.
 * If fn throws, every tensor it created (and did not keep) is disposed before the error goes on.
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new Error('tidy: fn must be a function');
  const scope = new Set<Scoped>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) throw new Error('tidy: fn must be synchronous (it returned a Promise)');
  const returned = new Set<Scoped>();
  collect(result, returned);
  for (const t of scope) {
    if (returned.has(t)) track(t);
    else t.dispose();
  }
  return result;
}

export interface MemoryInfo {
  /** Live tensors and bytes of this thread (the main thread or this worker), over all devices. */
  numTensors: number;
  numBytes: number;
  /** The same per device, for every backend loaded so far. */
  devices: Record<string, { tensors: number; bytes: number }>;
  /** Live tensors and bytes of the whole process: every thread's, over the same devices. */
  process: { numTensors: number; numBytes: number };
}

/**
 * Live native tensors and bytes made by this thread, per device (the count includes saved and
 * grad tensors), and the same for the whole process (workers included).
 */
export function memory(): MemoryInfo {
  const devices: MemoryInfo['devices'] = {};
  let numTensors = 0;
  let numBytes = 0;
  const proc = { numTensors: 0, numBytes: 0 };
  for (const b of loadedBackends()) {
    const m = b.memory();
    devices[b.backend] = { tensors: m.tensors, bytes: m.bytes };
    numTensors += m.tensors;
    numBytes += m.bytes;
    proc.numTensors += m.processTensors;
    proc.numBytes += m.processBytes;
  }
  return { numTensors, numBytes, devices, process: proc };
}

/**
 * Bytes that a device's caching allocator keeps from freed tensors for reuse (not counted by
 * memory(), which counts live tensors); every device loaded so far when none is named. The cpu
 * caches blocks of 512 bytes and more, cuda and cuda-emu every block.
 */
export function cachedMemory(device?: Device): number {
  return sumOverBackends(device, (b) => b.memory().cached);
}

/**
 * Gives the memory that a device's caching allocator keeps for reuse back to the system (or the
 * GPU), as torch.cuda.empty_cache() does; every device loaded so far when none is named. Live
 * tensors are untouched. Returns the bytes given back.
 */
export function emptyCache(device?: Device): number {
  return sumOverBackends(device, (b) => b.emptyCache());
}

/** f summed over the named device's backend, or over every backend loaded so far. */
function sumOverBackends(device: Device | undefined, f: (b: Backend) => number): number {
  return backendsOf(device, loadedBackends).reduce((sum, b) => sum + f(b), 0);
}
