// The IDX file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte
// magic (0, 0, type, number of dimensions), one big-endian uint32 per dimension, then the values
// row-major. Only type 0x08 (unsigned bytes) is used by those datasets and read here. Files may be
// gzip-compressed (recognised by the gzip magic, not the name) and are inflated with node:zlib.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UNSIGNED_BYTE = 0x08;

/** The bytes of a file, inflated if it is gzip-compressed; errors name the file. */
function readMaybeGzip(path: string): Buffer {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read the file (${(e as Error).message})`, { cause: e });
  }
  if (raw.length < 2 || raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  try {
    return zlib.gunzipSync(raw);
  } catch (e) {
    throw new Error(`${path}: not a valid gzip file (${(e as Error).message})`, { cause: e });
  }
}

/** Parses IDX bytes; `path` names the source in errors. `expectDims` checks the number of dimensions. */
export function parseIdx(bytes: Uint8Array, path: string, expectDims?: number): IdxArray {
  if (bytes.length < 4) throw new Error(`${path}: ${bytes.length} bytes is too short for an IDX header`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new Error(`${path}: not an IDX file (magic starts ${bytes[0]}, ${bytes[1]}; expected 0, 0)`);
  }
  if (bytes[2] !== UNSIGNED_BYTE) {
    throw new Error(
      `${path}: IDX value type 0x${bytes[2].toString(16)} is not supported (expected 0x08, unsigned bytes)`,
    );
  }
  const rank = bytes[3];
  if (rank === 0) throw new Error(`${path}: IDX header declares 0 dimensions`);
  if (expectDims !== undefined && rank !== expectDims) {
    throw new Error(`${path}: expected ${expectDims} IDX dimensions, the header declares ${rank}`);
  }
  const headerSize = 4 + 4 * rank;
  if (bytes.length < headerSize)
    throw new Error(`${path}: truncated IDX header (${bytes.length} bytes, ${headerSize} needed)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const body = bytes.length - headerSize;
  if (body !== count) {
    throw new Error(
      `${path}: IDX dimensions [${dims.join(', ')}] need ${count} bytes of data, the file has ${body}` +
        (body < count ? ' (truncated)' : ' (trailing bytes)'),
    );
  }
  return { dims, data: bytes.subarray(headerSize) };
}

/** Reads an IDX file of unsigned bytes (plain or gzip-compressed). */
export function readIdx(path: string, expectDims?: number): IdxArray {
  return parseIdx(readMaybeGzip(path), path, expectDims);
}
