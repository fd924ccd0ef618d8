// Invalid calls of the public API: a valid call with one argument (or one option) made wrong,
// which must throw an Error whose message starts with that argument's name, leave no tensor
// behind and never crash. Wrong kinds: a non-tensor (null, a number, a string, an array, a
// Float32Array, a plain object), a disposed tensor, a tensor on the other device, a wrong rank
// or size, NaN / Infinity where a finite value is needed, a non-object opts, an unknown option,
// an option of the wrong type, a huge size. A few cases keep the call valid and expect success,
// so a wrong table fails loudly instead of passing for the wrong reason.
import fc from 'fast-check';
import * as ff from '../../../lib';
import { expectArgError } from '../check';
import { Env, property } from '../property';

type Rng = () => number;
const pickOf = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

/** What a tensor argument is allowed to be; the shape mutations that must fail, and the names they may cite. */
interface TensorArg {
  kind: 'tensor';
  name: string;
  value: ff.Tensor;
  /** Shapes that must be rejected (wrong rank or size), and the error names they may give. */
  badShapes?: number[][];
  shapeNames?: string[];
  /** R: NaN / Infinity values must be rejected. */
  finite?: boolean;
  /** A number is a valid value here (binary ops take a scalar b). */
  numberOk?: boolean;
  /** null and undefined are valid here (an optional weight or bias). */
  optional?: boolean;
  /** The names a device mismatch may cite, where other tensors than the arguments are involved (a module's weights). */
  deviceNames?: string[];
}

type OptionKind =
  'boolean' | 'finite' | 'nonneg' | 'power' | 'prob' | 'choice' | 'device' | 'generator' | 'posint' | 'int';
interface OptsArg {
  kind: 'opts';
  name: string;
  value: Record<string, unknown> | undefined;
  /** Each option: its kind and the name its error starts with. */
  options: Record<string, [OptionKind, string]>;
  /** Whether the whole opts may be omitted (undefined); some calls need it. */
  required?: boolean;
}

interface PlainArg {
  kind:
    | 'number'
    | 'anyNumber'
    | 'boolean'
    | 'posint'
    | 'int'
    | 'shape'
    | 'reshape'
    | 'data'
    | 'axis'
    | 'end'
    | 'path'
    | 'device'
    | 'function'
    | 'tensors'
    | 'prob'
    | 'choice';
  name: string;
  value: unknown;
  /** Names the error may start with (the argument's by default). */
  names?: string[];
}

type Arg = TensorArg | OptsArg | PlainArg;

interface Target {
  name: string;
  build(env: Env, r: Rng): { args: Arg[]; call(args: unknown[]): unknown; cleanup?(): void };
}

const NON_TENSORS: unknown[] = [null, undefined, 5, 'q', [], [1, 2], {}, new Float32Array(4), true];

/** Bad values of each option kind. */
function badOption(kind: OptionKind, r: Rng): unknown {
  switch (kind) {
    case 'boolean':
      return pickOf(r, ['yes', 1, 0, null, 'false', {}]);
    case 'finite':
      return pickOf(r, [NaN, Infinity, -Infinity, '1', null, {}]);
    case 'nonneg':
      return pickOf(r, [NaN, Infinity, -1, -1e-30, '1', null]);
    case 'power':
      return pickOf(r, [0, -2, 2.5, NaN, Infinity, 65, '4', null]);
    case 'prob':
      return pickOf(r, [-0.1, 1.5, NaN, '0.5', null]);
    case 'choice':
      return pickOf(r, ['bogus', 3, null, '', {}]);
    case 'device':
      return pickOf(r, ['tpu', 'CPU', 5, null, '']);
    case 'generator':
      return pickOf(r, [5, 'seed', {}, null]);
    case 'posint':
      return pickOf(r, [0, -3, 2.5, NaN, '4', null]);
    case 'int':
      return pickOf(r, [2.5, NaN, Infinity, '4', null, 2 ** 30]);
  }
}

/** Bad values of each plain argument kind. */
function badPlain(kind: PlainArg['kind'], r: Rng, env: Env): unknown {
  switch (kind) {
    case 'number':
      return pickOf(r, [NaN, Infinity, '2', null, undefined, {}]);
    case 'anyNumber':
      return pickOf(r, ['2', null, undefined, {}, [1]]);
    case 'boolean':
      return pickOf(r, ['yes', 1, 0, null]);
    case 'posint':
      return pickOf(r, [0, -1, 1.5, NaN, Infinity, '3', null]);
    case 'int':
      return pickOf(r, [1.5, NaN, Infinity, '3', null]);
    case 'end':
      return pickOf(r, [99, -99, 1.5, NaN, '0']);
    case 'prob':
      return pickOf(r, [-0.5, 1.5, NaN, '0.1', null]);
    case 'shape':
      return pickOf(r, [[-1], [1.5], [NaN], [2, '3'], 'x', null, [2 ** 20, 2 ** 20], [1e300], { length: 2 }]);
    case 'reshape':
      return pickOf(r, [[-2], [1.5], [NaN], [-1, -1], [7], [4, -1], 'x', null, [2 ** 20, 2 ** 20]]);
    case 'data':
      return pickOf(r, [['x'], [1, null], [[1, 2]], new Float64Array(2), 'abc', null, 7, [1, undefined]]);
    case 'axis':
      return pickOf(r, [99, -99, 1.5, NaN, '0', null]);
    case 'path':
      return pickOf(r, [5, null, '', {}, env.tmp, `${env.tmp}/missing/x.safetensors`]);
    case 'device':
      return pickOf(r, ['tpu', 'gpu', 5, null, '', 'CPU']);
    case 'function':
      return pickOf(r, [5, null, 'f', {}]);
    case 'tensors':
      return pickOf(r, [null, 5, 'x', { a: 5 }, { a: null }]);
    case 'choice':
      return pickOf(r, ['bogus', 3, null, '', {}]);
  }
}

function t(shape: number[], env: Env, requiresGrad = false, value = 0.5): ff.Tensor {
  return ff.full(shape, value, { device: env.device, requiresGrad });
}

const attentionOpts = (causal = false): OptsArg => ({
  kind: 'opts',
  name: 'opts',
  value: causal ? { causal: true } : {},
  options: {
    power: ['power', 'power'],
    causal: ['boolean', 'causal'],
    eps: ['nonneg', 'eps'],
    stable: ['boolean', 'stable'],
  },
});

/** The API under test, one valid call each, with its arguments described. */
const TARGETS: Target[] = [
  {
    name: 'tensor',
    build: (env) => ({
      args: [
        { kind: 'data', name: 'data', value: [1, 2, 3, 4], names: ['data', 'data[0]', 'data[1]', 'shape'] },
        { kind: 'shape', name: 'shape', value: [2, 2], names: ['shape', 'data'] },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device },
          options: { device: ['device', 'opts.device'], requiresGrad: ['boolean', 'opts.requiresGrad'] },
        },
      ],
      call: (a) => ff.tensor(a[0] as number[], a[1] as number[], a[2] as ff.TensorOptions),
    }),
  },
  ...(['zeros', 'ones'] as const).map((fn): Target => ({
    name: fn,
    build: (env) => ({
      args: [
        { kind: 'shape', name: 'shape', value: [3, 2] },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device },
          options: { device: ['device', 'opts.device'], requiresGrad: ['boolean', 'opts.requiresGrad'] },
        },
      ],
      call: (a) => ff[fn](a[0] as number[], a[1] as ff.TensorOptions),
    }),
  })),
  {
    name: 'full',
    build: (env) => ({
      args: [
        { kind: 'shape', name: 'shape', value: [2] },
        { kind: 'anyNumber', name: 'value', value: 3 },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device },
          options: { device: ['device', 'opts.device'], requiresGrad: ['boolean', 'opts.requiresGrad'] },
        },
      ],
      call: (a) => ff.full(a[0] as number[], a[1] as number, a[2] as ff.TensorOptions),
    }),
  },
  ...(['add', 'sub', 'mul', 'div'] as const).map((op): Target => ({
    name: op,
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'a', value: t([2, 3], env) },
        {
          kind: 'tensor',
          name: 'b',
          value: t([3], env),
          badShapes: [[2], [4, 3], [3, 2, 2]],
          shapeNames: ['a, b'],
          numberOk: true,
        },
      ],
      call: (a) => ff[op](a[0] as ff.Tensor, a[1] as ff.Tensor),
    }),
  })),
  ...(['scale', 'addScalar'] as const).map((op): Target => ({
    name: op,
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'x', value: t([3], env) },
        { kind: 'number', name: op === 'scale' ? 'alpha' : 'c', value: 2 },
      ],
      call: (a) => ff[op](a[0] as ff.Tensor, a[1] as number),
    }),
  })),
  ...(['neg', 'relu', 'exp', 'log', 'tanh'] as const).map((op): Target => ({
    name: op,
    build: (env) => ({
      args: [{ kind: 'tensor', name: 'x', value: t([2, 2], env) }],
      call: (a) => ff[op](a[0] as ff.Tensor),
    }),
  })),
  {
    name: 'gelu',
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'x', value: t([2], env) },
        { kind: 'opts', name: 'opts', value: {}, options: { approximate: ['choice', 'opts.approximate'] } },
      ],
      call: (a) => ff.gelu(a[0] as ff.Tensor, a[1] as ff.GeluOptions),
    }),
  },
  {
    name: 'biasAdd',
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'x', value: t([2, 3], env) },
        { kind: 'tensor', name: 'bias', value: t([3], env), badShapes: [[2], [1, 3], []] },
      ],
      call: (a) => ff.biasAdd(a[0] as ff.Tensor, a[1] as ff.Tensor),
    }),
  },
  ...(['sum', 'mean'] as const).map((op): Target => ({
    name: op,
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'x', value: t([2, 3], env) },
        { kind: 'axis', name: 'axes', value: [1] },
        { kind: 'boolean', name: 'keepDims', value: false },
      ],
      call: (a) => ff[op](a[0] as ff.Tensor, a[1] as number[], a[2] as boolean),
    }),
  })),
  {
    name: 'reshape',
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'x', value: t([2, 3], env) },
        { kind: 'reshape', name: 'shape', value: [3, 2] },
      ],
      call: (a) => ff.reshape(a[0] as ff.Tensor, a[1] as number[]),
    }),
  },
  {
    name: 'permute',
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'x', value: t([2, 3], env), badShapes: [[2, 3, 1], [6]], shapeNames: ['dims'] },
        { kind: 'axis', name: 'dims', value: [1, 0] },
      ],
      call: (a) => ff.permute(a[0] as ff.Tensor, a[1] as number[]),
    }),
  },
  {
    name: 'slice',
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'x', value: t([4, 3], env) },
        { kind: 'axis', name: 'axis', value: 0 },
        { kind: 'axis', name: 'start', value: 1 },
        { kind: 'end', name: 'end', value: 3 },
      ],
      call: (a) => ff.slice(a[0] as ff.Tensor, a[1] as number, a[2] as number, a[3] as number),
    }),
  },
  {
    name: 'broadcastTo',
    build: (env) => ({
      args: [
        {
          kind: 'tensor',
          name: 'x',
          value: t([1, 3], env),
          badShapes: [
            [2, 3, 4],
            [3, 1],
          ],
          shapeNames: ['shape'],
        },
        { kind: 'shape', name: 'shape', value: [2, 3] },
      ],
      call: (a) => ff.broadcastTo(a[0] as ff.Tensor, a[1] as number[]),
    }),
  },
  {
    name: 'matmul',
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'a', value: t([2, 3], env), badShapes: [[3], [2, 4], []], shapeNames: ['a, b'] },
        { kind: 'tensor', name: 'b', value: t([3, 4], env), badShapes: [[4], [2, 4], [3]], shapeNames: ['a, b'] },
        {
          kind: 'opts',
          name: 'opts',
          value: {},
          options: { transA: ['boolean', 'opts.transA'], transB: ['boolean', 'opts.transB'] },
        },
      ],
      call: (a) => ff.matmul(a[0] as ff.Tensor, a[1] as ff.Tensor, a[2] as ff.MatmulOptions),
    }),
  },
  {
    name: 'linear',
    build: (env) => ({
      args: [
        {
          kind: 'tensor',
          name: 'x',
          value: t([2, 3], env),
          badShapes: [
            [2, 4],
            [0, 3],
          ],
          shapeNames: ['x, weight'],
        },
        {
          kind: 'tensor',
          name: 'weight',
          value: t([4, 3], env),
          badShapes: [[3], [4, 2], [1, 4, 3]],
          shapeNames: ['x'],
        },
        { kind: 'tensor', name: 'bias', value: t([4], env), badShapes: [[3], [1, 4]], optional: true },
      ],
      call: (a) => ff.linear(a[0] as ff.Tensor, a[1] as ff.Tensor, a[2] as ff.Tensor),
    }),
  },
  {
    name: 'layerNorm',
    build: (env) => ({
      args: [
        {
          kind: 'tensor',
          name: 'x',
          value: t([2, 3], env),
          badShapes: [
            [2, 4],
            [0, 3],
          ],
          shapeNames: ['weight', 'bias'],
        },
        { kind: 'tensor', name: 'weight', value: t([3], env), badShapes: [[2], [1, 3]], optional: true },
        { kind: 'tensor', name: 'bias', value: t([3], env), badShapes: [[4]], optional: true },
        { kind: 'opts', name: 'opts', value: {}, options: { eps: ['nonneg', 'opts.eps'] } },
      ],
      call: (a) => ff.layerNorm(a[0] as ff.Tensor, a[1] as ff.Tensor, a[2] as ff.Tensor, a[3] as ff.LayerNormOptions),
    }),
  },
  ...(['softmax', 'logSoftmax'] as const).map((fn): Target => ({
    name: fn,
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'x', value: t([2, 3], env), badShapes: [[0], [2, 0]] },
        { kind: 'axis', name: 'axis', value: -1 },
      ],
      call: (a) => ff[fn](a[0] as ff.Tensor, a[1] as number),
    }),
  })),
  {
    name: 'crossEntropy',
    build: (env) => ({
      args: [
        {
          kind: 'tensor',
          name: 'input',
          value: t([2, 3], env),
          badShapes: [
            [3, 3],
            [2, 3, 1],
          ],
          shapeNames: ['target'],
        },
        {
          kind: 'tensor',
          name: 'target',
          value: ff.tensor([0, 2], [2], { device: env.device }),
          badShapes: [[3], [2, 2], [1, 2]],
        },
        {
          kind: 'opts',
          name: 'opts',
          value: {},
          options: {
            labelSmoothing: ['prob', 'opts.labelSmoothing'],
            reduction: ['choice', 'opts.reduction'],
            ignoreIndex: ['int', 'opts.ignoreIndex'],
          },
        },
      ],
      call: (a) => ff.crossEntropy(a[0] as ff.Tensor, a[1] as ff.Tensor, a[2] as ff.CrossEntropyOptions),
    }),
  },
  {
    name: 'embedding',
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'ids', value: ff.tensor([0, 3, 1], [3], { device: env.device }), badShapes: [[0]] },
        { kind: 'tensor', name: 'weight', value: t([4, 2], env), badShapes: [[4], [0, 2], [2, 2, 2]] },
      ],
      call: (a) => ff.embedding(a[0] as ff.Tensor, a[1] as ff.Tensor),
    }),
  },
  ...(['dropout', 'dropPath'] as const).map((fn): Target => ({
    name: fn,
    build: (env) => ({
      args: [
        { kind: 'tensor', name: 'x', value: t([2, 3], env) },
        { kind: 'prob', name: 'p', value: 0.5 },
        {
          kind: 'opts',
          name: 'opts',
          value: {},
          options: { training: ['boolean', 'opts.training'], generator: ['generator', 'opts.generator'] },
        },
      ],
      call: (a) => ff[fn](a[0] as ff.Tensor, a[1] as number, a[2] as ff.DropoutOptions),
    }),
  })),
  {
    name: 'fourierMetric',
    build: (env) => ({
      args: [
        {
          kind: 'tensor',
          name: 'q',
          value: t([1, 2, 3, 4], env),
          badShapes: [
            [2, 3, 4],
            [1, 2, 3, 5],
            [1, 3, 3, 4],
            [1, 2, 0, 4],
          ],
          shapeNames: ['k', 'R', 'q, k'],
        },
        {
          kind: 'tensor',
          name: 'k',
          value: t([1, 2, 5, 4], env),
          badShapes: [
            [1, 2, 5, 3],
            [2, 2, 5, 4],
            [5, 4],
          ],
        },
        {
          kind: 'tensor',
          name: 'R',
          value: t([4], env, false, 2),
          badShapes: [[3], [2, 4, 1], [3, 1], [5, 4]],
          finite: true,
        },
        { kind: 'opts', name: 'opts', value: {}, options: { power: ['power', 'power'] } },
      ],
      call: (a) =>
        ff.fourierMetric(a[0] as ff.Tensor, a[1] as ff.Tensor, a[2] as ff.Tensor, a[3] as ff.FourierMetricOptions),
    }),
  },
  {
    name: 'fourierAttention',
    build: (env, r) => {
      const causal = r() < 0.5;
      const Nk = causal ? 3 : 5;
      return {
        args: [
          {
            kind: 'tensor',
            name: 'q',
            value: t([1, 2, 3, 4], env),
            badShapes: [
              [2, 3, 4],
              [1, 2, 3, 5],
              [1, 3, 3, 4],
            ],
            shapeNames: ['k', 'R', 'causal'],
          },
          {
            kind: 'tensor',
            name: 'k',
            value: t([1, 2, Nk, 4], env),
            badShapes: [
              [1, 2, Nk, 3],
              [2, 2, Nk, 4],
            ],
            shapeNames: ['v'],
          },
          {
            kind: 'tensor',
            name: 'v',
            value: t([1, 2, Nk, 6], env),
            badShapes: [
              [1, 2, Nk + 1, 6],
              [1, 2, 6],
            ],
          },
          {
            kind: 'tensor',
            name: 'R',
            value: t([2, 1], env, false, 2),
            badShapes: [[3], [3, 1], [1, 1, 1]],
            finite: true,
          },
          attentionOpts(causal),
        ],
        call: (a) =>
          ff.fourierAttention(
            a[0] as ff.Tensor,
            a[1] as ff.Tensor,
            a[2] as ff.Tensor,
            a[3] as ff.Tensor,
            a[4] as ff.FourierAttentionOptions,
          ),
      };
    },
  },
  {
    name: 'dotProductAttention',
    build: (env) => ({
      args: [
        {
          kind: 'tensor',
          name: 'q',
          value: t([2, 1, 3, 4], env),
          badShapes: [
            [3, 4],
            [2, 1, 3, 5],
          ],
          shapeNames: ['k'],
        },
        {
          kind: 'tensor',
          name: 'k',
          value: t([2, 1, 5, 4], env),
          badShapes: [
            [2, 1, 5, 3],
            [1, 1, 5, 4],
          ],
          shapeNames: ['v'],
        },
        { kind: 'tensor', name: 'v', value: t([2, 1, 5, 2], env), badShapes: [[2, 1, 4, 2]] },
        {
          kind: 'opts',
          name: 'opts',
          value: {},
          options: { causal: ['boolean', 'causal'], scale: ['finite', 'scale'] },
        },
      ],
      call: (a) =>
        ff.dotProductAttention(
          a[0] as ff.Tensor,
          a[1] as ff.Tensor,
          a[2] as ff.Tensor,
          a[3] as ff.DotProductAttentionOptions,
        ),
    }),
  },
  {
    name: 'performerAttention',
    build: (env, r) => {
      const causal = r() < 0.5;
      const Nk = causal ? 3 : 5;
      return {
        args: [
          {
            kind: 'tensor',
            name: 'q',
            value: t([1, 2, 3, 4], env),
            badShapes: [
              [2, 3, 4],
              [1, 2, 3, 5],
              [1, 3, 3, 4],
            ],
            shapeNames: ['k', 'projection', 'causal'],
          },
          {
            kind: 'tensor',
            name: 'k',
            value: t([1, 2, Nk, 4], env),
            badShapes: [
              [1, 2, Nk, 3],
              [2, 2, Nk, 4],
            ],
            shapeNames: ['v'],
          },
          {
            kind: 'tensor',
            name: 'v',
            value: t([1, 2, Nk, 6], env),
            badShapes: [
              [1, 2, Nk + 1, 6],
              [1, 2, 6],
            ],
          },
          { kind: 'tensor', name: 'projection', value: t([6, 4], env), badShapes: [[6, 3], [6], [1, 6, 4]] },
          {
            kind: 'opts',
            name: 'opts',
            value: causal ? { causal: true } : {},
            options: { causal: ['boolean', 'causal'], scale: ['finite', 'scale'], eps: ['nonneg', 'eps'] },
          },
        ],
        call: (a) =>
          ff.performerAttention(
            a[0] as ff.Tensor,
            a[1] as ff.Tensor,
            a[2] as ff.Tensor,
            a[3] as ff.Tensor,
            a[4] as ff.PerformerAttentionOptions,
          ),
      };
    },
  },
  {
    name: 'orthogonalRandomFeatures',
    build: (env) => ({
      args: [
        { kind: 'posint', name: 'M', value: 6 },
        { kind: 'posint', name: 'F', value: 4 },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device },
          options: {
            scaling: ['choice', 'opts.scaling'],
            device: ['device', 'opts.device'],
            generator: ['generator', 'opts.generator'],
          },
        },
      ],
      call: (a) =>
        ff.orthogonalRandomFeatures(a[0] as number, a[1] as number, a[2] as ff.RandomFeaturesOptions).dispose(),
    }),
  },
  {
    name: 'nn.FavorFeatures',
    build: (env) => ({
      args: [
        { kind: 'posint', name: 'dim', value: 4 },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device },
          options: {
            features: ['posint', 'opts.features'],
            device: ['device', 'opts.device'],
            generator: ['generator', 'opts.generator'],
          },
        },
      ],
      call: (a) => new ff.nn.FavorFeatures(a[0] as number, a[1] as ff.nn.FavorFeaturesOptions).dispose(),
    }),
  },
  {
    name: 'nn.SpectralRPE',
    build: (env) => ({
      args: [
        { kind: 'posint', name: 'numHeads', value: 2 },
        { kind: 'posint', name: 'headDim', value: 4 },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device, frequencies: 3, components: 2 },
          options: {
            frequencies: ['posint', 'opts.frequencies'],
            components: ['posint', 'opts.components'],
            device: ['device', 'opts.device'],
            generator: ['generator', 'opts.generator'],
          },
        },
      ],
      call: (a) => new ff.nn.SpectralRPE(a[0] as number, a[1] as number, a[2] as ff.nn.SpectralRPEOptions).dispose(),
    }),
  },
  {
    name: 'nn.Linear',
    build: (env) => ({
      args: [
        { kind: 'posint', name: 'inFeatures', value: 3 },
        { kind: 'posint', name: 'outFeatures', value: 2 },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device },
          options: {
            bias: ['boolean', 'opts.bias'],
            device: ['device', 'opts.device'],
            generator: ['generator', 'opts.generator'],
          },
        },
      ],
      call: (a) => new ff.nn.Linear(a[0] as number, a[1] as number, a[2] as ff.nn.LinearOptions).dispose(),
    }),
  },
  {
    name: 'nn.LayerNorm',
    build: (env) => ({
      args: [
        { kind: 'posint', name: 'normalizedShape', value: 3 },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device },
          options: {
            eps: ['nonneg', 'opts.eps'],
            elementwiseAffine: ['boolean', 'opts.elementwiseAffine'],
            bias: ['boolean', 'opts.bias'],
            device: ['device', 'opts.device'],
          },
        },
      ],
      call: (a) => new ff.nn.LayerNorm(a[0] as number, a[1] as ff.nn.LayerNormModuleOptions).dispose(),
    }),
  },
  {
    name: 'nn.MultiHeadAttention',
    build: (env) => ({
      args: [
        { kind: 'posint', name: 'dModel', value: 8 },
        { kind: 'posint', name: 'numHeads', value: 2 },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device },
          options: {
            attention: ['choice', 'opts.attention'],
            causal: ['boolean', 'opts.causal'],
            qkvBias: ['boolean', 'opts.qkvBias'],
            radius: ['choice', 'opts.radius'],
            radiusInit: ['finite', 'opts.radiusInit'],
            power: ['power', 'power'],
            eps: ['nonneg', 'eps'],
            stable: ['boolean', 'stable'],
            randomFeatures: ['posint', 'opts.randomFeatures'],
            rpeFrequencies: ['posint', 'opts.rpeFrequencies'],
            rpeComponents: ['posint', 'opts.rpeComponents'],
            device: ['device', 'opts.device'],
            generator: ['generator', 'opts.generator'],
          },
        },
      ],
      call: (a) =>
        new ff.nn.MultiHeadAttention(a[0] as number, a[1] as number, a[2] as ff.nn.MultiHeadAttentionOptions).dispose(),
    }),
  },
  {
    name: 'nn.MultiHeadAttention.forward',
    build: (env) => {
      const m = new ff.nn.MultiHeadAttention(8, 2, { device: env.device, causal: true });
      return {
        args: [
          {
            kind: 'tensor',
            name: 'x',
            value: t([2, 3, 8], env),
            badShapes: [
              [2, 3, 7],
              [3, 8],
              [2, 3, 8, 1],
            ],
            deviceNames: ['weight'],
          },
        ],
        call: (a) => m.forward(a[0] as ff.Tensor),
        cleanup: () => m.dispose(),
      };
    },
  },
  {
    name: 'nn.TransformerBlock',
    build: (env) => ({
      args: [
        { kind: 'posint', name: 'dModel', value: 8 },
        { kind: 'posint', name: 'numHeads', value: 2 },
        {
          kind: 'opts',
          name: 'opts',
          value: { device: env.device },
          options: {
            ffDim: ['posint', 'opts.ffDim'],
            norm: ['choice', 'opts.norm'],
            activation: ['choice', 'opts.activation'],
            dropout: ['prob', 'opts.dropout'],
            dropPath: ['prob', 'opts.dropPath'],
            lnEps: ['nonneg', 'opts.lnEps'],
            qkvBias: ['boolean', 'opts.qkvBias'],
            causal: ['boolean', 'opts.causal'],
          },
        },
      ],
      call: (a) =>
        new ff.nn.TransformerBlock(a[0] as number, a[1] as number, a[2] as ff.nn.TransformerBlockOptions).dispose(),
    }),
  },
  {
    name: 'optim.AdamW',
    build: (env) => {
      const p = t([3], env, true);
      return {
        args: [
          {
            kind: 'opts',
            name: 'options',
            value: { lr: 1e-3 },
            options: {
              lr: ['nonneg', 'options.lr'],
              eps: ['nonneg', 'options.eps'],
              weightDecay: ['nonneg', 'options.weightDecay'],
            },
          },
        ],
        call: (a) => new ff.optim.AdamW([p], a[0] as Partial<ff.optim.AdamOptions>).dispose(),
      };
    },
  },
  {
    name: 'optim.SGD',
    build: (env) => {
      const p = t([3], env, true);
      return {
        args: [
          {
            kind: 'opts',
            name: 'options',
            value: { lr: 0.1 },
            required: true,
            options: {
              lr: ['nonneg', 'options.lr'],
              momentum: ['nonneg', 'options.momentum'],
              nesterov: ['boolean', 'options.nesterov'],
            },
          },
        ],
        call: (a) => new ff.optim.SGD([p], a[0] as ff.optim.SgdOptions).dispose(),
      };
    },
  },
  {
    name: 'optim.clipGradNorm_',
    build: (env) => ({
      args: [
        { kind: 'number', name: 'maxNorm', value: 1, names: ['maxNorm'] },
        { kind: 'opts', name: 'opts', value: {}, options: { errorIfNonfinite: ['boolean', 'opts.errorIfNonfinite'] } },
      ],
      call: (a) => ff.optim.clipGradNorm_([t([2], env, true)], a[0] as number, a[1] as ff.optim.ClipGradNormOptions),
    }),
  },
  {
    name: 'optim.clipGradNormAsync_',
    build: (env) => ({
      args: [
        { kind: 'number', name: 'maxNorm', value: 1, names: ['maxNorm'] },
        { kind: 'opts', name: 'opts', value: {}, options: {} },
      ],
      call: (a) =>
        ff.optim.clipGradNormAsync_([t([2], env, true)], a[0] as number, a[1] as Record<string, never>).dispose(),
    }),
  },
  {
    name: 'saveSafetensors',
    build: (env) => ({
      args: [
        { kind: 'path', name: 'path', value: `${env.tmp}/ok.safetensors`, names: ['path'] },
        { kind: 'tensors', name: 'tensors', value: { w: t([2], env) }, names: ['tensors', 'tensors.a'] },
      ],
      call: (a) => ff.saveSafetensors(a[0] as string, a[1] as Record<string, ff.Tensor>),
    }),
  },
  {
    name: 'loadSafetensors',
    build: (env) => {
      const file = `${env.tmp}/load.safetensors`;
      ff.saveSafetensors(file, { w: t([2], env) });
      return {
        args: [
          { kind: 'path', name: 'path', value: file, names: ['path'] },
          { kind: 'opts', name: 'opts', value: { device: env.device }, options: { device: ['device', 'opts.device'] } },
        ],
        call: (a) =>
          Object.values(ff.loadSafetensors(a[0] as string, a[1] as ff.LoadSafetensorsOptions)).forEach((x) =>
            x.dispose(),
          ),
      };
    },
  },
  {
    name: 'Tensor.backward',
    build: (env) => {
      const x = t([2, 3], env, true);
      const y = ff.mul(x, 2);
      return {
        args: [
          { kind: 'tensor', name: 'grad', value: t([2, 3], env), badShapes: [[3], [3, 2], [2, 3, 1]] },
          { kind: 'opts', name: 'opts', value: {}, options: { retainGraph: ['boolean', 'opts.retainGraph'] } },
        ],
        call: (a) => y.backward(a[0] as ff.Tensor, a[1] as { retainGraph?: boolean }),
      };
    },
  },
  {
    name: 'Tensor.to',
    build: (env) => ({
      args: [{ kind: 'device', name: 'device', value: env.other ?? env.device }],
      call: (a) => t([2], env).to(a[0] as ff.Device),
    }),
  },
  {
    name: 'tidy',
    build: () => ({
      args: [{ kind: 'function', name: 'fn', value: () => 1, names: ['tidy'] }],
      call: (a) => ff.tidy(a[0] as () => number),
    }),
  },
  {
    name: 'setDefaultDevice',
    build: (env) => ({
      args: [{ kind: 'device', name: 'device', value: env.device }],
      call: (a) => ff.setDefaultDevice(a[0] as ff.Device),
    }),
  },
  {
    name: 'hostSyncs',
    build: (env) => ({
      args: [{ kind: 'device', name: 'device', value: env.device }],
      call: (a) => ff.hostSyncs(a[0] as ff.Device),
    }),
  },
  {
    name: 'setMatmulPrecision',
    build: () => ({
      args: [{ kind: 'choice', name: 'precision', value: ff.getMatmulPrecision() }],
      call: (a) => ff.setMatmulPrecision(a[0] as ff.MatmulPrecision),
    }),
  },
];

interface InvalidCase {
  target: number;
  arg: number;
  seed: number;
  valid: boolean;
}

/** A mutated copy of one argument, and the names its error may start with. */
function mutate(
  a: Arg,
  r: Rng,
  env: Env,
  tensorNames: string[],
): { value: unknown; names: string[]; what: string } | null {
  if (a.kind === 'tensor') {
    const choices: (() => { value: unknown; names: string[]; what: string } | null)[] = [
      () => {
        const v = pickOf(r, NON_TENSORS);
        if ((a.numberOk && typeof v === 'number') || (a.optional && (v === null || v === undefined))) return null;
        return { value: v, names: [a.name], what: `not a tensor (${describeValue(v)})` };
      },
      () => {
        const d = ff.zeros([...a.value.shape], { device: env.device });
        d.dispose();
        return { value: d, names: [a.name], what: 'a disposed tensor' };
      },
      // The device error names the two tensors that differ: the first of the call, or this one.
      () =>
        env.other === null || (tensorNames.length < 2 && !a.deviceNames)
          ? null
          : {
              value: ff.zeros([...a.value.shape], { device: env.other }),
              names: [...tensorNames, ...(a.deviceNames ?? [])],
              what: `a tensor on ${env.other}`,
            },
      () =>
        a.badShapes?.length
          ? (() => {
              const s = pickOf(r, a.badShapes);
              return {
                value: ff.full(s, 0.5, { device: env.device }),
                names: [a.name, ...(a.shapeNames ?? [])],
                what: `shape [${s}]`,
              };
            })()
          : null,
      () =>
        a.finite
          ? (() => {
              const bad = pickOf(r, [NaN, Infinity, -Infinity]);
              const vals = Float32Array.from(a.value.toFloat32Array(), (x, i) =>
                i === Math.floor(r() * a.value.size) ? bad : x,
              );
              vals[0] = bad;
              return {
                value: ff.tensor(vals, [...a.value.shape], { device: env.device }),
                names: [a.name],
                what: `a ${bad} value`,
              };
            })()
          : null,
    ];
    return pickOf(r, choices)();
  }
  if (a.kind === 'opts') {
    const keys = Object.keys(a.options);
    const choices: (() => { value: unknown; names: string[]; what: string } | null)[] = [
      () => {
        const v = pickOf(r, a.required ? [5, 'x', true, [], null] : [5, 'x', true, [], null]);
        return { value: v, names: [a.name], what: `opts ${describeValue(v)}` };
      },
      () => {
        const key = pickOf(r, ['casual', 'requiresgrad', 'Power', 'weight_decay', 'foo']);
        return { value: { ...a.value, [key]: true }, names: [`${a.name}.${key}`], what: `unknown option ${key}` };
      },
      () => {
        if (keys.length === 0) return null;
        const key = pickOf(r, keys);
        const [kind, name] = a.options[key];
        const v = badOption(kind, r);
        return { value: { ...a.value, [key]: v }, names: [name], what: `${key}: ${describeValue(v)}` };
      },
    ];
    return pickOf(r, choices)();
  }
  const v = badPlain(a.kind, r, env);
  return { value: v, names: a.names ?? [a.name], what: `${a.name} = ${describeValue(v)}` };
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (Array.isArray(x) ? '[..]' : String(x))).join(', ')}]`;
  if (v instanceof Float32Array || v instanceof Float64Array) return v.constructor.name;
  if (v !== null && typeof v === 'object') return JSON.stringify(v) ?? 'an object';
  return String(v);
}

export const invalidCallProperty = property<InvalidCase>({
  name: 'invalid:calls',
  weight: 8,
  arbitrary: () =>
    fc.record({
      target: fc.nat(TARGETS.length - 1),
      arg: fc.nat(7),
      seed: fc.nat(),
      valid: fc.integer({ min: 0, max: 19 }).map((v) => v === 0),
    }),
  run(c, env) {
    const target = TARGETS[c.target];
    const r = ff.reference.rng(c.seed);
    const built = target.build(env, r);
    try {
      // Each call is followed by a synchronisation: arguments checked on the device (R's
      // finiteness on cuda) raise there, as CUDA's device-side asserts do in PyTorch, and must
      // raise within this case, not in the next one's first op.
      if (c.valid) {
        built.call(built.args.map((a) => a.value));
        ff.synchronize();
        return;
      }
      const i = c.arg % built.args.length;
      const m = mutate(
        built.args[i],
        r,
        env,
        built.args.filter((a) => a.kind === 'tensor').map((a) => a.name),
      );
      if (m === null) return; // no such mutation for this argument here
      const args = built.args.map((a, k) => (k === i ? m.value : a.value));
      expectArgError(
        () => {
          built.call(args);
          ff.synchronize();
        },
        m.names,
        `${target.name} with ${built.args[i].name} ${m.what}`,
      );
    } finally {
      built.cleanup?.();
    }
  },
});

export const invalidProperties = [invalidCallProperty];
