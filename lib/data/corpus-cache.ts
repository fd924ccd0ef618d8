// The encoded-corpus cache: an LMCorpus in one binary file, so that a corpus is tokenised once
// (WikiText-103 takes minutes to read; its cache loads in seconds).
//
//   8 bytes   'FFCORPUS'
//   4 bytes   format version (uint32 little-endian)
//   4 bytes   H, the header's length in bytes (uint32 LE)
//   H bytes   JSON: { key, name, vocab: { tokens, counts }, lengths: [train, valid, test] }
//   0-3 bytes zero padding, so the ids start at a multiple of 4
//   4 bytes   per id: train, valid, test as int32 LE
//   32 bytes  SHA-256 of everything before it
//
// The key says what the cache was built from (the source files' paths, sizes and modification
// times, and the options); a file whose key differs, whose checksum fails or whose contents do
// not add up is never used: the corpus is rebuilt and the file replaced. Writes are atomic (a
// temporary file in the same folder, fsync, rename), so a crash leaves the old file or the new.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { LMCorpus } from './lm-corpus';
import { Vocabulary, VocabularyJSON } from './vocabulary';

const MAGIC = 'FFCORPUS';
const VERSION = 1;
const PREFIX_BYTES = 16;
const HASH_BYTES = 32;

/** What identifies a cached corpus: compared as JSON, so build it in a fixed order. */
export interface CacheKey {
  kind: string;
  files: { path: string; size: number; mtimeNs: string }[];
  options: Record<string, number | null>;
}

/** The key for a corpus built from these files with these options (paths made absolute). */
export function cacheKey(kind: string, files: string[], options: Record<string, number | null>): CacheKey {
  return {
    kind,
    files: files.map((f) => {
      const st = fs.statSync(f, { bigint: true });
      return { path: path.resolve(f), size: Number(st.size), mtimeNs: st.mtimeNs.toString() };
    }),
    options,
  };
}

/** The cache file for a key: one per kind, source paths and options, so a stale file is replaced. */
export function cacheFile(cacheDir: string, key: CacheKey): string {
  const identity = JSON.stringify([key.kind, key.files.map((f) => f.path), key.options]);
  const digest = crypto.createHash('sha256').update(identity).digest('hex').slice(0, 16);
  return path.join(cacheDir, `${key.kind}-${digest}.ffcorpus`);
}

export type CacheStatus = 'hit' | 'absent' | 'stale' | 'corrupt';

interface Header {
  key: unknown;
  name: unknown;
  vocab: VocabularyJSON;
  lengths: unknown;
}

function readWhole(file: string): Uint8Array {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const bytes = new Uint8Array(new ArrayBuffer(size));
    let at = 0;
    while (at < size) {
      const n = fs.readSync(fd, bytes, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    return at === size ? bytes : bytes.subarray(0, at);
  } finally {
    fs.closeSync(fd);
  }
}

function parse(bytes: Uint8Array, key: CacheKey): { status: CacheStatus; corpus: LMCorpus | null } {
  const corrupt = { status: 'corrupt' as const, corpus: null };
  if (bytes.length < PREFIX_BYTES + HASH_BYTES || Buffer.from(bytes.subarray(0, 8)).toString('latin1') !== MAGIC)
    return corrupt;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8, true) !== VERSION) return { status: 'stale', corpus: null };
  const body = bytes.subarray(0, bytes.length - HASH_BYTES);
  const hash = crypto.createHash('sha256').update(body).digest();
  if (!hash.equals(bytes.subarray(bytes.length - HASH_BYTES))) return corrupt;
  const headerBytes = view.getUint32(12, true);
  if (PREFIX_BYTES + headerBytes > body.length) return corrupt;
  let header: Header;
  try {
    header = JSON.parse(
      Buffer.from(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes)).toString('utf8'),
    ) as Header;
  } catch {
    return corrupt;
  }
  if (JSON.stringify(header.key) !== JSON.stringify(key)) return { status: 'stale', corpus: null };
  const lengths = header.lengths;
  if (
    typeof header.name !== 'string' ||
    !Array.isArray(lengths) ||
    lengths.length !== 3 ||
    !lengths.every((n) => Number.isSafeInteger(n) && n >= 0)
  )
    return corrupt;
  const start = Math.ceil((PREFIX_BYTES + headerBytes) / 4) * 4;
  const [nTrain, nValid, nTest] = lengths as number[];
  if (start + 4 * (nTrain + nValid + nTest) !== body.length || bytes.byteOffset % 4 !== 0) return corrupt;
  let vocab: Vocabulary;
  try {
    vocab = Vocabulary.fromJSON(header.vocab);
  } catch {
    return corrupt;
  }
  const ids = new Int32Array(bytes.buffer, bytes.byteOffset + start, nTrain + nValid + nTest);
  for (let i = 0; i < ids.length; i++) if (ids[i] < 0 || ids[i] >= vocab.size) return corrupt;
  return {
    status: 'hit',
    corpus: {
      name: header.name,
      vocab,
      train: ids.subarray(0, nTrain),
      valid: ids.subarray(nTrain, nTrain + nValid),
      test: ids.subarray(nTrain + nValid),
    },
  };
}

/** The cached corpus when the file exists, is intact and was built for this key. */
export function readCorpusCache(file: string, key: CacheKey): { status: CacheStatus; corpus: LMCorpus | null } {
  let bytes: Uint8Array;
  try {
    bytes = readWhole(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'absent', corpus: null };
    return { status: 'corrupt', corpus: null };
  }
  return parse(bytes, key);
}

/** Writes the corpus to file atomically; throws, naming the file, when it cannot. */
export function writeCorpusCache(file: string, key: CacheKey, corpus: LMCorpus): void {
  const header = Buffer.from(
    JSON.stringify({
      key,
      name: corpus.name,
      vocab: corpus.vocab.toJSON(),
      lengths: [corpus.train.length, corpus.valid.length, corpus.test.length],
    }),
  );
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(VERSION, 8);
  prefix.writeUInt32LE(header.length, 12);
  const pad = Buffer.alloc((4 - ((PREFIX_BYTES + header.length) % 4)) % 4);
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  const hash = crypto.createHash('sha256');
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(tmp, 'w');
    try {
      const write = (b: Uint8Array) => {
        hash.update(b);
        let at = 0;
        while (at < b.length) at += fs.writeSync(fd, b, at, b.length - at);
      };
      write(prefix);
      write(header);
      write(pad);
      for (const ids of [corpus.train, corpus.valid, corpus.test])
        write(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
      const digest = hash.digest();
      let at = 0;
      while (at < digest.length) at += fs.writeSync(fd, digest, at, digest.length - at);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new Error(
      `corpus cache ${file}: cannot write it (${(e as Error).message}); pass another cacheDir, or cacheDir: false for no cache`,
      { cause: e },
    );
  }
}

/** The corpus from the cache when it holds this key's, else built and written to the cache. */
export function withCorpusCache(cacheDir: string | false, key: CacheKey, build: () => LMCorpus): LMCorpus {
  if (cacheDir === false) return build();
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.accessSync(cacheDir, fs.constants.W_OK);
  } catch (e) {
    throw new Error(
      `cacheDir ${cacheDir}: cannot write there (${(e as Error).message}); pass another cacheDir, or cacheDir: false for no cache`,
      { cause: e },
    );
  }
  const file = cacheFile(cacheDir, key);
  const cached = readCorpusCache(file, key);
  if (cached.corpus) return cached.corpus;
  const corpus = build();
  writeCorpusCache(file, key, corpus);
  return corpus;
}
