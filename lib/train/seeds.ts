// Results over seeds, as the paper reports its numbers: for each group of runs that differ only in
// their seed (an attention kind, or a variant of Fourier attention), the mean and the sample
// standard deviation (n - 1 in the denominator) over the seeds of every figure a run reports:
// valid/test perplexity (LM) or top-1 accuracy (vision), head redundancy (each run's mean
// distance), and from the attention statistics averaged over layers the row mass, the share of
// rows under eps and the normalised entropy. Written as a markdown table and a plot (each seed a
// point, the mean a bar with the standard deviation as its error bar), for the task's two figures
// and head redundancy.
import * as fs from 'fs';
import type { TopLevelSpec } from 'vega-lite';
import { vegaLiteSvg } from './plots';
import { markdownTable, RunResult } from './results-table';

/** The runs of one group, one per seed. */
export interface SeedGroup {
  name: string;
  seeds: number[];
  results: RunResult[];
}

export interface MeanStd {
  mean: number;
  std: number;
  n: number;
}

/** Mean and sample standard deviation of the finite values (NaN, n = 0 without any; std 0 for one). */
export function meanStd(values: number[]): MeanStd {
  const xs = values.filter((v) => Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

/** A figure of one run: its name in tables, how to read it off a result, its digits. */
interface Figure {
  key: string;
  title: string;
  digits: number;
  of: (r: RunResult) => number;
}

const layerMean = (r: RunResult, f: (s: NonNullable<RunResult['attentionStats']>[number]) => number | null): number => {
  const xs = (r.attentionStats ?? []).map(f).filter((v): v is number => v !== null && Number.isFinite(v));
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
};

/** A run's head redundancy on the test split (valid where it has none; results of older runs hold one figure). */
function testRedundancy(r: RunResult): number {
  const red = r.redundancy as Record<string, { mean: number }> | { mean: number } | null;
  if (red === null) return NaN;
  if (typeof (red as { mean: unknown }).mean === 'number') return (red as { mean: number }).mean;
  const bySplit = red as Record<string, { mean: number }>;
  return (bySplit.test ?? bySplit.valid)?.mean ?? NaN;
}

/** The figures a kind of run reports, the task's own first. */
export function figuresOf(kind: 'lm' | 'vit'): Figure[] {
  const task: Figure[] =
    kind === 'lm'
      ? [
          { key: 'validPpl', title: 'valid ppl', digits: 2, of: (r) => r.metrics.valid?.perplexity ?? NaN },
          { key: 'testPpl', title: 'test ppl', digits: 2, of: (r) => r.metrics.test?.perplexity ?? NaN },
        ]
      : [
          { key: 'validTop1', title: 'valid top-1 %', digits: 2, of: (r) => 100 * (r.metrics.valid?.top1 ?? NaN) },
          { key: 'testTop1', title: 'test top-1 %', digits: 2, of: (r) => 100 * (r.metrics.test?.top1 ?? NaN) },
        ];
  return [
    ...task,
    { key: 'redundancy', title: 'head redundancy (test)', digits: 3, of: testRedundancy },
    { key: 'rowMass', title: 'row mass', digits: 3, of: (r) => layerMean(r, (s) => s.rowMass) },
    { key: 'underflow', title: 'rows < eps %', digits: 1, of: (r) => 100 * layerMean(r, (s) => s.underflow) },
    { key: 'entropy', title: 'entropy / ln n', digits: 3, of: (r) => layerMean(r, (s) => s.normalizedEntropy) },
  ];
}

/** Per group, every figure's mean and standard deviation over its seeds. */
export function summarizeSeeds(
  groups: SeedGroup[],
): { name: string; seeds: number[]; figures: Record<string, MeanStd> }[] {
  if (groups.length === 0) throw new Error('groups: expected at least one group of runs');
  const kind = groups[0].results[0]?.kind;
  if (kind === undefined || groups.some((g) => g.results.length === 0 || g.results.some((r) => r.kind !== kind))) {
    throw new Error('groups: expected runs of one kind (language models or vision), at least one per group');
  }
  return groups.map((g) => ({
    name: g.name,
    seeds: g.seeds,
    figures: Object.fromEntries(figuresOf(kind).map((f) => [f.key, meanStd(g.results.map(f.of))])),
  }));
}

function cell(m: MeanStd, digits: number): string {
  if (m.n === 0) return '-';
  return m.n > 1 ? `${m.mean.toFixed(digits)} ± ${m.std.toFixed(digits)}` : m.mean.toFixed(digits);
}

/** The markdown table: one row per group, mean ± std over its seeds. */
export function seedsTable(groups: SeedGroup[]): string {
  const kind = groups[0].results[0].kind;
  const figures = figuresOf(kind);
  const rows = summarizeSeeds(groups).map((g) => [
    g.name,
    String(g.seeds.length),
    ...figures.map((f) => cell(g.figures[f.key], f.digits)),
  ]);
  return markdownTable(['run', 'seeds', ...figures.map((f) => f.title)], rows, [
    false,
    true,
    ...figures.map(() => true),
  ]);
}

/** What the seeds table's columns mean, printed under it. */
export function seedsNote(kind: 'lm' | 'vit'): string {
  return (
    `Mean ± sample standard deviation over the seeds. ${kind === 'lm' ? 'Perplexity' : 'Top-1 accuracy'} of each run's best validation checkpoint; ` +
    "head redundancy: the mean L2 distance between the heads' attention maps on the test split (the paper's Table 3, larger = less redundant); " +
    'row mass, rows < eps and entropy / ln n: the attention statistics averaged over layers (Fourier; row mass 1 in stable mode). ' +
    'Read head redundancy beside the row mass: maps of rows that carry ~0 mass look alike whatever they attend to.'
  );
}

/** The plot: per figure of the task, each seed a point and the mean a bar with its standard deviation. */
export function seedsSpec(groups: SeedGroup[], title: string): TopLevelSpec {
  const kind = groups[0].results[0].kind;
  const figures = figuresOf(kind).slice(0, 3);
  const points = groups
    .flatMap((g) =>
      g.results.flatMap((r, i) =>
        figures.map((f) => ({ run: g.name, seed: String(g.seeds[i]), figure: f.title, value: f.of(r) })),
      ),
    )
    .filter((p) => Number.isFinite(p.value));
  const order = groups.map((g) => g.name);
  const panel = (figure: string) => ({
    width: 40 * groups.length + 60,
    height: 220,
    title: figure,
    transform: [{ filter: { field: 'figure', equal: figure } }],
    layer: [
      {
        mark: { type: 'bar', opacity: 0.35 },
        encoding: {
          x: { field: 'run', type: 'nominal', sort: order, title: null },
          y: { aggregate: 'mean', field: 'value', type: 'quantitative', title: figure, scale: { zero: false } },
          color: { field: 'run', type: 'nominal', sort: order, legend: null },
        },
      },
      {
        mark: { type: 'errorbar', extent: 'stdev' },
        encoding: { x: { field: 'run', type: 'nominal', sort: order }, y: { field: 'value', type: 'quantitative' } },
      },
      {
        mark: { type: 'point', filled: true, size: 30, color: 'black' },
        encoding: { x: { field: 'run', type: 'nominal', sort: order }, y: { field: 'value', type: 'quantitative' } },
      },
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values: points },
    hconcat: figures.map((f) => panel(f.title)),
    config: { font: 'sans-serif', axisX: { labelAngle: -40 } },
  } as TopLevelSpec;
}

/** Writes the table (with a title, the note and any further lines) and the plot; returns their paths. */
export async function writeSeedsReport(
  mdFile: string,
  svgFile: string,
  groups: SeedGroup[],
  title: string,
  notes: string[] = [],
): Promise<{ table: string; plot: string; markdown: string }> {
  const kind = groups[0].results[0].kind;
  const markdown = [`# ${title}`, '', seedsTable(groups), '', seedsNote(kind), ...notes, ''].join('\n');
  fs.writeFileSync(mdFile, markdown);
  fs.writeFileSync(svgFile, await vegaLiteSvg(seedsSpec(groups, title)));
  return { table: mdFile, plot: svgFile, markdown };
}
