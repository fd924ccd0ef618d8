// Drawing the next token from a row of scores (log-probabilities or logits: a constant per row
// changes nothing), as Hugging Face's generate applies its warpers:
//   temperature 0     greedy: the highest score (the lowest id among equals); nothing is drawn
//   temperature T     weights w_i = exp((s_i - max s) / T), in float64
//   topK k            only the k highest scores stay (the lower id first among equals)
//   topP p            then only the smallest set of the largest weights whose sum reaches
//                     p of the total (the nucleus), in order of weight, the lower id first
// and one uniform draw u in [0, 1) (53 random bits from two uint32 of the Philox generator,
// lib/random.ts) picks the token whose cumulative weight first passes u x total. Everything runs
// on the host from the scores read back, so a seed gives the same tokens on every backend
// whenever the backends' scores agree (they differ by float rounding, ~1e-6 relative: a draw
// would have to fall within that of a boundary between two tokens to differ).
// Cost per token: O(V) for the weights; top-k O(V + k log k); top-p sorts only the weights above
// a threshold found by halving passes (each O(V)), not the whole vocabulary.
import type { Generator } from '../random';

export interface SamplingOptions {
  /** Divides the scores before the softmax; 0: greedy (argmax). 1 by default. */
  temperature?: number;
  /** Keep only the k most likely tokens (a positive integer); all by default. */
  topK?: number;
  /** Keep only the nucleus of probability p, in (0, 1]; 1 (all) by default. */
  topP?: number;
}

export interface ResolvedSampling {
  temperature: number;
  topK: number | null;
  topP: number;
}

/** The options with their defaults, each checked (errors name the option). */
export function resolveSampling(o: SamplingOptions): ResolvedSampling {
  const temperature = o.temperature ?? 1;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
    throw new Error(`temperature: expected a finite number >= 0 (0: greedy), got ${String(temperature)}`);
  }
  const topK = o.topK ?? null;
  if (topK !== null && (typeof topK !== 'number' || !Number.isSafeInteger(topK) || topK < 1)) {
    throw new Error(`topK: expected a positive integer (how many of the most likely tokens are kept; leave it out to keep all), got ${String(topK)}`);
  }
  const topP = o.topP ?? 1;
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) {
    throw new Error(`topP: expected a probability in (0, 1] (1 keeps every token), got ${String(topP)}`);
  }
  return { temperature, topK, topP };
}

/** A uniform number in [0, 1) with 53 random bits. */
function uniform53(generator: Generator): number {
  const [a, b] = generator.uint32(2);
  return ((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992;
}

/** The id of the highest score, the lowest id among equals. */
export function argmax(scores: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

/** Whether id a ranks before id b: the higher value, then the lower id. */
const before = (value: ArrayLike<number>, a: number, b: number) => value[a] > value[b] || (value[a] === value[b] && a < b);

/** The k highest-scoring ids, best first. */
function topKIds(scores: ArrayLike<number>, k: number): number[] {
  const kept: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    if (kept.length === k && !before(scores, i, kept[k - 1])) continue;
    let lo = 0, hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(scores, kept[mid], i)) lo = mid + 1;
      else hi = mid;
    }
    kept.splice(lo, 0, i);
    if (kept.length > k) kept.pop();
  }
  return kept;
}

/** The nucleus of ids (weights w): the largest weights, best first, until their sum reaches p x total. */
function nucleus(ids: number[], w: Float64Array, total: number, p: number): number[] {
  const target = p * total;
  let threshold = 1; // the largest weight is exp(0) = 1
  let pool: number[] = ids;
  for (; threshold > 0; threshold /= 16) {
    let sum = 0;
    for (const i of ids) if (w[i] >= threshold) sum += w[i];
    if (sum >= target) {
      pool = ids.filter((i) => w[i] >= threshold);
      break;
    }
  }
  pool = [...pool].sort((a, b) => (before(w, a, b) ? -1 : 1));
  const kept: number[] = [];
  let sum = 0;
  for (const i of pool) {
    kept.push(i);
    sum += w[i];
    if (sum >= target) break;
  }
  return kept;
}

/** The next token drawn from one row of scores (see the header); greedy draws nothing from the generator. */
export function sampleToken(scores: ArrayLike<number>, o: ResolvedSampling, generator: Generator): number {
  const V = scores.length;
  if (V === 0) throw new Error('scores: expected at least one token');
  if (o.temperature === 0) return argmax(scores);
  const top = argmax(scores);
  const max = scores[top];
  if (!Number.isFinite(max)) throw new Error(`scores: the highest score is ${max}; expected finite log-probabilities`);
  let ids: number[];
  if (o.topK !== null && o.topK < V) ids = topKIds(scores, o.topK);
  else ids = Array.from({ length: V }, (_, i) => i);
  const w = new Float64Array(V);
  let total = 0;
  for (const i of ids) {
    w[i] = Math.exp((scores[i] - max) / o.temperature);
    total += w[i];
  }
  if (o.topP < 1) {
    ids = nucleus(ids, w, total, o.topP);
    total = 0;
    for (const i of ids) total += w[i];
  }
  const u = uniform53(generator) * total;
  let sum = 0;
  for (const i of ids) {
    sum += w[i];
    if (sum > u) return i;
  }
  // u x total rounds up to the total: the last token with weight
  for (let j = ids.length - 1; j >= 0; j--) if (w[ids[j]] > 0) return ids[j];
  return top;
}
