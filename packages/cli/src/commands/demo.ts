/** `vlit demo`: Vlit's main job end to end (see ../demo.ts). */
import { runDemo } from '../demo.js';
import { EXIT, guarded, parseFlags, positionals, printJson, type Command } from '../shared.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: "run Vlit's main job end to end on generated data (offline, CPU)",
  help: `Usage: vlit demo [OUT] [--force] [--json]

Generate COCO-style annotations, images and a noisy source with planted faults; adapt the
annotations into instruction records; quality-control everything; write the data-quality report;
compose a ViT encoder, an MLP connector and a tiny Llama-style decoder and ask it one question.
OUT (default ./vlit-demo) receives adapted.jsonl, kept.jsonl, rejects.jsonl,
quality-report.md/.json, eval-report/ and coco/ (images + annotations).

OUT must be new, empty, or made by an earlier Vlit run (it holds a .vlit-output marker); only
then is it emptied first. A non-empty folder Vlit did not make is refused, so 'vlit demo .' never
deletes your files.

Options:
  --force                  write into a non-empty folder Vlit did not make: the demo's own
                           files are overwritten, nothing else is deleted
  --json                   print the counts and file paths as JSON instead of the log
  -h, --help               show this help
`,
  run: (argv, io) =>
    guarded('demo', io, async () => {
      const { values, positionals: pos } = parseFlags(argv, { force: { type: 'boolean' } });
      if (values.help) {
        io.stdout(demoCommand.help);
        return EXIT.ok;
      }
      const [out = 'vlit-demo'] = positionals(pos, ['OUT'], 1);
      const result = await runDemo({ out, force: values.force === true, onLog: values.json ? undefined : (line) => io.stdout(`${line}\n`) });
      if (values.json) printJson(io, result);
      return EXIT.ok;
    }),
};
