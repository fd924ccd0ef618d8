// The default device: FOURIERFORMER_DEVICE, else 'cpu'. opts.device overrides it per tensor.
import { backendsOf, checkDevice, Device, usableBackends } from './native';

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
