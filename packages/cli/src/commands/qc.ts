/** `vlit qc`: quality control of canonical records against their images and annotations. */
import { ValidationError } from '@vlit/core';
import { assertDirectory, assertDistinctPaths } from '@vlit/core/node';
import { computeDataQuality, defaultQualityFilters, imageAnnotationsSchema, runQualityControl, type ImageAnnotations, type QualityReject } from '@vlit/data';
import { createRootImageLoader, writeQualityReport, writeRecordsFile } from '@vlit/data/node';
import { createSharpCodec } from '@vlit/runtime/node';
import { rejectLine } from '../demo.js';
import { EXIT, assertOutputFiles, guarded, openOutput, parseFlags, positionals, printJson, readJsonLines, required, type Command } from '../shared.js';

/** Read an annotations JSON Lines file (one `ImageAnnotations` per line), failing on the first bad line. */
export async function readAnnotationsFile(file: string): Promise<ImageAnnotations[]> {
  const { values, lines, bad } = await readJsonLines(file, 'annotations file');
  if (bad.length) throw new ValidationError(`annotations line ${bad[0].line} is not JSON: ${bad[0].message}`, { details: { file, record: bad[0].line } });
  return values.map((v, i) => {
    const parsed = imageAnnotationsSchema.safeParse(v);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.map(String).join('.') || '(root)';
      throw new ValidationError(`annotations line ${lines[i]}: ${issue.message}`, { details: { file, record: lines[i], field } });
    }
    return parsed.data as ImageAnnotations;
  });
}

export const qcCommand: Command = {
  name: 'qc',
  summary: 'quality-control canonical records (default filters) against images and annotations',
  help: `Usage: vlit qc IN --root DIR --annotations FILE [options]

Run quality control with the default filters over IN (canonical Vlit records, one JSON per line)
whose images live under DIR, checked against FILE (one ImageAnnotations JSON per line, as written by
@vlit/data's fixture writer). Every input line is either kept or rejected with its filter and reason:
read = kept + rejected. Lines that are not JSON are rejected with filter 'json', reason 'invalid-json'.

Options:
  --root DIR               dataset root holding the images (required; must be an existing
                           folder; paths may not escape it)
  --annotations FILE       annotations JSON Lines (required)
  --out FILE               write kept records here (canonical JSON Lines)
  --rejects FILE           write rejects here: {id, index, filter, reason, message, record} per line
  --report BASE            write a data-quality report (before/after QC) to BASE.json and BASE.md
  --json                   print the counts as JSON
  -h, --help               show this help

Outputs are written atomically (temporary file, then rename); outputs that are the same file as
IN, FILE or each other are refused before anything is read.
`,
  run: (argv, io) =>
    guarded('qc', io, async () => {
      const { values, positionals: pos } = parseFlags(argv, {
        root: { type: 'string' },
        annotations: { type: 'string' },
        out: { type: 'string' },
        rejects: { type: 'string' },
        report: { type: 'string' },
      });
      if (values.help) {
        io.stdout(qcCommand.help);
        return EXIT.ok;
      }
      const [input] = positionals(pos, ['IN']);
      const root = required(values.root, 'root');
      const annotationsFile = required(values.annotations, 'annotations');
      // Before anything is opened: an output that is an input (or another output) would be overwritten.
      await assertDistinctPaths({
        IN: input,
        '--annotations': annotationsFile,
        '--out': values.out,
        '--rejects': values.rejects,
        '--report (BASE.json)': values.report !== undefined ? `${values.report}.json` : undefined,
        '--report (BASE.md)': values.report !== undefined ? `${values.report}.md` : undefined,
      });
      await assertOutputFiles({
        '--out': values.out,
        '--rejects': values.rejects,
        '--report (BASE.json)': values.report !== undefined ? `${values.report}.json` : undefined,
        '--report (BASE.md)': values.report !== undefined ? `${values.report}.md` : undefined,
      });
      // A missing root would otherwise reject every record as image-missing and still exit 0.
      await assertDirectory(root, { what: 'dataset root (--root)' });
      const annotations = await readAnnotationsFile(annotationsFile);
      const { values: records, lines, bad } = await readJsonLines(input);
      const codec = createSharpCodec();
      const qc = await runQualityControl(records, defaultQualityFilters(), { annotations, images: { codec, load: createRootImageLoader(root) } });
      // Index = position among the file's non-empty lines, so a reject can be found in IN.
      const rejects: QualityReject[] = qc.rejects.map((r) => ({ ...r, index: lines[r.index] - 1 }));
      for (const b of bad) rejects.push({ id: `line-${b.line}`, index: b.line - 1, filter: 'json', reason: 'invalid-json', message: `${input} line ${b.line}: ${b.message}`, record: b.text });
      rejects.sort((a, b) => a.index - b.index);
      const counts = { ...qc.counts, read: qc.counts.read + bad.length, rejected: qc.counts.rejected + bad.length, byFilter: { ...qc.counts.byFilter }, byReason: { ...qc.counts.byReason } };
      if (bad.length) {
        counts.byFilter.json = bad.length;
        counts.byReason['invalid-json'] = bad.length;
      }
      if (values.out) await writeRecordsFile(values.out, qc.kept, { dialect: 'vlit' });
      if (values.rejects) {
        const out = await openOutput(values.rejects, '--rejects');
        for (const r of rejects) void out.write(`${JSON.stringify(rejectLine(r))}\n`);
        await out.commit();
      }
      let report: { json: string; markdown: string } | undefined;
      if (values.report) {
        report = await writeQualityReport(values.report, [
          await computeDataQuality(records, { name: 'before QC', annotations }),
          await computeDataQuality(qc.kept, { name: 'after QC', annotations }),
        ]);
      }
      if (values.json) {
        printJson(io, { input, counts, warnings: qc.warnings.length, out: values.out ?? null, rejects: values.rejects ?? null, report: report ?? null });
        return EXIT.ok;
      }
      io.stdout(`quality control of ${input}: read ${counts.read} = kept ${counts.kept} + rejected ${counts.rejected}\n`);
      for (const [reason, n] of Object.entries(counts.byReason)) io.stdout(`  rejected ${n} x ${reason}\n`);
      if (qc.warnings.length) io.stdout(`${qc.warnings.length} warnings\n`);
      if (values.out) io.stdout(`kept: ${values.out}\n`);
      if (values.rejects) io.stdout(`rejects: ${values.rejects}\n`);
      if (report) io.stdout(`report: ${report.markdown}, ${report.json}\n`);
      return EXIT.ok;
    }),
};
