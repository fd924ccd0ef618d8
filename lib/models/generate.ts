// Text generation from a language model (LanguageModel.generate), one sequence at a time:
//   1. the prompt's last `context` tokens (the older ones are dropped and counted in the result)
//      go through the causal forward pass, which fills a key-value cache (lib/nn/kv-cache.ts);
//   2. each step draws a token from the last position's log-probabilities (lib/models/
//      sampling.ts), then feeds that one token: a query row against the cached keys, its
//      position the next table row, its keys and values appended to the cache;
//   3. when the window holds `context` tokens and one more comes, the oldest `shift` tokens are
//      dropped and the cache is rebuilt from the window that is left, by the causal pass (the
//      positions are absolute within the window, so cached keys cannot be moved: the same choice
//      as Hugging Face's recomputation for models without relative positions). shift 1 (the
//      default) keeps every prediction reading the last `context` tokens, as the sliding-window
//      evaluation does, at the cost of a full pass per token once the context is full; a larger
//      shift rebuilds once per `shift` tokens.
// useCache: false recomputes the whole window at every token instead (the same tokens, up to
// float rounding: the reference for the cache and its speed). The model runs in eval mode (no
// dropout), without grad, each step inside tidy(); its train/eval mode is restored at the end.
import { noGrad } from '../autograd/grad-mode';
import type { Device } from '../native';
import { KVCache } from '../nn/kv-cache';
import { defaultGenerator, Generator } from '../random';
import { tidy } from '../scope';
import { tensor, Tensor } from '../tensor';
import { resolveSampling, sampleToken, SamplingOptions } from './sampling';

export interface GenerateOptions extends SamplingOptions {
  /** How many tokens to add (100 by default). */
  maxNewTokens?: number;
  /** The draws' seed (a new Generator); else `generator`; else the default generator (ff.manualSeed). */
  seed?: number;
  generator?: Generator;
  /** Generation stops after any of these ids (it is included in the result). */
  stopIds?: number[];
  /** Tokens dropped from the window each time it passes the context (1 by default; see the header). */
  shift?: number;
  /** Whether to keep a key-value cache (true by default); false recomputes the window per token. */
  useCache?: boolean;
  /**
   * With the cache: each token through the blocks' fused decoding step where they have one
   * (true by default); false: op by op.
   */
  fusedStep?: boolean;
  /** Called with each new token as soon as it is drawn (streaming). */
  onToken?: (id: number) => void;
}

export interface GenerateResult {
  /** The new tokens, in order. */
  tokens: number[];
  /** How many of the prompt's first tokens were dropped because it was longer than the context. */
  promptDropped: number;
  /** How many tokens left the window as the text passed the context (each reread by a rebuild). */
  windowDropped: number;
  /** Why generation ended: maxNewTokens reached, or a stop id drawn. */
  stoppedBy: 'length' | 'stop';
}

function checkInt(v: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new Error(
      `${what}: expected an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? 'inf' : max}], got ${String(v)}`,
    );
  }
  return v;
}

/** The prompt as an array of ids, each checked against the vocabulary. */
function checkPrompt(prompt: ArrayLike<number>, vocabSize: number): number[] {
  if (prompt === null || typeof prompt !== 'object' || typeof prompt.length !== 'number') {
    throw new Error('promptIds: expected an array of token ids');
  }
  if (prompt.length === 0)
    throw new Error(
      'promptIds: the prompt is empty; expected at least one token id (e.g. the <eos> id, to start a sentence)',
    );
  return Array.from({ length: prompt.length }, (_, i) => checkInt(prompt[i], `promptIds[${i}]`, 0, vocabSize - 1));
}

/**
 * What generate() uses of a language model: LanguageModel has it (declared here rather than
 * imported, since language-model.ts imports generate() for its method).
 */
export interface CausalLanguageModel {
  readonly config: { readonly context: number; readonly vocabSize: number };
  readonly device: Device;
  readonly blocks: { readonly length: number };
  readonly training: boolean;
  logProbs(ids: Tensor, opts: { cache?: KVCache; last?: boolean; fusedStep?: boolean }): Tensor;
  train(mode: boolean): unknown;
  eval(): unknown;
}

export function generate(
  model: CausalLanguageModel,
  promptIds: ArrayLike<number>,
  opts: GenerateOptions = {},
): GenerateResult {
  if (opts === null || typeof opts !== 'object') throw new Error('opts: expected an object');
  const { context, vocabSize } = model.config;
  const prompt = checkPrompt(promptIds, vocabSize);
  const sampling = resolveSampling(opts);
  const maxNew = checkInt(opts.maxNewTokens ?? 100, 'maxNewTokens', 1);
  const shift = checkInt(opts.shift ?? 1, 'shift', 1, context);
  const stopIds = opts.stopIds ?? [];
  if (!Array.isArray(stopIds)) throw new Error('stopIds: expected an array of token ids');
  const stops = new Set(stopIds.map((id, i) => checkInt(id, `stopIds[${i}]`, 0, vocabSize - 1)));
  if (opts.onToken !== undefined && typeof opts.onToken !== 'function') throw new Error('onToken: expected a function');
  if (opts.generator !== undefined && !(opts.generator instanceof Generator))
    throw new Error('generator: expected an ff.Generator');
  const generator = opts.seed !== undefined ? new Generator(opts.seed) : (opts.generator ?? defaultGenerator);
  const useCache = opts.useCache ?? true;
  if (typeof useCache !== 'boolean') throw new Error(`useCache: expected a boolean, got ${String(useCache)}`);
  const fusedStep = opts.fusedStep ?? true;
  if (typeof fusedStep !== 'boolean') throw new Error(`fusedStep: expected a boolean, got ${String(fusedStep)}`);

  const device = model.device;
  const cache = useCache ? new KVCache(model.blocks.length) : null;
  /** The log-probabilities after the last of `ids`, read with the cache (which they continue) or from scratch. */
  const next = (ids: number[]): Float32Array =>
    tidy(() => {
      const input = tensor(ids, [1, ids.length], { device });
      return model.logProbs(input, { cache: cache ?? undefined, last: true, fusedStep }).toFloat32Array();
    });

  let window = prompt.slice(-context);
  const result: GenerateResult = {
    tokens: [],
    promptDropped: prompt.length - window.length,
    windowDropped: 0,
    stoppedBy: 'length',
  };
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      let scores = next(window);
      for (;;) {
        const id = sampleToken(scores, sampling, generator);
        result.tokens.push(id);
        opts.onToken?.(id);
        if (stops.has(id)) {
          result.stoppedBy = 'stop';
          return;
        }
        if (result.tokens.length === maxNew) return;
        window.push(id);
        if (window.length <= context && cache !== null) {
          scores = next([id]);
          continue;
        }
        if (window.length > context) {
          window = window.slice(shift);
          result.windowDropped += shift;
        }
        cache?.reset();
        scores = next(window);
      }
    });
  } finally {
    cache?.dispose();
    model.train(wasTraining);
  }
  return result;
}
