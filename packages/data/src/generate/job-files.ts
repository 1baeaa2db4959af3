import { FormatError, type VlitWarning } from '@vlit/core';
import { open, type FileHandle } from 'node:fs/promises';

const CHUNK = 1 << 20;

/**
 * Read complete lines of an append-only JSONL file and cut off a partial last line (a write cut short
 * by a kill). Returns the parsed lines; a complete line that is not JSON is a FormatError.
 */
export async function readCompleteJsonLines(path: string, warnings: VlitWarning[]): Promise<unknown[]> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const values: unknown[] = [];
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    let carry = Buffer.alloc(0);
    let position = 0;
    let lineNumber = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      let data = carry.length ? Buffer.concat([carry, buffer.subarray(0, bytesRead)]) : buffer.subarray(0, bytesRead);
      let start = 0;
      for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
        lineNumber++;
        const line = data.toString('utf8', start, nl);
        start = nl + 1;
        if (!line.trim()) continue;
        try {
          values.push(JSON.parse(line));
        } catch (cause) {
          throw new FormatError('a complete line of a job file is not JSON; the file was changed by something other than the job', {
            cause,
            details: { file: path, record: lineNumber },
          });
        }
      }
      data = data.subarray(start);
      carry = Buffer.from(data);
    }
    if (carry.length) {
      // Everything after the last newline is a write the kill interrupted; its unit is not done.
      await handle.truncate(position - carry.length);
      warnings.push({
        code: 'VLIT_W_PARTIAL_LINE',
        message: `dropped a partial last line (${carry.length} bytes) left by an interrupted run`,
        details: { file: path, record: lineNumber + 1 },
      });
    }
  } finally {
    await handle.close();
  }
  return values;
}
