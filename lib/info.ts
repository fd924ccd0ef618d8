// What each backend is and whether it can be used here, for `fourierformer info` and scripts.
import { addonPath, backendFor, Device, DEVICES, loadAddon } from './native';

export interface BackendInfo {
  device: Device;
  available: boolean;
  /** The device description, or why it cannot be used. */
  detail: string;
  /** The addon file, where it loaded. */
  addon?: string;
}

export function backends(): BackendInfo[] {
  return DEVICES.map((device) => {
    try {
      loadAddon(device);
      const detail = backendFor(device).describe();
      return { device, available: true, detail, addon: addonPath(device) };
    } catch (e) {
      return { device, available: false, detail: (e as Error).message, addon: addonPath(device) };
    }
  });
}
