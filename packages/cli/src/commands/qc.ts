import { assertDirectory, assertDistinctPaths } from '@vlit/core/node';
import { computeDataQuality, defaultQualityFilters, runQualityControl, type QualityReject } from '@vlit/data';
import { createRootImageLoader, readImageAnnotationsJsonl, readJsonLinesFile, writeQualityReport, writeRecordsFile } from '@vlit/data/node';
import { createSharpCodec } from '@vlit/runtime/node';
import { defineCommand, str } from '../define.js';
import { withProgress } from '../progress.js';
import { EXIT, assertOutputFiles, openOutput, positionals, printJson, rejectLine, required } from '../shared.js';

export const qcCommand = defineCommand({
  name: 'data qc',
  aliases: ['qc'],
  summary: 'quality-control canonical records (default filters) against images and annotations',
  usage: 'data qc IN --root DIR --annotations FILE [options]',
  description: `Run quality control with the default filters over IN (canonical Vlit records, one JSON per line)
whose images live under DIR, checked against FILE (one ImageAnnotations JSON per line, as written by
@vlit/data's fixture writer). Every input line is either kept or rejected with its filter and reason:
read = kept + rejected. Lines that are not JSON are rejected with filter 'json', reason 'invalid-json'.
Outputs are written atomically (temporary file, then rename); outputs that are the same file as
IN, FILE or each other are refused before anything is read.`,
  flags: [
    {
      name: 'root',
      type: 'string',
      arg: 'DIR',
      description: 'dataset root holding the images (required; must be an existing\nfolder; paths may not escape it)',
    },
    { name: 'annotations', type: 'string', arg: 'FILE', description: 'annotations JSON Lines (required)' },
    { name: 'out', type: 'string', arg: 'FILE', description: 'write kept records here (canonical JSON Lines)' },
    { name: 'rejects', type: 'string', arg: 'FILE', description: 'write rejects here: {id, index, filter, reason, message, record} per line' },
    { name: 'report', type: 'string', arg: 'BASE', description: 'write a data-quality report (before/after QC) to BASE.json and BASE.md' },
  ],
  examples: [
    {
      command: 'vlit data qc records.jsonl --root data/ --annotations annotations.jsonl --out kept.jsonl --rejects rejects.jsonl --report qc',
      note: 'keep the clean records, every reject with its filter and reason, and a before/after report',
    },
  ],
  action: async ({ values, positionals: pos, io }) => {
    const flag_out = str(values, 'out');
    const flag_rejects = str(values, 'rejects');
    const flag_report = str(values, 'report');
    const flag_annotations = str(values, 'annotations');
    const flag_root = str(values, 'root');
    const [input] = positionals(pos, ['IN']);
    const root = required(flag_root, 'root');
    const annotationsFile = required(flag_annotations, 'annotations');
    // Before anything is opened: an output that is an input (or another output) would be overwritten.
    await assertDistinctPaths({
      IN: input,
      '--annotations': annotationsFile,
      '--out': flag_out,
      '--rejects': flag_rejects,
      '--report (BASE.json)': flag_report !== undefined ? `${flag_report}.json` : undefined,
      '--report (BASE.md)': flag_report !== undefined ? `${flag_report}.md` : undefined,
    });
    await assertOutputFiles({
      '--out': flag_out,
      '--rejects': flag_rejects,
      '--report (BASE.json)': flag_report !== undefined ? `${flag_report}.json` : undefined,
      '--report (BASE.md)': flag_report !== undefined ? `${flag_report}.md` : undefined,
    });
    // A missing root would otherwise reject every record as image-missing and still exit 0.
    await assertDirectory(root, { what: 'dataset root (--root)' });
    const annotations = await readImageAnnotationsJsonl(annotationsFile);
    const { values: records, lines, rejects: bad } = await readJsonLinesFile(input);
    const codec = createSharpCodec();
    const qc = await withProgress(io, (onProgress) =>
      runQualityControl(records, defaultQualityFilters(), {
        annotations,
        images: { codec, load: createRootImageLoader(root) },
        onProgress: (e) => onProgress({ ...e, total: e.total ?? records.length }),
      }),
    );
    // Index = position among the file's non-empty lines, so a reject can be found in IN.
    const rejects: QualityReject[] = qc.rejects.map((r) => ({ ...r, index: lines[r.index] - 1 }));
    for (const b of bad)
      rejects.push({
        id: `line-${b.line}`,
        index: b.line - 1,
        filter: 'json',
        reason: 'invalid-json',
        message: `${input} line ${b.line}: ${b.message}`,
        record: b.text,
      });
    rejects.sort((a, b) => a.index - b.index);
    const counts = {
      ...qc.counts,
      read: qc.counts.read + bad.length,
      rejected: qc.counts.rejected + bad.length,
      byFilter: { ...qc.counts.byFilter },
      byReason: { ...qc.counts.byReason },
    };
    if (bad.length) {
      counts.byFilter.json = bad.length;
      counts.byReason['invalid-json'] = bad.length;
    }
    if (flag_out) await writeRecordsFile(flag_out, qc.kept, { dialect: 'vlit' });
    if (flag_rejects) {
      const out = await openOutput(flag_rejects, '--rejects');
      for (const r of rejects) void out.write(`${JSON.stringify(rejectLine(r))}\n`);
      await out.commit();
    }
    let report: { json: string; markdown: string } | undefined;
    if (flag_report) {
      report = await writeQualityReport(flag_report, [
        await computeDataQuality(records, { name: 'before QC', annotations }),
        await computeDataQuality(qc.kept, { name: 'after QC', annotations }),
      ]);
    }
    if (values.json === true) {
      printJson(io, { input, counts, warnings: qc.warnings.length, out: flag_out ?? null, rejects: flag_rejects ?? null, report: report ?? null });
      return EXIT.ok;
    }
    io.stdout(`quality control of ${input}: read ${counts.read} = kept ${counts.kept} + rejected ${counts.rejected}\n`);
    for (const [reason, n] of Object.entries(counts.byReason)) io.stdout(`  rejected ${n} x ${reason}\n`);
    if (qc.warnings.length) io.stdout(`${qc.warnings.length} warnings\n`);
    if (flag_out) io.stdout(`kept: ${flag_out}\n`);
    if (flag_rejects) io.stdout(`rejects: ${flag_rejects}\n`);
    if (report) io.stdout(`report: ${report.markdown}, ${report.json}\n`);
    return EXIT.ok;
  },
});
