import { describe, expect, expectTypeOf, it } from 'vitest';
import { computeDataQuality, generateCocoFixture, type DataQualityReport } from '@vlit/data';
import { createSharpCodec } from '@vlit/runtime/node';
import { dataQualitySection, renderHtmlReport, type DataQualityReportLike } from './html.js';
import { toJsonReport } from './json.js';
import { renderMarkdownReport, renderResultsTable } from './markdown.js';
import { makeRuns, seedQualityReports } from './fixtures.js';

describe('reports', () => {
  it('markdown: the review layout with the expected accuracies', async () => {
    const runs = await makeRuns();
    // Oracle knowing k of 4 answers per dimension; the rest fall back to position 0, right only for
    // the question whose answer is at 0 (it is among the known ones when k >= 1): accuracy k/4.
    expect(renderResultsTable(runs).split('\n')).toEqual([
      '| Run | Overall | SU | II | IA | IL | IC | SR | IIR | VR | TR |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      '| LLaVA / LLaVA data | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 |',
      '| LLaVA / MIMIC-IT data | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 |',
      '| LLaVA / review data | 75.0 | 75.0 | 75.0 | 75.0 | 75.0 | 75.0 | 75.0 | 75.0 | 75.0 | 75.0 |',
    ]);
    const md = renderMarkdownReport(runs, { title: 'Tuned on three datasets' });
    expect(md).toContain('## seed-bench-mini');
    expect(md).toContain('| Run | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | ROUGE-L | CIDEr-D |');
    expect(md).toContain('| Run | Accuracy | Precision | Recall | F1 | Yes ratio |');
    expect(md).toContain('| Run | Accuracy | number | other |');
    for (const r of runs) expect(md).toContain(r.manifestHash);
    const json = JSON.parse(JSON.stringify(toJsonReport(runs)));
    expect(json.format).toBe('vlit-eval-report/1');
    expect(json.runs[2].benchmarks[0].groups.SU).toEqual({ accuracy: 0.75, correct: 3, total: 4 });
  });

  it('@vlit/data quality reports fit the data-quality section as they are', () => {
    // Compile-time check (typecheck covers this file): a real DataQualityReport is accepted where the report expects one.
    expectTypeOf<DataQualityReport>().toExtend<DataQualityReportLike>();
    const section = dataQualitySection(seedQualityReports());
    expect(section.datasets[2]).toMatchObject({ name: 'Review data', metrics: { MD: 33.2, C: 94.6, T: 10, Balance: 16.8, SM: 0.3028, AM: 0.5658 } });
    expect(section.metrics.find((m) => m.key === 'Balance')?.better).toBe('lower');
  });

  it('renders real @vlit/data quality reports (computeDataQuality on its COCO-style fixture)', async () => {
    const fx = await generateCocoFixture({ images: 12, seed: 3, codec: createSharpCodec() });
    const reports = [
      await computeDataQuality(fx.records, { name: 'fixture (all)', annotations: fx.annotations }),
      await computeDataQuality(fx.records.slice(0, 6), { name: 'fixture (half)', annotations: fx.annotations }),
    ];
    const section = dataQualitySection(reports);
    expect(section.datasets.map((d) => d.name)).toEqual(['fixture (all)', 'fixture (half)']);
    expect(section.datasets[0].metrics.T).toBe(reports[0].taskTypes.count);
    expect(section.datasets[0].metrics.SM).toBe(reports[0].similarity.instructions);
    const html = await renderHtmlReport({ runs: [], dataQuality: section });
    expect(html).toContain('fixture (half)');
    expect(html).toContain('data-chart="data-quality"');
  }, 60_000);

  it('HTML is self-contained: no scripts to run, no external resources', async () => {
    const html = await renderHtmlReport({ runs: await makeRuns(), dataQuality: dataQualitySection(seedQualityReports()) });
    expect(html).not.toMatch(/<script(?![^>]*application\/json)/);
    expect(html).not.toMatch(/\b(?:src|href)=["']?https?:/);
    expect(html).not.toMatch(/@import|url\(/);
    expect(html.match(/<figure class="chart"/g)).toHaveLength(5);
  });
});
