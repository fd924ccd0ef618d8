// embedding(ids, weight): rows of weight [V, D] picked by ids (float32 holding integers, any
// shape; each checked natively to lie in [0, V)) -> [...ids.shape, D]. Its gradient is a
// deterministic scatter-add (rows summed in the order of the ids, no float atomics), so a
// training step gives the same bits every run. The same two kernels give gatherRows (rows of a
// tensor by index, differentiable in the tensor) and its transpose scatterRows (rows added into
// a zero tensor), which adaptive softmax uses to route tokens to clusters.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { shapeString } from '../shape';
import { checkSameDevice, checkTensor, Tensor } from '../tensor';

/** out[i] = weight[ids[i]] (rows of D elements); dims = [n, D, V]. */
function gather(ids: Tensor, weight: Tensor, dims: number[], shape: readonly number[]): Tensor {
  return new Tensor(
    weight.backend.embeddingForward(ids.storage('ids'), weight.storage('weight'), dims),
    shape,
    weight.device,
  );
}

/** out [V, D] = sum over i with ids[i] = v of src[i]; dims = [n, D, V]. */
function scatter(ids: Tensor, src: Tensor, dims: number[], shape: readonly number[]): Tensor {
  return new Tensor(src.backend.embeddingBackward(ids.storage('ids'), src.storage('grad'), dims), shape, src.device);
}

export class EmbeddingFunction extends Function {
  static override forward(ctx: Context, ids: Tensor, weight: Tensor): Tensor {
    const V = weight.shape[0];
    const dims = [ids.size, weight.size / V, V];
    ctx.saveForBackward(ids);
    ctx.dims = dims;
    ctx.weightShape = weight.shape;
    return gather(ids, weight, dims, [...ids.shape, ...weight.shape.slice(1)]);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [ids] = ctx.savedTensors;
    return [null, scatter(ids, grad, ctx.dims as number[], ctx.weightShape as number[])];
  }
}

/** rows [n, ...] of src scattered (added) into a zero tensor of `rows` rows. */
export class ScatterRowsFunction extends Function {
  static override forward(ctx: Context, src: Tensor, index: Tensor, rows: number): Tensor {
    const D = src.size / src.shape[0];
    const dims = [index.size, D, rows];
    ctx.saveForBackward(index);
    ctx.dims = dims;
    ctx.srcShape = src.shape;
    return scatter(index, src, dims, [rows, ...src.shape.slice(1)]);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [index] = ctx.savedTensors;
    return [gather(index, grad, ctx.dims as number[], ctx.srcShape as number[]), null, null];
  }
}

function checkIds(ids: Tensor, what: string): void {
  checkTensor(ids, what);
  if (ids.size === 0) throw new Error(`${what}: expected at least one id, got shape ${shapeString(ids.shape)}`);
}

/** weight [V, D] rows at ids (integers in [0, V), any shape): [...ids.shape, D]. */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  checkIds(ids, 'ids');
  checkTensor(weight, 'weight');
  checkSameDevice({ ids, weight });
  if (weight.ndim !== 2 || weight.size === 0)
    throw new Error(`weight: expected a non-empty [V, D] table, got shape ${shapeString(weight.shape)}`);
  return EmbeddingFunction.apply(ids, weight) as Tensor;
}

/** The rows x[index[i]] of x [N, ...] (index: 1-D integers in [0, N)): [index.size, ...]. */
export function gatherRows(x: Tensor, index: Tensor): Tensor {
  checkTensor(x, 'x');
  checkIds(index, 'index');
  checkSameDevice({ x, index });
  if (x.ndim < 1 || x.size === 0) throw new Error(`x: expected a non-empty tensor, got shape ${shapeString(x.shape)}`);
  if (index.ndim !== 1) throw new Error(`index: expected 1 dimension, got shape ${shapeString(index.shape)}`);
  return EmbeddingFunction.apply(index, x) as Tensor;
}

/** A zero tensor [rows, ...src.shape.slice(1)] with src[i] added into row index[i]. */
export function scatterRows(src: Tensor, index: Tensor, rows: number): Tensor {
  checkTensor(src, 'src');
  checkIds(index, 'index');
  checkSameDevice({ src, index });
  if (index.ndim !== 1 || src.ndim < 1 || src.shape[0] !== index.size) {
    throw new Error(
      `src, index: expected index [n] and src [n, ...], got ${shapeString(index.shape)} and ${shapeString(src.shape)}`,
    );
  }
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`rows: expected a positive integer, got ${String(rows)}`);
  return ScatterRowsFunction.apply(src, index, rows) as Tensor;
}
