// matmul(a, b, {transA, transB}): batched matrix products [..., M, K] x [..., K, N] -> [..., M, N]
// on the backend's BLAS (OpenBLAS sgemm on cpu, cuBLAS on cuda). A transpose flag reads its operand
// as stored transposed ([..., K, M] or [..., N, K]) without copying it. Batch dims broadcast when
// they are equal or one operand has a single matrix (a weight shared by the whole batch).
// Backward: two GEMMs, d op(A) = dC op(B)^T and d op(B) = op(A)^T dC, read with the transposes
// they need; a shared operand's gradient is summed over the batch inside the GEMM call.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkOptions, optBoolean } from '../options';
import { numel, shapeString } from '../shape';
import { checkSameDevice, checkTensor, Tensor } from '../tensor';
import { broadcastShapes } from './elementwise';

export interface MatmulOptions {
  /** Read a as stored transposed: a is [..., K, M]. */
  transA?: boolean;
  /** Read b as stored transposed: b is [..., N, K]. */
  transB?: boolean;
}

/** One strided-batched GEMM: C_i = op(A_i) op(B_i), op(A) [M, K], op(B) [K, N]. */
interface Gemm {
  batch: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  strideA: number;
  strideB: number;
  /** C = the sum over the batch (the gradient of a shared operand). */
  sumBatches: boolean;
}

function gemm(a: Tensor, b: Tensor, g: Gemm, shape: readonly number[]): Tensor {
  const dims = [g.batch, g.M, g.N, g.K, +g.transA, +g.transB, g.strideA, g.strideB, +g.sumBatches];
  return new Tensor(a.backend.gemm(a.storage('a'), b.storage('b'), dims), shape, a.device);
}

/** How a product is run: its GEMM, and the output shape. */
interface Plan {
  gemm: Gemm;
  shape: number[];
}

function plan(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Plan {
  if (a.ndim < 2) throw new Error(`a: expected at least 2 dimensions [..., M, K], got shape ${shapeString(a.shape)}`);
  if (b.ndim < 2) throw new Error(`b: expected at least 2 dimensions [..., K, N], got shape ${shapeString(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transB ? [bc, br] : [br, bc];
  if (K !== Kb) {
    throw new Error(
      `a, b: inner dimensions differ: op(a) is [${M}, ${K}] and op(b) is [${Kb}, ${N}] (shapes ${shapeString(a.shape)}, ${shapeString(b.shape)})`,
    );
  }
  if (M === 0 || N === 0 || K === 0)
    throw new Error(`a, b: every matrix dimension must be at least 1, got M ${M}, N ${N}, K ${K}`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batchShape = broadcastShapes(batchA, batchB, ['a', 'b']);
  const batch = numel(batchShape);
  const nA = numel(batchA),
    nB = numel(batchB);
  if ((nA !== 1 && nA !== batch) || (nB !== 1 && nB !== batch)) {
    throw new Error(
      `a, b: batch dims ${shapeString(batchA)} and ${shapeString(batchB)} must be equal or one of them a single matrix (use broadcastTo first)`,
    );
  }
  const shape = [...batchShape, M, N];
  // A batch of a against one matrix b, a not transposed: one GEMM of [batch * M, K] rows.
  if (nB === 1 && nA === batch && batch > 1 && !transA) {
    return { gemm: { batch: 1, M: batch * M, N, K, transA, transB, strideA: 0, strideB: 0, sumBatches: false }, shape };
  }
  const gemmPlan = {
    batch,
    M,
    N,
    K,
    transA,
    transB,
    strideA: nA === 1 ? 0 : M * K,
    strideB: nB === 1 ? 0 : K * N,
    sumBatches: false,
  };
  return { gemm: gemmPlan, shape };
}

export class MatMulFunction extends Function {
  static override forward(ctx: Context, a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
    const p = plan(a, b, transA, transB);
    ctx.saveForBackward(a, b);
    ctx.gemm = p.gemm;
    return gemm(a, b, p.gemm, p.shape);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [a, b] = ctx.savedTensors;
    const g = ctx.gemm as Gemm;
    const strideC = g.M * g.N;
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (ctx.needsInputGrad[0]) {
      const sum = g.batch > 1 && g.strideA === 0;
      da = g.transA // a stored [K, M]: dA = op(B) dC^T
        ? gemm(
            b,
            grad,
            {
              batch: g.batch,
              M: g.K,
              N: g.M,
              K: g.N,
              transA: g.transB,
              transB: true,
              strideA: g.strideB,
              strideB: strideC,
              sumBatches: sum,
            },
            a.shape,
          )
        : gemm(
            grad,
            b,
            {
              batch: g.batch,
              M: g.M,
              N: g.K,
              K: g.N,
              transA: false,
              transB: !g.transB,
              strideA: strideC,
              strideB: g.strideB,
              sumBatches: sum,
            },
            a.shape,
          );
    }
    if (ctx.needsInputGrad[1]) {
      const sum = g.batch > 1 && g.strideB === 0;
      db = g.transB // b stored [N, K]: dB = dC^T op(A)
        ? gemm(
            grad,
            a,
            {
              batch: g.batch,
              M: g.N,
              N: g.K,
              K: g.M,
              transA: true,
              transB: g.transA,
              strideA: strideC,
              strideB: g.strideA,
              sumBatches: sum,
            },
            b.shape,
          )
        : gemm(
            a,
            grad,
            {
              batch: g.batch,
              M: g.K,
              N: g.N,
              K: g.M,
              transA: !g.transA,
              transB: false,
              strideA: g.strideA,
              strideB: strideC,
              sumBatches: sum,
            },
            b.shape,
          );
    }
    return [da, db, null, null];
  }
}

/** op(a) op(b) over the last two dims, batched over the others; differentiable in a and b. */
export function matmul(a: Tensor, b: Tensor, opts?: MatmulOptions): Tensor {
  checkTensor(a, 'a');
  checkTensor(b, 'b');
  checkSameDevice({ a, b });
  const o = checkOptions(opts, ['transA', 'transB']);
  const transA = optBoolean(o.transA, 'opts.transA', false);
  const transB = optBoolean(o.transB, 'opts.transB', false);
  plan(a, b, transA, transB);
  return MatMulFunction.apply(a, b, transA, transB) as Tensor;
}
