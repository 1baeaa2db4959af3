// Markdown reports. The main table has the layout of the review's results table: runs as rows,
// Overall first, then the SEED-Bench dimensions SU II IA IL IC SR IIR VR TR.

import { SEED_DIMENSIONS } from '../mc/datasets.js';
import type { EvalRun } from '../run/evaluate.js';
import type { BenchmarkResult } from '../run/types.js';

/** The review's dimension columns, in order. */
export const RESULT_COLUMNS: readonly string[] = SEED_DIMENSIONS.map((d) => d.code);

/** A fraction as a percentage with `digits` decimals, or an en dash when missing. */
export function formatPercent(value: number | undefined, digits = 1): string {
  return value === undefined || Number.isNaN(value) ? '–' : (value * 100).toFixed(digits);
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The first multiple-choice result of a run (or the one with the given benchmark id). */
export function findResult(run: EvalRun, benchmark?: string, kind: BenchmarkResult['kind'] = 'multiple-choice'): BenchmarkResult | undefined {
  return run.benchmarks.find((b) => (benchmark ? b.id === benchmark : b.kind === kind));
}

/** Options for the results table. */
export interface ResultsTableOptions {
  /** Which multiple-choice benchmark (default: each run's first). */
  benchmark?: string;
  /** Dimension columns (default: the review's SEED-Bench columns). */
  columns?: readonly string[];
  digits?: number;
}

/** The review's results table: `| Run | Overall | SU | II | ... | TR |`, accuracies in percent. */
export function renderResultsTable(runs: readonly EvalRun[], options: ResultsTableOptions = {}): string {
  const columns = options.columns ?? RESULT_COLUMNS;
  const digits = options.digits ?? 1;
  const lines = [`| Run | Overall | ${columns.join(' | ')} |`, `|---|---:|${columns.map(() => '---:').join('|')}|`];
  for (const run of runs) {
    const r = findResult(run, options.benchmark);
    const cells = columns.map((c) => formatPercent(r?.groups[c]?.accuracy, digits));
    lines.push(`| ${escapeCell(run.name)} | ${formatPercent(r?.metrics.accuracy, digits)} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

const METRIC_LABELS: Record<string, string> = {
  accuracy: 'Accuracy',
  perPassAccuracy: 'Per-pass accuracy',
  bleu1: 'BLEU-1',
  bleu2: 'BLEU-2',
  bleu3: 'BLEU-3',
  bleu4: 'BLEU-4',
  rougeL: 'ROUGE-L',
  ciderD: 'CIDEr-D',
  precision: 'Precision',
  recall: 'Recall',
  f1: 'F1',
  yesRatio: 'Yes ratio',
};

/** Metrics shown per kind, in order (counts such as tp/fp stay in the JSON). */
export const KIND_METRICS: Record<BenchmarkResult['kind'], readonly string[]> = {
  'multiple-choice': ['accuracy', 'perPassAccuracy'],
  vqa: ['accuracy'],
  caption: ['bleu1', 'bleu2', 'bleu3', 'bleu4', 'rougeL', 'ciderD'],
  pope: ['accuracy', 'precision', 'recall', 'f1', 'yesRatio'],
};

/** Human label of a metric key. */
export function metricLabel(key: string): string {
  return METRIC_LABELS[key] ?? key;
}

/** Format a metric value: CIDEr-D as is (it is not a fraction), everything else as a percentage. */
export function formatMetric(key: string, value: number | undefined, digits = 1): string {
  if (value === undefined || Number.isNaN(value)) return '–';
  return key === 'ciderD' ? (value * 100).toFixed(digits) : formatPercent(value, digits);
}

/** Every benchmark id across runs, in first-seen order, with its kind. */
export function benchmarkIds(runs: readonly EvalRun[]): Array<{ id: string; kind: BenchmarkResult['kind'] }> {
  const seen = new Map<string, BenchmarkResult['kind']>();
  for (const run of runs) for (const b of run.benchmarks) if (!seen.has(b.id)) seen.set(b.id, b.kind);
  return [...seen].map(([id, kind]) => ({ id, kind }));
}

/** A table of one benchmark's metrics, runs as rows. */
export function renderBenchmarkTable(runs: readonly EvalRun[], benchmark: string, digits = 1): string {
  const kind = runs.flatMap((r) => r.benchmarks).find((b) => b.id === benchmark)?.kind ?? 'multiple-choice';
  const keys = KIND_METRICS[kind].filter((k) => runs.some((r) => findResult(r, benchmark)?.metrics[k] !== undefined));
  const groupKeys = kind === 'vqa' ? [...new Set(runs.flatMap((r) => Object.keys(findResult(r, benchmark)?.groups ?? {})))].sort() : [];
  const head = [...keys.map(metricLabel), ...groupKeys];
  const lines = [`| Run | ${head.join(' | ')} |`, `|---|${head.map(() => '---:').join('|')}|`];
  for (const run of runs) {
    const r = findResult(run, benchmark);
    const cells = [...keys.map((k) => formatMetric(k, r?.metrics[k], digits)), ...groupKeys.map((g) => formatPercent(r?.groups[g]?.accuracy, digits))];
    lines.push(`| ${escapeCell(run.name)} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** A whole markdown report: the review-layout table for multiple choice, a table per other benchmark, and manifest hashes. */
export function renderMarkdownReport(runs: readonly EvalRun[], options: { title?: string; digits?: number } = {}): string {
  const digits = options.digits ?? 1;
  const out: string[] = [`# ${options.title ?? 'Vlit evaluation'}`, ''];
  for (const { id, kind } of benchmarkIds(runs)) {
    out.push(`## ${id}`, '');
    if (kind === 'multiple-choice') {
      out.push(renderResultsTable(runs, { benchmark: id, digits }), '');
      const extra = renderBenchmarkTable(runs, id, digits);
      if (runs.some((r) => findResult(r, id)?.metrics.perPassAccuracy !== undefined)) out.push(extra, '');
    } else out.push(renderBenchmarkTable(runs, id, digits), '');
  }
  out.push('Scores are percentages (CIDEr-D x 100). Manifest hashes:', '');
  for (const run of runs) out.push(`- ${run.name}: \`${run.manifestHash}\` (model ${run.model}, Vlit ${run.manifest.vlitVersion})`);
  return out.join('\n') + '\n';
}
