// metrics.jsonl: one JSON object per line, appended as a run goes. 'train' records hold the mean
// training loss over the steps since the previous one, the learning rate and the throughput;
// 'valid' records hold the validation metrics (perplexity, or top-1/top-5 accuracy) at a step,
// and the attention layers' statistics (row mass, underflow share, entropy, R) when diagnosed.
// Read back for the plots and the results table; cut back to a checkpoint's step on resume, so
// the log of a resumed run is the log of the uninterrupted one.
import * as fs from 'fs';
import type { AttentionStatistics } from '../nn/attention-statistics';

export interface TrainRecord {
  type: 'train';
  step: number;
  /** Mean training loss over the steps since the previous train record. */
  loss: number;
  lr: number;
  /** Tokens or images per second over those steps. */
  rate: number;
  /** Seconds since the run started (resumed runs count the time before the interruption). */
  seconds: number;
}

export interface ValidRecord {
  type: 'valid';
  step: number;
  seconds: number;
  /** The validation metrics: { perplexity, nll } or { top1, top5, loss }. */
  metrics: Record<string, number>;
  /** Per attention layer, what it did with its rows on the diagnostic inputs (when the task diagnoses). */
  attentionStats?: AttentionStatistics[];
}

export type MetricRecord = TrainRecord | ValidRecord;

export function appendMetric(file: string, record: MetricRecord): void {
  fs.appendFileSync(file, JSON.stringify(record) + '\n');
}

function checkRecord(r: unknown, where: string): MetricRecord {
  const o = r as {
    type?: unknown;
    step?: unknown;
    seconds?: unknown;
    loss?: unknown;
    lr?: unknown;
    rate?: unknown;
    metrics?: unknown;
  } | null;
  const ok =
    o !== null &&
    typeof o === 'object' &&
    Number.isInteger(o.step) &&
    typeof o.seconds === 'number' &&
    ((o.type === 'train' && typeof o.loss === 'number' && typeof o.lr === 'number' && typeof o.rate === 'number') ||
      (o.type === 'valid' && o.metrics !== null && typeof o.metrics === 'object'));
  if (!ok)
    throw new Error(
      `${where}: expected a metrics record ({ type: 'train' | 'valid', step, seconds, ... }), got ${JSON.stringify(r)}`,
    );
  return r as MetricRecord;
}

/** Every record of a metrics.jsonl file; a malformed line is an error naming the file and line. */
export function readMetrics(file: string): MetricRecord[] {
  if (!fs.existsSync(file)) throw new Error(`${file}: does not exist (expected a metrics.jsonl file)`);
  const out: MetricRecord[] = [];
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new Error(`${file}:${i + 1}: not valid JSON: ${line.slice(0, 80)}`);
      }
      out.push(checkRecord(value, `${file}:${i + 1}`));
    });
  return out;
}

/** Drops the records after `step` (a resumed run rewrites them); a missing file is left missing. */
export function truncateMetrics(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const kept = readMetrics(file).filter((r) => r.step <= step);
  fs.writeFileSync(file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
}
