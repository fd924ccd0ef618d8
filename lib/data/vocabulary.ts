// A word-level vocabulary for language modelling: token <-> id, with each token's training count.
// Ids are ordered by count, most frequent first (ties: the token seen first comes first), which
// is what adaptive softmax's cutoffs assume: the head cluster holds the ids below the first
// cutoff. Tokens named in `specials` come first, in the order given, as Transformer-XL's Vocab
// puts '<eos>' at id 0 for WikiText-103. '<unk>' and '<eos>' always exist; tokens rarer than
// minCount, or beyond maxSize, are left out and their counts added to '<unk>'.
export const UNK = '<unk>';
export const EOS = '<eos>';

export interface VocabularyOptions {
  /** Tokens seen fewer times than this map to '<unk>' (default 1: keep all). */
  minCount?: number;
  /** The largest vocabulary size, '<unk>', '<eos>' and the specials included (default: no limit). */
  maxSize?: number;
  /** Tokens given ids 0, 1, ... in this order, whatever their counts. */
  specials?: string[];
}

export interface VocabularyJSON {
  tokens: string[];
  counts: number[];
}

/** Throws unless minCount is a positive integer and maxSize an integer >= 2 (when given). */
export function checkVocabularyOptions(opts: VocabularyOptions, what = 'options'): void {
  if (opts === null || typeof opts !== 'object') throw new Error(`${what}: expected an object`);
  const { minCount, maxSize, specials } = opts;
  if (minCount !== undefined && (!Number.isSafeInteger(minCount) || minCount < 1)) {
    throw new Error(`${what}.minCount: expected a positive integer, got ${String(minCount)}`);
  }
  if (maxSize !== undefined && (!Number.isSafeInteger(maxSize) || maxSize < 2)) {
    throw new Error(
      `${what}.maxSize: expected an integer >= 2 (room for '${UNK}' and '${EOS}'), got ${String(maxSize)}`,
    );
  }
  if (specials !== undefined) {
    if (!Array.isArray(specials) || specials.some((s) => typeof s !== 'string' || s === '')) {
      throw new Error(`${what}.specials: expected an array of non-empty strings`);
    }
    if (new Set(specials).size !== specials.length) throw new Error(`${what}.specials: has duplicates`);
  }
}

function checkCount(c: unknown, what: string): number {
  if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0)
    throw new Error(`${what}: expected a non-negative integer count, got ${String(c)}`);
  return c;
}

export class Vocabulary {
  readonly size: number;
  readonly unkId: number;
  readonly eosId: number;
  private readonly tokens: readonly string[];
  private readonly counts: readonly number[];
  private readonly ids: ReadonlyMap<string, number>;

  private constructor(tokens: string[], counts: number[]) {
    const ids = new Map<string, number>();
    tokens.forEach((t, i) => {
      if (typeof t !== 'string' || t === '')
        throw new Error(`tokens[${i}]: expected a non-empty string, got ${JSON.stringify(t)}`);
      if (ids.has(t)) throw new Error(`tokens[${i}]: ${JSON.stringify(t)} appears twice (also at ${ids.get(t)})`);
      ids.set(t, i);
    });
    const unkId = ids.get(UNK);
    const eosId = ids.get(EOS);
    if (unkId === undefined || eosId === undefined) throw new Error(`tokens: a vocabulary needs '${UNK}' and '${EOS}'`);
    this.tokens = tokens;
    this.counts = counts;
    this.ids = ids;
    this.size = tokens.length;
    this.unkId = unkId;
    this.eosId = eosId;
  }

  /** The vocabulary of a corpus from its token counts (a Map, in the order tokens were first seen). */
  static fromCounts(counts: Map<string, number>, opts: VocabularyOptions = {}): Vocabulary {
    if (!(counts instanceof Map)) throw new Error('counts: expected a Map of token -> count');
    checkVocabularyOptions(opts);
    const minCount = opts.minCount ?? 1;
    const specials = opts.specials ?? [];
    const forced = new Set([...specials, UNK, EOS]);
    const maxSize = opts.maxSize ?? Infinity;
    if (forced.size > maxSize)
      throw new Error(
        `options.maxSize: ${maxSize} leaves no room for the ${forced.size} tokens always kept (${[...forced].join(' ')})`,
      );

    interface Entry {
      token: string;
      count: number;
      order: number;
    }
    const candidates: Entry[] = [];
    const forcedCounts = new Map<string, Entry>();
    let order = 0;
    for (const [token, c] of counts) {
      if (typeof token !== 'string' || token === '')
        throw new Error(`counts: keys must be non-empty strings, got ${JSON.stringify(token)}`);
      const entry = { token, count: checkCount(c, `counts.get(${JSON.stringify(token)})`), order: order++ };
      if (forced.has(token)) forcedCounts.set(token, entry);
      else candidates.push(entry);
    }
    for (const token of forced)
      if (!forcedCounts.has(token)) forcedCounts.set(token, { token, count: 0, order: order++ });

    const byCount = (a: Entry, b: Entry) => b.count - a.count || a.order - b.order;
    candidates.sort(byCount);
    let room = maxSize - forced.size;
    const kept: Entry[] = [];
    const unk = forcedCounts.get(UNK)!;
    for (const e of candidates) {
      if (e.count >= minCount && room > 0) {
        kept.push(e);
        room--;
      } else {
        unk.count += e.count;
      }
    }
    for (const [token, e] of forcedCounts) if (!specials.includes(token)) kept.push(e);
    kept.sort(byCount);
    const ordered = [...specials.map((s) => forcedCounts.get(s)!), ...kept];
    return new Vocabulary(
      ordered.map((e) => e.token),
      ordered.map((e) => e.count),
    );
  }

  /** The id of a token; unkId when it is not in the vocabulary. */
  id(token: string): number {
    if (typeof token !== 'string') throw new Error(`token: expected a string, got ${typeof token}`);
    return this.ids.get(token) ?? this.unkId;
  }

  private checkId(id: number, what: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.size)
      throw new Error(`${what}: expected an integer id in [0, ${this.size}), got ${String(id)}`);
  }

  /** The token with this id; throws when the id is out of range. */
  token(id: number): string {
    this.checkId(id, 'id');
    return this.tokens[id];
  }

  /** How often the token with this id occurred in the training data ('<unk>' includes the tokens it replaced). */
  count(id: number): number {
    this.checkId(id, 'id');
    return this.counts[id];
  }

  encode(tokens: string[]): Int32Array {
    if (!Array.isArray(tokens)) throw new Error('tokens: expected an array of strings');
    const out = new Int32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      if (typeof tokens[i] !== 'string') throw new Error(`tokens[${i}]: expected a string, got ${typeof tokens[i]}`);
      out[i] = this.ids.get(tokens[i]) ?? this.unkId;
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string[] {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number')
      throw new Error('ids: expected an array of ids');
    const out: string[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      this.checkId(ids[i], `ids[${i}]`);
      out[i] = this.tokens[ids[i]];
    }
    return out;
  }

  toJSON(): VocabularyJSON {
    return { tokens: [...this.tokens], counts: [...this.counts] };
  }

  /** The vocabulary toJSON() wrote, ids unchanged; throws on anything else. */
  static fromJSON(j: VocabularyJSON): Vocabulary {
    if (j === null || typeof j !== 'object' || !Array.isArray(j.tokens) || !Array.isArray(j.counts)) {
      throw new Error('vocabulary JSON: expected { tokens: string[], counts: number[] }');
    }
    if (j.tokens.length !== j.counts.length) {
      throw new Error(`vocabulary JSON: ${j.tokens.length} tokens but ${j.counts.length} counts`);
    }
    const counts = j.counts.map((c, i) => checkCount(c, `vocabulary JSON counts[${i}]`));
    return new Vocabulary([...j.tokens], counts);
  }
}
