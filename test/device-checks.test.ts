// What a GPU step does without waiting for the device: argument checks that run on the device
// and report at the next synchronisation (naming the argument, the element and the op), clipping
// by global norm with the norm left on the device, the host-synchronisation counter, and the
// TF32 matmul opt-in (emulated on cuda-emu by rounding the GEMM's inputs to TF32).
import * as ff from '../lib';
import { device, rng, uniform } from './helpers/compare';

const dev = device();
const onDevice = dev !== 'cpu';

describe(`device-side checks on ${dev}`, () => {
  test('a bad id is reported with its op; on a GPU backend at the next read, without a wait at the call', () => {
    ff.tidy(() => {
      const W = ff.tensor(uniform(8, -1, 1, 1), [4, 2]);
      const before = ff.hostSyncs(dev);
      let out: ff.Tensor | undefined;
      const call = () => (out = ff.embedding(ff.tensor([0, 4, 7], [3]), W));
      if (!onDevice) {
        expect(call).toThrow(/^ids: element 1 is 4\.0+; expected an integer in \[0, 4\)$/);
        return;
      }
      call();
      expect(ff.hostSyncs(dev)).toBe(before);
      expect(() => out!.toFloat32Array()).toThrow(
        /^ids: element 1 is 4\.0+; expected an integer in \[0, 4\) \(embedding, checked on the device and reported at the next synchronisation\)$/,
      );
      // reported once: the next read works, and the bad rows are NaN (nothing was read out of range)
      const got = out!.toFloat32Array();
      expect(Array.from(got.slice(0, 2))).toEqual(Array.from(W.toFloat32Array().slice(0, 2)));
      expect(got.slice(2).every(Number.isNaN)).toBe(true);
      // the backward skips them: dW has only the valid id's row
      const Wg = ff.tensor(uniform(8, -1, 1, 1), [4, 2], { requiresGrad: true });
      ff.embedding(ff.tensor([1, -1], [2]), Wg).backward(ff.ones([2, 2]));
      expect(() => Wg.grad!.toFloat32Array()).toThrow(
        /^ids: element 1 is -1\.0+; .* \(embedding, checked on the device/,
      );
      expect(Array.from(Wg.grad!.toFloat32Array())).toEqual([0, 0, 1, 1, 0, 0, 0, 0]);
    });
  });

  test('the first failure since the last synchronisation wins; a non-finite R names its op', () => {
    ff.tidy(() => {
      const q = ff.tensor(uniform(8, -1, 1, 2), [1, 1, 2, 4]);
      const x = ff.zeros([3, 4]);
      const run = () => {
        ff.fourierAttention(q, q, q, ff.tensor([NaN], [1]));
        return ff.crossEntropy(x, ff.tensor([0, 9, 1], [3]));
      };
      if (!onDevice) {
        expect(run).toThrow(/^R: must be finite, got nan$/);
        expect(() => ff.crossEntropy(x, ff.tensor([0, 9, 1], [3]))).toThrow(
          /^target: element 1 is 9\.0+; expected an integer in \[0, 4\) or the ignore index -100$/,
        );
        return;
      }
      const loss = run();
      expect(() => ff.synchronize(dev)).toThrow(
        /^R: must be finite, got nan \(fourierAttention, checked on the device/,
      );
      expect(Number.isNaN(loss.item())).toBe(true); // the later failure was dropped with the report
      expect(() => ff.crossEntropy(x, ff.tensor([0, 9, 1], [3])).item()).toThrow(
        /^target: element 1 is 9\.0+; .* \(crossEntropy, /,
      );
      expect(() => ff.fourierMetric(q, q, ff.tensor([Infinity], [1])).toFloat32Array()).toThrow(
        /^R: must be finite, got inf \(fourierMetric, /,
      );
    });
  });

  test('clipGradNormAsync_ clips as clipGradNorm_ does, and returns the norm as a tensor', () => {
    ff.tidy(() => {
      const make = () => [
        ff.tensor(uniform(6, -2, 2, 3), [2, 3], { requiresGrad: true }),
        ff.tensor(uniform(4, -2, 2, 4), [4], { requiresGrad: true }),
      ];
      const a = make(),
        b = make();
      for (const ps of [a, b]) ff.add(ff.sum(ff.mul(ps[0], ps[0])), ff.sum(ff.mul(ps[1], ps[1]))).backward();
      const before = ff.hostSyncs(dev);
      const norm = ff.optim.clipGradNormAsync_(b, 0.5);
      expect(ff.hostSyncs(dev)).toBe(before);
      const want = ff.optim.clipGradNorm_(a, 0.5);
      expect(norm.shape).toEqual([1]);
      expect(norm.item()).toBeCloseTo(want, 5);
      expect(Array.from(b[0].grad!.toFloat32Array())).toEqual(Array.from(a[0].grad!.toFloat32Array()));
      expect(Array.from(b[1].grad!.toFloat32Array())).toEqual(Array.from(a[1].grad!.toFloat32Array()));
      // below the bound nothing moves; a non-finite norm leaves the gradients as they are
      const g = b[1].grad!.toFloat32Array();
      expect(ff.optim.clipGradNormAsync_(b, 1e9).item()).toBeCloseTo(0.5, 5);
      expect(Array.from(b[1].grad!.toFloat32Array())).toEqual(Array.from(g));
      const p = ff.tensor([1, 2], [2], { requiresGrad: true });
      ff.sum(ff.mul(p, ff.tensor([Infinity, 1], [2]))).backward();
      expect(ff.optim.clipGradNormAsync_([p], 1).item()).toBe(Infinity);
      expect(Array.from(p.grad!.toFloat32Array())).toEqual([Infinity, 1]);
      expect(() => ff.optim.clipGradNormAsync_([p], -1)).toThrow(/maxNorm/);
    });
  });

  test('a training step waits for the device once: where it reads the loss', () => {
    ff.tidy(() => {
      const g = new ff.Generator(5);
      const emb = new ff.nn.Embedding(11, 8, { generator: g });
      const block = new ff.nn.TransformerBlock(8, 2, {
        generator: g,
        attention: 'fourier',
        causal: true,
        norm: 'post',
        ffDim: 16,
        dropout: 0.1,
        radius: 'feature',
      });
      const head = new ff.nn.Linear(8, 11, { generator: g });
      const params = [...emb.parameters(), ...block.parameters(), ...head.parameters()];
      const opt = new ff.optim.AdamW(params, { lr: 1e-3 });
      const r = rng(6);
      const ids = ff.tensor(
        Array.from({ length: 12 }, () => Math.floor(r() * 11)),
        [2, 6],
      );
      const targets = ff.tensor(
        Array.from({ length: 12 }, () => Math.floor(r() * 11)),
        [2, 6],
      );
      const step = () =>
        ff.tidy(() => {
          opt.zeroGrad();
          const loss = ff.crossEntropy(head.forward(block.forward(emb.forward(ids))), targets);
          loss.backward();
          ff.optim.clipGradNormAsync_(params, 0.25);
          opt.step();
          return loss.item();
        });
      step();
      const before = ff.hostSyncs(dev);
      expect(Number.isFinite(step())).toBe(true);
      expect(ff.hostSyncs(dev) - before).toBe(onDevice ? 1 : 0);
      opt.dispose();
    });
  });

  test("setMatmulPrecision: 'high' rounds GEMM inputs to TF32 where the device has it, 'highest' is float", () => {
    ff.tidy(() => {
      const a = ff.tensor(uniform(64 * 32, -1, 1, 7), [64, 32]);
      const b = ff.tensor(uniform(32 * 16, -1, 1, 8), [32, 16]);
      expect(ff.getMatmulPrecision()).toBe('highest');
      const exact = ff.matmul(a, b).toFloat32Array();
      try {
        ff.setMatmulPrecision('high');
        expect(ff.getMatmulPrecision()).toBe('high');
        const tf32 = ff.matmul(a, b).toFloat32Array();
        let worst = 0;
        for (let e = 0; e < exact.length; e++) worst = Math.max(worst, Math.abs(tf32[e] - exact[e]));
        if (dev === 'cpu')
          expect(worst).toBe(0); // OpenBLAS has no TF32: ignored
        else {
          expect(worst).toBeGreaterThan(1e-5);
          expect(worst).toBeLessThan(2e-2);
        }
      } finally {
        ff.setMatmulPrecision('highest');
      }
      expect(Array.from(ff.matmul(a, b).toFloat32Array())).toEqual(Array.from(exact));
      expect(() => ff.setMatmulPrecision('medium' as ff.MatmulPrecision)).toThrow(
        /^precision: expected 'highest' or 'high'/,
      );
    });
  });
});
