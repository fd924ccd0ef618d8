// The tensor ops family: elementwise arithmetic with broadcasting, activations, reductions and
// layout, each an autograd Function over one native kernel per backend.
export {
  add,
  sub,
  mul,
  div,
  scale,
  addScalar,
  neg,
  biasAdd,
  gelu,
  relu,
  exp,
  log,
  tanh,
  broadcastShapes,
  Binary,
  Affine,
  Unary,
} from './elementwise';
export type { BinaryOpName, UnaryOpName, GeluOptions } from './elementwise';
export { sum, mean, Sum } from './reduce';
export {
  reshape,
  permute,
  transpose,
  broadcastTo,
  slice,
  concat,
  Reshape,
  Permute,
  BroadcastTo,
  Slice,
  Concat,
} from './layout';
