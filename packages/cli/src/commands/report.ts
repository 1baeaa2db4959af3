/** `vlit data stats` (alias `vlit report`): the data-quality report of a canonical JSON Lines file. */
import { basename } from 'node:path';
import { assertDistinctPaths } from '@vlit/core/node';
import { computeDataQuality, renderQualityJson, renderQualityMarkdown } from '@vlit/data';
import { readImageAnnotationsJsonl, readJsonLinesFile, writeQualityReport } from '@vlit/data/node';
import { defineCommand, str } from '../define.js';
import { EXIT, assertOutputFiles, positionals } from '../shared.js';

export const reportCommand = defineCommand({
  name: 'data stats',
  aliases: ['report'],
  summary: 'data-quality report (correctness, diversity, complexity, balance) of canonical records',
  usage: 'data stats IN [--annotations FILE] [--out BASE] [--name NAME] [--json]',
  description: `Compute the data-quality report of IN (canonical Vlit records, one JSON per line). Records failing
the canonical schema, and lines that are not JSON, are counted as invalid and skipped.
Without --out the Markdown report is printed; with it, BASE.json and BASE.md are written.`,
  flags: [
    { name: 'annotations', type: 'string', arg: 'FILE', description: 'ImageAnnotations JSON Lines, for the correctness (hallucination) metrics' },
    { name: 'out', type: 'string', arg: 'BASE', description: 'write BASE.json and BASE.md' },
    { name: 'name', type: 'string', arg: 'NAME', description: "the dataset's column name in the report (default: the file name)" },
  ],
  examples: [{ command: 'vlit data stats kept.jsonl --annotations annotations.jsonl --out kept-report', note: 'write kept-report.md and kept-report.json' }],
  action: async ({ values, positionals: pos, io }) => {
    const flag_out = str(values, 'out');
    const flag_annotations = str(values, 'annotations');
    const flag_name = str(values, 'name');
    const [input] = positionals(pos, ['IN']);
    await assertDistinctPaths({
      IN: input,
      '--annotations': flag_annotations,
      '--out (BASE.json)': flag_out !== undefined ? `${flag_out}.json` : undefined,
      '--out (BASE.md)': flag_out !== undefined ? `${flag_out}.md` : undefined,
    });
    await assertOutputFiles({
      '--out (BASE.json)': flag_out !== undefined ? `${flag_out}.json` : undefined,
      '--out (BASE.md)': flag_out !== undefined ? `${flag_out}.md` : undefined,
    });
    const annotations = flag_annotations ? await readImageAnnotationsJsonl(flag_annotations) : undefined;
    const { values: records, rejects: bad } = await readJsonLinesFile(input);
    // Lines that are not JSON go in as their text, so the report counts them as invalid.
    const report = await computeDataQuality([...records, ...bad.map((b) => b.text)], { name: flag_name ?? basename(input), annotations });
    const written = flag_out ? await writeQualityReport(flag_out, [report]) : undefined;
    if (values.json === true) io.stdout(renderQualityJson([report]));
    else if (!written) io.stdout(renderQualityMarkdown([report]));
    if (written && !(values.json === true)) io.stdout(`report of ${input}: ${written.markdown}, ${written.json}\n`);
    return EXIT.ok;
  },
});
