// WikiText-103 (or -2) from its token files, read as the paper's code reads them (Transformer-XL's
// Corpus for 'wt103'): every line of a file, blank ones included, becomes its whitespace-separated
// tokens followed by '<eos>'; case is kept; the vocabulary comes from the training file alone,
// '<eos>' first and the rest by count. WikiText already writes rare words as '<unk>' (and numbers
// as 1 @,@ 000 or 3 @.@ 5): those are ordinary tokens here. The encoded corpus is cached.
import * as fs from 'fs';
import * as path from 'path';
import { cacheKey, withCorpusCache } from './corpus-cache';
import { checkCorpusOptions, CorpusOptions, forEachLine, LMCorpus, SplitEncoder, TrainEncoder } from './lm-corpus';
import { tokenizeLine } from './tokenize';

export const WIKITEXT_FILES = ['wiki.train.tokens', 'wiki.valid.tokens', 'wiki.test.tokens'] as const;

export interface WikiTextOptions extends CorpusOptions {
  /** Default: <dir>/.fourierformer-cache. */
  cacheDir?: string | false;
}

function checkDir(dir: string): string[] {
  if (typeof dir !== 'string' || dir === '') throw new Error('dir: expected the path of a WikiText folder');
  const expected = `a folder holding ${WIKITEXT_FILES.join(', ')} (WikiText-103/2 format)`;
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new Error(`WikiText folder ${dir}: does not exist; expected ${expected}`);
  }
  if (!st.isDirectory()) throw new Error(`WikiText folder ${dir}: is not a folder; expected ${expected}`);
  return WIKITEXT_FILES.map((name) => {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) throw new Error(`${file}: missing; a WikiText folder holds ${WIKITEXT_FILES.join(', ')}`);
    if (!fs.statSync(file).isFile())
      throw new Error(`${file}: is not a file; a WikiText folder holds the token files ${WIKITEXT_FILES.join(', ')}`);
    return file;
  });
}

/**
 * dir holds wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens; throws naming whatever is
 * missing or malformed.
 */
export function loadWikiText(dir: string, opts: WikiTextOptions = {}): LMCorpus {
  checkCorpusOptions(opts);
  const files = checkDir(dir);
  const { minCount, maxSize, onProgress } = opts;
  const cacheDir = opts.cacheDir ?? path.join(dir, '.fourierformer-cache');
  const total = files.reduce((s, f) => s + fs.statSync(f).size, 0);
  const key = cacheKey('wikitext', files, { minCount: minCount ?? 1, maxSize: maxSize ?? null });
  let done = 0;
  const onBytes = (n: number) => {
    done += n;
    onProgress?.(done, total);
  };
  onProgress?.(0, total);
  const corpus = withCorpusCache(cacheDir, key, () => {
    const train = new TrainEncoder();
    forEachLine(files[0], (line) => train.pushLine(tokenizeLine(line)), onBytes);
    if (train.wordCount === 0)
      throw new Error(`${files[0]}: has no tokens; expected WikiText's tokenised training text`);
    const { vocab, ids } = train.finish({ minCount, maxSize });
    const encodeSplit = (file: string): Int32Array => {
      const split = new SplitEncoder(vocab);
      forEachLine(file, (line) => split.pushLine(tokenizeLine(line)), onBytes);
      if (split.wordCount === 0) throw new Error(`${file}: has no tokens; expected WikiText's tokenised text`);
      return split.finish();
    };
    return {
      name: path.basename(path.resolve(dir)),
      vocab,
      train: ids,
      valid: encodeSplit(files[1]),
      test: encodeSplit(files[2]),
    };
  });
  onProgress?.(total, total);
  return corpus;
}
