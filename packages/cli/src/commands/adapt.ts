/** `vlit data adapt`: Annotation Adaption, image annotations to instruction records. */
import { ADAPT_TASKS, createAnnotationAdapter, type AdaptTask, type ImageAnnotationsInput } from '@vlit/data';
import { assertDistinctPaths } from '@vlit/core/node';
import { readJsonLinesFile, writeRecordsFile } from '@vlit/data/node';
import { defineCommand, num, str } from '../define.js';
import { withProgress } from '../progress.js';
import { EXIT, assertOutputFiles, dialect, openOutput, positionals, printJson, UsageError } from '../shared.js';

/** Parse `--tasks counting=2,caption=1` into per-task maxima. */
export function parseTasks(text: string | undefined): Partial<Record<AdaptTask, number>> | undefined {
  if (text === undefined) return undefined;
  const tasks: Partial<Record<AdaptTask, number>> = {};
  for (const part of text.split(',').filter((p) => p.trim())) {
    const [name, n = '1'] = part.split('=').map((s) => s.trim());
    const count = Number(n);
    if (!(ADAPT_TASKS as readonly string[]).includes(name) || !Number.isInteger(count) || count < 0) {
      throw new UsageError(`--tasks: '${part}' is not TASK=N with TASK one of ${ADAPT_TASKS.join(', ')}`, { details: { field: '--tasks' } });
    }
    tasks[name as AdaptTask] = count;
  }
  return tasks;
}

export const adaptCommand = defineCommand({
  name: 'data adapt',
  summary: 'turn image annotations (captions, boxes, regions, VQA, OCR) into instruction records',
  usage: 'data adapt ANNOTATIONS OUT --dataset NAME [options]',
  description: `Annotation Adaption: read ANNOTATIONS (one ImageAnnotations JSON per line: captions, objects with
boxes, regions, VQA pairs, OCR) and write instruction records to OUT, phrased with the template pools
of @vlit/templates, seeded. An image whose annotations are invalid (and a line that is not JSON) is
refused and counted; with --rejects each goes there with its reason. Counts add up:
images = adapted + refused.`,
  flags: [
    { name: 'dataset', type: 'string', arg: 'NAME', description: "dataset name written to each record's source and id prefix (required)" },
    { name: 'seed', type: 'integer', arg: 'N', default: 0, description: 'seed of every choice (phrasings, objects, negatives)' },
    { name: 'tasks', type: 'string', arg: 'TASK=N,...', description: `records per image for each task (others off); tasks:\n${ADAPT_TASKS.join(', ')}` },
    { name: 'to', type: 'string', arg: '<dialect>', description: 'dialect of OUT (default vlit: canonical JSON Lines)' },
    { name: 'rejects', type: 'string', arg: 'FILE', description: 'refused images as JSON Lines {line, message, field}' },
  ],
  examples: [
    { command: 'vlit data adapt coco/annotations.jsonl adapted.jsonl --dataset coco-adapted --seed 7', note: 'every default task, seeded phrasings' },
    {
      command: 'vlit data adapt annotations.jsonl counting.jsonl --dataset counts --tasks counting=2,existence=1 --json',
      note: 'only counting and existence questions, counts as JSON',
    },
  ],
  action: async ({ values, positionals: pos, io, json }) => {
    const [input, output] = positionals(pos, ['ANNOTATIONS', 'OUT']);
    const dataset = str(values, 'dataset');
    if (!dataset) throw new UsageError('missing required flag --dataset', { details: { field: '--dataset' } });
    const to = dialect(str(values, 'to') ?? 'vlit', 'to');
    const tasks = parseTasks(str(values, 'tasks'));
    const rejectsFile = str(values, 'rejects');
    await assertDistinctPaths({ ANNOTATIONS: input, OUT: output, '--rejects': rejectsFile });
    await assertOutputFiles({ OUT: output, '--rejects': rejectsFile });
    const { values: images, lines, rejects: badLines } = await readJsonLinesFile(input);
    const refused: { line: number; message: string; field?: string }[] = badLines.map((b) => ({ line: b.line, message: `not JSON: ${b.message}` }));
    const adapter = createAnnotationAdapter({ dataset, seed: num(values, 'seed'), ...(tasks ? { tasks } : {}) });
    const byTask: Record<string, number> = {};
    let warnings = 0;
    const stats = await withProgress(io, (onProgress) =>
      writeRecordsFile(
        output,
        (async function* () {
          for await (const r of adapter.adaptAll(images as ImageAnnotationsInput[], {
            onReject: ({ index, error }) =>
              refused.push({ line: lines[index], message: error.message, field: error.details?.field === undefined ? undefined : String(error.details.field) }),
            onWarning: () => void warnings++,
            onProgress: (e) => onProgress({ ...e, total: images.length }),
          })) {
            byTask[r.task ?? 'other'] = (byTask[r.task ?? 'other'] ?? 0) + 1;
            yield r;
          }
        })(),
        { dialect: to },
      ),
    );
    if (rejectsFile !== undefined) {
      const out = await openOutput(rejectsFile, '--rejects');
      for (const r of refused.sort((a, b) => a.line - b.line)) void out.write(`${JSON.stringify(r)}\n`);
      await out.commit();
    }
    const images_ = images.length + badLines.length;
    const summary = {
      input,
      output,
      images: images_,
      adapted: images_ - refused.length,
      refused: refused.length,
      records: stats.written,
      byTask,
      warnings,
      rejects: rejectsFile ?? null,
    };
    if (json) printJson(io, summary);
    else {
      io.stdout(
        `adapted ${input} -> ${output}: images ${summary.images} = adapted ${summary.adapted} + refused ${summary.refused}; ${summary.records} records (${Object.entries(
          byTask,
        )
          .map(([t, n]) => `${t} ${n}`)
          .join(', ')})\n`,
      );
      for (const r of refused.slice(0, 5)) io.stderr(`refused: line ${r.line}: ${r.message}\n`);
    }
    return EXIT.ok;
  },
});
