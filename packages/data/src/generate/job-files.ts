import { FormatError, type VlitWarning } from '@vlit/core';
import { createWriteStream } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const CHUNK = 1 << 20;

/** What completeLines saw after the last newline: the bytes of a partial line, and where the file ends. */
interface LinesTail {
  partialBytes: number;
  fileBytes: number;
  lines: number;
}

/**
 * The complete (newline-terminated) lines of an open file in order, with 1-based numbers, read in
 * chunks. Each `bytes` (newline included) views a reused buffer: copy it before keeping it. After the
 * last yield, `tail` holds the partial last line's length, the file's length and the line count.
 */
async function* completeLines(handle: FileHandle, tail: LinesTail): AsyncGenerator<{ line: number; bytes: Buffer }> {
  const buffer = Buffer.allocUnsafe(CHUNK);
  let carry = Buffer.alloc(0);
  let position = 0;
  let line = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    const data = carry.length ? Buffer.concat([carry, buffer.subarray(0, bytesRead)]) : buffer.subarray(0, bytesRead);
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      line++;
      yield { line, bytes: data.subarray(start, nl + 1) };
      start = nl + 1;
    }
    carry = Buffer.from(data.subarray(start));
  }
  tail.partialBytes = carry.length;
  tail.fileBytes = position;
  tail.lines = line;
}

/** One complete line of a job file: its 1-based physical line number and parsed value. */
export interface JobLine {
  line: number;
  value: unknown;
}

/** Options of scanJobLines. */
export interface ScanJobLinesOptions {
  /**
   * Drop complete lines that are not JSON (with a `VLIT_W_JOB_BAD_LINE` warning) instead of failing.
   * For the done log, which is an index rebuilt from the outputs; outputs stay strict.
   */
  lenient?: boolean;
}

/**
 * Read the complete lines of an append-only JSONL job file and cut off a partial last line (a write
 * cut short by a kill), with a `VLIT_W_PARTIAL_LINE` warning. A complete line that is not JSON is a
 * FormatError naming the file and line, unless `lenient`.
 */
export async function scanJobLines(path: string, warnings: VlitWarning[], options: ScanJobLinesOptions = {}): Promise<JobLine[]> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const lines: JobLine[] = [];
  const tail: LinesTail = { partialBytes: 0, fileBytes: 0, lines: 0 };
  try {
    for await (const { line: lineNumber, bytes } of completeLines(handle, tail)) {
      const text = bytes.toString('utf8', 0, bytes.length - 1);
      if (!text.trim()) continue;
      try {
        lines.push({ line: lineNumber, value: JSON.parse(text) });
      } catch (cause) {
        if (options.lenient) {
          warnings.push({
            code: 'VLIT_W_JOB_BAD_LINE',
            message: `dropped line ${lineNumber}, which is not JSON (a write cut short and appended to)`,
            details: { file: path, record: lineNumber },
          });
          continue;
        }
        throw new FormatError('a complete line of a job file is not JSON; the file was changed by something other than the job', {
          cause,
          details: { file: path, record: lineNumber, line: lineNumber },
        });
      }
    }
    if (tail.partialBytes) {
      // Everything after the last newline is a write the kill interrupted; its unit is not done.
      await handle.truncate(tail.fileBytes - tail.partialBytes);
      warnings.push({
        code: 'VLIT_W_PARTIAL_LINE',
        message: `dropped a partial last line (${tail.partialBytes} bytes) left by an interrupted run`,
        details: { file: path, record: tail.lines + 1 },
      });
    }
  } finally {
    await handle.close();
  }
  return lines;
}

/**
 * Read complete lines of an append-only JSONL file and cut off a partial last line (a write cut short
 * by a kill). Returns the parsed lines; a complete line that is not JSON is a FormatError.
 */
export async function readCompleteJsonLines(path: string, warnings: VlitWarning[]): Promise<unknown[]> {
  return (await scanJobLines(path, warnings)).map((l) => l.value);
}

/**
 * Rewrite a job file keeping only the physical lines `keep` accepts, streaming (constant memory) into
 * a temporary sibling that is then renamed over the file, so a kill leaves the old or the new file.
 */
export async function rewriteJobLines(path: string, keep: (line: number) => boolean): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.rewrite.tmp`);
  const out = createWriteStream(temp);
  const done = new Promise<void>((resolve, reject) => {
    out.once('error', reject);
    out.once('finish', () => resolve());
  });
  const handle = await open(path, 'r');
  try {
    for await (const { line, bytes } of completeLines(handle, { partialBytes: 0, fileBytes: 0, lines: 0 })) {
      // Copied: the read buffer is reused before the stream flushes.
      if (keep(line) && !out.write(Buffer.from(bytes))) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    out.end();
    await done;
    await rename(temp, path);
  } catch (err) {
    out.destroy();
    await rm(temp, { force: true });
    throw err;
  } finally {
    await handle.close();
  }
}
