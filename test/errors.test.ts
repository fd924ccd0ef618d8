// Bad input throws a JS Error that names the argument; the process stays up.
import * as ff from '../lib';
import { available, device } from './helpers/compare';

const q = () => ff.tensor(new Float32Array(2 * 3 * 4 * 5), [2, 3, 4, 5]);
const k = () => ff.tensor(new Float32Array(2 * 3 * 6 * 5), [2, 3, 6, 5]);
const r = (v: number[] = [2], shape: number[] = [1]) => ff.tensor(v, shape);

describe(`bad input on ${device()}`, () => {
  afterEach(() => expect(() => ff.tensor([1], [1]).dispose()).not.toThrow());

  test('tensor(): data and shape', () => {
    expect(() => ff.tensor('abc' as unknown as number[], [3])).toThrow(/^data: expected a Float32Array/);
    expect(() => ff.tensor([1, 2, 3], [2, 2])).toThrow(/^data: has 3 values but shape \[2, 2\] needs 4/);
    expect(() => ff.tensor([1], [-1] as number[])).toThrow(/^shape: expected non-negative integers/);
    expect(() => ff.tensor([1], [1], { device: 'tpu' as ff.Device })).toThrow(/^opts.device: unknown device "tpu"/);
  });

  test('fourierMetric: mismatched shapes', () => {
    ff.tidy(() => {
      expect(() => ff.fourierMetric(ff.tensor([1, 2], [2]), k(), r())).toThrow(/^q: expected 4 dimensions/);
      expect(() => ff.fourierMetric(q(), ff.tensor(new Float32Array(2 * 3 * 6 * 4), [2, 3, 6, 4]), r())).toThrow(
        /^k: shape \[2, 3, 6, 4\] does not match q/,
      );
      expect(() => ff.fourierMetric(q(), ff.tensor(new Float32Array(2 * 2 * 6 * 5), [2, 2, 6, 5]), r())).toThrow(
        /^k: /,
      );
    });
  });

  test('fourierMetric: an R that does not broadcast, NaN R', () => {
    ff.tidy(() => {
      expect(() => ff.fourierMetric(q(), k(), r([1, 2], [2]))).toThrow(
        /^R: shape \[2\] does not broadcast to \[H, D\] = \[3, 5\]/,
      );
      expect(() => ff.fourierMetric(q(), k(), ff.tensor(new Float32Array(10), [2, 5]))).toThrow(/^R: shape \[2, 5\]/);
      expect(() => ff.fourierMetric(q(), k(), ff.tensor(new Float32Array(8), [2, 2, 2]))).toThrow(/^R: /);
      expect(() => ff.fourierMetric(q(), k(), r([NaN])).toFloat32Array()).toThrow(/^R: must be finite, got nan/);
      expect(() => ff.fourierMetric(q(), k(), r([Infinity])).toFloat32Array()).toThrow(/^R: must be finite/);
    });
  });

  test('fourierMetric: power 0, negative or non-integer', () => {
    ff.tidy(() => {
      for (const power of [0, -2, 2.5, NaN, '4']) {
        expect(() => ff.fourierMetric(q(), k(), r(), { power: power as number })).toThrow(
          /^power: expected a positive integer/,
        );
      }
    });
  });

  test('disposed tensors', () => {
    ff.tidy(() => {
      const a = q();
      a.dispose();
      expect(() => ff.fourierMetric(a, k(), r())).toThrow(/^q: the tensor \[2, 3, 4, 5\] has been disposed/);
      expect(() => a.toFloat32Array()).toThrow(/disposed/);
    });
  });

  test('a saved tensor disposed before backward', () => {
    ff.tidy(() => {
      const a = ff.tensor(new Float32Array(2 * 3 * 4 * 5), [2, 3, 4, 5], { requiresGrad: true });
      const K = ff.fourierMetric(a, k(), r());
      a.dispose();
      expect(() => K.backward(ff.ones([2, 3, 4, 6]))).toThrow(/saved tensor 0 \[2, 3, 4, 5\] was disposed/);
    });
  });

  test('a gradient of the wrong shape, or none for a non-scalar', () => {
    ff.tidy(() => {
      const a = ff.tensor(new Float32Array(2 * 3 * 4 * 5), [2, 3, 4, 5], { requiresGrad: true });
      const K = ff.fourierMetric(a, k(), r());
      expect(() => K.backward(ff.ones([2, 3, 4, 5]))).toThrow(/^grad: expected shape \[2, 3, 4, 6\]/);
      expect(() => K.backward()).toThrow(
        /^grad: backward\(\) of a tensor of shape \[2, 3, 4, 6\] needs an explicit grad/,
      );
    });
  });

  test('a user Function whose backward returns the wrong shape', () => {
    class Bad extends ff.autograd.Function {
      static override forward(_ctx: ff.autograd.Context, x: ff.Tensor): ff.Tensor {
        return x.clone();
      }
      static override backward(): ff.Tensor {
        return ff.ones([7]);
      }
    }
    ff.tidy(() => {
      const x = ff.tensor([1, 2], [2], { requiresGrad: true });
      expect(() => (Bad.apply(x) as ff.Tensor).backward(ff.ones([2]))).toThrow(
        /^Bad.backward: gradient 0 has shape \[7\], expected \[2\]/,
      );
    });
  });

  test('not a tensor', () => {
    expect(() => ff.fourierMetric(null as unknown as ff.Tensor, k(), r())).toThrow(/^q: expected a Tensor, got null/);
    expect(() => ff.tidy(5 as unknown as () => void)).toThrow(/^tidy: fn must be a function/);
  });

  test('an unknown device', () => {
    expect(() => ff.setDefaultDevice('gpu' as ff.Device)).toThrow(/^device: unknown device "gpu"/);
    expect(() => ff.zeros([2], { device: 'metal' as ff.Device })).toThrow(/unknown device "metal"/);
  });

  const other: ff.Device = device() === 'cpu' ? 'cuda-emu' : 'cpu';
  (available(other) ? test : test.skip)(`mixed devices (${device()} and ${other})`, () => {
    ff.tidy(() => {
      const kk = ff.tensor(new Float32Array(2 * 3 * 6 * 5), [2, 3, 6, 5], { device: other });
      expect(() => ff.fourierMetric(q(), kk, r())).toThrow(
        new RegExp(`^k: is on device '${other}' but q is on '${device()}'`),
      );
    });
  });

  test('cuda where no GPU is usable says why', () => {
    const cuda = ff.backends().find((b) => b.device === 'cuda')!;
    if (cuda.available) return; // a real GPU: nothing to check here
    expect(cuda.detail).toMatch(/cuda/i);
    expect(() => ff.zeros([2], { device: 'cuda' })).toThrow(/^device 'cuda'/);
  });

  test('the native layer checks arguments too (called directly)', () => {
    const b = ff.tensor([1], [1]).backend;
    expect(() => b.fourierMetricForward(null as never, null as never, null as never, [1, 1, 1, 1, 1, 1, 1], 4)).toThrow(
      /^q: expected a tensor storage/,
    );
    const s = b.alloc(4);
    expect(() => b.fourierMetricForward(s, s, s, [1, 1, 1, 1, 5, 1, 1], 4)).toThrow(/^q: expected 5 elements, got 4/);
    expect(() => b.fourierMetricForward(s, s, s, [1, 1, 1, 1, 1.5, 1, 1] as number[], 4)).toThrow(
      /^dims.D: expected a positive integer/,
    );
    b.free(s);
    expect(() => b.toArray(s)).toThrow(/^tensor: the tensor has been disposed/);
  });
});
