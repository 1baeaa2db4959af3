/** What every command shares: output streams, flag parsing, errors, JSON Lines input. */
import { mkdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidArgumentError, isVlitError } from '@vlit/core';
import { createAtomicFileWriter, fileSystemError, type AtomicFileWriter } from '@vlit/core/node';
import { DIALECT_NAMES, type DialectName, type QualityReject } from '@vlit/data';

/** Where a command writes: the process streams in the binary, buffers in embedders. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stdout is a terminal (colour on by default). */
  isTty?: boolean;
  /** Print the stack (and causes) of a failure after its one line (`--verbose`). */
  verbose?: boolean;
  /** Where progress bars are drawn (stderr in the binary); drawn only when it is a TTY. */
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Standard input, for commands that read `-` (the process's stdin in the binary). */
  stdin?: AsyncIterable<Uint8Array>;
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
    const parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
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

/**
 * Open an output file for an atomic write (its folder is created): nothing lands at `file` until
 * `commit`, so a failed run leaves what was there before.
 */
export async function openOutput(file: string, what: string): Promise<AtomicFileWriter> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true }).catch((err: unknown) => {
    throw fileSystemError(err, file, what);
  });
  return createAtomicFileWriter(file, { what });
}

/**
 * Refuse outputs that exist and are not regular files (a folder, a FIFO, a device) before any work is
 * done, naming the flag; writers would otherwise fail only at the final rename, with a temporary name.
 */
export async function assertOutputFiles(outputs: Record<string, string | undefined>): Promise<void> {
  for (const [role, file] of Object.entries(outputs)) {
    if (file === undefined) continue;
    const st = await stat(file).catch(() => undefined);
    if (st && !st.isFile()) {
      throw new InvalidArgumentError(
        `${role} ${file} exists and is ${st.isDirectory() ? 'a directory' : 'not a regular file'}; outputs must be regular files`,
        { details: { file, field: role } },
      );
    }
  }
}

/** A failure as a Vlit error where possible: a raw Node file-system error becomes a typed one naming its path. */
export function asVlitError(err: unknown): unknown {
  if (isVlitError(err)) return err;
  const file = (err as { path?: unknown } | null)?.path;
  return typeof file === 'string' ? fileSystemError(err, file) : err;
}

/** The one-line message for a failure: `CODE message (file ..., record ..., field ...)`. */
export function errorLine(err: unknown): string {
  const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();
  const typed = asVlitError(err);
  if (isVlitError(typed)) return `${typed.code} ${oneLine(typed.message)}`;
  const code = (typed as { code?: unknown })?.code;
  // An errno error not about a path (EIO, ENOSPC) keeps its code; anything else is a bug worth its stack.
  if (typed instanceof Error && typeof code === 'string') return `${code} ${oneLine(typed.message)}`;
  if (typed instanceof Error) return `internal error (${typed.name}): ${oneLine(typed.message)}; run with --verbose for the stack`;
  return `internal error: ${oneLine(String(typed))}`;
}

function stackOf(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    parts.push(`${depth ? 'caused by: ' : ''}${e instanceof Error && e.stack ? e.stack : String(e)}`);
    if (!(e instanceof Error)) break;
  }
  return parts.join('\n');
}

/**
 * Run a command body, turning thrown errors into one stderr line and an exit code; with `--verbose` (or
 * VLIT_DEBUG set) the stack and its causes follow the line.
 */
export async function guarded(name: string, io: CliIo, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    io.stderr(`vlit ${name}: ${errorLine(err)}\n`);
    if (err instanceof UsageError) {
      io.stderr(`Run 'vlit ${name} --help' for usage.\n`);
      return EXIT.usage;
    }
    if (io.verbose || process.env.VLIT_DEBUG) io.stderr(`${stackOf(err)}\n`);
    return EXIT.failed;
  }
}

/** Print a value as pretty JSON. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** The line written to a rejects file for one quality-control reject (the shape `vlit data qc` and the demo share). */
export function rejectLine(r: QualityReject): Record<string, unknown> {
  return { id: r.id, index: r.index, filter: r.filter, reason: r.reason, message: r.message, record: r.record };
}
