// The self-contained HTML report: tables and charts (vega-lite -> vega -> inline SVG), the
// extraction counts and judge log, the manifests, and the data-quality report in the same style.

import { SEED_DIMENSIONS } from '../mc/datasets.js';
import type { EvalRun } from '../run/evaluate.js';
import { VLIT_VERSION } from '../version.js';
import { facetedBarSpec, groupedBarSpec, renderVegaLite, type RenderedChart } from './charts.js';
import { KIND_METRICS, benchmarkIds, findResult, formatMetric, formatPercent, metricLabel, RESULT_COLUMNS } from './markdown.js';

/** A data-quality table to show beside the scores (e.g. built from @vlit/data's quality report by `dataQualityFromReport`). */
export interface DataQualitySection {
  title?: string;
  /** One entry per dataset (e.g. LLaVA data, MIMIC-IT data, ...). */
  datasets: Array<{ name: string; metrics: Record<string, number | null | undefined> }>;
  /** Columns: key into `metrics`, label, and which direction is better. */
  metrics: Array<{ key: string; label: string; better?: 'higher' | 'lower'; description?: string }>;
  notes?: string[];
}

/**
 * The fields of @vlit/data's `DataQualityReport` that the HTML report shows (structural, so a report
 * from `computeDataQuality` is accepted as is, without a build-time link to @vlit/data).
 */
export interface DataQualityReportLike {
  name: string;
  records: number;
  relevance: { value: number | null; method?: string; encoder?: string; embedder?: string };
  correctness: { rate: number | null };
  taskTypes: { count: number };
  instructionDiversity: { templates: number };
  turns: { mean: number };
  objectsPerConversation: { mean: number };
  balance: { category: number | null };
  similarity: { embedder?: string; instructions: number | null; answers: number | null };
}

/** Turn @vlit/data quality reports (one per dataset) into the HTML report's data-quality section, with the review's column names. */
export function dataQualitySection(reports: readonly DataQualityReportLike[], options: { title?: string } = {}): DataQualitySection {
  return {
    title: options.title ?? 'Data quality',
    metrics: [
      { key: 'MD', label: 'MD', better: 'higher', description: 'image–text relevance' },
      { key: 'C', label: 'C', better: 'higher', description: 'correctness rate (%)' },
      { key: 'T', label: 'T', better: 'higher', description: 'task types' },
      { key: 'templates', label: 'Templates', better: 'higher', description: 'distinct instruction templates' },
      { key: 'turns', label: 'Turns', better: 'higher', description: 'turns per conversation' },
      { key: 'objects', label: 'Objects', better: 'higher', description: 'objects per conversation' },
      { key: 'Balance', label: 'Balance', better: 'lower', description: 'category balance spread (coefficient of variation, %)' },
      { key: 'SM', label: 'SM', better: 'lower', description: 'mean pairwise instruction similarity' },
      { key: 'AM', label: 'AM', better: 'lower', description: 'mean pairwise answer similarity' },
    ],
    datasets: reports.map((r) => ({
      name: r.name,
      metrics: {
        MD: r.relevance.value,
        C: r.correctness.rate,
        T: r.taskTypes.count,
        templates: r.instructionDiversity.templates,
        turns: r.turns.mean,
        objects: r.objectsPerConversation.mean,
        Balance: r.balance.category,
        SM: r.similarity.instructions,
        AM: r.similarity.answers,
      },
    })),
    notes: reports.map(
      (r) =>
        `${r.name}: ${r.records} records; relevance by ${r.relevance.method ?? 'unknown method'}${r.relevance.embedder ? ` (${r.relevance.embedder})` : ''}; SM/AM by ${r.similarity.embedder ?? 'unknown embedder'}.`,
    ),
  };
}

/** Options for `renderHtmlReport`. */
export interface HtmlReportOptions {
  title?: string;
  runs: readonly EvalRun[];
  dataQuality?: DataQualitySection;
  /** Show per-item outputs (default: up to 50 per benchmark). */
  maxItemsPerBenchmark?: number;
}

/** Escape text for HTML content and attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Build every chart of a report (exported so callers can reuse the SVGs elsewhere). */
export async function buildReportCharts(runs: readonly EvalRun[], dataQuality?: DataQualitySection): Promise<RenderedChart[]> {
  const charts: RenderedChart[] = [];
  const series = runs.map((r) => r.name);
  for (const { id, kind } of benchmarkIds(runs)) {
    if (kind === 'multiple-choice') {
      const present = new Set(runs.flatMap((r) => Object.keys(findResult(r, id)?.groups ?? {})));
      const seed = RESULT_COLUMNS.filter((c) => present.has(c));
      const others = [...present].filter((c) => !RESULT_COLUMNS.includes(c)).sort();
      const categories = ['Overall', ...seed, ...others];
      const rows = runs.flatMap((run) => {
        const r = findResult(run, id);
        if (!r) return [];
        return [
          { category: 'Overall', series: run.name, value: r.metrics.accuracy * 100 },
          ...categories
            .slice(1)
            .filter((c) => r.groups[c])
            .map((c) => ({ category: c, series: run.name, value: r.groups[c].accuracy * 100 })),
        ];
      });
      const spec = groupedBarSpec({
        title: `${id}: accuracy by dimension (%)`,
        rows,
        categoryTitle: 'dimension',
        valueTitle: 'accuracy (%)',
        categoryOrder: categories,
        seriesOrder: series,
      });
      charts.push({ id: `dimensions-${id}`, title: `${id} by dimension`, spec, svg: await renderVegaLite(spec) });
    } else {
      const keys = KIND_METRICS[kind].filter((k) => runs.some((r) => findResult(r, id)?.metrics[k] !== undefined));
      const rows = runs.flatMap((run) => {
        const r = findResult(run, id);
        return r ? keys.map((k) => ({ category: metricLabel(k), series: run.name, value: r.metrics[k] * 100 })) : [];
      });
      const title = kind === 'caption' ? `${id}: caption metrics (x100)` : `${id}: metrics (%)`;
      const spec = groupedBarSpec({
        title,
        rows,
        categoryTitle: 'metric',
        valueTitle: kind === 'caption' ? 'score (x100)' : '%',
        categoryOrder: keys.map(metricLabel),
        seriesOrder: series,
      });
      charts.push({ id: `metrics-${id}`, title: `${id} metrics`, spec, svg: await renderVegaLite(spec) });
    }
  }
  if (dataQuality && dataQuality.datasets.length) {
    const rows = dataQuality.datasets.flatMap((d) =>
      dataQuality.metrics
        .filter((m) => typeof d.metrics[m.key] === 'number' && Number.isFinite(d.metrics[m.key]))
        .map((m) => ({ metric: `${m.label}${m.better === 'lower' ? ' (lower is better)' : ''}`, series: d.name, value: d.metrics[m.key] as number })),
    );
    const spec = facetedBarSpec({
      title: dataQuality.title ?? 'Data quality',
      rows,
      metricOrder: dataQuality.metrics.map((m) => `${m.label}${m.better === 'lower' ? ' (lower is better)' : ''}`),
      seriesOrder: dataQuality.datasets.map((d) => d.name),
    });
    charts.push({ id: 'data-quality', title: dataQuality.title ?? 'Data quality', spec, svg: await renderVegaLite(spec) });
  }
  return charts;
}

const STYLE = `
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .55rem}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure.chart{margin:1rem 0;overflow-x:auto}figure.chart figcaption{font-size:.85rem;color:#555}
details{margin:.5rem 0}pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.8rem;white-space:pre-wrap}
.muted{color:#666;font-size:.85rem}`;

function table(head: string[], rows: string[][], numericFrom = 1): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c, i) => `<td${i >= numericFrom ? ' class="num"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('');
  return `<table><thead><tr>${th}</tr></thead><tbody>${trs}</tbody></table>`;
}

function figure(chart: RenderedChart): string {
  const spec = JSON.stringify(chart.spec).replace(/</g, '\\u003c');
  return `<figure class="chart" data-chart="${escapeHtml(chart.id)}">${chart.svg}<figcaption>${escapeHtml(chart.title)} (vega-lite, rendered by vega)</figcaption><script type="application/json" class="vega-lite-spec">${spec}</script></figure>`;
}

/** Render the self-contained HTML report (no scripts to run, no network: charts are inline SVG). */
export async function renderHtmlReport(options: HtmlReportOptions): Promise<string> {
  const { runs } = options;
  const title = options.title ?? 'Vlit evaluation';
  const maxItems = options.maxItemsPerBenchmark ?? 50;
  const charts = await buildReportCharts(runs, options.dataQuality);
  const chartById = new Map(charts.map((c) => [c.id, c]));
  const parts: string[] = [];
  parts.push(
    `<h1>${escapeHtml(title)}</h1><p class="muted">Vlit ${escapeHtml(VLIT_VERSION)}; ${runs.length} run(s). Scores are percentages; CIDEr-D is shown x100.</p>`,
  );
  for (const { id, kind } of benchmarkIds(runs)) {
    parts.push(`<section class="benchmark" data-benchmark="${escapeHtml(id)}"><h2>${escapeHtml(id)} <span class="muted">(${kind})</span></h2>`);
    if (kind === 'multiple-choice') {
      const dims = SEED_DIMENSIONS.map((d) => d.code);
      const present = new Set(runs.flatMap((r) => Object.keys(findResult(r, id)?.groups ?? {})));
      const extra = [...present].filter((c) => !dims.includes(c)).sort();
      const cols = [...RESULT_COLUMNS, ...extra];
      parts.push(
        table(
          ['Run', 'Overall', ...cols],
          runs.map((run) => {
            const r = findResult(run, id);
            return [run.name, formatPercent(r?.metrics.accuracy), ...cols.map((c) => formatPercent(r?.groups[c]?.accuracy))];
          }),
        ),
      );
      const circular = runs.some((r) => findResult(r, id)?.metrics.perPassAccuracy !== undefined);
      if (circular)
        parts.push(
          `<p class="muted">Circular evaluation: a question counts only if every rotation of its options is answered correctly; per-pass accuracy counts rotations separately.</p>`,
          table(
            ['Run', 'Circular accuracy', 'Per-pass accuracy'],
            runs.map((run) => [run.name, formatPercent(findResult(run, id)?.metrics.accuracy), formatPercent(findResult(run, id)?.metrics.perPassAccuracy)]),
          ),
        );
    } else {
      const keys = KIND_METRICS[kind].filter((k) => runs.some((r) => findResult(r, id)?.metrics[k] !== undefined));
      parts.push(
        table(
          ['Run', ...keys.map(metricLabel)],
          runs.map((run) => [run.name, ...keys.map((k) => formatMetric(k, findResult(run, id)?.metrics[k]))]),
        ),
      );
    }
    const chart = chartById.get(kind === 'multiple-choice' ? `dimensions-${id}` : `metrics-${id}`);
    if (chart) parts.push(figure(chart));
    for (const run of runs) {
      const r = findResult(run, id);
      if (!r) continue;
      const details: string[] = [];
      if (r.extraction)
        details.push(
          `<p>Answer extraction (${escapeHtml(run.name)}): ${Object.entries(r.extraction)
            .map(([m, n]) => `${escapeHtml(m)} ${n}`)
            .join(', ')}</p>`,
        );
      if (r.judgeLog?.length) {
        details.push(
          `<details class="judge-log"><summary>Judge calls (${r.judgeLog.length})</summary>${r.judgeLog.map((j) => `<p><b>${escapeHtml(j.item)}</b> ${escapeHtml(j.judge)}${j.cached ? ' (cached)' : ''}</p><pre>${escapeHtml(j.prompt)}</pre><pre>${escapeHtml(j.reply)}</pre>`).join('')}</details>`,
        );
      }
      const items = r.items.slice(0, maxItems);
      if (items.length) {
        details.push(
          `<details><summary>Items of ${escapeHtml(run.name)} (${items.length} of ${r.items.length})</summary>${table(
            ['Item', 'Output', 'Result'],
            items.map((it) => [
              it.id,
              it.output ?? (it.chosen ? it.chosen.map((c) => (c === null ? '-' : String.fromCharCode(65 + c))).join(' ') : ''),
              it.correct !== undefined ? (it.correct ? 'correct' : 'wrong') : it.score !== undefined ? it.score.toFixed(4) : '',
            ]),
            3,
          )}</details>`,
        );
      }
      parts.push(details.join(''));
    }
    parts.push('</section>');
  }
  if (options.dataQuality) {
    const dq = options.dataQuality;
    parts.push(`<section class="data-quality"><h2>${escapeHtml(dq.title ?? 'Data quality')}</h2>`);
    parts.push(
      table(
        ['Dataset', ...dq.metrics.map((m) => `${m.label}${m.better === 'lower' ? ' ↓' : m.better === 'higher' ? ' ↑' : ''}`)],
        dq.datasets.map((d) => [
          d.name,
          ...dq.metrics.map((m) => {
            const v = d.metrics[m.key];
            return typeof v === 'number' ? String(Number(v.toPrecision(6))) : '–';
          }),
        ]),
      ),
    );
    const described = dq.metrics.filter((m) => m.description);
    if (described.length)
      parts.push(`<ul class="muted">${described.map((m) => `<li><b>${escapeHtml(m.label)}</b>: ${escapeHtml(m.description as string)}</li>`).join('')}</ul>`);
    if (dq.notes?.length) parts.push(`<ul class="muted">${dq.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`);
    const chart = chartById.get('data-quality');
    if (chart) parts.push(figure(chart));
    parts.push('</section>');
  }
  parts.push(
    `<section class="manifests"><h2>Reproducibility</h2>${table(
      ['Run', 'Model', 'Manifest SHA-256', 'Model calls (cached / computed / failed)'],
      runs.map((r) => [r.name, r.model, r.manifestHash, `${r.stats.fromCache} / ${r.stats.computed} / ${r.stats.failed}`]),
      4,
    )}${runs.map((r) => `<details><summary>Manifest of ${escapeHtml(r.name)}</summary><pre>${escapeHtml(JSON.stringify(r.manifest, null, 2))}</pre></details>`).join('')}</section>`,
  );
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${parts.join('\n')}</body></html>\n`;
}
