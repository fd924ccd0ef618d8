// Reductions: sum and mean over a list of axes (keepDims as PyTorch's keepdim), or over the
// whole tensor; and sumToShape, the gradient of every broadcast. One native kernel
// (csrc/cpu/reduce.cpp and its CUDA twin) that accumulates in double; the backward broadcasts
// the gradient back with the strided-copy kernel.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { sameShape } from '../shape';
import { checkTensor, Tensor } from '../tensor';

/** Axes as distinct indices in [0, ndim), negative ones counted from the end; all axes when undefined. */
export function normalizeAxes(axes: number | readonly number[] | undefined, ndim: number, what = 'axes'): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  if (!Array.isArray(list)) throw new Error(`${what}: expected an integer or an array of integers`);
  const out: number[] = [];
  for (const a of list) {
    if (typeof a !== 'number' || !Number.isInteger(a) || a < -ndim || a >= ndim) {
      throw new Error(
        `${what}: expected integers in [${-ndim}, ${ndim - 1}] for a tensor of ${ndim} dimensions, got ${JSON.stringify(list)}`,
      );
    }
    const n = a < 0 ? a + ndim : a;
    if (out.includes(n)) throw new Error(`${what}: axis ${n} is repeated in ${JSON.stringify(list)}`);
    out.push(n);
  }
  return out.sort((x, y) => x - y);
}

/** The shape after reducing `axes`: with 1s in their place when keepDims, without them otherwise. */
export function reducedShape(shape: readonly number[], axes: readonly number[], keepDims: boolean): number[] {
  if (keepDims) return shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return shape.filter((_, i) => !axes.includes(i));
}

/**
 * @internal scale * the sum of x over axes (sorted, distinct), as a tensor of `shape` (the
 * reduced shape, with or without the 1s); no autograd.
 */
export function sumRaw(x: Tensor, axes: readonly number[], shape: readonly number[], scale = 1): Tensor {
  const b = x.backend;
  const s = b.sumAxes(x.storage('x'), [...x.shape], [...axes]);
  if (scale === 1) return new Tensor(s, shape, x.device);
  const scaled = b.affine(s, scale, 0);
  b.free(s);
  return new Tensor(scaled, shape, x.device);
}

/**
 * @internal scale * g summed down to `shape` (which broadcasts to g's shape): the gradient of
 * an input that was broadcast. Returns g itself when there is nothing to do.
 */
export function sumToShape(g: Tensor, shape: readonly number[], scale = 1): Tensor {
  if (sameShape(g.shape, shape)) {
    return scale === 1 ? g : new Tensor(g.backend.affine(g.storage(), scale, 0), g.shape, g.device);
  }
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  return sumRaw(g, axes, shape, scale);
}

/** @internal g (shape `from`) broadcast to `to`, times scale; no autograd. */
export function broadcastRaw(g: Tensor, from: readonly number[], to: readonly number[], scale = 1): Tensor {
  const src = scale === 1 ? g : new Tensor(g.backend.affine(g.storage(), scale, 0), g.shape, g.device);
  const out = new Tensor(g.backend.broadcastTo(src.storage(), [...from], [...to]), to, g.device);
  if (src !== g) src.dispose();
  return out;
}

export class Sum extends Function {
  static override forward(ctx: Context, x: Tensor, axes: number[], keepDims: boolean, mean: boolean): Tensor {
    const count = axes.reduce((n, a) => n * x.shape[a], 1);
    ctx.xShape = x.shape;
    ctx.keptShape = reducedShape(x.shape, axes, true);
    ctx.scale = mean ? 1 / count : 1;
    return sumRaw(x, axes, reducedShape(x.shape, axes, keepDims), ctx.scale as number);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    return [
      broadcastRaw(grad, ctx.keptShape as number[], ctx.xShape as number[], ctx.scale as number),
      null,
      null,
      null,
    ];
  }
}

function reduce(x: Tensor, axes: number | readonly number[] | undefined, keepDims: unknown, mean: boolean): Tensor {
  checkTensor(x, 'x');
  if (typeof keepDims !== 'boolean') throw new Error(`keepDims: expected a boolean, got ${String(keepDims)}`);
  const list = normalizeAxes(axes, x.ndim);
  return Sum.apply(x, list, keepDims, mean) as Tensor;
}

/** The sum over axes (all by default); keepDims leaves them as size 1. */
export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return reduce(x, axes, keepDims, false);
}

/** The mean over axes (all by default); keepDims leaves them as size 1. An empty axis gives NaN. */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return reduce(x, axes, keepDims, true);
}
