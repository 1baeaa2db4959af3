/** `vlit convert`: one dataset dialect to another, bad records to a rejects file. */
import type { VlitWarning } from '@vlit/core';
import { DIALECT_NAMES } from '@vlit/data';
import { convertFile } from '@vlit/data/node';
import { EXIT, dialect, guarded, parseFlags, positionals, printJson, required, UsageError, type Command } from '../shared.js';

const MAX_WARNINGS_SHOWN = 10;

function where(w: VlitWarning): string {
  const d = w.details ?? {};
  const parts = (['file', 'record', 'field'] as const).filter((k) => d[k] !== undefined).map((k) => `${k} ${String(d[k])}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

export const convertCommand: Command = {
  name: 'convert',
  summary: 'convert a dataset file from one dialect to another',
  help: `Usage: vlit convert --from <dialect> --to <dialect> IN OUT [options]

Convert IN (dialect --from) to OUT (dialect --to) in constant memory. Counts add up:
read = written + rejected.

Dialects: ${DIALECT_NAMES.join(', ')}

Options:
  --from <dialect>         dialect of IN (required)
  --to <dialect>           dialect of OUT (required)
  --rejects FILE           write bad records (JSON Lines, with reasons) here; without it the
                           first bad record stops the run
  --root DIR               dataset root: every image must resolve under it (symlinks followed)
  --dataset NAME           dataset name recorded in each record's source
  --to-container json|jsonl  container of OUT (default: the dialect's own)
  --json                   print the counts as JSON
  -h, --help               show this help
`,
  run: (argv, io) =>
    guarded('convert', io, async () => {
      const { values, positionals: pos } = parseFlags(argv, {
        from: { type: 'string' },
        to: { type: 'string' },
        rejects: { type: 'string' },
        root: { type: 'string' },
        dataset: { type: 'string' },
        'to-container': { type: 'string' },
      });
      if (values.help) {
        io.stdout(convertCommand.help);
        return EXIT.ok;
      }
      const from = dialect(required(values.from, 'from'), 'from');
      const to = dialect(required(values.to, 'to'), 'to');
      const [input, output] = positionals(pos, ['IN', 'OUT']);
      const container = values['to-container'];
      if (container !== undefined && container !== 'json' && container !== 'jsonl') {
        throw new UsageError(`--to-container must be json or jsonl, got '${container}'`, { details: { field: '--to-container' } });
      }
      const warnings: VlitWarning[] = [];
      const stats = await convertFile({
        input,
        output,
        from,
        to,
        rejects: values.rejects,
        root: values.root,
        dataset: values.dataset,
        toContainer: container,
        onWarning: (w) => warnings.push(w),
      });
      if (values.json) {
        printJson(io, { input, output, from, to, ...stats, rejects: values.rejects ?? null });
        return EXIT.ok;
      }
      for (const w of warnings.slice(0, MAX_WARNINGS_SHOWN)) io.stderr(`warning: ${w.code} ${w.message}${where(w)}\n`);
      if (warnings.length > MAX_WARNINGS_SHOWN) io.stderr(`warning: ... and ${warnings.length - MAX_WARNINGS_SHOWN} more\n`);
      io.stdout(`converted ${input} (${from}) -> ${output} (${to}): read ${stats.read} = written ${stats.written} + rejected ${stats.rejected}; ${stats.warnings} warnings\n`);
      if (values.rejects) io.stdout(`rejects: ${values.rejects}\n`);
      return EXIT.ok;
    }),
};
