// The default device: FOURIERFORMER_DEVICE, else 'cpu'. opts.device overrides it per tensor.
import { checkDevice, Device } from './native';

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
