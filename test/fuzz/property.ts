// A fuzz property: an arbitrary of JSON cases and a check that runs one case on a device and
// throws when the library misbehaves. The runner picks properties by weight.
import type fc from 'fast-check';
import type * as ff from '../../lib';

export interface Env {
  /** The device under test. */
  device: ff.Device;
  /** Another usable device, for mixed-device calls (null if there is none). */
  other: ff.Device | null;
  /** A scratch folder for files. */
  tmp: string;
}

export interface Property<C = unknown> {
  name: string;
  /** How often the runner picks it, relative to the others. */
  weight: number;
  arbitrary(env: Env): fc.Arbitrary<C>;
  /** Runs one case; throws (a Mismatch, or whatever the library threw) on a failure. */
  run(c: C, env: Env): void;
}

export function property<C>(p: Property<C>): Property<unknown> {
  return p as Property<unknown>;
}
