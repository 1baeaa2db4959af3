/** The `vlit` command's dispatcher: global flags, then one command (a group's subcommand, or an older alias). */
import { readFileSync } from 'node:fs';
import { adaptCommand } from './commands/adapt.js';
import { convertCommand } from './commands/convert.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { generateCommand } from './commands/generate.js';
import { lintTemplateCommand } from './commands/lint-template.js';
import { mixCommand } from './commands/mix.js';
import { qcCommand } from './commands/qc.js';
import { reportCommand } from './commands/report.js';
import { reproduceCommand } from './commands/reproduce.js';
import { serveCommand } from './commands/serve.js';
import { trainCommand } from './commands/train.js';
import type { DeclaredCommand } from './define.js';
import { EXIT, type CliIo } from './shared.js';

/** Every command, in help order; a name with a space is a subcommand of a group (`data convert`). */
export const COMMANDS: readonly DeclaredCommand[] = [
  convertCommand,
  adaptCommand,
  generateCommand,
  qcCommand,
  reportCommand,
  mixCommand,
  lintTemplateCommand,
  evalCommand,
  serveCommand,
  exportCommand,
  trainCommand,
  demoCommand,
  reproduceCommand,
];

/** Command groups (the first word of a two-word command) and what they hold. */
export const GROUPS: Readonly<Record<string, string>> = {
  data: 'datasets: convert, adapt annotations, generate, quality-control, statistics, mix, lint templates',
};

/** This package's version, read from its package.json (dist/ and src/ both sit one level below it). */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The top-level `vlit --help` text. */
export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const aliases = COMMANDS.flatMap((c) => (c.spec.aliases ?? []).map((a) => `${a} = ${c.name}`));
  return `Usage: vlit <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Older names kept as aliases: ${aliases.join(', ')}.

Options:
  -h, --help       show this help (or 'vlit <command> --help', 'vlit data --help')
  -v, --version    print the version
  --verbose        after a failure's one line, print its stack and causes

Every command also takes --json (one JSON object on stdout), --config FILE (flags from a JSON
file, validated; flags on the command line win) and -h/--help (with worked examples).

Exit codes: 0 success, 1 the job failed (one line: error code, message, file/record/field),
2 usage error (bad flags or arguments).

Outputs are written to a temporary file and renamed into place, so a failed run never leaves a
truncated file; a command refuses outputs that are the same file as an input or another output.
`;
}

function groupUsage(group: string): string {
  const members = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...members.map((c) => c.name.length));
  return `Usage: vlit ${group} <command> [options]

${GROUPS[group]}.

Commands:
${members.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'vlit ${group} <command> --help' for a command's flags and examples.
`;
}

/** The command `argv` names and the arguments left for it, or undefined. */
export function resolveCommand(argv: readonly string[]): { command: DeclaredCommand; rest: string[] } | undefined {
  const [first, second, ...more] = argv;
  if (first === undefined) return undefined;
  if (second !== undefined) {
    const two = COMMANDS.find((c) => c.name === `${first} ${second}`);
    if (two) return { command: two, rest: more };
  }
  const one = COMMANDS.find((c) => c.name === first || (c.spec.aliases ?? []).includes(first));
  return one ? { command: one, rest: argv.slice(1) } : undefined;
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
    if (first === 'help' && rest[0]) return runCli([...rest, '--help'], io);
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
  const found = resolveCommand(argv);
  if (found) return found.command.run(found.rest, io);
  if (Object.hasOwn(GROUPS, first)) {
    const sub = rest[0];
    if (sub === undefined || sub === '--help' || sub === '-h') {
      (sub === undefined ? io.stderr : io.stdout)(groupUsage(first));
      return sub === undefined ? EXIT.usage : EXIT.ok;
    }
    const members = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.slice(first.length + 1));
    io.stderr(`vlit: VLIT_INVALID_ARGUMENT unknown command '${first} ${sub}'; expected one of ${members.join(', ')}\n`);
    io.stderr(`Run 'vlit ${first} --help' for usage.\n`);
    return EXIT.usage;
  }
  const names = [...new Set([...COMMANDS.map((c) => c.name.split(' ')[0])])];
  io.stderr(`vlit: VLIT_INVALID_ARGUMENT unknown command '${first}'; expected one of ${names.join(', ')}\n`);
  io.stderr(`Run 'vlit --help' for usage.\n`);
  return EXIT.usage;
}
