/** `vlit report`: the data-quality report of a canonical JSON Lines file. */
import { basename } from 'node:path';
import { assertDistinctPaths } from '@vlit/core/node';
import { computeDataQuality, renderQualityJson, renderQualityMarkdown } from '@vlit/data';
import { writeQualityReport } from '@vlit/data/node';
import { EXIT, assertOutputFiles, guarded, parseFlags, positionals, readJsonLines, type Command } from '../shared.js';
import { readAnnotationsFile } from './qc.js';

export const reportCommand: Command = {
  name: 'report',
  summary: 'data-quality report (correctness, diversity, complexity, balance) of canonical records',
  help: `Usage: vlit report IN [--annotations FILE] [--out BASE] [--name NAME] [--json]

Compute the data-quality report of IN (canonical Vlit records, one JSON per line). Records failing
the canonical schema, and lines that are not JSON, are counted as invalid and skipped.
Without --out the Markdown report is printed; with it, BASE.json and BASE.md are written.

Options:
  --annotations FILE       ImageAnnotations JSON Lines, for the correctness (hallucination) metrics
  --out BASE               write BASE.json and BASE.md
  --name NAME              the dataset's column name in the report (default: the file name)
  --json                   print the report as JSON instead of Markdown
  -h, --help               show this help
`,
  run: (argv, io) =>
    guarded('report', io, async () => {
      const { values, positionals: pos } = parseFlags(argv, {
        annotations: { type: 'string' },
        out: { type: 'string' },
        name: { type: 'string' },
      });
      if (values.help) {
        io.stdout(reportCommand.help);
        return EXIT.ok;
      }
      const [input] = positionals(pos, ['IN']);
      await assertDistinctPaths({
        IN: input,
        '--annotations': values.annotations,
        '--out (BASE.json)': values.out !== undefined ? `${values.out}.json` : undefined,
        '--out (BASE.md)': values.out !== undefined ? `${values.out}.md` : undefined,
      });
      await assertOutputFiles({
        '--out (BASE.json)': values.out !== undefined ? `${values.out}.json` : undefined,
        '--out (BASE.md)': values.out !== undefined ? `${values.out}.md` : undefined,
      });
      const annotations = values.annotations ? await readAnnotationsFile(values.annotations) : undefined;
      const { values: records, bad } = await readJsonLines(input);
      // Lines that are not JSON go in as their text, so the report counts them as invalid.
      const report = await computeDataQuality([...records, ...bad.map((b) => b.text)], { name: values.name ?? basename(input), annotations });
      const written = values.out ? await writeQualityReport(values.out, [report]) : undefined;
      if (values.json) io.stdout(renderQualityJson([report]));
      else if (!written) io.stdout(renderQualityMarkdown([report]));
      if (written && !values.json) io.stdout(`report of ${input}: ${written.markdown}, ${written.json}\n`);
      return EXIT.ok;
    }),
};
