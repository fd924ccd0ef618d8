// Language-model batches as the paper's code makes them (Transformer-XL's LMOrderedIterator with a
// fixed length): the token stream is trimmed to a multiple of batchSize and cut into batchSize
// contiguous streams of n = floor(length / batchSize) tokens, stream b = tokens[b*n, (b+1)*n).
// Batch i holds positions [i*context, i*context + len) of every stream as input and the next
// position's token as target, len = min(context, n - 1 - i*context): the last batch may be
// shorter, and there are ceil((n - 1) / context) batches. Row b of a batch continues row b of
// the batch before it.

export interface LMBatch {
  /** [batchSize, length] row-major token ids (as floats, exact below 2^24). */
  input: Float32Array;
  /** [batchSize, length]: the id that follows each input position. */
  target: Float32Array;
  batchSize: number;
  length: number;
}

function checkPositiveInteger(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new Error(`${what}: expected a positive integer, got ${String(v)}`);
  return v;
}

export class LMBatches {
  readonly numBatches: number;
  private readonly tokens: Int32Array;
  private readonly batchSize: number;
  private readonly context: number;
  private readonly streamLength: number;

  constructor(tokens: Int32Array, batchSize: number, context: number) {
    if (!(tokens instanceof Int32Array)) throw new Error('tokens: expected an Int32Array of token ids');
    this.batchSize = checkPositiveInteger(batchSize, 'batchSize');
    this.context = checkPositiveInteger(context, 'context');
    this.streamLength = Math.floor(tokens.length / batchSize);
    if (this.streamLength < 2) {
      throw new Error(`tokens: ${tokens.length} tokens are too few for batchSize ${batchSize} (each of the ${batchSize} streams needs at least 2 tokens)`);
    }
    this.tokens = tokens;
    this.numBatches = Math.ceil((this.streamLength - 1) / context);
  }

  batch(i: number): LMBatch {
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.numBatches) throw new Error(`batch index: expected an integer in [0, ${this.numBatches}), got ${String(i)}`);
    const { batchSize, streamLength: n, tokens } = this;
    const start = i * this.context;
    const length = Math.min(this.context, n - 1 - start);
    const input = new Float32Array(batchSize * length);
    const target = new Float32Array(batchSize * length);
    for (let b = 0; b < batchSize; b++) {
      const from = b * n + start;
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
