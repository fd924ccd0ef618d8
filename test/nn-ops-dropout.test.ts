// dropout and dropPath on the test device: Philox against its known-answer vectors and against
// an independent BigInt implementation (so every backend draws the same mask), the backward's
// recomputed mask, generator state, and the edge cases p = 0 and p = 1.
import * as ff from '../lib';
import { device, gradOf, relErr, uniform } from './helpers/compare';

const { philox4x32Ref, dropoutMaskRef } = ff.reference;

describe(`dropout on ${device()}`, () => {
  test('the reference Philox4x32-10 gives the Random123 known answers', () => {
    expect(philox4x32Ref([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philox4x32Ref([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([
      0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd,
    ]);
    expect(philox4x32Ref([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([
      0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1,
    ]);
  });

  test('the mask is Philox at (seed, offset), the same on every backend; the backward reuses it', () => {
    const n = 1003;
    const x = ff.tensor(uniform(n, 0.5, 1.5, 1), [n], { requiresGrad: true });
    const g = new ff.Generator(2 ** 40 + 12345);
    g.reserve(7); // a stream that starts at a non-zero offset
    const { seed, offset } = g.getState();
    const y = ff.dropout(x, 0.3, { generator: g });
    expect(g.getState().offset).toBe(offset + Math.ceil(n / 4));
    const mask = dropoutMaskRef(n, 1, 0.3, seed, offset);
    const xv = x.toFloat32Array();
    expect(
      relErr(
        y.toFloat32Array(),
        xv.map((v, i) => v * mask[i]),
      ),
    ).toBeLessThan(1e-6);
    const dy = uniform(n, -1, 1, 2);
    y.backward(ff.tensor(dy, [n]));
    expect(
      relErr(
        gradOf(x),
        dy.map((v, i) => v * mask[i]),
      ),
    ).toBeLessThan(1e-6);
    const kept = mask.filter((m) => m > 0).length / n;
    expect(kept).toBeGreaterThan(0.64);
    expect(kept).toBeLessThan(0.76);
  });

  test('every length, and a stream whose counter carries into its high word mid-tensor, match the reference', () => {
    // Lengths around the cpu kernel's 32-element steps; offsets where the counter's low word
    // wraps inside a step of 8 blocks (2^32 - 3) or between steps (2^32 - 8).
    const g = new ff.Generator(0x5eed);
    for (const start of [0, 2 ** 32 - 3, 2 ** 32 - 8]) {
      for (const n of [1, 3, 4, 31, 32, 33, 64, 95, 130]) {
        g.setState({ seed: g.getState().seed, offset: start });
        const { seed, offset } = g.getState();
        const x = ff.tensor(uniform(n, 0.5, 1.5, n), [n]);
        const y = ff.dropout(x, 0.1, { generator: g }).toFloat32Array();
        const mask = dropoutMaskRef(n, 1, 0.1, seed, offset);
        const xv = x.toFloat32Array();
        expect(Array.from(y, (v) => v === 0)).toEqual(Array.from(mask, (m) => m === 0));
        expect(
          relErr(
            y,
            xv.map((v, i) => v * mask[i]),
          ),
        ).toBeLessThan(1e-6);
      }
    }
  });

  test('the same generator state gives the same mask; the next call a different one', () => {
    const g = new ff.Generator(7);
    const x = ff.ones([64]);
    const state = g.getState();
    const a = ff.dropout(x, 0.5, { generator: g }).toFloat32Array();
    const b = ff.dropout(x, 0.5, { generator: g }).toFloat32Array();
    g.setState(state);
    const c = ff.dropout(x, 0.5, { generator: g }).toFloat32Array();
    expect(Array.from(c)).toEqual(Array.from(a));
    expect(Array.from(b)).not.toEqual(Array.from(a));
  });

  test('dropPath draws one keep/drop per sample', () => {
    const B = 40,
      F = 6;
    const g = new ff.Generator(11);
    const { seed, offset } = g.getState();
    const x = ff.tensor(uniform(B * F, 0.5, 1.5, 3), [B, 2, 3], { requiresGrad: true });
    const y = ff.dropPath(x, 0.25, { generator: g });
    const mask = dropoutMaskRef(B * F, F, 0.25, seed, offset);
    const xv = x.toFloat32Array();
    expect(
      relErr(
        y.toFloat32Array(),
        xv.map((v, i) => v * mask[i]),
      ),
    ).toBeLessThan(1e-6);
    y.backward(ff.ones([B, 2, 3]));
    expect(relErr(gradOf(x), mask)).toBeLessThan(1e-6);
    expect(g.getState().offset).toBe(offset + Math.ceil(B / 4));
  });

  test('p = 0 and evaluation return x itself; p = 1 gives zeros', () => {
    const x = ff.tensor([1, 2, 3], [3]);
    expect(ff.dropout(x, 0)).toBe(x);
    expect(ff.dropout(x, 0.5, { training: false })).toBe(x);
    expect(ff.dropPath(x, 0.5, { training: false })).toBe(x);
    expect(Array.from(ff.dropout(x, 1).toFloat32Array())).toEqual([0, 0, 0]);
  });

  test('bad arguments throw errors naming them', () => {
    const x = ff.ones([3]);
    expect(() => ff.dropout(x, 1.5)).toThrow(/^p: expected a probability/);
    expect(() => ff.dropout(x, 0.5, { training: 'yes' as unknown as boolean })).toThrow(/^opts.training/);
    expect(() => ff.dropout(x, 0.5, { generator: {} as ff.Generator })).toThrow(/^opts.generator/);
  });
});
