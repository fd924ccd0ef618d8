// Loads the native addons and picks the backend for a device name. The cpu addon is required
// (built by `npm install`, or shipped as a prebuild); the cuda and cuda-emu addons are loaded
// on first use and give a clear error when they are missing or the device is unusable.
// This module's state is per JavaScript thread: each worker_threads Worker loads the addons
// into its own environment (Node runs each addon's init there), with its own thread count.
import * as fs from 'fs';
import * as path from 'path';
import { requireCudaAddon } from './cublas';

/** A block of backend memory, opaque to JavaScript. */
export type Storage = { readonly __storage: unique symbol };

/** The functions every backend addon exports (csrc/binding/addon.cpp). */
export interface Backend {
  readonly backend: Device;
  describe(): string;
  ensureAvailable(): void;
  alloc(size: number): Storage;
  fromArray(data: Float32Array): Storage;
  toArray(s: Storage): Float32Array;
  free(s: Storage): void;
  isFreed(s: Storage): boolean;
  /**
   * Live tensors and their bytes made by this thread (the calling environment); the same over
   * every thread of the process; cached: bytes the caching allocator holds for reuse.
   */
  memory(): { tensors: number; bytes: number; processTensors: number; processBytes: number; cached: number };
  /** Host threads this backend's ops use when called from this thread (csrc/binding/threads.cpp). */
  setNumThreads(n: number): void;
  getNumThreads(): number;
  /** Gives the caching allocator's free blocks back to the system; returns their bytes. */
  emptyCache(): number;
  fill(s: Storage, value: number): void;
  addInplace(target: Storage, addend: Storage): void;
  copy(s: Storage): Storage;
  synchronize(): void;
  /** Times the host waited for the device since the process started (0 on cpu). */
  hostSyncs(): number;
  setMatmulPrecision(precision: MatmulPrecision): void;
  /** The caching allocator's peak bytes in use since the last reset (0 on cpu); reset starts anew. */
  peakBytes(reset?: boolean): number;
  /** Times the device work queued between the two calls (CUDA events; cpu: the host clock), in ms. */
  timerStart(): void;
  timerStop(): number;
  /** In-place writes (csrc/binding/assign.cpp): target = source, target = data. */
  copyInto(target: Storage, source: Storage): void;
  uploadInto(target: Storage, data: Float32Array): void;
  /** Fused optimizer steps over a parameter group (csrc/binding/optim.cpp). */
  adamStep(
    params: Storage[],
    grads: Storage[],
    expAvg: Storage[],
    expAvgSq: Storage[],
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
    decoupled: boolean,
  ): void;
  sgdStep(
    params: Storage[],
    grads: Storage[],
    momentumBuffers: Storage[],
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
    firstStep: boolean,
  ): void;
  squaredNorm(tensors: Storage[]): number;
  /** Clips by global norm on the device; returns the norm (one element). */
  clipByNorm(tensors: Storage[], maxNorm: number): Storage;
  scaleInplace(tensors: Storage[], factor: number): void;
  /** Tensor ops (csrc/binding/tensor_ops.cpp); shapes are arrays of dims, broadcasting as NumPy. */
  binary(op: 'add' | 'sub' | 'mul' | 'div', a: Storage, aShape: number[], b: Storage, bShape: number[]): Storage;
  affine(x: Storage, alpha: number, beta: number): Storage;
  unary(op: 'gelu_tanh' | 'gelu_erf' | 'relu' | 'exp' | 'log' | 'tanh', x: Storage): Storage;
  /** saved: the forward's input (gelu, relu, log) or output (exp, tanh). */
  unaryBackward(op: 'gelu_tanh' | 'gelu_erf' | 'relu' | 'exp' | 'log' | 'tanh', saved: Storage, grad: Storage): Storage;
  sumAxes(x: Storage, shape: number[], axes: number[]): Storage;
  permute(x: Storage, shape: number[], dims: number[]): Storage;
  broadcastTo(x: Storage, shape: number[], outShape: number[]): Storage;
  slice(x: Storage, shape: number[], axis: number, start: number, end: number): Storage;
  sliceBackward(grad: Storage, shape: number[], axis: number, start: number, end: number): Storage;
  concat(xs: Storage[], shapes: number[][], axis: number): Storage;
  /**
   * Neural-network kernels (csrc/binding/nn_ops.cpp). dims = [batch, M, N, K, transA, transB,
   * strideA, strideB, sumBatches].
   */
  gemm(a: Storage, b: Storage, dims: number[]): Storage;
  linearForward(x: Storage, weight: Storage, bias: Storage | null, dims: number[]): Storage;
  linearBackward(
    x: Storage,
    weight: Storage,
    grad: Storage,
    dims: number[],
    wantDx: boolean,
    wantDw: boolean,
    wantDb: boolean,
  ): [Storage | null, Storage | null, Storage | null];
  layerNormForward(
    x: Storage,
    weight: Storage | null,
    bias: Storage | null,
    dims: number[],
    eps: number,
  ): [Storage, Storage, Storage];
  layerNormBackward(
    x: Storage,
    weight: Storage | null,
    mean: Storage,
    rstd: Storage,
    grad: Storage,
    dims: number[],
    wantDx: boolean,
    wantDweight: boolean,
    wantDbias: boolean,
  ): [Storage | null, Storage | null, Storage | null];
  softmaxForward(x: Storage, dims: number[], log: boolean): Storage;
  softmaxBackward(output: Storage, grad: Storage, dims: number[], log: boolean): Storage;
  /** reduction: 0 none, 1 sum, 2 mean; returns [loss, lse, count]. */
  crossEntropyForward(
    input: Storage,
    target: Storage,
    dims: number[],
    soft: boolean,
    ignoreIndex: number,
    labelSmoothing: number,
    reduction: number,
  ): [Storage, Storage, Storage];
  crossEntropyBackward(
    input: Storage,
    target: Storage,
    lse: Storage,
    count: Storage,
    grad: Storage,
    dims: number[],
    soft: boolean,
    ignoreIndex: number,
    labelSmoothing: number,
    reduction: number,
  ): Storage;
  embeddingForward(ids: Storage, weight: Storage, dims: number[]): Storage;
  embeddingBackward(ids: Storage, grad: Storage, dims: number[]): Storage;
  /** dims = [n, group]; the backward is the same call on the gradient. */
  dropout(x: Storage, dims: number[], p: number, seed: number, offset: number): Storage;
  fourierMetricForward(q: Storage, k: Storage, R: Storage, dims: number[], power: number): Storage;
  fourierMetricBackward(
    q: Storage,
    k: Storage,
    R: Storage,
    dims: number[],
    power: number,
    grad: Storage,
  ): [Storage, Storage, Storage];
  /** dims = [B, H, Nq, Nk, D, rH, rD, Dv, causal]; returns [out, stats]. */
  fourierAttentionForward(
    q: Storage,
    k: Storage,
    v: Storage,
    R: Storage,
    dims: number[],
    power: number,
    eps: number,
    stable: boolean,
  ): [Storage, Storage];
  fourierAttentionBackward(
    q: Storage,
    k: Storage,
    v: Storage,
    R: Storage,
    dims: number[],
    power: number,
    eps: number,
    stable: boolean,
    out: Storage,
    stats: Storage,
    grad: Storage,
  ): [Storage, Storage, Storage, Storage];
  /**
   * Data-parallel collectives on this backend's memory (csrc/binding/comm.cpp): attach binds the
   * backend to the MPI addon's communicator; each collective returns a handle for commWait.
   */
  commAttach(table: unknown, ncclLibrary: string): void;
  commDescribe(): string;
  commAllReduce(s: Storage, op: 'sum' | 'avg' | 'max' | 'min', what: string): number;
  commBroadcast(s: Storage, root: number, what: string): number;
  commAllGather(s: Storage, what: string): number;
  commWait(handle: number): void;
  /** parts (storages, or counts of zeros) one after the other into target from `offset`; returns the end. */
  packInto(target: Storage, parts: (Storage | number)[], offset: number): number;
  /** Each target <- its slice of source, one after the other from `offset`; returns the end. */
  unpackFrom(source: Storage, targets: Storage[], offset: number): number;
  dotAttentionForward(q: Storage, k: Storage, v: Storage, dims: number[], scale: number): [Storage, Storage];
  dotAttentionBackward(
    q: Storage,
    k: Storage,
    v: Storage,
    dims: number[],
    scale: number,
    out: Storage,
    lse: Storage,
    grad: Storage,
  ): [Storage, Storage, Storage];
  /** dims = [B, H, Nq, Nk, F, 1, 1, Dv, causal], W [features, F]; returns [out, den]. */
  favorAttentionForward(
    q: Storage,
    k: Storage,
    v: Storage,
    W: Storage,
    dims: number[],
    features: number,
    scale: number,
    eps: number,
  ): [Storage, Storage];
  favorAttentionBackward(
    q: Storage,
    k: Storage,
    v: Storage,
    W: Storage,
    dims: number[],
    features: number,
    scale: number,
    eps: number,
    out: Storage,
    den: Storage,
    grad: Storage,
  ): [Storage, Storage, Storage];
  /** dims = [B, H, Nq, Nk, d1, 1, 1, Dv, causal]; returns [out, lse]. */
  neuralAttentionForward(
    a: Storage,
    c: Storage,
    v: Storage,
    w2: Storage,
    b2: Storage,
    w3: Storage,
    b3: Storage,
    dims: number[],
    d2: number,
  ): [Storage, Storage];
  /** Returns [da, dc, dv, dw2, db2, dw3, db3]. */
  neuralAttentionBackward(
    a: Storage,
    c: Storage,
    v: Storage,
    w2: Storage,
    b2: Storage,
    w3: Storage,
    b3: Storage,
    dims: number[],
    d2: number,
    out: Storage,
    lse: Storage,
    grad: Storage,
  ): [Storage, Storage, Storage, Storage, Storage, Storage, Storage];
}

/** Float32 matrix products: exact float ('highest') or TF32 tensor cores where a GPU has them ('high'). */
export type MatmulPrecision = 'highest' | 'high';
let matmulPrecision: MatmulPrecision = 'highest';

/** Sets the matmul precision of every addon loaded now and later. */
export function setMatmulPrecision(precision: MatmulPrecision): void {
  if (precision !== 'highest' && precision !== 'high') {
    throw new Error(`precision: expected 'highest' or 'high', got ${JSON.stringify(precision)}`);
  }
  matmulPrecision = precision;
  for (const b of loaded.values()) b.setMatmulPrecision(precision);
}

export function getMatmulPrecision(): MatmulPrecision {
  return matmulPrecision;
}

export const DEVICES = ['cpu', 'cuda', 'cuda-emu'] as const;
export type Device = (typeof DEVICES)[number];

/** The package root: lib/ and dist/ both sit one level below it. */
export const packageRoot = path.resolve(__dirname, '..');

const ADDON_FILES: Record<Device, string> = {
  cpu: 'fourierformer_cpu.node',
  cuda: 'fourierformer_cuda.node',
  'cuda-emu': 'fourierformer_cuda_emu.node',
};

/**
 * The prebuilt addon of the npm package (scripts/prebuild.js): the cpu one as node-gyp-build
 * picks it in prebuilds/<platform>-<arch>/, the cuda one in its cuda/ folder (out of
 * node-gyp-build's sight). There is no cuda-emu prebuild.
 */
function prebuilt(device: Device): string[] {
  const dir = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
  if (device === 'cuda') return [path.join(dir, 'cuda', ADDON_FILES.cuda)];
  if (device === 'cpu') {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only for the cpu addon
      return [(require('node-gyp-build') as { resolve(dir: string): string }).resolve(packageRoot)];
    } catch {
      return [path.join(dir, '*.node')];
    }
  }
  return [];
}

/** Where an addon may be found, in order: FOURIERFORMER_ADDON_DIR, a local build, the prebuild. */
function candidates(device: Device): string[] {
  const file = ADDON_FILES[device];
  const dirs = device === 'cpu' ? ['build/Release', 'build/Debug'] : [`build-native/${device}`];
  const out = dirs.map((d) => path.join(packageRoot, d, file));
  out.push(...prebuilt(device));
  if (process.env.FOURIERFORMER_ADDON_DIR) out.unshift(path.join(process.env.FOURIERFORMER_ADDON_DIR, file));
  return out;
}

const loaded = new Map<Device, Backend>();
const loadedFrom = new Map<Device, string>();

export function isDevice(name: unknown): name is Device {
  return typeof name === 'string' && (DEVICES as readonly string[]).includes(name);
}

/** Checks a device name from a user, naming where it came from in the error. */
export function checkDevice(name: unknown, what = 'device'): Device {
  if (!isDevice(name)) {
    throw new Error(`${what}: unknown device ${JSON.stringify(name)} (expected 'cpu', 'cuda' or 'cuda-emu')`);
  }
  return name;
}

/** Loads the addon of a device, without checking that the device itself works. */
export function loadAddon(device: Device): Backend {
  const cached = loaded.get(device);
  if (cached) return cached;
  const tried = candidates(device);
  const found = tried.find((p) => fs.existsSync(p));
  if (!found) {
    const how = {
      cpu: 'npm install (or npm run build:cpu)',
      cuda: 'npm run build:cuda',
      'cuda-emu': 'npm run build:emu in a clone of the repository (the npm package does not ship it)',
    }[device];
    throw new Error(
      `device '${device}': its addon ${ADDON_FILES[device]} is not built; run ${how}. Looked in:\n  ${tried.join('\n  ')}`,
    );
  }
  let addon: Backend;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an addon found at run time
    addon = (device === 'cuda' ? requireCudaAddon(found) : require(found)) as Backend;
  } catch (e) {
    throw new Error(`device '${device}': cannot load ${found}: ${(e as Error).message}`, { cause: e });
  }
  if (addon.backend !== device) throw new Error(`device '${device}': ${found} is the '${addon.backend}' addon`);
  if (matmulPrecision !== 'highest') addon.setMatmulPrecision(matmulPrecision);
  const threads = threadSetting();
  if (threads !== null) addon.setNumThreads(threads);
  loaded.set(device, addon);
  loadedFrom.set(device, found);
  return addon;
}

/** A thread count: an integer in [1, 1024]; `what` names where it came from. */
export function checkThreads(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1024) {
    throw new Error(
      `${what}: expected an integer from 1 to 1024, got ${typeof n === 'number' ? n : JSON.stringify(n)}`,
    );
  }
  return n;
}

/** This thread's setNumThreads, or FOURIERFORMER_NUM_THREADS; null: each backend's default. */
let hostThreads: number | null | undefined;

function threadSetting(): number | null {
  if (hostThreads === undefined) {
    const env = process.env.FOURIERFORMER_NUM_THREADS;
    if (env === undefined || env === '') hostThreads = null;
    else hostThreads = checkThreads(/^\s*\d+\s*$/.test(env) ? Number(env) : env, 'FOURIERFORMER_NUM_THREADS');
  }
  return hostThreads;
}

/** Sets this thread's count on every addon loaded now, and on those loaded later. */
export function setHostThreads(n: number): void {
  hostThreads = n;
  for (const addon of loaded.values()) addon.setNumThreads(n);
}

/** The file a device's addon was loaded from, if it is loaded. */
export function addonPath(device: Device): string | undefined {
  return loadedFrom.get(device);
}

const usable = new Set<Device>();

/** The backend of a device, checked to be usable (a GPU exists for 'cuda'). */
export function backendFor(device: Device): Backend {
  const addon = loadAddon(device);
  if (!usable.has(device)) {
    try {
      addon.ensureAvailable();
    } catch (e) {
      throw new Error(`device '${device}' is not available: ${(e as Error).message}`, { cause: e });
    }
    usable.add(device);
  }
  return addon;
}

/** The addons that are loaded now, for memory(). */
export function loadedBackends(): Backend[] {
  return [...loaded.values()];
}

/** The backends of the devices in use (those backendFor found usable), for synchronize(). */
export function usableBackends(): Backend[] {
  return [...usable].map((d) => backendFor(d));
}

/**
 * The named device's backend (checked), or `all()` when none is named: the device argument of
 * memory functions and synchronize().
 */
export function backendsOf(device: Device | undefined, all: () => Backend[]): Backend[] {
  return device === undefined ? all() : [backendFor(checkDevice(device))];
}
