// The method forms of the tensor ops (lib/ops/tensor-methods.ts), which the package entry attaches
// to Tensor: each gives exactly what its function gives, and t.backward() runs the engine.
import * as ff from '../lib';
import { device, uniform } from './helpers/compare';

const x = (): ff.Tensor => ff.tensor(uniform(24, 0.5, 2, 7), [2, 3, 4], { device: device() });
const y = (): ff.Tensor => ff.tensor(uniform(4, 0.5, 2, 8), [4], { device: device() });

const CASES: [string, (t: ff.Tensor) => ff.Tensor, (t: ff.Tensor) => ff.Tensor][] = [
  ['add', (t) => t.add(y()), (t) => ff.add(t, y())],
  ['add a number', (t) => t.add(1.5), (t) => ff.add(t, 1.5)],
  ['sub', (t) => t.sub(y()), (t) => ff.sub(t, y())],
  ['mul', (t) => t.mul(y()), (t) => ff.mul(t, y())],
  ['div', (t) => t.div(y()), (t) => ff.div(t, y())],
  ['scale', (t) => t.scale(-3), (t) => ff.scale(t, -3)],
  ['neg', (t) => t.neg(), (t) => ff.neg(t)],
  ['sum', (t) => t.sum(), (t) => ff.sum(t)],
  ['sum keepDims', (t) => t.sum([0, 2], true), (t) => ff.sum(t, [0, 2], true)],
  ['mean', (t) => t.mean(1), (t) => ff.mean(t, 1)],
  ['reshape', (t) => t.reshape([6, 4]), (t) => ff.reshape(t, [6, 4])],
  ['permute', (t) => t.permute([2, 0, 1]), (t) => ff.permute(t, [2, 0, 1])],
  ['transpose', (t) => t.transpose(0, 2), (t) => ff.transpose(t, 0, 2)],
  ['slice', (t) => t.slice(2, 1, 3), (t) => ff.slice(t, 2, 1, 3)],
  ['gelu', (t) => t.gelu({ approximate: 'tanh' }), (t) => ff.gelu(t, { approximate: 'tanh' })],
  ['relu', (t) => t.relu(), (t) => ff.relu(t)],
  ['exp', (t) => t.exp(), (t) => ff.exp(t)],
  ['log', (t) => t.log(), (t) => ff.log(t)],
  ['tanh', (t) => t.tanh(), (t) => ff.tanh(t)],
];

describe(`tensor methods on ${device()}`, () => {
  test.each(CASES)('%s: the method gives what the function gives', (_name, method, fn) => {
    ff.tidy(() => {
      const a = method(x());
      const b = fn(x());
      expect(a.shape).toEqual(b.shape);
      expect(a.toFloat32Array()).toEqual(b.toFloat32Array());
    });
  });

  test("backward() fills the leaves' gradients", () => {
    ff.tidy(() => {
      const a = ff.tensor([1, -2, 3], [3], { device: device(), requiresGrad: true });
      a.mul(a).sum().backward();
      expect(Array.from(a.grad!.toFloat32Array())).toEqual([2, -4, 6]);
      a.dispose();
    });
  });

  test('every method is on Tensor.prototype, none on the instances', () => {
    const t = x();
    for (const name of [
      'backward',
      'add',
      'sub',
      'mul',
      'div',
      'scale',
      'neg',
      'sum',
      'mean',
      'reshape',
      'permute',
      'transpose',
      'slice',
      'gelu',
      'relu',
      'exp',
      'log',
      'tanh',
    ]) {
      expect(typeof (ff.Tensor.prototype as unknown as Record<string, unknown>)[name]).toBe('function');
      expect(Object.prototype.hasOwnProperty.call(t, name)).toBe(false);
    }
    t.dispose();
  });
});
