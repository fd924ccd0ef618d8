// The training curves as one SVG, drawn by vega-lite (compiled to vega, rendered headless): on
// the left the training loss against the step, on the right the validation metric (perplexity,
// or top-1 accuracy) against the step, each run (Fourier, dot) a coloured line on the same axes.
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
  const train = runs.flatMap((r) => r.records.filter((x) => x.type === 'train').map((x) => ({ run: r.label, step: x.step, value: (x as { loss: number }).loss })));
  const valid = runs.flatMap((r) => r.records.flatMap((x) => (x.type === 'valid' && Number.isFinite(x.metrics[axis.key]) ? [{ run: r.label, step: x.step, value: x.metrics[axis.key] }] : [])));
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

/** Renders a vega-lite specification to SVG text, headless (no browser, no canvas). */
export async function vegaLiteSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

/** Renders the curves to SVG text. */
export async function curvesSvg(runs: RunCurves[], axis: ValidationAxis, title: string): Promise<string> {
  return vegaLiteSvg(curvesSpec(runs, axis, title));
}

/** Renders the curves and writes them to `file`. */
export async function writeCurves(file: string, runs: RunCurves[], axis: ValidationAxis, title: string): Promise<string> {
  fs.writeFileSync(file, await curvesSvg(runs, axis, title));
  return file;
}
