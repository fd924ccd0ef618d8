// Elementwise ops: add / sub / mul / div with NumPy broadcasting (up to 6 dims after merging
// contiguous ones), scale, addScalar, neg, biasAdd, and the activations gelu, relu, exp, log,
// tanh. Each is an autograd Function over one native kernel (csrc/cpu/{binary,unary}.cpp and
// their CUDA twins); a broadcast input's gradient is summed back to its shape.
import { Context } from '../autograd/node';
import { Function } from '../autograd/function';
import { checkOptions, optChoice, optNumber } from '../options';
import { sameShape, shapeString } from '../shape';
import { checkSameDevice, checkTensor, Tensor } from '../tensor';
import { sumToShape } from './reduce';

export type BinaryOpName = 'add' | 'sub' | 'mul' | 'div';

/** The NumPy broadcast of two shapes; the error names both arguments. */
export function broadcastShapes(
  a: readonly number[],
  b: readonly number[],
  names: [string, string] = ['a', 'b'],
): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(
        `${names[0]}, ${names[1]}: shapes ${shapeString(a)} and ${shapeString(b)} do not broadcast (dimension ${i} from the left of the result: ${da} vs ${db})`,
      );
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** @internal a op b with broadcasting, no autograd. */
export function binaryRaw(op: BinaryOpName, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape);
  return new Tensor(a.backend.binary(op, a.storage('a'), [...a.shape], b.storage('b'), [...b.shape]), shape, a.device);
}

/** @internal alpha * x + beta, no autograd. */
export function affineRaw(x: Tensor, alpha: number, beta: number): Tensor {
  return new Tensor(x.backend.affine(x.storage('x'), alpha, beta), x.shape, x.device);
}

export class Binary extends Function {
  static override forward(ctx: Context, a: Tensor, b: Tensor, op: BinaryOpName): Tensor {
    const out = binaryRaw(op, a, b);
    ctx.op = op;
    ctx.aShape = a.shape;
    ctx.bShape = b.shape;
    if (op === 'mul') ctx.saveForBackward(a, b);
    else if (op === 'div') ctx.saveForBackward(b, out);
    return out;
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [needA, needB] = ctx.needsInputGrad;
    const aShape = ctx.aShape as number[];
    const bShape = ctx.bShape as number[];
    switch (ctx.op as BinaryOpName) {
      case 'add':
        return [needA ? sumToShape(grad, aShape) : null, needB ? sumToShape(grad, bShape) : null, null];
      case 'sub':
        return [needA ? sumToShape(grad, aShape) : null, needB ? sumToShape(grad, bShape, -1) : null, null];
      case 'mul': {
        const [a, b] = ctx.savedTensors;
        return [needA ? productSum(grad, b, aShape) : null, needB ? productSum(grad, a, bShape) : null, null];
      }
      case 'div': {
        // d(a/b)/da = 1/b;  d(a/b)/db = -a/b^2 = -(1/b) * out
        const [b, out] = ctx.savedTensors;
        const gOverB = binaryRaw('div', grad, b);
        const gb = needB ? productSum(gOverB, out, bShape, -1) : null;
        const ga = needA ? sumToShape(gOverB, aShape) : null;
        if (ga !== gOverB) gOverB.dispose();
        return [ga, gb, null];
      }
    }
  }
}

/** scale * sum of (g * x) down to `shape` (the gradient of a product). */
function productSum(g: Tensor, x: Tensor, shape: readonly number[], scale = 1): Tensor {
  const gx = binaryRaw('mul', g, x);
  const out = sumToShape(gx, shape, scale);
  if (out !== gx) gx.dispose();
  return out;
}

export class Affine extends Function {
  static override forward(ctx: Context, x: Tensor, alpha: number, beta: number): Tensor {
    ctx.alpha = alpha;
    return affineRaw(x, alpha, beta);
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    return [affineRaw(grad, ctx.alpha as number, 0), null, null];
  }
}

export type UnaryOpName = 'gelu_tanh' | 'gelu_erf' | 'relu' | 'exp' | 'log' | 'tanh';

/** Ops whose derivative the kernel computes from the output (the others take the input). */
const FROM_OUTPUT: ReadonlySet<UnaryOpName> = new Set(['exp', 'tanh']);

export class Unary extends Function {
  static override forward(ctx: Context, x: Tensor, op: UnaryOpName): Tensor {
    const y = new Tensor(x.backend.unary(op, x.storage('x')), x.shape, x.device);
    ctx.op = op;
    ctx.saveForBackward(FROM_OUTPUT.has(op) ? y : x);
    return y;
  }

  static override backward(ctx: Context, grad: Tensor): (Tensor | null)[] {
    const [saved] = ctx.savedTensors;
    const dx = saved.backend.unaryBackward(ctx.op as UnaryOpName, saved.storage('saved'), grad.storage('grad'));
    return [new Tensor(dx, saved.shape, saved.device), null];
  }
}

function checkNumber(v: unknown, what: string): number {
  return optNumber(v, what, undefined);
}

function binary(op: BinaryOpName, a: Tensor, b: Tensor | number): Tensor {
  checkTensor(a, 'a');
  if (typeof b === 'number') {
    const c = checkNumber(b, 'b');
    if (op === 'add') return Affine.apply(a, 1, c) as Tensor;
    if (op === 'sub') return Affine.apply(a, 1, -c) as Tensor;
    if (op === 'mul') return Affine.apply(a, c, 0) as Tensor;
    return Affine.apply(a, 1 / c, 0) as Tensor;
  }
  checkTensor(b, 'b');
  checkSameDevice({ a, b });
  broadcastShapes(a.shape, b.shape);
  return Binary.apply(a, b, op) as Tensor;
}

/** a + b with NumPy broadcasting (b may be a number). */
export function add(a: Tensor, b: Tensor | number): Tensor {
  return binary('add', a, b);
}

/** a - b with NumPy broadcasting (b may be a number). */
export function sub(a: Tensor, b: Tensor | number): Tensor {
  return binary('sub', a, b);
}

/** a * b elementwise with NumPy broadcasting (b may be a number). */
export function mul(a: Tensor, b: Tensor | number): Tensor {
  return binary('mul', a, b);
}

/** a / b elementwise with NumPy broadcasting (b may be a number). */
export function div(a: Tensor, b: Tensor | number): Tensor {
  return binary('div', a, b);
}

/** alpha * x. */
export function scale(x: Tensor, alpha: number): Tensor {
  checkTensor(x, 'x');
  return Affine.apply(x, checkNumber(alpha, 'alpha'), 0) as Tensor;
}

/** x + c. */
export function addScalar(x: Tensor, c: number): Tensor {
  checkTensor(x, 'x');
  return Affine.apply(x, 1, checkNumber(c, 'c')) as Tensor;
}

/** -x. */
export function neg(x: Tensor): Tensor {
  checkTensor(x, 'x');
  return Affine.apply(x, -1, 0) as Tensor;
}

/** x [..., F] + bias [F] in one pass (the gradient of bias sums over the rows). */
export function biasAdd(x: Tensor, bias: Tensor): Tensor {
  checkTensor(x, 'x');
  checkTensor(bias, 'bias');
  checkSameDevice({ x, bias });
  const F = x.shape[x.ndim - 1];
  if (x.ndim === 0 || bias.ndim !== 1 || !sameShape(bias.shape, [F])) {
    throw new Error(
      `bias: expected shape [F] with F = x's last dimension, got ${shapeString(bias.shape)} for x ${shapeString(x.shape)}`,
    );
  }
  return Binary.apply(x, bias, 'add') as Tensor;
}

export interface GeluOptions {
  /** 'none' (default, as PyTorch): x Phi(x) with the exact erf; 'tanh': the tanh approximation. */
  approximate?: 'none' | 'tanh';
}

function unary(op: UnaryOpName, x: Tensor): Tensor {
  checkTensor(x, 'x');
  return Unary.apply(x, op) as Tensor;
}

/** GELU: x Phi(x) (exact, default) or x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function gelu(x: Tensor, opts?: GeluOptions): Tensor {
  const approximate = optChoice(
    checkOptions(opts, ['approximate']).approximate,
    'opts.approximate',
    ['none', 'tanh'],
    'none',
  );
  return unary(approximate === 'tanh' ? 'gelu_tanh' : 'gelu_erf', x);
}

/** max(x, 0). */
export function relu(x: Tensor): Tensor {
  return unary('relu', x);
}

export function exp(x: Tensor): Tensor {
  return unary('exp', x);
}

/** The natural logarithm. */
export function log(x: Tensor): Tensor {
  return unary('log', x);
}

export function tanh(x: Tensor): Tensor {
  return unary('tanh', x);
}
