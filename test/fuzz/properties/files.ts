// safetensors files: valid ones round trip bit for bit (any names, shapes including [] and
// zero sizes, NaN / Inf / -0 / subnormal values, metadata), and F64 / F16 / BF16 files read as
// the same numbers rounded to float32; random bytes and crafted headers (a valid file with one
// lie: its header length, a dtype, a shape, offsets, metadata, JSON or UTF-8, its length) must
// throw an Error that names the file, allocate nothing larger than the file, and never crash.
import * as fs from 'fs';
import * as path from 'path';
import fc from 'fast-check';
import * as ff from '../../../lib';
import { check, expectArgError, expectExact } from '../check';
import { property } from '../property';
import { seed, size, ValueSpec, valuesOf, values } from '../values';

interface Entry {
  name: string;
  shape: number[];
  values: ValueSpec;
  specials: boolean;
}

const nameArb = fc
  .oneof(
    fc.constantFrom('w', 'layers.0.attn.qkv.weight', 'R', 'ünïcode', 'a b', '"quoted"', '0', 'x'.repeat(300)),
    fc.string({ minLength: 1, maxLength: 12 }),
  )
  .filter((n) => n !== '__metadata__' && n !== '');

const entriesArb = fc.uniqueArray(
  fc.record({
    name: nameArb,
    shape: fc.array(fc.oneof({ weight: 8, arbitrary: size(12) }, { weight: 1, arbitrary: fc.constant(0) }), {
      maxLength: 4,
    }),
    values: values(3e38),
    specials: fc.boolean(),
  }),
  { minLength: 1, maxLength: 5, selector: (e) => e.name },
);

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

function entryValues(e: Entry): Float32Array {
  const v = valuesOf(e.values, numel(e.shape));
  if (e.specials)
    [NaN, -0, Infinity, -Infinity, 1e-45, -3.4e38].forEach((x, i) => {
      if (i < v.length) v[(i * 3) % v.length] = x;
    });
  return v;
}

interface RoundTrip {
  entries: Entry[];
  metadata: Record<string, string>;
  dtype: 'F32' | 'F64' | 'F16' | 'BF16';
}

export const safetensorsProperty = property<RoundTrip>({
  name: 'safetensors',
  weight: 1,
  arbitrary: () =>
    fc.record({
      entries: entriesArb,
      metadata: fc.dictionary(
        fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'),
        fc.string({ maxLength: 20 }),
        { maxKeys: 3 },
      ),
      dtype: fc.constantFrom<RoundTrip['dtype']>('F32', 'F32', 'F64', 'F16', 'BF16'),
    }),
  run(c, env) {
    const file = path.join(env.tmp, 'round.safetensors');
    if (c.dtype === 'F32') {
      const tensors = Object.fromEntries(
        c.entries.map((e) => [e.name, ff.tensor(entryValues(e), e.shape, { device: env.device })]),
      );
      ff.saveSafetensors(file, tensors, c.metadata);
    } else {
      fs.writeFileSync(file, handMade(c.entries, c.dtype, c.metadata));
    }
    const { tensors, metadata } = ff.readSafetensors(file, { device: env.device });
    check(JSON.stringify(metadata) === JSON.stringify(c.metadata), () => `metadata ${JSON.stringify(metadata)}`);
    check(
      Object.keys(tensors).length === c.entries.length,
      () => `${Object.keys(tensors).length} tensors read, ${c.entries.length} written`,
    );
    for (const e of c.entries) {
      const t = tensors[e.name];
      check(
        t !== undefined && t.shape.join() === e.shape.join() && t.device === env.device,
        () => `tensor ${e.name}: shape ${t?.shape}`,
      );
      expectExact(e.name, t.toFloat32Array(), expected(entryValues(e), c.dtype));
    }
    const header = ff.readSafetensorsHeader(file);
    check(
      c.entries.every((e) => header.tensors[e.name]?.dtype === c.dtype),
      () => "the header's dtypes",
    );
  },
});

/** What a value becomes when written as dtype and read back as float32. */
function expected(v: Float32Array, dtype: RoundTrip['dtype']): Float32Array {
  if (dtype === 'F16') return Float32Array.from(v, (x) => halfToFloat(floatToHalf(x)));
  if (dtype === 'BF16') return Float32Array.from(v, (x) => bf16(x));
  return v;
}

function bf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] &= 0xffff0000;
  return f[0];
}

/** float -> half by truncating the mantissa (any conversion does; the reader's decode is what is checked). */
function floatToHalf(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) return e < -10 ? sign : sign | ((mant | 0x800000) >> (14 - e));
  return sign | (e << 10) | (mant >> 13);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function handMade(
  entries: Entry[],
  dtype: Exclude<RoundTrip['dtype'], 'F32'>,
  metadata: Record<string, string>,
): Buffer {
  const width = dtype === 'F64' ? 8 : 2;
  const header: Record<string, unknown> = Object.keys(metadata).length ? { __metadata__: metadata } : {};
  const parts: Buffer[] = [];
  let off = 0;
  for (const e of entries) {
    const v = entryValues(e);
    const b = Buffer.alloc(v.length * width);
    v.forEach((x, i) => {
      if (dtype === 'F64') b.writeDoubleLE(x, 8 * i);
      else
        b.writeUInt16LE(
          dtype === 'F16' ? floatToHalf(x) : new Uint32Array(new Float32Array([x]).buffer)[0] >>> 16,
          2 * i,
        );
    });
    header[e.name] = { dtype, shape: e.shape, data_offsets: [off, off + b.length] };
    off += b.length;
    parts.push(b);
  }
  return withHeader(Buffer.from(JSON.stringify(header)), Buffer.concat(parts));
}

function withHeader(json: Buffer, data: Buffer, length = BigInt(json.length)): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(length);
  return Buffer.concat([len, json, data]);
}

// ---- invalid files ------------------------------------------------------------------------

type Lie =
  | 'random'
  | 'truncate'
  | 'extend'
  | 'length'
  | 'dtype'
  | 'shape'
  | 'offsets'
  | 'entry'
  | 'metadata'
  | 'json'
  | 'utf8'
  | 'directory'
  | 'missing';

interface BadFile {
  lie: Lie;
  entries: Entry[];
  seed: number;
  reader: 'load' | 'read' | 'header';
}

export const badFileProperty = property<BadFile>({
  name: 'invalid:files',
  weight: 2,
  arbitrary: () =>
    fc.record({
      lie: fc.constantFrom<Lie>(
        'random',
        'truncate',
        'extend',
        'length',
        'dtype',
        'shape',
        'offsets',
        'entry',
        'metadata',
        'json',
        'utf8',
        'directory',
        'missing',
      ),
      entries: entriesArb.map((es) => es.map((e) => ({ ...e, shape: e.shape.map((d) => Math.max(1, d)) }))),
      seed,
      reader: fc.constantFrom<BadFile['reader']>('load', 'read', 'header'),
    }),
  run(c, env) {
    const r = ff.reference.rng(c.seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
    let file = path.join(env.tmp, 'bad.safetensors');
    // A valid file first: its header object and data.
    const header: Record<string, { dtype: string; shape: unknown; data_offsets: unknown }> = {};
    let off = 0;
    const datas: Buffer[] = [];
    for (const e of c.entries) {
      const v = entryValues(e);
      header[e.name] = { dtype: 'F32', shape: e.shape, data_offsets: [off, off + 4 * v.length] };
      off += 4 * v.length;
      datas.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    }
    const data = Buffer.concat(datas);
    const names = Object.keys(header);
    const victim = header[pick(names)];
    const headerOnly = c.reader === 'header';
    let bytes: Buffer | null = null;
    switch (c.lie) {
      case 'random':
        bytes = Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)));
        break;
      case 'truncate': {
        const full = withHeader(Buffer.from(JSON.stringify(header)), data);
        bytes = full.subarray(0, Math.floor(r() * (full.length - (headerOnly ? data.length : 0))));
        break;
      }
      case 'extend':
        if (headerOnly) return;
        bytes = withHeader(
          Buffer.from(JSON.stringify(header)),
          Buffer.concat([data, Buffer.alloc(1 + Math.floor(r() * 9))]),
        );
        break;
      case 'length': {
        const json = Buffer.from(JSON.stringify(header));
        const n = pick([
          0n,
          1n,
          BigInt(json.length + 1 + Math.floor(r() * 8)),
          2n ** 63n,
          2n ** 64n - 1n,
          100_000_001n,
          BigInt(Math.max(0, json.length - 1 - Math.floor(r() * 4))),
        ]);
        bytes = withHeader(json, headerOnly ? Buffer.alloc(0) : data, n);
        break;
      }
      case 'dtype':
        victim.dtype = pick(['F33', '', 'f32', 'I64', 'U8', 'BOOL', 'F16', 'Q7', 'F8_E4M3']);
        break;
      case 'shape': {
        const s = victim.shape as number[];
        victim.shape = pick([
          [33554432, 33554432],
          [2 ** 53],
          [-1],
          [1.5],
          'x',
          null,
          [numel(s) + 1],
          [...s, 2],
          [2 ** 40, 2 ** 40, 2 ** 40],
          [NaN],
        ]);
        break;
      }
      case 'offsets': {
        const [b, e] = victim.data_offsets as number[];
        victim.data_offsets = pick([
          [e, b + (b === e ? -1 : 0)],
          [b, e + 4],
          [b + 4, e + 4],
          [b, 2 ** 60],
          [-4, e],
          [b, e, 0],
          'x',
          null,
          [b + 0.5, e],
          [b, off + 4 * (1 + Math.floor(r() * 4))],
        ]);
        if (JSON.stringify(victim.data_offsets) === JSON.stringify([b, e])) victim.data_offsets = [b, e + 4];
        break;
      }
      case 'entry':
        (header as Record<string, unknown>)[pick(names)] = pick([null, 5, 'F32', [], { dtype: 'F32' }]);
        break;
      case 'metadata':
        (header as Record<string, unknown>).__metadata__ = pick([5, null, [], { a: 1 }, { a: null }, 'x']);
        break;
      case 'json':
        bytes = withHeader(
          Buffer.from(
            pick([
              '{',
              '[]',
              'null',
              '5',
              '"x"',
              '{"a":',
              '{} {}',
              '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}',
            ]),
          ),
          headerOnly ? Buffer.alloc(0) : data,
        );
        break;
      case 'utf8':
        bytes = withHeader(
          Buffer.concat([Buffer.from('{"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('":1}')]),
          data,
        );
        break;
      case 'directory':
        file = env.tmp;
        break;
      case 'missing':
        file = path.join(env.tmp, 'no-such.safetensors');
        break;
    }
    if (c.lie !== 'directory' && c.lie !== 'missing') {
      fs.writeFileSync(file, bytes ?? withHeader(Buffer.from(JSON.stringify(header)), data));
    }
    const read = () => {
      if (c.reader === 'header') return ff.readSafetensorsHeader(file);
      const tensors =
        c.reader === 'load'
          ? ff.loadSafetensors(file, { device: env.device })
          : ff.readSafetensors(file, { device: env.device }).tensors;
      for (const x of Object.values(tensors)) x.dispose();
      return tensors;
    };
    expectArgError(read, [file, 'path'], `${c.reader} of a file with a lie (${c.lie})`);
  },
});

export const fileProperties = [safetensorsProperty, badFileProperty];
