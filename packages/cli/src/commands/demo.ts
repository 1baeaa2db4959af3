/** `vlit demo`: Vlit's main job end to end (see ../demo.ts). */
import { runDemo } from '../demo.js';
import { EXIT, guarded, parseFlags, positionals, printJson, type Command } from '../shared.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: "run Vlit's main job end to end on generated data (offline, CPU)",
  help: `Usage: vlit demo [OUT] [--json]

Generate COCO-style annotations, images and a noisy source with planted faults; adapt the
annotations into instruction records; quality-control everything; write the data-quality report;
compose a ViT encoder, an MLP connector and a tiny Llama-style decoder and ask it one question.
OUT (default ./vlit-demo) is emptied first, then receives adapted.jsonl, kept.jsonl,
rejects.jsonl, quality-report.md/.json and coco/ (images + annotations).

Options:
  --json                   print the counts and file paths as JSON instead of the log
  -h, --help               show this help
`,
  run: (argv, io) =>
    guarded('demo', io, async () => {
      const { values, positionals: pos } = parseFlags(argv, {});
      if (values.help) {
        io.stdout(demoCommand.help);
        return EXIT.ok;
      }
      const [out = 'vlit-demo'] = positionals(pos, ['OUT'], 1);
      const result = await runDemo({ out, onLog: values.json ? undefined : (line) => io.stdout(`${line}\n`) });
      if (values.json) printJson(io, result);
      return EXIT.ok;
    }),
};
