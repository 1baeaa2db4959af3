/** Node-only: the metrics JSONL file of a run (one line per record, appended). */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { formatMetricsLine, type MetricsRecord } from '../metrics.js';

/** Appends metrics records to a JSONL file. */
export interface MetricsWriter {
  readonly file: string;
  /** Append one record (validated; see formatMetricsLine). */
  write(record: MetricsRecord): Promise<void>;
  close(): Promise<void>;
}

/** Open (create or append to) a metrics JSONL file; a resumed run keeps appending to the same file. */
export async function createMetricsWriter(file: string): Promise<MetricsWriter> {
  await mkdir(path.dirname(file), { recursive: true });
  const handle: FileHandle = await open(file, 'a');
  return {
    file,
    async write(record) {
      await handle.appendFile(formatMetricsLine(record));
    },
    close: () => handle.close(),
  };
}
