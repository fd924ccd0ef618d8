// Layout ops: reshape, permute / transpose, broadcastTo, slice along one axis, and concat. Tensors
// never share storage (dispose stays simple), so each result is a copy: reshape is one memcpy,
// permute and broadcastTo one strided-copy kernel (tiled when it transposes), slice and concat
// row-block copies. Backward: reshape back, the inverse permutation, sumToShape, a zero-padded
// copy, and slices.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkShape, numel, shapeString } from '../shape';
import { checkSameDevice, checkTensor, Tensor } from '../tensor';
import { broadcastRaw, sumToShape } from './reduce';

/** An axis in [-ndim, ndim) as an index in [0, ndim). */
export function normalizeAxis(axis: unknown, ndim: number, what = 'axis'): number {
  if (typeof axis !== 'number' || !Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    throw new Error(
      `${what}: expected an integer in [${-ndim}, ${ndim - 1}] for a tensor of ${ndim} dimensions, got ${String(axis)}`,
    );
  }
  return axis < 0 ? axis + ndim : axis;
}

function copyAs(x: Tensor, shape: readonly number[]): Tensor {
  return new Tensor(x.backend.copy(x.storage('x')), shape, x.device);
}

export class Reshape extends Function {
  static override forward(ctx: Context, x: Tensor, shape: number[]): Tensor {
    ctx.xShape = x.shape;
    return copyAs(x, shape);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    return [copyAs(grad, ctx.xShape as number[]), null];
  }
}

/** x with a new shape of as many elements; one dim may be -1 (inferred). A copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor(x, 'x');
  if (!Array.isArray(shape)) throw new Error('shape: expected an array of integers');
  const inferred = shape.filter((d) => d === -1).length;
  if (inferred > 1) throw new Error(`shape: at most one dimension may be -1, got ${shapeString(shape)}`);
  const known = checkShape(
    shape.map((d) => (d === -1 ? 1 : d)),
    'shape',
  );
  const rest = numel(known);
  let resolved = known;
  if (inferred === 1) {
    if (rest === 0 || x.size % rest !== 0)
      throw new Error(`shape: ${shapeString(shape)} cannot hold the ${x.size} elements of ${shapeString(x.shape)}`);
    resolved = shape.map((d) => (d === -1 ? x.size / rest : d));
  }
  if (numel(resolved) !== x.size) {
    throw new Error(
      `shape: ${shapeString(shape)} has ${numel(resolved)} elements but x ${shapeString(x.shape)} has ${x.size}`,
    );
  }
  return Reshape.apply(x, resolved) as Tensor;
}

export class Permute extends Function {
  static override forward(ctx: Context, x: Tensor, dims: number[]): Tensor {
    ctx.dims = dims;
    const out = x.backend.permute(x.storage('x'), [...x.shape], dims);
    return new Tensor(
      out,
      dims.map((d) => x.shape[d]),
      x.device,
    );
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const dims = ctx.dims as number[];
    const inverse = new Array<number>(dims.length);
    dims.forEach((d, i) => (inverse[d] = i));
    const dx = grad.backend.permute(grad.storage('grad'), [...grad.shape], inverse);
    return [
      new Tensor(
        dx,
        inverse.map((d) => grad.shape[d]),
        grad.device,
      ),
      null,
    ];
  }
}

/** x with its dims reordered: result dim i is x's dim dims[i] (negative dims count from the end). */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  checkTensor(x, 'x');
  if (!Array.isArray(dims) || dims.length !== x.ndim) {
    throw new Error(
      `dims: expected a permutation of the ${x.ndim} dimensions of x ${shapeString(x.shape)}, got ${JSON.stringify(dims)}`,
    );
  }
  const list = dims.map((d) => normalizeAxis(d, x.ndim, 'dims'));
  if (new Set(list).size !== list.length) throw new Error(`dims: ${JSON.stringify(dims)} repeats a dimension`);
  return Permute.apply(x, list) as Tensor;
}

/** x with dims a and b swapped. */
export function transpose(x: Tensor, a: number, b: number): Tensor {
  checkTensor(x, 'x');
  const i = normalizeAxis(a, x.ndim, 'a');
  const j = normalizeAxis(b, x.ndim, 'b');
  const dims = Array.from({ length: x.ndim }, (_, k) => k);
  [dims[i], dims[j]] = [dims[j], dims[i]];
  return Permute.apply(x, dims) as Tensor;
}

export class BroadcastTo extends Function {
  static override forward(ctx: Context, x: Tensor, shape: number[]): Tensor {
    ctx.xShape = x.shape;
    return broadcastRaw(x, x.shape, shape);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    return [sumToShape(grad, ctx.xShape as number[]), null];
  }
}

/** x expanded to `shape` by NumPy broadcasting (a copy). */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor(x, 'x');
  const s = checkShape(shape, 'shape');
  const lead = s.length - x.ndim;
  if (lead < 0 || x.shape.some((d, i) => d !== 1 && d !== s[lead + i])) {
    throw new Error(`shape: x ${shapeString(x.shape)} does not broadcast to ${shapeString(s)}`);
  }
  return BroadcastTo.apply(x, s) as Tensor;
}

export class Slice extends Function {
  static override forward(ctx: Context, x: Tensor, axis: number, start: number, end: number): Tensor {
    ctx.xShape = x.shape;
    ctx.range = [axis, start, end];
    const out = x.backend.slice(x.storage('x'), [...x.shape], axis, start, end);
    return new Tensor(
      out,
      x.shape.map((d, i) => (i === axis ? end - start : d)),
      x.device,
    );
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [axis, start, end] = ctx.range as number[];
    const xShape = ctx.xShape as number[];
    const dx = grad.backend.sliceBackward(grad.storage('grad'), [...xShape], axis, start, end);
    return [new Tensor(dx, xShape, grad.device), null, null, null];
  }
}

/**
 * x[..., start:end, ...] along `axis` (negative axis, start and end count from the end; end
 * defaults to the axis's size). Needs 0 <= start <= end <= size after that.
 */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  checkTensor(x, 'x');
  const a = normalizeAxis(axis, x.ndim);
  const size = x.shape[a];
  const bound = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -size || v > size) {
      throw new Error(
        `${what}: expected an integer in [${-size}, ${size}] (axis ${a} has size ${size}), got ${String(v)}`,
      );
    }
    return v < 0 ? v + size : v;
  };
  const s = bound(start, 'start');
  const e = bound(end ?? size, 'end');
  if (e < s) throw new Error(`end: ${String(end)} comes before start ${start} on axis ${a} of size ${size}`);
  return Slice.apply(x, a, s, e) as Tensor;
}

export class Concat extends Function {
  static override forward(ctx: Context, axis: number, ...xs: Tensor[]): Tensor {
    const first = xs[0];
    const out = first.backend.concat(
      xs.map((t, i) => t.storage(`xs[${i}]`)),
      xs.map((t) => [...t.shape]),
      axis,
    );
    ctx.axis = axis;
    ctx.sizes = xs.map((t) => t.shape[axis]);
    const total = xs.reduce((n, t) => n + t.shape[axis], 0);
    return new Tensor(
      out,
      first.shape.map((d, i) => (i === axis ? total : d)),
      first.device,
    );
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const axis = ctx.axis as number;
    const grads: (Tensor | null)[] = [null];
    let offset = 0;
    (ctx.sizes as number[]).forEach((n, i) => {
      if (ctx.needsInputGrad[i + 1]) {
        const g = grad.backend.slice(grad.storage('grad'), [...grad.shape], axis, offset, offset + n);
        grads.push(
          new Tensor(
            g,
            grad.shape.map((d, k) => (k === axis ? n : d)),
            grad.device,
          ),
        );
      } else grads.push(null);
      offset += n;
    });
    return grads;
  }
}

/** The tensors joined along `axis`; their other dims must match. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) throw new Error('xs: expected a non-empty array of tensors');
  xs.forEach((t, i) => checkTensor(t, `xs[${i}]`));
  checkSameDevice(Object.fromEntries(xs.map((t, i) => [`xs[${i}]`, t])));
  const first = xs[0];
  if (first.ndim === 0) throw new Error('xs[0]: a 0-dimensional tensor cannot be concatenated');
  const a = normalizeAxis(axis, first.ndim);
  xs.forEach((t, i) => {
    if (t.ndim !== first.ndim || t.shape.some((d: number, k: number) => k !== a && d !== first.shape[k])) {
      throw new Error(
        `xs[${i}]: shape ${shapeString(t.shape)} does not match xs[0] ${shapeString(first.shape)} outside axis ${a}`,
      );
    }
  });
  return Concat.apply(a, ...xs) as Tensor;
}
