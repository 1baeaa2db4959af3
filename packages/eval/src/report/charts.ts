// Charts are vega-lite specs compiled to vega and rendered to SVG by vega's own renderer (headless,
// no DOM), so the HTML page needs no script and no network.

import { View, parse } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** A rendered chart: its vega-lite spec (kept for transparency) and the SVG vega drew. */
export interface RenderedChart {
  id: string;
  title: string;
  spec: TopLevelSpec;
  svg: string;
}

/** Compile a vega-lite spec and render it to an SVG string. */
export async function renderVegaLite(spec: TopLevelSpec): Promise<string> {
  const vgSpec = compile(spec).spec;
  const view = new View(parse(vgSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const CONFIG = {
  font: FONT,
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320 },
};

/** Grouped bars: one group per category, one bar per series (e.g. dimensions x runs). */
export function groupedBarSpec(options: {
  title: string;
  rows: Array<{ category: string; series: string; value: number }>;
  categoryTitle: string;
  valueTitle: string;
  categoryOrder: string[];
  seriesOrder: string[];
  valueFormat?: string;
}): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title,
    // With xOffset the step is per bar (category x series).
    width: { step: 16 },
    height: 240,
    data: { values: options.rows },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      x: { field: 'category', type: 'nominal', title: options.categoryTitle, sort: options.categoryOrder, axis: { labelAngle: 0 } },
      xOffset: { field: 'series', type: 'nominal', sort: options.seriesOrder },
      y: { field: 'value', type: 'quantitative', title: options.valueTitle, axis: { format: options.valueFormat ?? '.1f' } },
      color: { field: 'series', type: 'nominal', title: 'run', sort: options.seriesOrder, scale: { scheme: 'tableau10' } },
    },
    config: CONFIG,
  } as TopLevelSpec;
}

/** Small multiples: one bar chart per metric (independent y scales), one bar per series. */
export function facetedBarSpec(options: {
  title: string;
  rows: Array<{ metric: string; series: string; value: number }>;
  metricOrder: string[];
  seriesOrder: string[];
}): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title,
    data: { values: options.rows },
    facet: { field: 'metric', type: 'nominal', sort: options.metricOrder, title: null },
    columns: 4,
    spec: {
      width: { step: 22 },
      height: 140,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'series', type: 'nominal', sort: options.seriesOrder, axis: { labels: false, ticks: false, title: null } },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'series', type: 'nominal', title: 'dataset', sort: options.seriesOrder, scale: { scheme: 'tableau10' } },
      },
    },
    resolve: { scale: { y: 'independent' } },
    config: CONFIG,
  } as TopLevelSpec;
}
