/** `vlit demo`: Vlit's main job end to end (see ../main-job/main-job.ts; `--data-only`: ../demo.ts). */
import { runDemo } from '../demo.js';
import { runTrainedMainJob, type MainJobProgress } from '../main-job/index.js';
import { EXIT, guarded, parseFlags, positionals, printJson, type Command } from '../shared.js';

/** One line per progress event that starts or ends a stage, or every tenth of its work. */
export function formatMainJobProgress(event: MainJobProgress, last: Map<string, number>): string | undefined {
  const tenth = event.total > 0 ? Math.floor((10 * event.done) / event.total) : 10;
  if (last.get(event.stage) === tenth) return undefined;
  last.set(event.stage, tenth);
  return `${event.stage.padEnd(16)} ${String(event.done).padStart(6)}/${event.total}${event.detail ? `  ${event.detail}` : ''}`;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: "run Vlit's main job end to end: build data, check it, train a small LLaVA, evaluate (offline, CPU)",
  help: `Usage: vlit demo [OUT] [--quick] [--data-only] [--force] [--json]

Render a synthetic visual world (shapes, colours, relations, words); adapt its annotations into
instruction data; plant realistic faults; quality-control everything; write the data-quality report;
train a small LLaVA-architecture model (ViT + MLP projector + Llama-style decoder) in LLaVA's two
stages with Vlit's local engine; evaluate it on a held-out SEED-Bench-format benchmark per dimension,
on questions phrased as no training template phrases them, and with blank images; save it as a
Hugging Face checkpoint folder; write report.html and summary.md. See docs/main-job.md.
OUT (default ./vlit-demo) receives the world, the data, the model folder and the reports.

Example:
  vlit demo runs/demo --quick      # about 2-3 minutes on a 2-core laptop; the full job about 10

OUT must be new, empty, or made by an earlier Vlit run (it holds a .vlit-output marker); only
then is it emptied first. A non-empty folder Vlit did not make is refused, so 'vlit demo .' never
deletes your files.

Options:
  --quick                  the small run (what CI runs)
  --data-only              the data half only (annotations, adaption, QC, report) and an untrained
                           model answering one question: adapted.jsonl, kept.jsonl, rejects.jsonl,
                           quality-report.md/.json, eval-report/, coco/
  --force                  write into a non-empty folder Vlit did not make: the demo's own
                           files are overwritten, nothing else is deleted
  --json                   print the result (counts, scores, file paths) as JSON instead of the log
  -h, --help               show this help
`,
  run: (argv, io) =>
    guarded('demo', io, async () => {
      const { values, positionals: pos } = parseFlags(argv, {
        force: { type: 'boolean' },
        quick: { type: 'boolean' },
        'data-only': { type: 'boolean' },
      });
      if (values.help) {
        io.stdout(demoCommand.help);
        return EXIT.ok;
      }
      const [out = 'vlit-demo'] = positionals(pos, ['OUT'], 1);
      const force = values.force === true;
      if (values['data-only']) {
        const result = await runDemo({ out, force, onLog: values.json ? undefined : (line) => io.stdout(`${line}\n`) });
        if (values.json) printJson(io, result);
        return EXIT.ok;
      }
      const last = new Map<string, number>();
      const result = await runTrainedMainJob({
        out,
        force,
        quick: values.quick === true,
        onProgress: values.json
          ? undefined
          : (event) => {
              const line = formatMainJobProgress(event, last);
              if (line) io.stdout(`${line}\n`);
            },
      });
      if (values.json) printJson(io, result);
      else io.stdout(`\nreport: ${result.files.reportHtml}\nsummary: ${result.files.summaryMarkdown}\n`);
      return EXIT.ok;
    }),
};
