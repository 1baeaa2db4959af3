/** The `vlit` command's dispatcher: global flags, then one command. */
import { readFileSync } from 'node:fs';
import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { lintTemplateCommand } from './commands/lint-template.js';
import { qcCommand } from './commands/qc.js';
import { reportCommand } from './commands/report.js';
import { EXIT, type CliIo, type Command } from './shared.js';

/** Every command, in help order. */
export const COMMANDS: readonly Command[] = [convertCommand, qcCommand, reportCommand, lintTemplateCommand, demoCommand];

/** This package's version, read from its package.json (dist/ and src/ both sit one level below it). */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: vlit <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Not yet: 'serve' and 'eval' need a saved composed-model format, which does not exist yet.

Options:
  -h, --help       show this help (or 'vlit <command> --help')
  -v, --version    print the version
  --verbose        after a failure's one line, print its stack and causes

Exit codes: 0 success, 1 the job failed (one line: error code, message, file/record/field),
2 usage error (bad flags or arguments).

Outputs are written to a temporary file and renamed into place, so a failed run never leaves a
truncated file; a command refuses outputs that are the same file as an input or another output.
`;
}

/** Run `vlit` with `argv` (without node and the script); returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  // --verbose is global: it may stand anywhere before a `--`, and every command honours it through io.
  const end = argv.indexOf('--');
  const head = end < 0 ? argv : argv.slice(0, end);
  if (head.includes('--verbose')) {
    argv = [...head.filter((a) => a !== '--verbose'), ...(end < 0 ? [] : argv.slice(end))];
    io = { ...io, verbose: true };
  }
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    if (first === 'help' && rest[0]) return runCli([rest[0], '--help'], io);
    if (first === undefined) {
      io.stderr(usage());
      return EXIT.usage;
    }
    io.stdout(usage());
    return EXIT.ok;
  }
  if (first === '-v' || first === '--version') {
    io.stdout(`${cliVersion()}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) {
    const hint = first === 'serve' || first === 'eval' ? ` ('${first}' is not available yet: it needs a saved composed-model format)` : '';
    io.stderr(`vlit: VLIT_INVALID_ARGUMENT unknown command '${first}'${hint}; expected one of ${COMMANDS.map((c) => c.name).join(', ')}\n`);
    io.stderr(`Run 'vlit --help' for usage.\n`);
    return EXIT.usage;
  }
  return command.run([...rest], io);
}
