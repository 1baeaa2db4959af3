import type { DataQualityReport } from './metrics.js';

const fmt = (v: number | null | undefined, digits: number): string => (v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits));

/** The rows of the side-by-side table: label, direction hint and value getter. */
export const QUALITY_TABLE_ROWS: ReadonlyArray<{ key: string; label: string; better: 'higher' | 'lower' | ''; value: (r: DataQualityReport) => string }> = [
  { key: 'records', label: 'Records', better: '', value: (r) => String(r.records) },
  { key: 'MD', label: 'Image–text relevance (MD)', better: 'higher', value: (r) => fmt(r.relevance.value, 1) },
  { key: 'C', label: 'Correctness rate % (C)', better: 'higher', value: (r) => fmt(r.correctness.rate, 1) },
  { key: 'T', label: 'Task types (T)', better: 'higher', value: (r) => String(r.taskTypes.count) },
  { key: 'templates', label: 'Instruction templates', better: 'higher', value: (r) => String(r.instructionDiversity.templates) },
  { key: 'distinct', label: 'Distinct-instruction ratio', better: 'higher', value: (r) => fmt(r.instructionDiversity.distinctRatio, 3) },
  { key: 'entropy', label: 'Instruction bigram entropy (bits)', better: 'higher', value: (r) => fmt(r.instructionDiversity.bigramEntropy, 2) },
  { key: 'turns', label: 'Turns per conversation', better: 'higher', value: (r) => fmt(r.turns.mean, 2) },
  { key: 'objects', label: 'Objects per conversation', better: 'higher', value: (r) => fmt(r.objectsPerConversation.mean, 2) },
  { key: 'instrLen', label: 'Instruction words', better: '', value: (r) => fmt(r.lengths.instructionWords, 1) },
  { key: 'answerLen', label: 'Answer words', better: '', value: (r) => fmt(r.lengths.answerWords, 1) },
  { key: 'reasoning', label: 'Reasoning share %', better: 'higher', value: (r) => fmt(r.reasoningShare, 1) },
  { key: 'Balance', label: 'Category balance spread, CV % (Balance)', better: 'lower', value: (r) => fmt(r.balance.category, 1) },
  { key: 'taskBalance', label: 'Task balance spread, CV %', better: 'lower', value: (r) => fmt(r.balance.task, 1) },
  { key: 'SM', label: 'Instruction similarity (SM)', better: 'lower', value: (r) => fmt(r.similarity.instructions, 4) },
  { key: 'AM', label: 'Answer similarity (AM)', better: 'lower', value: (r) => fmt(r.similarity.answers, 4) },
  { key: 'SMmax', label: 'Instruction mean max similarity', better: 'lower', value: (r) => fmt(r.similarity.instructionsMeanMax, 4) },
  { key: 'AMmax', label: 'Answer mean max similarity', better: 'lower', value: (r) => fmt(r.similarity.answersMeanMax, 4) },
];

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
