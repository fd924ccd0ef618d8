// The method forms of the tensor ops, PyTorch style (t.add(u), t.sum(1), t.backward()): each
// calls the function of the same name with the tensor as its first argument. They are attached
// to Tensor's prototype here, not written in tensor.ts, so that Tensor stays a leaf module that
// the ops and the autograd engine import (TensorFlow.js's chained ops). The package entry
// (lib/index.ts) loads this module; code inside lib/ calls the functions.
import { BackwardOptions, runBackward } from '../autograd/engine';
import { Tensor } from '../tensor';
import { add, div, exp, gelu, GeluOptions, log, mul, neg, relu, scale, sub, tanh } from './elementwise';
import { permute, reshape, slice, transpose } from './layout';
import { mean, sum } from './reduce';

declare module '../tensor' {
  interface Tensor {
    /** Computes gradients of this tensor with respect to every leaf that requires grad. */
    backward(grad?: Tensor, opts?: BackwardOptions): void;
    add(other: Tensor | number): Tensor;
    sub(other: Tensor | number): Tensor;
    mul(other: Tensor | number): Tensor;
    div(other: Tensor | number): Tensor;
    scale(alpha: number): Tensor;
    neg(): Tensor;
    sum(axes?: number | readonly number[], keepDims?: boolean): Tensor;
    mean(axes?: number | readonly number[], keepDims?: boolean): Tensor;
    reshape(shape: readonly number[]): Tensor;
    permute(dims: readonly number[]): Tensor;
    transpose(a: number, b: number): Tensor;
    slice(axis: number, start: number, end?: number): Tensor;
    gelu(opts?: GeluOptions): Tensor;
    relu(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    tanh(): Tensor;
  }
}

const t = Tensor.prototype;
t.backward = function (grad, opts) {
  runBackward(this, grad, opts);
};
t.add = function (other) {
  return add(this, other);
};
t.sub = function (other) {
  return sub(this, other);
};
t.mul = function (other) {
  return mul(this, other);
};
t.div = function (other) {
  return div(this, other);
};
t.scale = function (alpha) {
  return scale(this, alpha);
};
t.neg = function () {
  return neg(this);
};
t.sum = function (axes, keepDims = false) {
  return sum(this, axes, keepDims);
};
t.mean = function (axes, keepDims = false) {
  return mean(this, axes, keepDims);
};
t.reshape = function (shape) {
  return reshape(this, shape);
};
t.permute = function (dims) {
  return permute(this, dims);
};
t.transpose = function (a, b) {
  return transpose(this, a, b);
};
t.slice = function (axis, start, end) {
  return slice(this, axis, start, end);
};
t.gelu = function (opts) {
  return gelu(this, opts);
};
t.relu = function () {
  return relu(this);
};
t.exp = function () {
  return exp(this);
};
t.log = function () {
  return log(this);
};
t.tanh = function () {
  return tanh(this);
};
