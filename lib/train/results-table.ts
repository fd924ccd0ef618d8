// The results as markdown: one row per run (Fourier, dot) with what it cost (parameters, steps,
// tokens or images seen, training time) and what it reached (validation and test perplexity, or
// top-1/top-5 accuracy) and the heads' redundancy on the train and test split (the paper's
// Table 3: mean +- std of the L2 distances between heads' attention maps; larger = less redundant
// heads; the convention is printed under the table), then per run and layer what the attention
// does with its rows (lib/nn/attention-statistics.ts).
import type { AttentionStatistics } from '../nn/attention-statistics';
import { REDUNDANCY_CONVENTION } from './head-redundancy';

/** What a finished (or evaluated) run reports; written to <run>/results.json. */
export interface RunResult {
  /** 'fourier' or 'dot'. */
  attention: string;
  kind: 'lm' | 'vit';
  parameters: number;
  /** Optimizer steps taken, and tokens or images seen. */
  steps: number;
  items: number;
  /** Training wall time in seconds (excluding the final evaluation). */
  trainSeconds: number;
  /** The step of the checkpoint evaluated (the best validation). */
  checkpointStep: number;
  /** LM: { valid: ppl, test: ppl }; ViT: { top1, top5 } per split. */
  metrics: Record<string, Record<string, number>>;
  /** Head redundancy by split ({ train, test }); results.json files written before hold one { mean, std }. */
  redundancy: Record<string, { mean: number; std: number }> | null;
  /** Per attention layer, what it does with its rows on validation inputs (absent in older results). */
  attentionStats?: AttentionStatistics[];
  /** How the numbers were measured (e.g. 'sliding window 64, stride 32, first 8192 tokens'). */
  evaluation: string;
}

/** A markdown table; numbers right-aligned. */
export function markdownTable(
  headers: string[],
  rows: string[][],
  rightAligned: boolean[] = headers.map((_, i) => i > 0),
): string {
  rows.forEach((r, i) => {
    if (r.length !== headers.length) throw new Error(`rows[${i}]: expected ${headers.length} cells, got ${r.length}`);
  });
  const widths = headers.map((h, c) => Math.max(3, h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((x, c) => (rightAligned[c] ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (rightAligned[c] ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** 1234567 -> '1.23M', 45200 -> '45.2k', 812 -> '812'. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

function fixed(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function minutes(seconds: number): string {
  return seconds < 60 ? `${seconds.toFixed(0)} s` : `${(seconds / 60).toFixed(1)} min`;
}

function redundancy(r: RunResult): string {
  const red = r.redundancy as Record<string, { mean: number; std: number }> | { mean: number; std: number } | null;
  if (!red) return '-';
  const cell = (x: { mean: number; std: number }) => `${x.mean.toFixed(3)} ± ${x.std.toFixed(3)}`;
  if (typeof red.mean === 'number') return cell(red as { mean: number; std: number });
  return Object.entries(red as Record<string, { mean: number; std: number }>)
    .map(([split, x]) => `${split} ${cell(x)}`)
    .join(', ');
}

/** The table of a set of runs of one kind (language models, or vision transformers). */
export function resultsTable(results: RunResult[]): string {
  if (results.length === 0) throw new Error('results: expected at least one run');
  const kind = results[0].kind;
  if (results.some((r) => r.kind !== kind)) throw new Error('results: mixes language-model and vision runs');
  const cost = (r: RunResult) => [
    r.attention,
    formatCount(r.parameters),
    String(r.steps),
    formatCount(r.items),
    minutes(r.trainSeconds),
  ];
  const costHeaders = ['attention', 'params', 'steps', kind === 'lm' ? 'tokens' : 'images', 'train time'];
  if (kind === 'lm') {
    return markdownTable(
      [...costHeaders, 'valid ppl', 'test ppl', 'head redundancy (mean ± std)', 'row mass'],
      results.map((r) => [
        ...cost(r),
        fixed(r.metrics.valid?.perplexity, 2),
        fixed(r.metrics.test?.perplexity, 2),
        redundancy(r),
        meanRowMass(r),
      ]),
      [false, true, true, true, true, true, true, true, true],
    );
  }
  const pct = (x: number | undefined) => (x === undefined ? '-' : (100 * x).toFixed(2));
  return markdownTable(
    [...costHeaders, 'valid top-1 %', 'test top-1 %', 'test top-5 %', 'head redundancy (mean ± std)', 'row mass'],
    results.map((r) => [
      ...cost(r),
      pct(r.metrics.valid?.top1),
      pct(r.metrics.test?.top1),
      pct(r.metrics.test?.top5),
      redundancy(r),
      meanRowMass(r),
    ]),
    [false, true, true, true, true, true, true, true, true, true],
  );
}

/** The row mass averaged over a run's Fourier layers ('-' for dot or without statistics). */
function meanRowMass(r: RunResult): string {
  const masses = (r.attentionStats ?? []).flatMap((s) => (s.rowMass === null ? [] : [s.rowMass]));
  return masses.length === 0 ? '-' : (masses.reduce((a, b) => a + b, 0) / masses.length).toFixed(3);
}

/**
 * Per run and layer: rows under eps, row mass, entropy, largest weight and R (runs without
 * statistics are left out).
 */
export function attentionTable(results: RunResult[]): string | null {
  const rows = results.flatMap((r) =>
    (r.attentionStats ?? []).map((s, layer) => [
      r.attention,
      String(layer),
      s.underflow === null ? '-' : `${(100 * s.underflow).toFixed(1)}%`,
      s.rowMass === null ? '-' : s.rowMass.toFixed(3),
      fixed(s.entropy, 2),
      fixed(s.normalizedEntropy, 3),
      fixed(s.maxWeight, 3),
      s.radius === null
        ? '-'
        : `${s.radius.mean.toPrecision(3)} [${s.radius.min.toPrecision(3)}, ${s.radius.max.toPrecision(3)}]`,
    ]),
  );
  if (rows.length === 0) return null;
  return markdownTable(
    [
      'attention',
      'layer',
      'rows < eps',
      'row mass',
      'entropy (nats)',
      'entropy / ln n',
      'largest weight',
      'R mean [min, max]',
    ],
    rows,
    [false, true, true, true, true, true, true, true],
  );
}

/** What the attention table's columns mean, printed under it. */
export const ATTENTION_TABLE_NOTE =
  'Attention statistics per layer (Fourier: S_i = sum_j K_ij; a row under eps has its output damped by the row mass ' +
  'S_i / (S_i + eps), 1 in stable mode; entropy of the normalised weights of each row, averaged; ln n is that of a uniform row over its n visible keys). ' +
  'Read head redundancy beside the row mass: heads whose rows carry ~0 mass have near-zero maps, which look alike whatever they attend to.';

/** results.md: a title, the table, how it was evaluated, and any further lines (command, machine). */
export function resultsMarkdown(title: string, results: RunResult[], notes: string[] = []): string {
  const evaluations = [...new Set(results.map((r) => r.evaluation))];
  const spread = results.some((r) => r.redundancy) ? [`The ${REDUNDANCY_CONVENTION}.`] : [];
  const attention = attentionTable(results);
  return [
    `# ${title}`,
    '',
    resultsTable(results),
    '',
    ...(attention === null ? [] : [attention, '', ATTENTION_TABLE_NOTE, '']),
    ...evaluations.map((e) => `Evaluation: ${e}.`),
    ...spread,
    ...notes,
    '',
  ].join('\n');
}
