// Tensor: a shape, a device and a handle to float32 memory that the native addon owns.
// Memory is freed by dispose(), by tidy() scopes, or (safety net) when the handle is
// garbage-collected. Autograd fields mirror PyTorch: requiresGrad, grad, gradFn.
// A leaf module: it imports nothing above it. The op methods (t.add(u), t.backward(), ...) are
// attached by lib/ops/tensor-methods.ts, which the package entry loads (TensorFlow.js's
// chained ops), and GradFn's members are declared by lib/autograd/node.ts.
import { types } from 'util';
import { getDefaultDevice } from './device';
import { Backend, backendFor, checkDevice, Device, Storage } from './native';
import { checkOptions, describe, optBoolean } from './options';
import { track } from './scope';
import { checkShape, numel, sameShape, shapeString } from './shape';

/**
 * The autograd node that made a tensor: lib/autograd/node.ts merges GradNode's members into
 * this interface, so that tensor.ts need not import the autograd graph.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface GradFn {}

export interface TensorOptions {
  device?: Device;
  requiresGrad?: boolean;
}

export class Tensor {
  /** Marks tensors for tidy() without an import cycle. */
  readonly isTensor = true;
  readonly shape: readonly number[];
  readonly device: Device;
  requiresGrad: boolean;
  /** The accumulated gradient of a leaf tensor after backward(). */
  grad: Tensor | null = null;
  /** The node that made this tensor, when it was computed from tensors that require grad. */
  gradFn: GradFn | null = null;
  /** Which output of gradFn this tensor is. */
  outputIndex = 0;
  private handle: Storage | null;

  /** @internal Wraps native storage; use ff.tensor() to make tensors. */
  constructor(storage: Storage, shape: readonly number[], device: Device, requiresGrad = false) {
    this.handle = storage;
    this.shape = Object.freeze([...shape]);
    this.device = device;
    this.requiresGrad = requiresGrad;
    track(this);
  }

  get size(): number {
    return numel(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.handle === null;
  }

  /** True for tensors not made by an op: their .grad is filled by backward(). */
  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  get backend(): Backend {
    return backendFor(this.device);
  }

  /** @internal The native handle; throws if the tensor was disposed. */
  storage(what = 'tensor'): Storage {
    if (this.handle === null) throw new Error(`${what}: the tensor ${shapeString(this.shape)} has been disposed`);
    return this.handle;
  }

  /** Copies the values to a new Float32Array (waits for queued device work). */
  toFloat32Array(): Float32Array {
    return this.backend.toArray(this.storage());
  }

  /** The values, asynchronously (TensorFlow.js's data()). */
  async data(): Promise<Float32Array> {
    await new Promise((resolve) => setImmediate(resolve));
    return this.toFloat32Array();
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1)
      throw new Error(`item: expected a tensor with one element, got shape ${shapeString(this.shape)}`);
    return this.toFloat32Array()[0];
  }

  /** Frees the native memory (and the gradient's). Safe to call twice. */
  dispose(): void {
    if (this.handle !== null) {
      this.backend.free(this.handle);
      this.handle = null;
    }
    if (this.grad !== null) {
      this.grad.dispose();
      this.grad = null;
    }
    this.gradFn = null;
  }

  /** A copy on another device (a copy even when the device is the same). */
  to(device: Device): Tensor {
    const target = checkDevice(device);
    if (target === this.device) return this.clone();
    const values = this.toFloat32Array();
    return new Tensor(backendFor(target).fromArray(values), this.shape, target);
  }

  /** A copy with no autograd history. */
  clone(): Tensor {
    return new Tensor(this.backend.copy(this.storage()), this.shape, this.device);
  }

  /** Same values, no history (a copy: storage is never shared, so dispose stays simple). */
  detach(): Tensor {
    return this.clone();
  }

  toString(): string {
    if (this.isDisposed) return `Tensor(${shapeString(this.shape)}, ${this.device}, disposed)`;
    const v = this.toFloat32Array();
    const shown = Array.from(v.subarray(0, 8), (x) => x.toPrecision(4)).join(', ');
    return `Tensor(${shapeString(this.shape)}, ${this.device}, [${shown}${v.length > 8 ? ', ...' : ''}])`;
  }
}

/** Checks that a value is a live tensor, naming the argument. */
export function checkTensor(t: unknown, what: string): Tensor {
  if (!(t instanceof Tensor)) throw new Error(`${what}: expected a Tensor, got ${t === null ? 'null' : typeof t}`);
  if (t.isDisposed) throw new Error(`${what}: the tensor ${shapeString(t.shape)} has been disposed`);
  return t;
}

/** Checks that tensors live on one device, naming the first that does not. */
export function checkSameDevice(tensors: Record<string, Tensor>): Device {
  const entries = Object.entries(tensors);
  const device = entries[0][1].device;
  for (const [name, t] of entries) {
    if (t.device !== device) {
      throw new Error(`${name}: is on device '${t.device}' but ${entries[0][0]} is on '${device}'; move it with .to()`);
    }
  }
  return device;
}

export function checkShapeEquals(t: Tensor, shape: readonly number[], what: string): void {
  if (!sameShape(t.shape, shape)) {
    throw new Error(`${what}: expected shape ${shapeString(shape)}, got ${shapeString(t.shape)}`);
  }
}

/** opts of the tensor factories, checked: device (or the default device) and requiresGrad. */
function factoryOptions(opts: TensorOptions | undefined): { device: Device; requiresGrad: boolean } {
  const o = checkOptions(opts, ['device', 'requiresGrad']);
  return {
    device: o.device === undefined ? getDefaultDevice() : checkDevice(o.device, 'opts.device'),
    requiresGrad: optBoolean(o.requiresGrad, 'opts.requiresGrad', false),
  };
}

/** The values of an array of numbers as float32, naming the first entry that is not a number. */
function numbersToFloat32(data: readonly unknown[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number') {
      const hint = Array.isArray(v) ? ' (nested arrays are not read: pass the values flat, with a shape)' : '';
      throw new Error(`data[${i}]: expected a number, got ${describe(v)}${hint}`);
    }
    out[i] = v;
  }
  return out;
}

/**
 * Makes a tensor from values, like tf.tensor / torch.tensor: a Float32Array or a flat array of
 * numbers (NaN and Infinity are values like any other; numbers are rounded to float32). shape
 * defaults to [data.length].
 */
export function tensor(
  data: Float32Array | readonly number[],
  shape?: readonly number[],
  opts?: TensorOptions,
): Tensor {
  // isFloat32Array, not instanceof: arrays from the addon or another realm (jest, vm) count too.
  const isF32 = types.isFloat32Array(data);
  if (!isF32 && !Array.isArray(data)) {
    throw new Error(`data: expected a Float32Array or an array of numbers, got ${describe(data)}`);
  }
  const s = shape === undefined ? checkShape([data.length]) : checkShape(shape);
  if (numel(s) !== data.length) {
    throw new Error(`data: has ${data.length} values but shape ${shapeString(s)} needs ${numel(s)}`);
  }
  const { device, requiresGrad } = factoryOptions(opts);
  const values = isF32 ? (data as Float32Array) : numbersToFloat32(data as readonly unknown[]);
  return new Tensor(backendFor(device).fromArray(values), s, device, requiresGrad);
}

/** A tensor filled with one value (any number, NaN and Infinity included). */
export function full(shape: readonly number[], value: number, opts?: TensorOptions): Tensor {
  const s = checkShape(shape);
  if (typeof value !== 'number') throw new Error(`value: expected a number, got ${describe(value)}`);
  const { device, requiresGrad } = factoryOptions(opts);
  const b = backendFor(device);
  const storage = b.alloc(numel(s));
  b.fill(storage, value);
  return new Tensor(storage, s, device, requiresGrad);
}

export function zeros(shape: readonly number[], opts?: TensorOptions): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: readonly number[], opts?: TensorOptions): Tensor {
  return full(shape, 1, opts);
}
