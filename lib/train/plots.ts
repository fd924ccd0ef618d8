// The training curves as one SVG, drawn by vega-lite (compiled to vega, rendered headless): on
// the left the training loss against the step, on the right the validation metric (perplexity,
// or top-1 accuracy) against the step, each run (Fourier, dot) a coloured line on the same axes.
// A second SVG shows the attention statistics logged at each validation, per run and layer: the
// share of rows under eps, the row mass and the normalised entropy against the step.
import * as fs from 'fs';
import * as vega from 'vega';
import { compile, TopLevelSpec } from 'vega-lite';
import type { MetricRecord } from './metrics-log';

export interface RunCurves {
  /** The legend's name for the run ('fourier', 'dot'). */
  label: string;
  records: MetricRecord[];
}

export interface ValidationAxis {
  /** The key in a valid record's metrics ('perplexity', 'top1'). */
  key: string;
  /** The axis title ('validation perplexity'). */
  title: string;
  /** A log scale (perplexity spans orders of magnitude early in training). */
  log?: boolean;
}

/** The vega-lite specification of the two panels (exported for tests). */
export function curvesSpec(runs: RunCurves[], axis: ValidationAxis, title: string): TopLevelSpec {
  if (runs.length === 0) throw new Error('runs: expected at least one run to plot');
  const train = runs.flatMap((r) =>
    r.records
      .filter((x) => x.type === 'train')
      .map((x) => ({ run: r.label, step: x.step, value: (x as { loss: number }).loss })),
  );
  const valid = runs.flatMap((r) =>
    r.records.flatMap((x) =>
      x.type === 'valid' && Number.isFinite(x.metrics[axis.key])
        ? [{ run: r.label, step: x.step, value: x.metrics[axis.key] }]
        : [],
    ),
  );
  const color = { field: 'run', type: 'nominal', title: 'attention', sort: runs.map((r) => r.label) };
  const panel = (values: unknown[], yTitle: string, log: boolean) => ({
    width: 320,
    height: 220,
    data: { values },
    mark: { type: 'line', point: values.length < 60 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: log ? { type: 'log' } : { zero: false } },
      color,
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    hconcat: [panel(train, 'training loss', false), panel(valid, axis.title, axis.log === true)],
    config: { font: 'sans-serif' },
  } as TopLevelSpec;
}

/** The vega-lite specification of the attention statistics' panels, or null when no record holds any. */
export function attentionSpec(runs: RunCurves[], title: string): TopLevelSpec | null {
  const points = runs.flatMap((r) =>
    r.records.flatMap((x) =>
      x.type === 'valid' && x.attentionStats
        ? x.attentionStats.map((s, layer) => ({
            line: `${r.label} L${layer}`,
            step: x.step,
            underflow: s.underflow,
            rowMass: s.rowMass,
            entropy: s.normalizedEntropy,
          }))
        : [],
    ),
  );
  if (points.length === 0) return null;
  const panel = (field: string, yTitle: string) => ({
    width: 260,
    height: 200,
    transform: [{ filter: `isValid(datum.${field})` }],
    mark: { type: 'line', point: false },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field, type: 'quantitative', title: yTitle, scale: { domain: [0, 1] } },
      color: { field: 'line', type: 'nominal', title: 'run, layer' },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `${title}: attention rows`,
    data: { values: points },
    hconcat: [
      panel('underflow', 'share of rows with sum_j K_ij < eps'),
      panel('rowMass', 'mean row mass S / (S + eps)'),
      panel('entropy', 'entropy / ln(visible keys)'),
    ],
    config: { font: 'sans-serif' },
  } as TopLevelSpec;
}

/** Renders a vega-lite specification to SVG text, headless (no browser, no canvas). */
export async function vegaLiteSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

/** Writes the attention statistics' plot to `file` when the runs logged any; returns the file, or null. */
export async function writeAttentionPlot(file: string, runs: RunCurves[], title: string): Promise<string | null> {
  const spec = attentionSpec(runs, title);
  if (spec === null) return null;
  fs.writeFileSync(file, await vegaLiteSvg(spec));
  return file;
}

/** Renders the curves to SVG text. */
export async function curvesSvg(runs: RunCurves[], axis: ValidationAxis, title: string): Promise<string> {
  return vegaLiteSvg(curvesSpec(runs, axis, title));
}

/** Renders the curves and writes them to `file`. */
export async function writeCurves(
  file: string,
  runs: RunCurves[],
  axis: ValidationAxis,
  title: string,
): Promise<string> {
  fs.writeFileSync(file, await curvesSvg(runs, axis, title));
  return file;
}
