// Language-model batches as the paper's code makes them (Transformer-XL's LMOrderedIterator with a
// fixed length): the token stream is trimmed to a multiple of batchSize and cut into batchSize
// contiguous streams of n = floor(length / batchSize) tokens, stream b = tokens[b*n, (b+1)*n).
// Batch i holds positions [i*context, i*context + len) of every stream as input and the next
// position's token as target, len = min(context, n - 1 - i*context): the last batch may be
// shorter, and there are ceil((n - 1) / context) batches. Row b of a batch continues row b of
// the batch before it. With `rows`, a batch holds only rows [from, to) of that batch: the shard
// one data-parallel rank reads (the streams are those of the whole batch, so the ranks' shards
// together are exactly the batch of one process).

export interface LMBatch {
  /** [batchSize, length] row-major token ids (as floats, exact below 2^24). */
  input: Float32Array;
  /** [batchSize, length]: the id that follows each input position. */
  target: Float32Array;
  batchSize: number;
  length: number;
}

function checkPositiveInteger(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new Error(`${what}: expected a positive integer, got ${String(v)}`);
  return v;
}

export interface LMBatchesOptions {
  /** Only rows [from, to) of each batch (a data-parallel shard); default all. */
  rows?: { from: number; to: number };
}

export class LMBatches {
  readonly numBatches: number;
  private readonly tokens: Int32Array;
  private readonly batchSize: number;
  private readonly context: number;
  private readonly streamLength: number;
  private readonly rows: { from: number; to: number };

  constructor(tokens: Int32Array, batchSize: number, context: number, opts: LMBatchesOptions = {}) {
    if (!(tokens instanceof Int32Array)) throw new Error('tokens: expected an Int32Array of token ids');
    this.batchSize = checkPositiveInteger(batchSize, 'batchSize');
    const rows = opts.rows ?? { from: 0, to: batchSize };
    if (
      !Number.isSafeInteger(rows.from) ||
      !Number.isSafeInteger(rows.to) ||
      rows.from < 0 ||
      rows.to > batchSize ||
      rows.from >= rows.to
    ) {
      throw new Error(
        `rows: expected 0 <= from < to <= batchSize ${batchSize}, got [${String(rows.from)}, ${String(rows.to)})`,
      );
    }
    this.rows = rows;
    this.context = checkPositiveInteger(context, 'context');
    this.streamLength = Math.floor(tokens.length / batchSize);
    if (this.streamLength < 2) {
      throw new Error(
        `tokens: ${tokens.length} tokens are too few for batchSize ${batchSize} (each of the ${batchSize} streams needs at least 2 tokens)`,
      );
    }
    this.tokens = tokens;
    this.numBatches = Math.ceil((this.streamLength - 1) / context);
  }

  batch(i: number): LMBatch {
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.numBatches)
      throw new Error(`batch index: expected an integer in [0, ${this.numBatches}), got ${String(i)}`);
    const { streamLength: n, tokens } = this;
    const { from: first, to } = this.rows;
    const batchSize = to - first;
    const start = i * this.context;
    const length = Math.min(this.context, n - 1 - start);
    const input = new Float32Array(batchSize * length);
    const target = new Float32Array(batchSize * length);
    for (let b = 0; b < batchSize; b++) {
      const from = (first + b) * n + start;
      for (let t = 0; t < length; t++) {
        input[b * length + t] = tokens[from + t];
        target[b * length + t] = tokens[from + t + 1];
      }
    }
    return { input, target, batchSize, length };
  }

  *[Symbol.iterator](): Iterator<LMBatch> {
    for (let i = 0; i < this.numBatches; i++) yield this.batch(i);
  }
}
