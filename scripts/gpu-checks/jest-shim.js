// The part of jest's API the kernel and op tests use (describe, test/it, afterEach, expect with
// its matchers), on node's own test runner (node:test) and node:assert: the GPU check runs the
// tests compiled to JavaScript with no devDependencies (no jest, no ts-jest). Each compiled test
// file requires this first (scripts/gpu-bundle.js adds the line). The device under test comes
// from FF_CHECK_DEVICE, as jest's setup-device does it from its project.
'use strict';
const nodeTest = require('node:test');
const util = require('node:util');

process.env.FOURIERFORMER_DEVICE = process.env.FF_CHECK_DEVICE || process.env.FOURIERFORMER_DEVICE || 'cpu';
const TIMEOUT = 120000;

function wrap(fn) {
  // (no argument to the body: node:test would pass its context where jest passes `done`)
  return (name, body, timeout) => fn(name, { timeout: timeout || TIMEOUT }, () => body());
}
const test = wrap(nodeTest.it);
test.skip = (name) => nodeTest.it.skip(name);
test.only = test;
const describe = (name, body) => nodeTest.describe(name, body);
describe.skip = (name) => nodeTest.describe.skip(name);

class Asymmetric {
  constructor(match, text) {
    this.match = match;
    this.text = text;
  }
}

// jest's toEqual: primitives by Object.is (NaN equals NaN, +0 and -0 differ), errors by message,
// containers recursively, undefined properties ignored.
function equal(a, b) {
  if (b instanceof Asymmetric) return b.match(a);
  if (Object.is(a, b)) return true;
  if (a instanceof Error && b instanceof Error) return a.message === b.message;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (ArrayBuffer.isView(a) || Array.isArray(a)) {
    if (!(ArrayBuffer.isView(b) || Array.isArray(b)) || a.constructor !== b.constructor || a.length !== b.length)
      return false;
    for (let i = 0; i < a.length; i++) if (!equal(a[i], b[i])) return false;
    return true;
  }
  if (a instanceof Map || b instanceof Map || a instanceof Set || b instanceof Set) return util.isDeepStrictEqual(a, b);
  const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((k) => a[k] !== undefined || b[k] !== undefined));
  for (const k of keys) if (!equal(a[k], b[k])) return false;
  return (
    Object.getPrototypeOf(a) === Object.getPrototypeOf(b) ||
    Object.getPrototypeOf(a) === Object.prototype ||
    Object.getPrototypeOf(b) === Object.prototype
  );
}

const show = (x) => util.inspect(x, { depth: 4, maxArrayLength: 20, breakLength: Infinity });

function thrown(fn) {
  try {
    fn();
  } catch (e) {
    return { threw: true, error: e };
  }
  return { threw: false };
}

function throwMatches(r, expected) {
  if (!r.threw) return false;
  if (expected === undefined) return true;
  const message = r.error && r.error.message !== undefined ? String(r.error.message) : String(r.error);
  if (expected instanceof RegExp) return expected.test(message);
  if (typeof expected === 'string') return message.includes(expected);
  if (typeof expected === 'function') return r.error instanceof expected;
  return equal(r.error, expected);
}

const matchers = {
  toBe: (a, b) => [Object.is(a, b), `expected ${show(a)} to be ${show(b)}`],
  toEqual: (a, b) => [equal(a, b), `expected ${show(a)} to equal ${show(b)}`],
  toStrictEqual: (a, b) => [util.isDeepStrictEqual(a, b), `expected ${show(a)} to strictly equal ${show(b)}`],
  toBeNull: (a) => [a === null, `expected ${show(a)} to be null`],
  toBeUndefined: (a) => [a === undefined, `expected ${show(a)} to be undefined`],
  toBeDefined: (a) => [a !== undefined, `expected a defined value`],
  toBeTruthy: (a) => [!!a, `expected ${show(a)} to be truthy`],
  toBeFalsy: (a) => [!a, `expected ${show(a)} to be falsy`],
  toBeNaN: (a) => [Number.isNaN(a), `expected ${show(a)} to be NaN`],
  toBeLessThan: (a, b) => [a < b, `expected ${show(a)} < ${show(b)}`],
  toBeLessThanOrEqual: (a, b) => [a <= b, `expected ${show(a)} <= ${show(b)}`],
  toBeGreaterThan: (a, b) => [a > b, `expected ${show(a)} > ${show(b)}`],
  toBeGreaterThanOrEqual: (a, b) => [a >= b, `expected ${show(a)} >= ${show(b)}`],
  toBeCloseTo: (a, b, digits = 2) => [
    (a === Infinity && b === Infinity) || (a === -Infinity && b === -Infinity) || Math.abs(a - b) < 10 ** -digits / 2,
    `expected ${show(a)} to be close to ${show(b)} (${digits} digits)`,
  ],
  toMatch: (a, b) => [
    typeof a === 'string' && (b instanceof RegExp ? b.test(a) : a.includes(b)),
    `expected ${show(a)} to match ${show(b)}`,
  ],
  toContain: (a, b) => [a != null && Array.from(a).includes(b), `expected ${show(a)} to contain ${show(b)}`],
  toHaveLength: (a, n) => [a != null && a.length === n, `expected length ${n}, got ${a && a.length}`],
  toBeInstanceOf: (a, c) => [a instanceof c, `expected an instance of ${c && c.name}`],
  toThrow: (fn, expected) => {
    const r = thrown(fn);
    return [
      throwMatches(r, expected),
      r.threw
        ? `expected the error to match ${show(expected)}, got: ${r.error && r.error.message}`
        : `expected a throw matching ${show(expected)}`,
    ];
  },
};
matchers.toThrowError = matchers.toThrow;

function expect(actual) {
  const make = (negate) => {
    const out = {};
    for (const [name, m] of Object.entries(matchers)) {
      out[name] = (...args) => {
        const [pass, message] = m(actual, ...args);
        if (pass === negate) throw new Error(negate ? `not: ${message}` : message);
      };
    }
    return out;
  };
  const e = make(false);
  e.not = make(true);
  return e;
}
expect.arrayContaining = (items) =>
  new Asymmetric((a) => Array.isArray(a) && items.every((x) => a.some((y) => equal(y, x))), 'arrayContaining');
expect.any = (c) => new Asymmetric((a) => a != null && (a.constructor === c || a instanceof c), `any(${c.name})`);

Object.assign(globalThis, {
  describe,
  test,
  it: test,
  expect,
  beforeAll: nodeTest.before,
  afterAll: nodeTest.after,
  beforeEach: nodeTest.beforeEach,
  afterEach: nodeTest.afterEach,
});
