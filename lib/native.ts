// Loads the native addons and picks the backend for a device name. The cpu addon is required
// (built by `npm install`, or shipped as a prebuild); the cuda and cuda-emu addons are loaded
// on first use and give a clear error when they are missing or the device is unusable.
import * as fs from 'fs';
import * as path from 'path';

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
  memory(): { tensors: number; bytes: number };
  fill(s: Storage, value: number): void;
  addInplace(target: Storage, addend: Storage): void;
  copy(s: Storage): Storage;
  synchronize(): void;
  fourierMetricForward(q: Storage, k: Storage, R: Storage, dims: number[], power: number): Storage;
  fourierMetricBackward(
    q: Storage, k: Storage, R: Storage, dims: number[], power: number, grad: Storage,
  ): [Storage, Storage, Storage];
  /** dims = [B, H, Nq, Nk, D, rH, rD, Dv, causal]; returns [out, stats]. */
  fourierAttentionForward(
    q: Storage, k: Storage, v: Storage, R: Storage, dims: number[], power: number, eps: number, stable: boolean,
  ): [Storage, Storage];
  fourierAttentionBackward(
    q: Storage, k: Storage, v: Storage, R: Storage, dims: number[], power: number, eps: number, stable: boolean,
    out: Storage, stats: Storage, grad: Storage,
  ): [Storage, Storage, Storage, Storage];
  dotAttentionForward(q: Storage, k: Storage, v: Storage, dims: number[], scale: number): [Storage, Storage];
  dotAttentionBackward(
    q: Storage, k: Storage, v: Storage, dims: number[], scale: number, out: Storage, lse: Storage, grad: Storage,
  ): [Storage, Storage, Storage];
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

/** Where an addon may be found, in order: a local build, then the prebuilds of issue #6. */
function candidates(device: Device): string[] {
  const file = ADDON_FILES[device];
  const dirs = device === 'cpu' ? ['build/Release', 'build/Debug'] : [`build-native/${device}`];
  const out = dirs.map((d) => path.join(packageRoot, d, file));
  const prebuilt = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, file);
  out.push(prebuilt);
  if (process.env.FOURIERFORMER_ADDON_DIR) out.unshift(path.join(process.env.FOURIERFORMER_ADDON_DIR, file));
  return out;
}

const loaded = new Map<Device, Backend>();

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
    const how = device === 'cpu' ? 'npm install (or npm run build:cpu)' : `npm run build:${device === 'cuda' ? 'cuda' : 'emu'}`;
    throw new Error(`device '${device}': its addon ${ADDON_FILES[device]} is not built; run ${how}. Looked in:\n  ${tried.join('\n  ')}`);
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const addon = require(found) as Backend;
  loaded.set(device, addon);
  return addon;
}

const usable = new Set<Device>();

/** The backend of a device, checked to be usable (a GPU exists for 'cuda'). */
export function backendFor(device: Device): Backend {
  const addon = loadAddon(device);
  if (!usable.has(device)) {
    try {
      addon.ensureAvailable();
    } catch (e) {
      throw new Error(`device '${device}' is not available: ${(e as Error).message}`);
    }
    usable.add(device);
  }
  return addon;
}

/** The addons that are loaded now, for memory(). */
export function loadedBackends(): Backend[] {
  return [...loaded.values()];
}
