/**
 * Messages between the parallel `convertFile` and its worker threads, and the one function both
 * sides run on a packed batch: decode, check and encode its records exactly as the calling thread
 * would, given the writer's counts at the batch's start.
 */
import type { VlitWarning } from '@vlit/core';
import type { RecordDialect } from './codec.js';
import type { DialectSpec } from './dialects/spec.js';
import { packedGroups, unpackRecords, type PackedBatch, type UnpackContext } from './packed-batch.js';
import { convertItems, dialectFromSpec, RecordTextWriter, type ConvertOptions, type ReadRecordsOptions, type RejectedRecord } from './records.js';

/** Everything a worker needs to convert batches of one file. */
export interface WorkerSetup {
  from: DialectSpec;
  to: DialectSpec;
  /** The input's container. */
  container: 'json' | 'jsonl';
  toContainer?: 'json' | 'jsonl';
  carrier?: boolean;
  file?: string;
  dataset?: string;
  /** Dataset root: every image must resolve under it, symbolic links followed. */
  root?: string;
  maxDepth: number;
}

/** The writer's counts a batch starts from: records handed to the writer, records written. */
export interface BatchBase {
  index: number;
  written: number;
}

/** A reject (`write`: raised by the writer, its index counts records handed to it) or a warning, in the order they came. */
export type BatchEvent = { reject: RejectedRecord; write?: true } | { warning: VlitWarning };

/** What converting one batch gives. */
export interface BatchResult {
  /** The written records' texts, joined as the output's container joins them (no leading separator), UTF-8. */
  bytes: Uint8Array;
  /** Records read (every item of the batch). */
  read: number;
  /** Records handed to the writer (those that decoded and passed the check). */
  attempts: number;
  written: number;
  events: BatchEvent[];
  /** Map layouts: the keys written, in order. */
  keys?: string[];
}

/** A worker's setup, rebuilt: the dialects and what reading needs. */
export interface WorkerState {
  setup: WorkerSetup;
  from: RecordDialect;
  to: RecordDialect;
  unpack: UnpackContext;
  readOptions: ReadRecordsOptions;
}

/** Rebuild the dialects and options of a setup. */
export function workerState(setup: WorkerSetup): WorkerState {
  const from = dialectFromSpec(setup.from);
  return {
    setup,
    from,
    to: dialectFromSpec(setup.to),
    unpack: { container: setup.container, layout: from.layout, file: setup.file, maxDepth: setup.maxDepth },
    readOptions: { dialect: from, file: setup.file, dataset: setup.dataset, maxDepth: setup.maxDepth },
  };
}

const encoder = new TextEncoder();

/** Bytes of records converted at a time inside a batch (see `packedGroups`). */
export const GROUP_BYTES = 64 * 1024;

/** Convert one packed batch as if the writer had handed out `base.index` records and written `base.written` before it. */
export async function convertPacked(state: WorkerState, batch: PackedBatch, base: BatchBase, check?: ConvertOptions['check']): Promise<BatchResult> {
  const { setup, from, to, readOptions } = state;
  const events: BatchEvent[] = [];
  const writeStats = { written: base.written, rejected: 0, warnings: 0 };
  const writer = new RecordTextWriter(
    {
      dialect: to,
      container: setup.toContainer,
      carrier: setup.carrier,
      onWarning: (warning) => events.push({ warning }),
      onReject: (reject) => events.push({ reject, write: true }),
    },
    writeStats,
    true,
  );
  writer.index = base.index;
  writer.opened = true;
  const jsonl = writer.container === 'jsonl';
  const groups: string[] = [];
  const counts = { read: 0 };
  const ctx = { from, readOptions, check, reject: (reject: RejectedRecord) => events.push({ reject }) };
  for (const [start, end] of packedGroups(batch, GROUP_BYTES)) {
    const texts: string[] = [];
    await convertItems(unpackRecords(batch, state.unpack, start, end), ctx, counts, (record, text) => {
      const t = writer.encode(record, text);
      if (t !== undefined) texts.push(t);
    });
    if (texts.length) groups.push(jsonl ? `${texts.join('\n')}\n` : texts.join(',\n'));
  }
  const joined = groups.join(jsonl ? '' : ',\n');
  return {
    bytes: encoder.encode(joined),
    read: counts.read,
    attempts: writer.index - base.index,
    written: writeStats.written - base.written,
    events,
    keys: writer.keys ? [...writer.keys] : undefined,
  };
}
