/** What every command shares: output streams, flag parsing, errors, JSON Lines input. */
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidArgumentError, NotFoundError, isVlitError } from '@vlit/core';
import { DIALECT_NAMES, type DialectName } from '@vlit/data';

/** Where a command writes: the process streams in the binary, buffers in embedders. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stdout is a terminal (colour on by default). */
  isTty?: boolean;
}

/** One `vlit` command. */
export interface Command {
  name: string;
  summary: string;
  help: string;
  run: (argv: string[], io: CliIo) => Promise<number>;
}

/** Exit codes: 0 success, 1 the job failed (typed error, or the linter found errors), 2 usage error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A usage problem (bad flags, missing arguments); exits with code 2. */
export class UsageError extends InvalidArgumentError {}

/** Flag declarations, as `util.parseArgs` takes them. */
export type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/** Parsed flag values: strings for string flags, booleans for boolean ones; `help` and `json` always. */
export type FlagValues<O extends FlagOptions> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string } & { help?: boolean; json?: boolean };

/** Parse flags strictly (unknown flags are usage errors); `--help` and `--json` are always known. */
export function parseFlags<O extends FlagOptions>(argv: string[], options: O): { values: FlagValues<O>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
    return { values: parsed.values as FlagValues<O>, positionals: parsed.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err, details: { field: 'argv' } });
  }
}

/** The value of a required flag, or a usage error naming it. */
export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing required flag --${flag}`, { details: { field: `--${flag}` } });
  return value;
}

/** Exactly `names.length` positionals, or a usage error naming the missing/extra one. */
export function positionals(values: string[], names: string[], optional = 0): string[] {
  const min = names.length - optional;
  if (values.length < min) throw new UsageError(`missing argument ${names[values.length]}`, { details: { field: names[values.length] } });
  if (values.length > names.length) throw new UsageError(`unexpected argument '${values[names.length]}'`, { details: { field: 'argv' } });
  return values;
}

/** A dialect name checked against data's list, or a usage error listing the known ones. */
export function dialect(name: string, flag: string): DialectName {
  if (!(DIALECT_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(`unknown dialect '${name}' for --${flag}; expected one of ${DIALECT_NAMES.join(', ')}`, { details: { field: `--${flag}` } });
  }
  return name as DialectName;
}

/** A positive integer flag. */
export function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${flag} must be a non-negative integer, got '${value}'`, { details: { field: `--${flag}` } });
  return n;
}

/** A line of a JSON Lines file that is not JSON. */
export interface BadJsonLine {
  line: number;
  text: string;
  message: string;
}

/** Read a JSON Lines file: parsed values (with their line numbers) and the lines that are not JSON. */
export async function readJsonLines(file: string): Promise<{ values: unknown[]; lines: number[]; bad: BadJsonLine[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') throw new NotFoundError(`file not found: ${file}`, { cause: err, details: { file } });
    throw err;
  }
  const values: unknown[] = [];
  const lines: number[] = [];
  const bad: BadJsonLine[] = [];
  text.split('\n').forEach((raw, i) => {
    if (!raw.trim()) return;
    try {
      values.push(JSON.parse(raw));
      lines.push(i + 1);
    } catch (err) {
      bad.push({ line: i + 1, text: raw, message: (err as Error).message });
    }
  });
  return { values, lines, bad };
}

/** The one-line message for a failure: `CODE message (file ..., record ..., field ...)`. */
export function errorLine(err: unknown): string {
  const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();
  if (isVlitError(err)) return `${err.code} ${oneLine(err.message)}`;
  const code = (err as { code?: unknown })?.code;
  if (err instanceof Error) return `${typeof code === 'string' ? `${code} ` : ''}${oneLine(err.message)}`;
  return oneLine(String(err));
}

/** Run a command body, turning thrown errors into one stderr line and an exit code. */
export async function guarded(name: string, io: CliIo, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    io.stderr(`vlit ${name}: ${errorLine(err)}\n`);
    if (err instanceof UsageError) {
      io.stderr(`Run 'vlit ${name} --help' for usage.\n`);
      return EXIT.usage;
    }
    if (process.env.VLIT_DEBUG && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
    return EXIT.failed;
  }
}

/** Print a value as pretty JSON. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}
