/** `vlit demo`: Vlit's main job end to end (see ../main-job/main-job.ts; `--data-only`: ../demo.ts). */
import { runDemo } from '../demo.js';
import { runTrainedMainJob, type MainJobProgress, type TrainedMainJobResult } from '../main-job/index.js';
import { defineCommand } from '../define.js';
import { createProgressBars } from '../progress.js';
import { EXIT, positionals, printJson } from '../shared.js';

/** One line per progress event that starts or ends a stage, or every tenth of its work. */
export function formatMainJobProgress(event: MainJobProgress, last: Map<string, number>): string | undefined {
  const tenth = event.total > 0 ? Math.floor((10 * event.done) / event.total) : 10;
  if (last.get(event.stage) === tenth) return undefined;
  last.set(event.stage, tenth);
  return `${event.stage.padEnd(16)} ${String(event.done).padStart(6)}/${event.total}${event.detail ? `  ${event.detail}` : ''}`;
}

export const demoCommand = defineCommand({
  name: 'demo',
  summary: "run Vlit's main job end to end: build data, check it, train a small LLaVA, evaluate (offline, CPU)",
  usage: 'demo [OUT] [--quick] [--data-only] [--force] [--json]',
  description: `Render a synthetic visual world (shapes, colours, relations, words); adapt its annotations into
instruction data; plant realistic faults; quality-control everything; write the data-quality report;
train a small LLaVA-architecture model (ViT + MLP projector + Llama-style decoder) with Vlit's local
engine: the full run first pretrains the ViT's learned channels on rendered scenes (stage 0), then
both runs train in LLaVA's two stages; evaluate it on a held-out SEED-Bench-format benchmark per dimension,
on questions phrased as no training template phrases them, and with blank images; save it as a
Hugging Face checkpoint folder; write report.html and summary.md. See docs/main-job.md.
OUT (default ./vlit-demo) receives the world, the data, the model folder and the reports.

OUT must be new, empty, or made by an earlier Vlit run (it holds a .vlit-output marker); only
then is it emptied first. A non-empty folder Vlit did not make is refused, so 'vlit demo .' never
deletes your files. On a terminal each stage draws a progress bar on stderr; otherwise a line per
tenth of a stage is printed.`,
  flags: [
    { name: 'quick', type: 'boolean', description: 'the small run (what CI runs; no stage 0)' },
    {
      name: 'data-only',
      type: 'boolean',
      description:
        'the data half only (annotations, adaption, QC, report) and an untrained\nmodel answering one question: adapted.jsonl, kept.jsonl, rejects.jsonl,\nquality-report.md/.json, eval-report/, coco/',
    },
    {
      name: 'force',
      type: 'boolean',
      description: "write into a non-empty folder Vlit did not make: the demo's own\nfiles are overwritten, nothing else is deleted",
    },
  ],
  examples: [
    { command: 'vlit demo runs/demo --quick', note: 'about 75 s on a 2-core laptop; the full job about 8 minutes' },
    { command: 'vlit demo runs/data --data-only --json', note: 'the data half only, its counts and file paths as JSON' },
  ],
  action: async ({ values, positionals: pos, io, json }) => {
    const [out = 'vlit-demo'] = positionals(pos, ['OUT'], 1);
    const force = values.force === true;
    if (values['data-only'] === true) {
      const result = await runDemo({ out, force, onLog: json ? undefined : (line) => io.stdout(`${line}\n`) });
      if (json) printJson(io, result);
      return EXIT.ok;
    }
    const last = new Map<string, number>();
    const bars = createProgressBars(io);
    let result: TrainedMainJobResult;
    try {
      result = await runTrainedMainJob({
        out,
        force,
        quick: values.quick === true,
        onProgress: (event) => {
          if (bars.drawing) bars.onProgress(event);
          else if (!json) {
            const line = formatMainJobProgress(event, last);
            if (line) io.stdout(`${line}\n`);
          }
        },
      });
    } finally {
      bars.stop();
    }
    if (json) printJson(io, result);
    else io.stdout(`\nreport: ${result.files.reportHtml}\nsummary: ${result.files.summaryMarkdown}\n`);
    return EXIT.ok;
  },
});
