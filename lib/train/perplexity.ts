// Language-model perplexity with the paper's sliding window. A window reads `context` tokens
// [start, start + context) and predicts the next token at each position (targets start + 1 ..
// start + context). The first window scores all its positions; each later one starts `stride`
// tokens further and scores only its last `stride` positions, so every scored prediction after
// the first window reads at least context - stride + 1 tokens (stride 1, the paper's: the full
// context; stride = context: non-overlapping windows). When the tokens do not
// end on a stride, a last window ends at the final token and scores the positions not yet
// scored. Every token but the first is scored exactly once:
//     nll = mean over scored tokens of -log p(token | window),   perplexity = exp(nll).
// Windows run batchSize at a time (the same numbers as one at a time, up to float rounding), in
// eval mode, without grad, inside tidy(): memory() is unchanged afterwards. With `distributed`,
// the batches of windows are dealt to the ranks in turn and their sums added up over the ranks
// (lib/distributed): every rank returns the same result, each having done 1/worldSize of the work.
import { noGrad } from '../autograd/grad-mode';
import * as dist from '../distributed';
import type { LanguageModel } from '../models/language-model';
import { tidy } from '../scope';
import { tensor } from '../tensor';

export interface SlidingWindow {
  /** The first input token of the window. */
  start: number;
  /** The first position (in [0, context)) whose prediction is scored; the rest of the window is scored too. */
  scoreFrom: number;
}

export interface PerplexityOptions {
  context: number;
  /** How far each window advances (1 by default, the paper's). */
  stride?: number;
  /** Windows per forward pass (16 by default). */
  batchSize?: number;
  /** Evaluate only the first maxTokens tokens. */
  maxTokens?: number;
  /** Called after each batch with the windows done and their total. */
  onProgress?: (done: number, total: number) => void;
  /** Split the batches over the ranks of a distributed run and sum their scores (every rank must call it). */
  distributed?: boolean;
}

export interface PerplexityResult {
  /** The mean negative log-likelihood (nats) over the scored tokens. */
  nll: number;
  perplexity: number;
  /** How many tokens were scored (the number of tokens minus one). */
  tokens: number;
}

function checkPositive(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    throw new Error(`${what}: expected a positive integer, got ${String(v)}`);
  return v;
}

/** The windows that score tokens 1 .. numTokens - 1 of a stream once each (see the header). */
export function slidingWindows(numTokens: number, context: number, stride = 1): SlidingWindow[] {
  checkPositive(context, 'context');
  checkPositive(stride, 'stride');
  if (stride > context) throw new Error(`stride: expected at most context ${context}, got ${stride}`);
  if (!Number.isInteger(numTokens) || numTokens < context + 1) {
    throw new Error(
      `numTokens: a window of context ${context} needs at least ${context + 1} tokens (inputs and the next token), got ${String(numTokens)}`,
    );
  }
  const last = numTokens - 1 - context;
  const windows: SlidingWindow[] = [{ start: 0, scoreFrom: 0 }];
  let start = 0;
  while (start < last) {
    const next = Math.min(start + stride, last);
    windows.push({ start: next, scoreFrom: context - (next - start) });
    start = next;
  }
  return windows;
}

/** The perplexity of `model` on a token stream, with the sliding window above. */
export function evaluatePerplexity(
  model: LanguageModel,
  tokens: Int32Array,
  opts: PerplexityOptions,
): PerplexityResult {
  if (!(tokens instanceof Int32Array)) throw new Error('tokens: expected an Int32Array of token ids');
  if (opts === null || typeof opts !== 'object') throw new Error('opts: expected an object with context');
  const context = checkPositive(opts.context, 'opts.context');
  const batchSize = checkPositive(opts.batchSize ?? 16, 'opts.batchSize');
  const stream =
    opts.maxTokens === undefined ? tokens : tokens.subarray(0, checkPositive(opts.maxTokens, 'opts.maxTokens'));
  const windows = slidingWindows(stream.length, context, opts.stride ?? 1);
  const wasTraining = model.training;
  model.eval();
  let total = 0;
  let count = 0;
  const ranks = opts.distributed ? dist.worldSize() : 1;
  try {
    for (let b = 0; b < windows.length; b += batchSize) {
      if ((b / batchSize) % ranks !== dist.rank() % ranks) continue;
      const batch = windows.slice(b, b + batchSize);
      const input = new Float32Array(batch.length * context);
      const target = new Float32Array(batch.length * context);
      batch.forEach((w, r) => {
        input.set(stream.subarray(w.start, w.start + context), r * context);
        target.set(stream.subarray(w.start + 1, w.start + context + 1), r * context);
      });
      const nll = noGrad(() =>
        tidy(() => {
          const device = model.device;
          const shape = [batch.length, context];
          return model
            .loss(tensor(input, shape, { device }), tensor(target, shape, { device }), { reduction: 'none' })
            .toFloat32Array();
        }),
      );
      batch.forEach((w, r) => {
        for (let t = w.scoreFrom; t < context; t++) total += nll[r * context + t];
        count += context - w.scoreFrom;
      });
      opts.onProgress?.(b + batch.length, windows.length);
    }
  } finally {
    model.train(wasTraining);
  }
  if (ranks > 1) [total, count] = dist.allReduceNumbers([total, count], 'sum', 'the perplexity sums of the ranks');
  const mean = total / count;
  return { nll: mean, perplexity: Math.exp(mean), tokens: count };
}
