// A language-modelling corpus (a vocabulary and three encoded token streams) and what the
// loaders (wikitext.ts, brown.ts) share to build one: a line reader that streams a file in
// chunks (WikiText-103's training file is 540 MB: the text is never held whole), and encoders
// that collect ids in chunked storage. The training stream is read once: each new token gets a
// provisional id in order of first appearance while its count grows; at the end the vocabulary
// is built from the counts and the provisional ids are rewritten, chunk by chunk, into the final
// array (so the ids are held twice only one chunk at a time).
import * as fs from 'fs';
import { checkVocabularyOptions, EOS, Vocabulary } from './vocabulary';

export interface LMCorpus {
  name: string;
  vocab: Vocabulary;
  train: Int32Array;
  valid: Int32Array;
  test: Int32Array;
}

/** Called as a load advances: bytes of source text read so far, and in all. */
export type ProgressCallback = (bytesDone: number, bytesTotal: number) => void;

export interface CorpusOptions {
  /** Tokens seen fewer times in the training split map to '<unk>' (default 1). */
  minCount?: number;
  /** The largest vocabulary size, '<unk>' and '<eos>' included (default: no limit). */
  maxSize?: number;
  /** Where the encoded corpus is cached; false: no cache. */
  cacheDir?: string | false;
  onProgress?: ProgressCallback;
}

/** Throws on a bad option, before any file is read. */
export function checkCorpusOptions(opts: CorpusOptions): void {
  if (opts === null || typeof opts !== 'object') throw new Error('options: expected an object');
  checkVocabularyOptions({ minCount: opts.minCount, maxSize: opts.maxSize });
  if (
    opts.cacheDir !== undefined &&
    opts.cacheDir !== false &&
    (typeof opts.cacheDir !== 'string' || opts.cacheDir === '')
  ) {
    throw new Error(`options.cacheDir: expected a folder name or false, got ${JSON.stringify(opts.cacheDir)}`);
  }
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function')
    throw new Error('options.onProgress: expected a function');
}

const READ_BYTES = 1 << 22;
const MAX_LINE = 1 << 26;

/**
 * Calls onLine for every line of a UTF-8 text file ('\n' ends a line; a last line without one
 * counts), reading it in chunks; onBytes gets the bytes read by each chunk. Throws, naming the
 * file, when it is not valid UTF-8 or has a line over 64 Mi characters (not a text file of lines).
 */
export function forEachLine(file: string, onLine: (line: string) => void, onBytes?: (n: number) => void): void {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const buf = Buffer.alloc(READ_BYTES);
  const fd = fs.openSync(file, 'r');
  let offset = 0;
  let rest = '';
  const decode = (bytes: Uint8Array | undefined): string => {
    try {
      return bytes ? decoder.decode(bytes, { stream: true }) : decoder.decode();
    } catch {
      throw new Error(
        `${file}: not UTF-8 text (an invalid byte sequence before byte ${offset}); expected a plain-text token file`,
      );
    }
  };
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, READ_BYTES, null);
      offset += n;
      const text = rest + decode(n > 0 ? buf.subarray(0, n) : undefined);
      const lines = text.split('\n');
      rest = n > 0 ? lines.pop()! : '';
      if (rest.length > MAX_LINE)
        throw new Error(
          `${file}: a line longer than ${MAX_LINE} characters before byte ${offset}; expected a text file of lines`,
        );
      if (n === 0 && lines[lines.length - 1] === '') lines.pop();
      for (const line of lines) onLine(line);
      if (n === 0) return;
      onBytes?.(n);
    }
  } finally {
    fs.closeSync(fd);
  }
}

const CHUNK = 1 << 20;

/** Int32 values appended in chunks of 1 Mi, so growing never copies what is already stored. */
class IdChunks {
  private full: Int32Array[] = [];
  private current = new Int32Array(CHUNK);
  private used = 0;

  push(id: number): void {
    if (this.used === CHUNK) {
      this.full.push(this.current);
      this.current = new Int32Array(CHUNK);
      this.used = 0;
    }
    this.current[this.used++] = id;
  }

  get length(): number {
    return this.full.length * CHUNK + this.used;
  }

  /** One array of everything pushed, each value passed through map when given; empties this. */
  take(map?: Int32Array): Int32Array {
    const out = new Int32Array(this.length);
    const parts = [...this.full, this.current.subarray(0, this.used)];
    this.full = [];
    this.current = new Int32Array(0);
    this.used = 0;
    let at = 0;
    for (let p = 0; p < parts.length; p++) {
      const part = parts[p];
      if (map) for (let i = 0; i < part.length; i++) out[at + i] = map[part[i]];
      else out.set(part, at);
      at += part.length;
      parts[p] = new Int32Array(0);
    }
    return out;
  }
}

/** Collects the training split and builds the vocabulary from its counts. */
export class TrainEncoder {
  private readonly provisional = new Map<string, number>();
  private readonly tokens: string[] = [];
  private readonly counts: number[] = [];
  private readonly ids = new IdChunks();
  private words = 0;

  /** Appends a line's tokens and '<eos>'. */
  pushLine(tokens: string[]): void {
    for (const t of tokens) this.push(t);
    this.push(EOS);
    this.words += tokens.length;
  }

  private push(token: string): void {
    let id = this.provisional.get(token);
    if (id === undefined) {
      id = this.tokens.length;
      this.provisional.set(token, id);
      this.tokens.push(token);
      this.counts.push(0);
    }
    this.counts[id]++;
    this.ids.push(id);
  }

  /** The number of tokens other than '<eos>' pushed so far. */
  get wordCount(): number {
    return this.words;
  }

  /** The vocabulary (Transformer-XL's order: '<eos>' first, then by count) and the encoded split. */
  finish(opts: { minCount?: number; maxSize?: number }): { vocab: Vocabulary; ids: Int32Array } {
    const counts = new Map<string, number>();
    this.tokens.forEach((t, i) => counts.set(t, this.counts[i]));
    const vocab = Vocabulary.fromCounts(counts, { ...opts, specials: [EOS] });
    const remap = new Int32Array(this.tokens.length);
    this.tokens.forEach((t, i) => (remap[i] = vocab.id(t)));
    return { vocab, ids: this.ids.take(remap) };
  }
}

/** Encodes a held-out split with a finished vocabulary (unknown tokens become '<unk>'). */
export class SplitEncoder {
  private readonly ids = new IdChunks();
  private words = 0;

  constructor(private readonly vocab: Vocabulary) {}

  /** Appends a line's tokens and '<eos>'. */
  pushLine(tokens: string[]): void {
    for (const t of tokens) this.ids.push(this.vocab.id(t));
    this.ids.push(this.vocab.eosId);
    this.words += tokens.length;
  }

  /** The number of tokens other than '<eos>' pushed so far. */
  get wordCount(): number {
    return this.words;
  }

  finish(): Int32Array {
    return this.ids.take();
  }
}
