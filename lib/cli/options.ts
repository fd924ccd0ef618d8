// Flag parsing shared by the subcommands: commander argument parsers that reject a bad value
// with an error naming what was expected (commander adds the flag: "option '--layers <n>'
// argument 'x' is invalid. expected a positive integer"), and the checks on a whole set of
// flags that no single parser can make (a data folder that must exist, a device).
import { InvalidArgumentError } from 'commander';
import * as fs from 'fs';
import { DEVICES, Device } from '../native';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected a non-negative integer.');
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number > 0.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0.');
  return n;
}

/** A probability-like value in [0, 1). */
export function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1)
    throw new InvalidArgumentError('expected a number in [0, 1).');
  return n;
}

/** Adaptive-softmax cutoffs: increasing positive integers separated by commas, or 'none' (a full softmax). */
export function cutoffList(value: string): number[] {
  if (value.trim() === 'none') return [];
  const parts = value.split(',').map((s) => s.trim());
  const out = parts.map((p) => Number(p));
  if (parts.some((p) => !/^\d+$/.test(p)) || out.some((n, i) => n < 1 || (i > 0 && n <= out[i - 1]))) {
    throw new InvalidArgumentError(
      "expected increasing positive integers separated by commas (e.g. 2000,6000), or 'none'.",
    );
  }
  return out;
}

/** Seeds separated by commas (e.g. 1,2,3): distinct non-negative integers. */
export function seedList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const out = parts.map((p) => Number(p));
  if (
    parts.some((p) => !/^\d+$/.test(p)) ||
    out.some((n) => !Number.isSafeInteger(n)) ||
    new Set(out).size !== out.length
  ) {
    throw new InvalidArgumentError('expected distinct non-negative integers separated by commas (e.g. 1,2,3).');
  }
  return out;
}

/** Block indices separated by commas (e.g. 0 or 0,1): distinct non-negative integers. */
export function layerList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const out = parts.map((p) => Number(p));
  if (
    parts.some((p) => !/^\d+$/.test(p)) ||
    out.some((n) => !Number.isSafeInteger(n)) ||
    new Set(out).size !== out.length
  ) {
    throw new InvalidArgumentError('expected distinct 0-based block indices separated by commas (e.g. 0 or 0,1).');
  }
  return out;
}

export function deviceName(value: string): Device {
  if (!(DEVICES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${DEVICES.join(', ')}.`);
  return value as Device;
}

/** The device to run on: the flag, else FOURIERFORMER_DEVICE, else cpu. */
export function defaultDeviceName(): string {
  return process.env.FOURIERFORMER_DEVICE || 'cpu';
}

/** Throws unless `dir` is an existing folder; `flag` names the option it came from. */
export function checkFolder(dir: string, flag: string, holds: string): string {
  if (!fs.existsSync(dir)) throw new Error(`${flag}: ${dir} does not exist (expected a folder holding ${holds})`);
  if (!fs.statSync(dir).isDirectory())
    throw new Error(`${flag}: ${dir} is not a folder (expected a folder holding ${holds})`);
  return dir;
}
