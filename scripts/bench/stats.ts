// The summary of one benchmark figure: every timed run of every round, and what the docs print
// from them. median is the figure; min the best run; spread = (max - min) / median, the whole
// range of the runs relative to the figure (a shared host's load shows up here first).
// roundMedians (one per round) let a ratio of two figures be given per round, as a range.

export interface Timed {
  /** Milliseconds per run. */
  times_ms: number[];
  /** The process's CPU time over the wall time of the timed runs (~ the busy thread count). */
  cpu_per_wall: number | null;
}

export interface Figure {
  min: number;
  median: number;
  max: number;
  spread: number;
  n: number;
  times_ms: number[];
  round_medians: number[];
  cpu_per_wall: number[];
}

export function median(xs: number[]): number {
  if (xs.length === 0) throw new Error('median: no values');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A figure from its rounds, each round's timed runs in order. */
export function figure(rounds: Timed[]): Figure {
  const times = rounds.flatMap((r) => r.times_ms);
  const med = median(times);
  const min = Math.min(...times),
    max = Math.max(...times);
  return {
    min,
    median: med,
    max,
    spread: (max - min) / med,
    n: times.length,
    times_ms: times,
    round_medians: rounds.map((r) => median(r.times_ms)),
    cpu_per_wall: rounds.flatMap((r) => (r.cpu_per_wall === null ? [] : [r.cpu_per_wall])),
  };
}
