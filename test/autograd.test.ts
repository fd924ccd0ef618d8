// The tensor core and the autograd: a user-written Function (torch.autograd.Function style),
// gradient accumulation, tidy()/memory(), moving tensors between devices.
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as ff from '../lib';
import { available, device, gradOf, relErr, uniform } from './helpers/compare';

const { Function } = ff.autograd;
type Context = ff.autograd.Context;

/** A user-written op: y = x^3 elementwise, computed in JS from the values. */
class Cube extends Function {
  static override forward(ctx: Context, x: ff.Tensor): ff.Tensor {
    ctx.saveForBackward(x);
    const v = x.toFloat32Array().map((a) => a * a * a);
    return ff.tensor(v, [...x.shape], { device: x.device });
  }

  static override backward(ctx: Context, grad: ff.Tensor): ff.Tensor {
    const [x] = ctx.savedTensors;
    const xv = x.toFloat32Array();
    const g = grad.toFloat32Array().map((a, i) => 3 * xv[i] * xv[i] * a);
    return ff.tensor(g, [...x.shape], { device: x.device });
  }
}

/** A user op with a non-tensor argument and two outputs: (a * x, x + c). */
class ScaleShift extends Function {
  static override forward(ctx: Context, x: ff.Tensor, a: number, c: number): ff.Tensor[] {
    ctx.a = a;
    const v = x.toFloat32Array();
    return [
      ff.tensor(
        v.map((e) => a * e),
        [...x.shape],
      ),
      ff.tensor(
        v.map((e) => e + c),
        [...x.shape],
      ),
    ];
  }

  static override backward(ctx: Context, g1: ff.Tensor | null, g2: ff.Tensor | null): (ff.Tensor | null)[] {
    const n = (g1 ?? g2)!.size;
    const a = ctx.a as number;
    const v1 = g1 ? g1.toFloat32Array() : new Float32Array(n);
    const v2 = g2 ? g2.toFloat32Array() : new Float32Array(n);
    return [
      ff.tensor(
        v1.map((e, i) => a * e + v2[i]),
        [...(g1 ?? g2)!.shape],
      ),
      null,
      null,
    ];
  }
}

describe(`tensors and autograd on ${device()}`, () => {
  test('tensor round trip, shape, device, item', () => {
    const t = ff.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.device).toBe(device());
    expect(Array.from(t.toFloat32Array())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ff.tensor([7]).item()).toBe(7);
    t.dispose();
    t.dispose();
    expect(t.isDisposed).toBe(true);
  });

  test('async data() reads values', async () => {
    const t = ff.tensor([1, 2], [2]);
    expect(Array.from(await t.data())).toEqual([1, 2]);
    t.dispose();
  });

  test('a user-written Function gets its gradient, composed with fourierMetric', () => {
    ff.tidy(() => {
      const qv = uniform(6, -0.5, 0.5, 1);
      const kv = uniform(6, -0.5, 0.5, 2);
      const q = ff.tensor(qv, [1, 1, 2, 3], { requiresGrad: true });
      const k = ff.tensor(kv, [1, 1, 2, 3]);
      const R = ff.tensor([2], [1], { requiresGrad: true });
      const K = ff.fourierMetric(q, k, R);
      const y = Cube.apply(K) as ff.Tensor;
      expect(y.gradFn?.name).toBe('Cube');
      y.backward(ff.ones([1, 1, 2, 2]));
      // d sum(K^3) = 3 K^2 dK: the same as the metric's backward with upstream 3 K^2.
      const Kv = K.toFloat32Array();
      const q2 = ff.tensor(qv, [1, 1, 2, 3], { requiresGrad: true });
      const R2 = ff.tensor([2], [1], { requiresGrad: true });
      ff.fourierMetric(q2, k, R2).backward(
        ff.tensor(
          Kv.map((a) => 3 * a * a),
          [1, 1, 2, 2],
        ),
      );
      expect(relErr(gradOf(q), gradOf(q2))).toBeLessThan(1e-6);
      expect(relErr(gradOf(R), gradOf(R2))).toBeLessThan(1e-6);
      expect(k.grad).toBeNull();
    });
  });

  test('multiple outputs, non-tensor arguments, and gradient accumulation', () => {
    ff.tidy(() => {
      const x = ff.tensor([1, 2, 3], [3], { requiresGrad: true });
      const [a, b] = ScaleShift.apply(x, 2, 5) as ff.Tensor[];
      a.backward(ff.ones([3]));
      expect(Array.from(gradOf(x))).toEqual([2, 2, 2]);
      b.backward(ff.tensor([1, 1, 1], [3]));
      expect(Array.from(gradOf(x))).toEqual([3, 3, 3]);
    });
  });

  test('a graph used twice needs retainGraph', () => {
    ff.tidy(() => {
      const x = ff.tensor([1, 2], [2], { requiresGrad: true });
      const y = Cube.apply(x) as ff.Tensor;
      y.backward(ff.ones([2]), { retainGraph: true });
      y.backward(ff.ones([2]));
      expect(Array.from(gradOf(x))).toEqual([6, 24]);
      expect(() => y.backward(ff.ones([2]))).toThrow(/retainGraph/);
    });
  });

  test('noGrad records nothing', () => {
    ff.tidy(() => {
      const x = ff.tensor([1], [1], { requiresGrad: true });
      const y = ff.noGrad(() => Cube.apply(x) as ff.Tensor);
      expect(y.gradFn).toBeNull();
      expect(() => y.backward()).toThrow(/does not require grad/);
    });
  });

  test('memory() is unchanged after tidy() around forward and backward', () => {
    const before = ff.memory();
    ff.tidy(() => {
      const q = ff.tensor(uniform(2 * 2 * 8 * 4, -1, 1, 3), [2, 2, 8, 4], { requiresGrad: true });
      const k = ff.tensor(uniform(2 * 2 * 8 * 4, -1, 1, 4), [2, 2, 8, 4], { requiresGrad: true });
      const R = ff.tensor([2, 2], [2, 1], { requiresGrad: true });
      const K = ff.fourierMetric(q, k, R);
      K.backward(ff.ones([2, 2, 8, 8]));
      expect(ff.memory().numTensors).toBeGreaterThan(before.numTensors);
    });
    expect(ff.memory()).toEqual(before);
  });

  test('emptyCache() gives freed blocks back to the system and leaves live tensors intact', () => {
    const dev = device();
    const n = 1 << 16; // 256 KiB: cached on every device (the cpu caches blocks of 64 KiB and more)
    const values = uniform(n, -1, 1, 9);
    const live = ff.tensor(values, [n], { device: dev });
    ff.zeros([n], { device: dev }).dispose();
    expect(ff.cachedMemory(dev)).toBeGreaterThanOrEqual(4 * n);
    expect(ff.emptyCache(dev)).toBeGreaterThanOrEqual(4 * n);
    expect(ff.cachedMemory(dev)).toBe(0);
    expect(ff.emptyCache()).toBeGreaterThanOrEqual(0);
    const same = live.toFloat32Array().every((v, i) => v === values[i]);
    expect(same).toBe(true);
    live.dispose();
    expect(ff.cachedMemory(dev)).toBeGreaterThanOrEqual(4 * n);
    expect(() => ff.emptyCache('tpu' as ff.Device)).toThrow(/device/);
  });

  // A child process, since the allocator reads the variable once: the library as this file was
  // loaded (TypeScript through ts-node under jest, JavaScript in scripts/gpu-check's bundle).
  (device() === 'cpu' ? test.skip : test)('FF_CUDA_NO_CACHING=1: no cache, each release frees at once', () => {
    const dev = device();
    const lib = path.join(__dirname, '..', 'lib');
    const script = `const ff = require(${JSON.stringify(lib)});
      const x = ff.tensor(Array.from({ length: 1 << 14 }, (_, i) => i % 7), [1 << 14], { device: '${dev}' });
      const y = x.mul(x);
      const before = ff.hostSyncs('${dev}');
      x.dispose();
      const syncs = ff.hostSyncs('${dev}') - before;
      const v = y.toFloat32Array();
      console.log(JSON.stringify({ cached: ff.cachedMemory('${dev}'), syncs, ok: v.every((a, i) => a === (i % 7) ** 2) }));`;
    const run = (env: Record<string, string>) => {
      const args = [...(__filename.endsWith('.ts') ? ['-r', 'ts-node/register/transpile-only'] : []), '-e', script];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, ...env } });
      if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop() as string) as { cached: number; syncs: number; ok: boolean };
    };
    expect(run({ FF_CUDA_NO_CACHING: '0' })).toEqual({ cached: 4 << 14, syncs: 0, ok: true });
    expect(run({ FF_CUDA_NO_CACHING: '1' })).toEqual({ cached: 0, syncs: 1, ok: true });
  });

  test('synchronize() returns once queued work is done, and rejects an unknown device', () => {
    const dev = device();
    ff.tidy(() => {
      const y = ff.full([1 << 16], 2.5, { device: dev });
      ff.synchronize(dev);
      ff.synchronize();
      expect(y.toFloat32Array().every((v) => v === 2.5)).toBe(true);
    });
    expect(() => ff.synchronize('tpu' as ff.Device)).toThrow(/device/);
  });

  test('tidy keeps what it returns and what keep() marks', () => {
    const before = ff.memory().numTensors;
    let kept: ff.Tensor | null = null;
    const out = ff.tidy(() => {
      ff.tensor([1], [1]);
      kept = ff.keep(ff.tensor([2], [1]));
      return { a: ff.tensor([3], [1]) };
    });
    expect(out.a.item()).toBe(3);
    expect(kept!.item()).toBe(2);
    expect(ff.memory().numTensors).toBe(before + 2);
    out.a.dispose();
    kept!.dispose();
    expect(ff.memory().numTensors).toBe(before);
  });

  const other: ff.Device = device() === 'cpu' ? 'cuda-emu' : 'cpu';
  (available(other) ? test : test.skip)(`moves tensors to ${other} and back`, () => {
    const t = ff.tensor([1, 2, 3], [3]);
    const u = t.to(other);
    expect(u.device).toBe(other);
    const w = u.to(device());
    expect(Array.from(w.toFloat32Array())).toEqual([1, 2, 3]);
    for (const x of [t, u, w]) x.dispose();
  });
});
