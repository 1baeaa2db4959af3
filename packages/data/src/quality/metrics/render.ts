import { InvalidArgumentError } from '@vlit/core';
import { z } from 'zod';
import type { DataQualityReport } from './metrics.js';
import qualityTableJson from './quality-table.json';

const fmt = (v: number | null | undefined, digits: number): string => (v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits));

const qualityTableSchema = z.array(
  z.object({
    key: z.string().min(1),
    label: z.string().min(1),
    better: z.enum(['higher', 'lower', '']),
    /** Dotted path of the number in a DataQualityReport. */
    field: z.string().regex(/^[A-Za-z]+(\.[A-Za-z]+)*$/),
    digits: z.number().int().min(0),
  }),
);

/** The number at a dotted path of a report (undefined where a report read from disk lacks it; shown as '–'). */
function reportField(report: DataQualityReport, field: string): number | null | undefined {
  let value: unknown = report;
  for (const part of field.split('.')) value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
  if (value === null || value === undefined || typeof value === 'number') return value;
  throw new InvalidArgumentError(`quality table field '${field}' is not a number in report '${report.name}'`, { details: { field } });
}

/**
 * The rows of the side-by-side table: label, direction hint and value getter. The rows are data
 * (`quality-table.json`: label, direction, report field, decimals), checked when the module loads.
 */
export const QUALITY_TABLE_ROWS: ReadonlyArray<{ key: string; label: string; better: 'higher' | 'lower' | ''; value: (r: DataQualityReport) => string }> =
  qualityTableSchema
    .parse(qualityTableJson)
    .map(({ field, digits, ...row }) => ({ ...row, value: (r: DataQualityReport) => fmt(reportField(r, field), digits) }));

/** A markdown table with one column per dataset, plus the embedders that produced the numbers. */
export function renderQualityMarkdown(reports: readonly DataQualityReport[]): string {
  const lines = [
    `| metric | better | ${reports.map((r) => r.name).join(' | ')} |`,
    `|---|---|${reports.map(() => '---:').join('|')}|`,
    ...QUALITY_TABLE_ROWS.map((row) => `| ${row.label} | ${row.better} | ${reports.map((r) => row.value(r)).join(' | ')} |`),
    '',
  ];
  for (const r of reports) {
    const rel =
      r.relevance.method === 'image-encoder'
        ? `image encoder ${r.relevance.encoder} + text embedder ${r.relevance.embedder}`
        : r.relevance.method === 'annotation-text'
          ? `annotation text vs answers, embedder ${r.relevance.embedder}`
          : 'not computed';
    lines.push(
      `- **${r.name}**: relevance by ${rel}; SM/AM by ${r.similarity.embedder} over ${r.similarity.sampled.instructions} instructions / ${r.similarity.sampled.answers} answers; correctness over ${r.correctness.checked} annotated records.`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The reports as pretty JSON (an array, one object per dataset). */
export function renderQualityJson(reports: readonly DataQualityReport[]): string {
  return `${JSON.stringify(reports, null, 2)}\n`;
}
