// The safetensors format (huggingface/safetensors, the format PyTorch users save weights in),
// written by hand after its specification, since npm has no maintained implementation:
//
//   8 bytes      N, the header's length, unsigned little-endian
//   N bytes      JSON: { "__metadata__": { string: string }, name: { "dtype": "F32",
//                "shape": [..], "data_offsets": [begin, end] }, ... }, padded with spaces to
//                a multiple of 8 bytes
//   the rest     the tensors' bytes, little-endian, row-major; offsets count from here, and the
//                tensors cover it exactly, with no holes and no overlap
//
// We write F32 only (tensors sorted by name); we read F32, and convert F64, F16 and BF16 to
// float32. Reads check the header (every dtype of the specification, shapes against byte
// ranges, ranges against the file's length) before they allocate anything, then read each
// tensor's bytes on their own, so no allocation exceeds the file. Writes are atomic: a temporary
// file in the target's directory, fsync, then rename, so a crash leaves the old file or the new
// one, never a torn one.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { checkDevice, Device } from '../native';
import { checkOptions, describe } from '../options';
import { MAX_ELEMENTS, numel, shapeString } from '../shape';
import { checkTensor, Tensor, tensor } from '../tensor';

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** [begin, end) in bytes, counted from the end of the header. */
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  tensors: Record<string, SafetensorsEntry>;
}

/** Headers larger than this are refused (the reference implementation's limit). */
const MAX_HEADER_BYTES = 100_000_000;

/** Every dtype of the safetensors specification and its width in bytes. */
const BYTES_PER_ELEMENT: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** The dtypes read as float32. */
const READABLE = ['F32', 'F64', 'F16', 'BF16'];

function checkLittleEndian(): void {
  if (os.endianness() !== 'LE')
    throw new Error('safetensors: this host is big-endian; only little-endian hosts are supported');
}

function checkMetadata(metadata: unknown): Record<string, string> {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new Error('metadata: expected an object of strings');
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string')
      throw new Error(
        `metadata.${k}: expected a string (safetensors metadata holds strings only; JSON.stringify other values), got ${typeof v}`,
      );
  }
  return metadata as Record<string, string>;
}

/**
 * Writes tensors (float32) and string metadata to a .safetensors file, atomically. Tensors are
 * read back from their device; names are sorted, so equal inputs give byte-identical files.
 */
export function saveSafetensors(
  file: string,
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> = {},
): void {
  checkLittleEndian();
  checkPath(file);
  if (fs.existsSync(file) && fs.statSync(file).isDirectory())
    throw new Error(`path: ${file} is a directory, not a file`);
  if (tensors === null || typeof tensors !== 'object') throw new Error('tensors: expected an object of name -> Tensor');
  checkMetadata(metadata);
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === '' || name === '__metadata__')
      throw new Error(`tensors: the name ${JSON.stringify(name)} is reserved`);
    const t = checkTensor(tensors[name], `tensors.${name}`);
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * t.size] };
    offset += 4 * t.size;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  json.copy(padded);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(padded.length));
  writeAtomically(file, (fd) => {
    fs.writeSync(fd, length);
    fs.writeSync(fd, padded);
    for (const name of names) {
      const values = tensors[name].toFloat32Array();
      fs.writeSync(fd, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    }
  });
}

/** Writes a file through a temporary sibling, fsync and rename (then fsyncs the directory). */
export function writeAtomically(file: string, write: (fd: number) => void): void {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'wx');
  } catch (e) {
    throw new Error(`path: cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    write(fd);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  let dirFd: number | null = null;
  try {
    dirFd = fs.openSync(dir, 'r');
    fs.fsyncSync(dirFd);
  } catch {
    // Some platforms cannot fsync a directory; the file itself is already on disk.
  } finally {
    if (dirFd !== null) fs.closeSync(dirFd);
  }
}

function invalid(what: string, why: string): never {
  throw new Error(`${what}: not a valid safetensors file: ${why}`);
}

/** The header length N from a file's first 8 bytes, checked against the file's length. */
function headerLength(first8: Uint8Array, fileLength: number, what: string): number {
  if (fileLength < 8 || first8.length < 8) invalid(what, `${fileLength} bytes, shorter than the 8-byte header length`);
  const n = Number(new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true));
  if (n > MAX_HEADER_BYTES) invalid(what, `header length ${n} exceeds ${MAX_HEADER_BYTES} bytes`);
  if (8 + n > fileLength) invalid(what, `header length ${n} runs past the end of the file (${fileLength} bytes)`);
  return n;
}

/** Parses and checks a header's JSON, given the length of the data section that follows it. */
export function parseSafetensorsHeader(json: Uint8Array, dataLength: number, what = 'safetensors'): SafetensorsHeader {
  const fail = (why: string): never => invalid(what, why);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    fail(`the header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('the header is not a JSON object');
  // Objects without a prototype: a tensor or metadata key named "__proto__" is a name like any other.
  const metadata: Record<string, string> = Object.create(null);
  const tensors: Record<string, SafetensorsEntry> = Object.create(null);
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (value === null || typeof value !== 'object') fail(`${name}: the entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Partial<SafetensorsEntry>;
    if (typeof dtype !== 'string') fail(`${name}: no dtype`);
    const width = BYTES_PER_ELEMENT[dtype as string];
    if (width === undefined)
      fail(
        `${name}: dtype ${JSON.stringify(dtype)} is not a safetensors dtype (${Object.keys(BYTES_PER_ELEMENT).join(', ')})`,
      );
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`${name}: shape is not an array of non-negative integers`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(`${name}: data_offsets is not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) fail(`${name}: data_offsets [${begin}, ${end}] run past the data (${dataLength} bytes)`);
    // The element count, checked against the bytes before it can overflow: every element takes
    // at least one byte, so a count above the data's length is a lie whatever the dtype.
    const dims = shape as number[];
    const n = dims.includes(0) ? 0 : dims.reduce((a, d) => (a > dataLength ? a : a * d), 1);
    if (n > dataLength || end - begin !== width * n) {
      fail(`${name}: ${end - begin} bytes do not hold a ${dtype} tensor of shape ${shapeString(shape as number[])}`);
    }
    tensors[name] = { dtype: dtype as string, shape: [...(shape as number[])], data_offsets: [begin, end] };
  }
  // The tensors must tile the data exactly.
  const spans = Object.entries(tensors).sort(
    (a, b) => a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1],
  );
  let at = 0;
  for (const [name, e] of spans) {
    if (e.data_offsets[0] !== at)
      fail(`${name}: data_offsets start at ${e.data_offsets[0]}, expected ${at} (a hole or an overlap)`);
    at = e.data_offsets[1];
  }
  if (at !== dataLength) fail(`the tensors cover ${at} of ${dataLength} data bytes`);
  return { metadata, tensors };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** One entry's values as float32 (F32 copied; F64, F16 and BF16 converted) from its bytes. */
function decodeValues(bytes: Uint8Array, e: SafetensorsEntry): Float32Array {
  const n = numel(e.shape);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (e.dtype) {
    case 'F32':
      // The bytes were read into a fresh, aligned buffer of exactly 4 n bytes.
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case 'F64':
      return Float32Array.from({ length: n }, (_, i) => view.getFloat64(8 * i, true));
    case 'F16':
      return Float32Array.from({ length: n }, (_, i) => halfToFloat(view.getUint16(2 * i, true)));
    default: {
      const out = new Float32Array(n); // BF16: the top 16 bits of a float32
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
  }
}

function checkPath(file: unknown): asserts file is string {
  if (typeof file !== 'string' || file === '') throw new Error(`path: expected a file name, got ${describe(file)}`);
}

/** Opens a file for reading; errors name the path (a directory is refused by name). */
function openForReading(file: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new Error(`path: cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) {
    fs.closeSync(fd);
    throw new Error(
      `path: ${file} is ${stat.isDirectory() ? 'a directory' : 'not a regular file'}, not a safetensors file`,
    );
  }
  return { fd, size: stat.size };
}

/** Exactly `into.length` bytes from `position`, or an error naming the file. */
function readFully(fd: number, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.length) {
    const got = fs.readSync(fd, into, done, Math.min(into.length - done, 1 << 30), position + done);
    if (got === 0)
      invalid(file, `the file ended at byte ${position + done}, before the ${into.length} bytes its header promises`);
    done += got;
  }
}

/** The checked header of an open file, and where its data starts. */
function readHeaderOf(fd: number, size: number, file: string): { header: SafetensorsHeader; dataStart: number } {
  const first8 = new Uint8Array(8);
  if (size >= 8) readFully(fd, first8, 0, file);
  const n = headerLength(first8, size, file);
  const json = new Uint8Array(n);
  readFully(fd, json, 8, file);
  return { header: parseSafetensorsHeader(json, size - 8 - n, file), dataStart: 8 + n };
}

export interface LoadSafetensorsOptions {
  /** Where the tensors are made; the default device by default. */
  device?: Device;
}

/**
 * Reads a safetensors file: its tensors (as float32, on opts.device) and its metadata. The header
 * is checked against the file's length first, so nothing larger than the file is allocated; each
 * tensor's bytes are then read on their own.
 */
export function readSafetensors(
  file: string,
  opts?: LoadSafetensorsOptions,
): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  checkLittleEndian();
  checkPath(file);
  const { device } = checkOptions(opts, ['device']);
  if (device !== undefined) checkDevice(device, 'opts.device');
  const { fd, size } = openForReading(file);
  const tensors: Record<string, Tensor> = Object.create(null);
  try {
    const { header, dataStart } = readHeaderOf(fd, size, file);
    for (const [name, e] of Object.entries(header.tensors)) {
      if (!READABLE.includes(e.dtype)) {
        throw new Error(
          `${file}: tensor ${name} has dtype ${e.dtype}; fourierformer reads ${READABLE.join(', ')} (as float32)`,
        );
      }
      if (numel(e.shape) > MAX_ELEMENTS) {
        throw new Error(
          `${file}: tensor ${name} of shape ${shapeString(e.shape)} has more elements than a tensor holds (2^31 - 1)`,
        );
      }
      const bytes = new Uint8Array(e.data_offsets[1] - e.data_offsets[0]);
      readFully(fd, bytes, dataStart + e.data_offsets[0], file);
      tensors[name] = tensor(decodeValues(bytes, e), e.shape, { device });
    }
    return { tensors, metadata: header.metadata };
  } catch (err) {
    for (const t of Object.values(tensors)) t.dispose();
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads the tensors of a safetensors file (safetensors.torch.load_file), as float32. */
export function loadSafetensors(file: string, opts?: LoadSafetensorsOptions): Record<string, Tensor> {
  return readSafetensors(file, opts).tensors;
}

/** The header of a safetensors file (names, dtypes, shapes, metadata) without loading tensors. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  checkPath(file);
  const { fd, size } = openForReading(file);
  try {
    return readHeaderOf(fd, size, file).header;
  } finally {
    fs.closeSync(fd);
  }
}
