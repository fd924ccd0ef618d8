// Fuzz cases that once failed because of a bug in lib/, a kernel or the fuzz's error bounds
// (fixed), replayed on every backend with the property that found them. Add a case here when a fuzz
// failure leads to a fix: its property's name and the case JSON the fuzz runner printed (the shrunk
// one, when there is one).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ff from '../lib';
import { device } from './helpers/compare';
import { findProperty, runCase } from './fuzz/run-case';

const CASES: { why: string; property: string; case: unknown }[] = [
  {
    why: 'seed 11 case 57: a file of only empty tensors (0 data bytes) was refused by the element-count check',
    property: 'safetensors',
    case: { entries: [{ name: '@X3', shape: [7, 0, 0], values: { kind: 'uniform', scale: 1, seed: 966934921 }, specials: false }], metadata: { z7j: '' }, dtype: 'F32' },
  },
  {
    why: 'seed 2027 case 17237: a tensor named "__proto__" set the prototype of the header object instead of an entry (saved without it, read as a hole)',
    property: 'safetensors',
    case: { entries: [{ name: '__proto__', shape: [], values: { kind: 'uniform', scale: 0.5, seed: 0 }, specials: false }, { name: "f'f^.?HpYr", shape: [], values: { kind: 'uniform', scale: 10000, seed: 1050600672 }, specials: true }], metadata: {}, dtype: 'F32' },
  },
  {
    why: 'seed 21 case 775: with C = 1 the reference read class ids as soft targets (ignoreIndex ignored)',
    property: 'crossEntropy',
    case: { rows: 12, C: 1, soft: false, ignoreIndex: 0, ignoreSome: false, labelSmoothing: 1, x: { kind: 'uniform', scale: 1, seed: 264039003 }, t: { kind: 'positive', scale: 1, seed: 25 }, g: { kind: 'uniform', scale: 1, seed: 149362701 } },
  },
  {
    why: 'seed 21 case 362: eps = 0 and every K underflowing even in float64 made the reference NaN (the kernels give 0)',
    property: 'fourierAttention',
    case: {
      backward: true, causal: false, stable: false, dims: { B: 1, H: 2, Nq: 2, Nk: 185, D: 6, Dv: 1 }, power: 62, eps: 0, rForm: 'H1',
      R: { kind: 'positive', scale: 4, seed: 1518748305 }, q: { kind: 'uniform', scale: 10, seed: 12 }, k: { kind: 'uniform', scale: 0.5, seed: 1128977862 },
      v: { kind: 'constant', scale: 0.5, seed: 1578252303 }, dout: { kind: 'uniform', scale: 0.5, seed: 16 }, view: 'permute',
    },
  },
  {
    why: 'a failing call inside tidy() leaked every tensor it had made (found by seed 1 case 17; any invalid call takes that path)',
    property: 'invalid:calls',
    case: { target: 0, arg: 0, seed: 3, valid: false },
  },
  {
    why: 'seed 27 case 259: the cpu Fourier stable backward read a coefficient G p K/S below 2^-126 as 0 (dq ~1e-35 off by 100%)',
    property: 'fourierAttention',
    case: {
      backward: true, causal: true, stable: true, dims: { B: 1, H: 4, Nq: 7, Nk: 7, D: 4, Dv: 3 }, power: 8, eps: 0, rForm: 'D',
      R: { kind: 'uniform', scale: 100, seed: 2147483635 }, q: { kind: 'uniform', scale: 2, seed: 486531569 }, k: { kind: 'uniform', scale: 0.5, seed: 844638900 },
      v: { kind: 'uniform', scale: 1e-10, seed: 178367638 }, dout: { kind: 'uniform', scale: 1e-24, seed: 1617149251 }, view: 'none',
    },
  },
  {
    why: 'seed 27 case 259, shrunk by the first fix: the stable backward with one query and four keys',
    property: 'fourierAttention',
    case: {
      backward: true, causal: false, stable: true, dims: { B: 1, H: 1, Nq: 1, Nk: 4, D: 4, Dv: 1 }, power: 8, eps: 0, rForm: 'D',
      R: { kind: 'constant', scale: 100, seed: 2147483635 }, q: { kind: 'uniform', scale: 2, seed: 486531569 }, k: { kind: 'uniform', scale: 0.5, seed: 844638900 },
      v: { kind: 'uniform', scale: 1e-10, seed: 178367638 }, dout: { kind: 'uniform', scale: 1e-24, seed: 1617149251 }, view: 'none',
    },
  },
  {
    why: 'seed 27 case 372: the cpu dot-product backward read a subnormal dout (1e-38) as 0, though dout v (~1e-34) and dq (~1e-36) are normal',
    property: 'dotProductAttention',
    case: {
      backward: true, causal: false, dims: { B: 1, H: 2, Nq: 28, Nk: 6, D: 1, Dv: 5 }, q: { kind: 'spread', scale: 1e-22, seed: 1661396788 },
      k: { kind: 'uniform', scale: 1, seed: 1613226396 }, v: { kind: 'uniform', scale: 10000, seed: 119087262 }, dout: { kind: 'spread', scale: 1e-30, seed: 95982007 }, view: 'slice',
    },
  },
  {
    why: 'seed 27 case 372, shrunk: the same with one query and two keys',
    property: 'dotProductAttention',
    case: {
      backward: true, causal: false, dims: { B: 1, H: 1, Nq: 1, Nk: 2, D: 1, Dv: 1 }, q: { kind: 'uniform', scale: 1, seed: 0 },
      k: { kind: 'uniform', scale: 0.5, seed: 0 }, v: { kind: 'uniform', scale: 10000, seed: 0 }, dout: { kind: 'spread', scale: 1e-30, seed: 0 }, view: 'none',
    },
  },
  {
    why: 'seed 20261207 case 125: the cpu softmax exp returned 0 below e^-87.3 (not the subnormal), so dk ~4e-34 = P q dP with P ~1e-39 came out 0',
    property: 'dotProductAttention',
    case: {
      backward: true, causal: false, dims: { B: 2, H: 4, Nq: 3, Nk: 64, D: 1, Dv: 4 }, q: { kind: 'uniform', scale: 1000, seed: 437111260 },
      k: { kind: 'uniform', scale: 0.5, seed: 789153123 }, v: { kind: 'uniform', scale: 1000, seed: 1967398738 }, dout: { kind: 'near', scale: 0.5, seed: 2147483641 }, view: 'none',
    },
  },
  {
    why: 'seed 20261207 case 125, shrunk: one query and two keys',
    property: 'dotProductAttention',
    case: {
      backward: true, causal: false, dims: { B: 1, H: 1, Nq: 1, Nk: 2, D: 1, Dv: 1 }, q: { kind: 'uniform', scale: 1000, seed: 368809136 },
      k: { kind: 'uniform', scale: 0.5, seed: 394576548 }, v: { kind: 'uniform', scale: 1000, seed: 0 }, dout: { kind: 'near', scale: 0.5, seed: 0 }, view: 'none',
    },
  },
  {
    why: 'seed 20261207 case 13872 (shrunk): the bound missed that the default mode flushes a term dL/dx below 2^-126 before scaling it by q - k (dR -5e-37 computed 0, as the README documents)',
    property: 'fourierAttention',
    case: {
      backward: true, causal: false, stable: false, dims: { B: 1, H: 1, Nq: 1, Nk: 1, D: 3, Dv: 2 }, power: 4, eps: 10000, rForm: 'scalar',
      R: { kind: 'positive', scale: 1, seed: 8 }, q: { kind: 'uniform', scale: 1000, seed: 1055633778 }, k: { kind: 'uniform', scale: 1e-30, seed: 0 },
      v: { kind: 'spread', scale: 0.5, seed: 0 }, dout: { kind: 'uniform', scale: 0.00001, seed: 0 }, view: 'none',
    },
  },
  {
    why: "seed 20261207 case 8024 (shrunk): the cpu exp gave Infinity from x = 88.03 (e^x up to 3.4e38 is finite): 2^128 was built from exponent bits",
    property: 'unary',
    case: { op: 'exp', shape: [3, 3, 4, 14], x: { kind: 'uniform', scale: 100, seed: 0 }, g: { kind: 'uniform', scale: 1, seed: 0 }, method: false },
  },
  {
    why: "seed 20261207 case 11486 (shrunk): with an odd power K changes sign and cancels in the row sum; the bound took the float sums' error as gamma max|v|, not gamma sum|K||v| / |S + eps|",
    property: 'fourierAttention',
    case: { backward: false, causal: false, stable: false, dims: { B: 1, H: 1, Nq: 1, Nk: 7, D: 2, Dv: 1 }, power: 1, rForm: 'scalar', R: { kind: 'positive', scale: 4, seed: 789668077 }, q: { kind: 'uniform', scale: 0.5, seed: 1738176439 }, k: { kind: 'uniform', scale: 2, seed: 1647891969 }, v: { kind: 'near', scale: 0.5, seed: 0 }, dout: { kind: 'uniform', scale: 0.5, seed: 0 }, view: 'none' },
  },
  {
    why: "seed 20261207 case 3413: the cpu stable backward built 2^n of its terms t by exponent bits, so a t below 2^-126 was 0 (dq = t R with R = 1e8 is ~1e-33)",
    property: 'fourierAttention',
    case: { backward: true, causal: false, stable: true, dims: { B: 4, H: 2, Nq: 1, Nk: 7, D: 8, Dv: 1 }, eps: 1e-06, rForm: '1D', R: { kind: 'constant', scale: 100000000, seed: 1116684527 }, q: { kind: 'spread', scale: 10000, seed: 60242297 }, k: { kind: 'uniform', scale: 1e-10, seed: 1677356679 }, v: { kind: 'uniform', scale: 1e-20, seed: 2112607569 }, dout: { kind: 'spread', scale: 0.5, seed: 25 }, view: 'none' },
  },
  {
    why: "seed 20261207 case 16426: the cpu stable backward read a weight P below 2^-126 as 0 (dv = P dout ~1e-36 with dout ~100)",
    property: 'fourierAttention',
    case: { backward: true, causal: false, stable: true, dims: { B: 2, H: 4, Nq: 1, Nk: 314, D: 2, Dv: 8 }, power: 8, eps: 10000, rForm: '1D', R: { kind: 'constant', scale: -2, seed: 12 }, q: { kind: 'uniform', scale: 2, seed: 14 }, k: { kind: 'uniform', scale: 100, seed: 169764419 }, v: { kind: 'near', scale: 10, seed: 333269981 }, dout: { kind: 'uniform', scale: 100, seed: 941484091 }, view: 'permute' },
  },
  {
    why: "seed 20261207 case 16426, shrunk to the default mode: the bound missed that a flushed weight P loses TINY times dout in dv",
    property: 'fourierAttention',
    case: { backward: true, causal: false, stable: false, dims: { B: 1, H: 1, Nq: 1, Nk: 1, D: 2, Dv: 1 }, power: 8, eps: 10000, rForm: 'scalar', R: { kind: 'constant', scale: -2, seed: 0 }, q: { kind: 'uniform', scale: 0.5, seed: 0 }, k: { kind: 'uniform', scale: 100, seed: 0 }, v: { kind: 'uniform', scale: 1e-30, seed: 0 }, dout: { kind: 'uniform', scale: 100, seed: 0 }, view: 'none' },
  },
  {
    why: "seed 20261207 case 17563: the same subnormal weights in the cpu stable backward, at power 8 and eps 1e-30",
    property: 'fourierAttention',
    case: { backward: true, causal: false, stable: true, dims: { B: 3, H: 1, Nq: 8, Nk: 15, D: 7, Dv: 3 }, power: 8, eps: 1e-30, rForm: '11', R: { kind: 'positive', scale: 4, seed: 2147483636 }, q: { kind: 'uniform', scale: 0.5, seed: 29 }, k: { kind: 'grid', scale: 100, seed: 1481096502 }, v: { kind: 'uniform', scale: 1000, seed: 12 }, dout: { kind: 'uniform', scale: 1000, seed: 15 }, view: 'none' },
  },
  {
    why: "seed 20261207 case 1635 (shrunk): the cuda LayerNorm backward formed dy gamma (x - mean) before scaling by rstd, which underflowed where dy gamma xhat does not",
    property: 'layerNorm',
    case: { rows: 1, C: 2, affine: 'both', eps: 0, x: { kind: 'uniform', scale: 1e-07, seed: 0 }, w: { kind: 'uniform', scale: 0.5, seed: 0 }, b: { kind: 'uniform', scale: 0.5, seed: 0 }, g: { kind: 'uniform', scale: 1e-30, seed: 10 } },
  },
  {
    why: "seed 20261207 case 5092: the same, with gamma 1e-8 and dy 1e-30 (4% off)",
    property: 'layerNorm',
    case: { rows: 1, C: 4, affine: 'both', eps: 1e-30, x: { kind: 'positive', scale: 1e-05, seed: 1 }, w: { kind: 'uniform', scale: 1e-08, seed: 1840034984 }, b: { kind: 'uniform', scale: 0.5, seed: 13 }, g: { kind: 'uniform', scale: 1e-30, seed: 878729625 } },
  },
  {
    why: "seed 20261207 case 19027: the same, with gamma 1e-28",
    property: 'layerNorm',
    case: { rows: 3, C: 6, affine: 'both', eps: 1e-30, x: { kind: 'uniform', scale: 1e-15, seed: 2147483623 }, w: { kind: 'uniform', scale: 1e-28, seed: 1933218777 }, b: { kind: 'uniform', scale: 1e-20, seed: 1005513818 }, g: { kind: 'positive', scale: 2, seed: 260029207 } },
  },
  {
    why: "seed 20261207 case 17191: a non-finite R is checked on the device on cuda and raised at the next synchronisation; the property now synchronises after each call",
    property: 'invalid:calls',
    case: { target: 32, arg: 2, seed: 2147483646, valid: false },
  },
  {
    why: 'seed 1207 case 1003 (shrunk): a NaN tolerance (an unbounded flush floor, den 0, times a dout of 0) failed a correct dv of 0',
    property: 'fourierAttention',
    case: {
      backward: true, causal: false, stable: false, dims: { B: 1, H: 1, Nq: 1, Nk: 1, D: 5, Dv: 5 }, power: 2, eps: 0, rForm: 'scalar',
      R: { kind: 'constant', scale: 10000, seed: 0 }, q: { kind: 'uniform', scale: 0.5, seed: 0 }, k: { kind: 'uniform', scale: 0.5, seed: 200158506 },
      v: { kind: 'uniform', scale: 0.5, seed: 0 }, dout: { kind: 'grid', scale: 1, seed: 0 }, view: 'none',
    },
  },
  {
    why: 'seed 1207 case 14095 (shrunk): every K of a row subnormal (~1e-43, D 48, eps 0); the cuda default mode summed K and K v in plain float (out 3% off, outside the values\' hull) and its backward weight K / S was 1.31',
    property: 'fourierAttention',
    case: {
      backward: true, causal: false, stable: false, dims: { B: 2, H: 2, Nq: 1, Nk: 1, D: 48, Dv: 1 }, eps: 0, rForm: 'scalar',
      R: { kind: 'constant', scale: 1, seed: 0 }, q: { kind: 'uniform', scale: 1, seed: 1336427769 }, k: { kind: 'uniform', scale: 2, seed: 415273211 },
      v: { kind: 'uniform', scale: 0.5, seed: 0 }, dout: { kind: 'uniform', scale: 0.5, seed: 0 }, view: 'slice',
    },
  },
  {
    why: 'seed 1207 case 14095: the same, causal, Dv 8',
    property: 'fourierAttention',
    case: {
      backward: true, causal: true, stable: false, dims: { B: 2, H: 2, Nq: 1, Nk: 1, D: 48, Dv: 8 }, eps: 0, rForm: '1D',
      R: { kind: 'constant', scale: 1, seed: 2147483644 }, q: { kind: 'uniform', scale: 1, seed: 1336428087 }, k: { kind: 'uniform', scale: 2, seed: 415273211 },
      v: { kind: 'uniform', scale: 0.5, seed: 19 }, dout: { kind: 'grid', scale: 0.5, seed: 12 }, view: 'slice',
    },
  },
  {
    why: 'seed 1207 case 19696 (shrunk): the LayerNorm backward formed g = dy gamma (~1e-39, subnormal) in float; its lost bits were the result of g - mean(g) - xhat mean(g xhat) in a row of two values (cpu and cuda)',
    property: 'layerNorm',
    case: { rows: 1, C: 2, affine: 'both', eps: 1e-30, x: { kind: 'spread', scale: 0.5, seed: 1541335425 }, w: { kind: 'uniform', scale: 1e-29, seed: 0 }, b: { kind: 'uniform', scale: 0.5, seed: 0 }, g: { kind: 'uniform', scale: 1e-10, seed: 0 } },
  },
  {
    why: 'seed 1207 case 19696: the same, gamma 1e-30 and rows of 6 (dx 1e-4 relative off)',
    property: 'layerNorm',
    case: { rows: 3, C: 6, affine: 'weight', eps: 1e-30, x: { kind: 'spread', scale: 0.5, seed: 2059511402 }, w: { kind: 'constant', scale: 1e-30, seed: 7 }, b: { kind: 'uniform', scale: 2, seed: 1562289327 }, g: { kind: 'positive', scale: 1e-10, seed: 29 } },
  },
  {
    why: 'seed 71207 case 12442 (shrunk): power 50, eps 0, a row sum ~1e-37; the cpu default backward formed (dp - delta) / S first, which overflowed and met another key\'s k^(p-1) = 0 as inf * 0 (dq NaN)',
    property: 'fourierAttention',
    case: {
      backward: true, causal: false, stable: false, dims: { B: 1, H: 1, Nq: 1, Nk: 2, D: 5, Dv: 1 }, power: 50, eps: 0, rForm: 'scalar',
      R: { kind: 'positive', scale: 4, seed: 237993263 }, q: { kind: 'uniform', scale: 1e-30, seed: 0 }, k: { kind: 'uniform', scale: 1, seed: 29 },
      v: { kind: 'uniform', scale: 2, seed: 170363160 }, dout: { kind: 'uniform', scale: 100, seed: 907401800 }, view: 'none',
    },
  },
];

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-fuzz-regressions-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const usable = (d: ff.Device) => ff.backends().some((b) => b.device === d && b.available);

describe(`fuzz regressions on ${device()}`, () => {
  for (const c of CASES) {
    test(c.why, () => {
      const other = (['cpu', 'cuda-emu'] as ff.Device[]).find((d) => d !== device() && usable(d)) ?? null;
      runCase(findProperty(c.property), c.case, { device: device(), other, tmp });
    });
  }
});
