// reshape, permute / transpose, broadcastTo, slice and concat on the test device against the
// float64 reference, forward and backward, by central differences, and bad input.
import * as ff from '../lib';
import * as R from '../lib/reference/tensor-ops';
import { device, relErr } from './helpers/compare';
import { directionalError, input, ref, runOp } from './helpers/tensor-ops';

const refOf = (values: Float32Array, shape: number[]) => ff.reference.refArray(values, shape);

describe(`reshape on ${device()}`, () => {
  test('keeps the values, infers -1, and reshapes the gradient back', () => {
    const x = input([2, 3, 4], -1, 1, 1);
    const r = runOp((t) => t.reshape([4, -1]), [x]);
    expect(r.shape).toEqual([4, 6]);
    expect(Array.from(r.out)).toEqual(Array.from(x.values));
    expect(Array.from(r.grads[0])).toEqual(Array.from(r.grad));
    ff.tidy(() => {
      const t = ff.tensor(x.values, x.shape);
      expect(t.reshape([24]).shape).toEqual([24]);
      expect(t.reshape([2, 1, 12, 1]).shape).toEqual([2, 1, 12, 1]);
      expect(() => t.reshape([5, -1])).toThrow(/^shape: \[5, -1\] cannot hold the 24 elements/);
      expect(() => t.reshape([-1, -1])).toThrow(/^shape: at most one dimension may be -1/);
      expect(() => t.reshape([2, 3])).toThrow(/^shape: \[2, 3\] has 6 elements but x \[2, 3, 4\] has 24/);
      expect(() => t.reshape([2.5, 4] as number[])).toThrow(/^shape:/);
    });
  });
});

describe(`permute and transpose on ${device()}`, () => {
  const perms: [number[], number[]][] = [
    [
      [2, 3, 4, 5],
      [0, 2, 1, 3],
    ], // the innermost dim stays: runs of copies
    [
      [2, 3, 4, 5],
      [3, 2, 1, 0],
    ], // full reversal: a transpose
    [
      [2, 3, 4, 5],
      [0, 1, 3, 2],
    ], // the last two swapped
    [
      [2, 3, 4, 5],
      [1, 0, 2, 3],
    ],
    [
      [2, 3, 4, 5],
      [2, 0, 3, 1],
    ],
    [
      [70, 45],
      [1, 0],
    ], // partial 32 x 32 tiles
    [
      [3, 33, 65],
      [2, 1, 0],
    ],
    [
      [2, 1, 3, 1, 4, 2],
      [5, 4, 3, 2, 1, 0],
    ],
    [
      [2, 3, 2, 3, 2, 3],
      [1, 0, 3, 2, 5, 4],
    ], // 6 dims that do not merge
    [[5], [0]],
  ];
  for (const [shape, dims] of perms) {
    test(`permute ${JSON.stringify(shape)} by ${JSON.stringify(dims)}`, () => {
      const x = input(shape, -1, 1, 2);
      const r = runOp((t) => t.permute(dims), [x]);
      const out = R.permuteRef(ref(x), dims);
      expect(r.shape).toEqual(out.shape);
      expect(Array.from(r.out)).toEqual(Array.from(out.data, Math.fround));
      const inverse = dims.map((_, i) => dims.indexOf(i));
      expect(Array.from(r.grads[0])).toEqual(
        Array.from(R.permuteRef(refOf(r.grad, r.shape), inverse).data, Math.fround),
      );
    });
  }

  test('a large transpose (threads, tiles) and transpose(a, b) with negative dims', () => {
    const x = input([300, 257], -1, 1, 3);
    const r = runOp((t) => t.transpose(-1, 0), [x]);
    expect(r.shape).toEqual([257, 300]);
    expect(Array.from(r.out)).toEqual(Array.from(R.permuteRef(ref(x), [1, 0]).data, Math.fround));
    expect(Array.from(r.grads[0])).toEqual(Array.from(R.permuteRef(refOf(r.grad, r.shape), [1, 0]).data, Math.fround));
    const y = input([2, 3, 4], -1, 1, 4);
    expect(Array.from(runOp((t) => ff.transpose(t, 1, -1), [y]).out)).toEqual(
      Array.from(R.permuteRef(ref(y), [0, 2, 1]).data, Math.fround),
    );
  });

  test('bad dims name the argument', () => {
    ff.tidy(() => {
      const t = ff.zeros([2, 3, 4]);
      expect(() => t.permute([0, 1])).toThrow(/^dims: expected a permutation of the 3 dimensions/);
      expect(() => t.permute([0, 1, 1])).toThrow(/^dims: \[0,1,1\] repeats a dimension/);
      expect(() => t.permute([0, 1, 3])).toThrow(/^dims: expected an integer in \[-3, 2\]/);
      expect(() => t.transpose(0, 3)).toThrow(/^b: expected an integer in \[-3, 2\]/);
      expect(() => t.backend.permute(t.storage(), [2, 3, 4], [0, 0, 1])).toThrow(
        /^dims: expected a permutation of 0..2/,
      );
      expect(() => ff.zeros([2, 2, 2, 2, 2, 2, 2]).permute([6, 5, 4, 3, 2, 1, 0])).toThrow(/^dims: needs 7 dimensions/);
    });
  });
});

describe(`broadcastTo on ${device()}`, () => {
  for (const [from, to] of [
    [[3], [2, 3]],
    [
      [4, 1],
      [4, 5],
    ],
    [
      [1, 3, 1],
      [2, 3, 4],
    ],
    [[], [2, 2]],
    [
      [2, 1, 3],
      [2, 1, 3],
    ],
  ] as number[][][]) {
    test(`${JSON.stringify(from)} -> ${JSON.stringify(to)}, and the gradient sums back`, () => {
      const x = input(from, -1, 1, 5);
      const r = runOp((t) => ff.broadcastTo(t, to), [x]);
      expect(Array.from(r.out)).toEqual(Array.from(R.broadcastToRef(ref(x), to).data, Math.fround));
      const axes = to
        .map((_, i) => i)
        .filter((i) => i < to.length - from.length || from[i - (to.length - from.length)] === 1);
      const g = R.sumRef(refOf(r.grad, to), axes, false);
      expect(relErr(r.grads[0], g.data)).toBeLessThan(1e-6);
    });
  }

  test('a shape that x does not broadcast to', () => {
    ff.tidy(() => {
      expect(() => ff.broadcastTo(ff.zeros([2, 3]), [3, 3])).toThrow(
        /^shape: x \[2, 3\] does not broadcast to \[3, 3\]/,
      );
      expect(() => ff.broadcastTo(ff.zeros([2, 3]), [3])).toThrow(/^shape:/);
      const z = ff.zeros([2]);
      expect(() => z.backend.broadcastTo(z.storage(), [2], [3])).toThrow(
        /^outShape: the input's shape does not broadcast to it/,
      );
    });
  });
});

describe(`slice and concat on ${device()}`, () => {
  const slices: [number[], number, number, number | undefined][] = [
    [[5, 4], 0, 1, 4],
    [[5, 4], 1, 2, undefined],
    [[2, 6, 3], 1, -4, -1],
    [[2, 6, 3], -1, 0, 1],
    [[2, 6, 3], 2, 3, 3], // empty
    [[300, 250], 1, 7, 200], // threads
  ];
  for (const [shape, axis, start, end] of slices) {
    test(`slice ${JSON.stringify(shape)} on axis ${axis} from ${start} to ${end}`, () => {
      const x = input(shape, -1, 1, 6);
      const a = axis < 0 ? axis + shape.length : axis;
      const s = start < 0 ? start + shape[a] : start;
      const e = end === undefined ? shape[a] : end < 0 ? end + shape[a] : end;
      const r = runOp((t) => t.slice(axis, start, end), [x]);
      const out = R.sliceRef(ref(x), a, s, e);
      expect(r.shape).toEqual(out.shape);
      expect(Array.from(r.out)).toEqual(Array.from(out.data, Math.fround));
      // the gradient: zeros with the upstream gradient at [s, e)
      const back = R.sliceRef(refOf(r.grads[0], shape), a, s, e);
      expect(Array.from(back.data, Math.fround)).toEqual(Array.from(r.grad));
      const total = r.grads[0].reduce((n, v) => n + Math.abs(v), 0);
      expect(total).toBeCloseTo(
        r.grad.reduce((n, v) => n + Math.abs(v), 0),
        3,
      );
    });
  }

  for (const axis of [0, 1, -1]) {
    test(`concat of three tensors along axis ${axis}`, () => {
      const shapes = [
        [2, 3, 4],
        [2, 3, 4],
        [2, 3, 4],
      ].map((s, i) => s.map((d, k) => (k === (axis + 3) % 3 ? d + i : d)));
      const xs = shapes.map((s, i) => input(s, -1, 1, 10 + i));
      const a = (axis + 3) % 3;
      const r = runOp((...ts) => ff.concat(ts, axis), xs);
      const out = R.concatRef(xs.map(ref), a);
      expect(r.shape).toEqual(out.shape);
      expect(Array.from(r.out)).toEqual(Array.from(out.data, Math.fround));
      let offset = 0;
      xs.forEach((x, i) => {
        const n = x.shape[a];
        expect(Array.from(r.grads[i])).toEqual(
          Array.from(R.sliceRef(refOf(r.grad, r.shape), a, offset, offset + n).data, Math.fround),
        );
        offset += n;
      });
    });
  }

  test('concat: an input without grad gets none; a large concat', () => {
    ff.tidy(() => {
      const a = ff.tensor(input([400, 100], -1, 1, 20).values, [400, 100], { requiresGrad: true });
      const b = ff.tensor(input([400, 3], -1, 1, 21).values, [400, 3]);
      const c = ff.concat([a, b], 1);
      expect(Array.from(c.toFloat32Array())).toEqual(
        Array.from(
          R.concatRef(
            [
              ref({ values: a.toFloat32Array(), shape: [400, 100] }),
              ref({ values: b.toFloat32Array(), shape: [400, 3] }),
            ],
            1,
          ).data,
          Math.fround,
        ),
      );
      c.sum().backward();
      expect(a.grad!.toFloat32Array().every((v) => v === 1)).toBe(true);
      expect(b.grad).toBeNull();
    });
  });

  test('gradients agree with central differences of the forward', () => {
    const x = input([3, 5], -1, 1, 30);
    const y = input([3, 2], -1, 1, 31);
    const fn = (s: ff.Tensor, t: ff.Tensor) =>
      ff
        .concat([s.slice(1, 1, 4).mul(s.slice(1, 0, 3)), t], 1)
        .permute([1, 0])
        .reshape([15]);
    expect(directionalError(fn, [x, y])).toBeLessThan(2e-3);
  });

  test('bad input names the argument', () => {
    ff.tidy(() => {
      const t = ff.zeros([2, 3]);
      expect(() => t.slice(2, 0, 1)).toThrow(/^axis: expected an integer in \[-2, 1\]/);
      expect(() => t.slice(1, 4)).toThrow(/^start: expected an integer in \[-3, 3\]/);
      expect(() => t.slice(1, 2, 1)).toThrow(/^end: 1 comes before start 2/);
      expect(() => t.slice(1, 0, 0.5)).toThrow(/^end:/);
      expect(() => ff.concat([])).toThrow(/^xs: expected a non-empty array of tensors/);
      expect(() => ff.concat([t, ff.zeros([3, 3])], 1)).toThrow(
        /^xs\[1\]: shape \[3, 3\] does not match xs\[0\] \[2, 3\] outside axis 1/,
      );
      expect(() => ff.concat([t, ff.zeros([2])], 0)).toThrow(/^xs\[1\]:/);
      expect(() => ff.concat([t, 5 as unknown as ff.Tensor])).toThrow(/^xs\[1\]: expected a Tensor/);
      expect(() => ff.concat([ff.zeros([])])).toThrow(/^xs\[0\]: a 0-dimensional tensor cannot be concatenated/);
      const b = t.backend;
      expect(() => b.slice(t.storage(), [2, 3], 1, 2, 4)).toThrow(/^end: expected an integer in \[2, 3\]/);
      expect(() => b.sliceBackward(t.storage(), [2, 5], 1, 0, 2)).toThrow(/^grad: expected 4 elements, got 6/);
      expect(() => b.concat([t.storage()], [[3, 3]], 0)).toThrow(/^xs\[0\]: expected 9 elements, got 6/);
      expect(() =>
        b.concat(
          [t.storage(), t.storage()],
          [
            [2, 3],
            [3, 2],
          ],
          0,
        ),
      ).toThrow(/^xs\[1\]: dim 1 is 2, xs\[0\]'s is 3/);
    });
  });
});

describe(`tensor methods on ${device()}`, () => {
  test('a chain of methods matches the functional ops and leaves no tensors behind', () => {
    const before = ff.memory().numTensors;
    const x = ff.tensor(input([2, 3, 4], -1, 1, 40).values, [2, 3, 4], { requiresGrad: true });
    const viaMethods = ff.tidy(() => {
      const y = x.transpose(1, 2).reshape([8, 3]).slice(0, 2, 6).gelu().relu().exp().log().tanh().mean([1], true);
      const z = y.mul(y).add(1).sub(y).div(2).scale(3).neg().sum();
      z.backward();
      return [z.item(), x.grad!.toFloat32Array()] as const;
    });
    x.grad!.dispose();
    x.grad = null;
    const viaFunctions = ff.tidy(() => {
      let y = ff.mean(
        ff.tanh(ff.log(ff.exp(ff.relu(ff.gelu(ff.slice(ff.reshape(ff.transpose(x, 1, 2), [8, 3]), 0, 2, 6)))))),
        [1],
        true,
      );
      y = ff.neg(ff.scale(ff.div(ff.sub(ff.add(ff.mul(y, y), 1), y), 2), 3));
      const z = ff.sum(y);
      z.backward();
      return [z.item(), x.grad!.toFloat32Array()] as const;
    });
    expect(viaMethods[0]).toBe(viaFunctions[0]);
    expect(Array.from(viaMethods[1])).toEqual(Array.from(viaFunctions[1]));
    x.dispose();
    expect(ff.memory().numTensors).toBe(before);
  });
});
