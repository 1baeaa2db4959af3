/**
 * Declarative commands: each command states its flags, usage, summary and worked examples once; the
 * same declaration parses argv, validates a `--config` JSON file (a zod schema built from the flags),
 * renders `--help`, and renders the CLI reference in docs/cli.md (scripts/cli-reference.mjs).
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { InvalidArgumentError, ValidationError } from '@vlit/core';
import { readUserFile } from '@vlit/core/node';
import { EXIT, UsageError, guarded, type CliIo, type Command } from './shared.js';

/** One flag of a command. */
export interface FlagSpec {
  /** Long name without the dashes. */
  name: string;
  /** `integer` and `number` flags are parsed, checked against `min` and given their `default` before the action runs. */
  type: 'string' | 'boolean' | 'integer' | 'number';
  /** One-letter alias. */
  short?: string;
  /** Placeholder of the value in help (string flags), e.g. `FILE`. */
  arg?: string;
  /** May be given more than once (string flags; values collect into a list). */
  multiple?: boolean;
  /** One-line description; may continue on more lines. */
  description: string;
  /** Numeric flags: the value when the flag is absent (help prints it). */
  default?: number;
  /** Numeric flags: the smallest value accepted (default 0). */
  min?: number;
}

/** A worked example: the command line and what it does. */
export interface ExampleSpec {
  command: string;
  note: string;
}

/** Flag values as parsed: strings, booleans, numbers (numeric flags), or lists for repeatable flags. */
export type FlagValue = string | boolean | number | string[] | undefined;

/** What a command's action receives. */
export interface CommandContext {
  values: Record<string, FlagValue>;
  positionals: string[];
  io: CliIo;
  json: boolean;
}

/** A command declaration. */
export interface CommandSpec {
  /** Words after `vlit`, e.g. `data convert`. */
  name: string;
  /** Older spellings that keep working (e.g. `convert` for `data convert`). */
  aliases?: readonly string[];
  summary: string;
  /** The usage line after `vlit`, e.g. `data convert --from <dialect> --to <dialect> IN OUT [options]`. */
  usage: string;
  /** Paragraphs of description. */
  description: string;
  flags: readonly FlagSpec[];
  /** At least one worked example. */
  examples: readonly ExampleSpec[];
  action: (ctx: CommandContext) => Promise<number>;
}

/** A declared command: a runnable Command that keeps its declaration (for the reference). */
export interface DeclaredCommand extends Command {
  spec: CommandSpec;
}

/** Flags every command takes. */
export const COMMON_FLAGS: readonly FlagSpec[] = [
  { name: 'config', type: 'string', arg: 'FILE', description: 'read flags from a JSON file ({"flag-name": value, ...}); flags on the command line win' },
  { name: 'json', type: 'boolean', description: 'print one JSON object on stdout instead of the human summary' },
  { name: 'help', type: 'boolean', short: 'h', description: 'show this help' },
];

/** The zod schema a command's `--config` file must satisfy: its own flags (not config/help), strictly. */
export function configSchema(flags: readonly FlagSpec[]): z.ZodObject {
  const shape: Record<string, z.ZodType> = {};
  for (const f of [...flags, ...COMMON_FLAGS]) {
    if (f.name === 'config' || f.name === 'help') continue;
    const scalar = f.type === 'boolean' ? z.boolean() : z.union([z.string(), z.number()]).transform(String);
    shape[f.name] = (f.multiple ? z.union([z.array(scalar), scalar.transform((v) => [v])]) : scalar).optional();
  }
  return z.object(shape).strict();
}

/** Read and validate a `--config` file for `spec`; a bad key or type is a ValidationError naming the field. */
export async function readConfigFile(file: string, flags: readonly FlagSpec[]): Promise<Record<string, FlagValue>> {
  const text = (await readUserFile(file, { what: '--config file', maxBytes: 1024 * 1024 })).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`--config ${file} is not JSON: ${(err as Error).message}`, { cause: err, details: { file, field: '--config' } });
  }
  const parsed = configSchema(flags).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const keys = (issue as { keys?: string[] }).keys;
    const field = keys?.length ? keys[0] : issue.path.map(String).join('.') || '(root)';
    const message = keys?.length ? `unknown flag '${keys[0]}'` : issue.message;
    throw new ValidationError(`--config ${file}: ${message} (field ${field})`, { details: { file, field } });
  }
  return parsed.data as Record<string, FlagValue>;
}

/** A flag as help shows it: `-s, --name ARG`. */
export function flagLabel(f: FlagSpec): string {
  const long = `--${f.name}${f.type === 'boolean' ? '' : ` ${f.arg ?? 'VALUE'}`}`;
  return f.short ? `-${f.short}, ${long}` : long;
}

/** What help adds after a flag's description: its default and whether it repeats. */
export function flagNotes(f: FlagSpec): string {
  return `${f.default !== undefined ? ` (default ${f.default})` : ''}${f.multiple ? ' (repeatable)' : ''}`;
}

/** The `--help` text of a command, from its declaration. */
export function renderHelp(spec: CommandSpec): string {
  const flags = [...spec.flags, ...COMMON_FLAGS];
  const width = Math.min(28, Math.max(...flags.map((f) => flagLabel(f).length)) + 2);
  const flagLines = flags.map((f) => {
    const label = flagLabel(f);
    const [first, ...more] = `${f.description}${flagNotes(f)}`.split('\n');
    const head = label.length + 2 > width ? `  ${label}\n  ${''.padEnd(width)}${first}` : `  ${label.padEnd(width)}${first}`;
    return [head, ...more.map((m) => `  ${''.padEnd(width)}${m}`)].join('\n');
  });
  const aliases = spec.aliases?.length ? `\nAlso: ${spec.aliases.map((a) => `vlit ${a}`).join(', ')} (older spellings).\n` : '';
  return `Usage: vlit ${spec.usage}

${spec.summary[0].toUpperCase()}${spec.summary.slice(1)}.

${spec.description.trim()}
${aliases}
Examples:
${spec.examples.map((e) => `  # ${e.note}\n  ${e.command}`).join('\n')}

Options:
${flagLines.join('\n')}
`;
}

/** Make a runnable command from a declaration: parsing, `--help`, `--config`, one-line errors. */
export function defineCommand(spec: CommandSpec): DeclaredCommand {
  const command: DeclaredCommand = {
    name: spec.name,
    summary: spec.summary,
    help: renderHelp(spec),
    spec,
    run: (argv, io) =>
      guarded(spec.name, io, async () => {
        const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
        for (const f of [...spec.flags, ...COMMON_FLAGS]) {
          const type = f.type === 'boolean' ? 'boolean' : 'string';
          options[f.name] = { type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
        }
        let parsed: { values: Record<string, FlagValue>; positionals: string[] };
        try {
          parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as typeof parsed;
        } catch (err) {
          throw new UsageError((err as Error).message, { cause: err, details: { field: 'argv' } });
        }
        if (parsed.values.help) {
          io.stdout(command.help);
          return EXIT.ok;
        }
        let values = parsed.values;
        if (typeof values.config === 'string') values = { ...(await readConfigFile(values.config, spec.flags)), ...values };
        values = withNumbers(values, spec.flags);
        return spec.action({ values, positionals: parsed.positionals, io, json: values.json === true });
      }),
  };
  return command;
}

/** A string flag's value (undefined when absent). */
export function str(values: Record<string, FlagValue>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable string flag's values (empty when absent). */
export function list(values: Record<string, FlagValue>, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** Numeric flags as numbers (from argv or `--config`), checked against their `min`, absent ones at their `default`. */
function withNumbers(values: Record<string, FlagValue>, flags: readonly FlagSpec[]): Record<string, FlagValue> {
  const out = { ...values };
  for (const f of flags) {
    if (f.type !== 'integer' && f.type !== 'number') continue;
    const v = values[f.name];
    if (v === undefined) {
      if (f.default !== undefined) out[f.name] = f.default;
      continue;
    }
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
    const min = f.min ?? 0;
    if (!Number.isFinite(n) || n < min || (f.type === 'integer' && !Number.isInteger(n))) {
      throw new UsageError(`--${f.name} must be ${f.type === 'integer' ? 'an integer' : 'a number'} >= ${min}, got '${String(v)}'`, {
        details: { field: `--${f.name}` },
      });
    }
    out[f.name] = n;
  }
  return out;
}

/** A numeric flag's value, or undefined when absent and declared without a default. */
export function optionalNum(values: Record<string, FlagValue>, name: string): number | undefined {
  const v = values[name];
  return typeof v === 'number' ? v : undefined;
}

/** A numeric flag declared with a default (so it always has a value). */
export function num(values: Record<string, FlagValue>, name: string): number {
  const v = values[name];
  if (typeof v !== 'number') throw new InvalidArgumentError(`--${name} is not a numeric flag with a default`, { details: { field: `--${name}` } });
  return v;
}
