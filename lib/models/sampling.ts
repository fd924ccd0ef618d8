// Drawing the next token from a row of scores (log-probabilities or logits: a constant per row
// changes nothing), as Hugging Face's generate applies its warpers:
//   temperature 0     greedy: the highest score (the lowest id among equals); nothing is drawn
//   temperature T     weights w_i = exp((s_i - max s) / T), in float64
//   topK k            only the k highest scores keep a weight (the lower ids among equals)
//   topP p            then only the nucleus: the smallest set of the largest weights whose sum
//                     reaches p of the total (the lower ids among equals)
// and one uniform draw u in [0, 1) (53 random bits from two uint32 of the Philox generator,
// lib/random.ts) picks the first id, in id order, whose cumulative weight passes u x total.
// Everything runs on the host from the scores read back, so a seed gives the same tokens on
// every backend whenever the backends' scores agree (they differ by float rounding, ~1e-6
// relative: a draw would have to fall within that of a boundary between two tokens to differ).
// Cost per token, V the vocabulary: O(V) passes over typed arrays and V exponentials (top-k: a
// heap of k scores, O(V log k), then O(k) for the rest); top-p a native sort of only the weights
// above a threshold found by passes that divide it by 16 until what is above it reaches p (a peaked
// distribution sorts a handful, a flat one most of V).
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
    throw new Error(
      `topK: expected a positive integer (how many of the most likely tokens are kept; leave it out to keep all), got ${String(topK)}`,
    );
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

/** The k-th largest of the values (k <= length), from a min-heap of the k largest so far. */
function kthLargest(values: ArrayLike<number>, k: number): number {
  const heap = new Float64Array(k);
  let n = 0;
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1,
        r = l + 1;
      let m = i;
      if (l < n && heap[l] < heap[m]) m = l;
      if (r < n && heap[r] < heap[m]) m = r;
      if (m === i) return;
      const t = heap[i];
      heap[i] = heap[m];
      heap[m] = t;
      i = m;
    }
  };
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (n < k) {
      let c = n++;
      heap[c] = x;
      while (c > 0 && heap[(c - 1) >> 1] > heap[c]) {
        const p = (c - 1) >> 1;
        const t = heap[p];
        heap[p] = heap[c];
        heap[c] = t;
        c = p;
      }
    } else if (x > heap[0]) {
      heap[0] = x;
      siftDown(0);
    }
  }
  return heap[0];
}

/**
 * The positions of the `count` highest-ranked values, in order: those above `cut` (the count-th
 * largest value) and, of those equal to it, the first ones.
 */
function ranked(values: ArrayLike<number>, cut: number, count: number): Int32Array {
  let ties = count;
  for (let i = 0; i < values.length; i++) if (values[i] > cut) ties--;
  const out = new Int32Array(count);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > cut || (values[i] === cut && ties-- > 0)) out[n++] = i;
  }
  return out;
}

/** Keeps the nucleus of the weights (total their sum, the largest of them 1): see the header. */
function keepNucleus(w: Float64Array, total: number, p: number): void {
  const target = p * total;
  let threshold = 1;
  for (; threshold > 0; threshold /= 16) {
    let sum = 0;
    for (let i = 0; i < w.length; i++) if (w[i] >= threshold) sum += w[i];
    if (sum >= target) break;
  }
  let n = 0;
  for (let i = 0; i < w.length; i++) if (w[i] >= threshold && w[i] > 0) n++;
  const pool = new Float64Array(n);
  n = 0;
  for (let i = 0; i < w.length; i++) if (w[i] >= threshold && w[i] > 0) pool[n++] = w[i];
  pool.sort();
  let sum = 0;
  let j = n - 1;
  for (; j > 0; j--) {
    sum += pool[j];
    if (sum >= target) break;
  }
  const keep = ranked(w, pool[j], n - j);
  let next = 0;
  for (let i = 0; i < w.length; i++) {
    if (next < keep.length && keep[next] === i) next++;
    else w[i] = 0;
  }
}

/** The next token drawn from one row of scores (see the header); greedy draws nothing from the generator. */
export function sampleToken(scores: ArrayLike<number>, o: ResolvedSampling, generator: Generator): number {
  const V = scores.length;
  if (V === 0) throw new Error('scores: expected at least one token');
  const top = argmax(scores);
  if (o.temperature === 0) return top;
  const max = scores[top];
  if (!Number.isFinite(max)) throw new Error(`scores: the highest score is ${max}; expected finite log-probabilities`);
  // the candidates, in id order, and their weights
  let ids: Int32Array;
  if (o.topK !== null && o.topK < V) ids = ranked(scores, kthLargest(scores, o.topK), o.topK);
  else {
    ids = new Int32Array(V);
    for (let i = 0; i < V; i++) ids[i] = i;
  }
  const n = ids.length;
  const w = new Float64Array(n);
  let total = 0;
  for (let j = 0; j < n; j++) {
    w[j] = Math.exp((scores[ids[j]] - max) / o.temperature);
    total += w[j];
  }
  if (o.topP < 1) {
    keepNucleus(w, total, o.topP);
    total = 0;
    for (let j = 0; j < n; j++) total += w[j];
  }
  const u = uniform53(generator) * total;
  let sum = 0;
  for (let j = 0; j < n; j++) {
    sum += w[j];
    if (sum > u) return ids[j];
  }
  // u x total rounded up to the total: the last candidate with weight
  for (let j = n - 1; j >= 0; j--) if (w[j] > 0) return ids[j];
  return top;
}
