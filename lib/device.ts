// The default device: FOURIERFORMER_DEVICE, else 'cpu'. opts.device overrides it per tensor.
import { backendFor, backendsOf, checkDevice, Device, usableBackends } from './native';
export { getMatmulPrecision, setMatmulPrecision } from './native';
export type { MatmulPrecision } from './native';

let defaultDevice: Device | null = null;

export function getDefaultDevice(): Device {
  if (defaultDevice === null) {
    const env = process.env.FOURIERFORMER_DEVICE;
    defaultDevice = env === undefined || env === '' ? 'cpu' : checkDevice(env, 'FOURIERFORMER_DEVICE');
  }
  return defaultDevice;
}

export function setDefaultDevice(device: Device): void {
  defaultDevice = checkDevice(device);
}

/**
 * Waits until every op queued on a device has finished, as torch.cuda.synchronize() does: the
 * point to read a clock at when timing GPU work. On cpu ops finish before they return, so it
 * returns at once. Every device in use when none is named.
 */
export function synchronize(device?: Device): void {
  for (const b of backendsOf(device, usableBackends)) b.synchronize();
}

/**
 * How many times the host has waited for the device since the process started: stream
 * synchronisations, read-backs (toFloat32Array, item) and frees of cached memory. A training
 * step on cuda waits only where it reads a value (the loss); argument checks run on the device
 * and report at the next synchronisation. Always 0 on cpu.
 */
export function hostSyncs(device: Device): number {
  return backendFor(checkDevice(device)).hostSyncs();
}
