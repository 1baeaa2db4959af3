/**
 * A run of records found by a scanner, packed into one buffer that can go to another thread: the
 * parallel `convertFile` scans on the calling thread and decodes, checks and encodes on workers.
 */
import type { RecordLayout } from './codec.js';
import { parseJsonLine, settleCaptures, type RawCapture, type RawLine } from './json-stream.js';
import { lineToRawItem, valueToRawItem, type RawItem } from './records.js';

/** Numbers per item in `PackedBatch.meta`: where its bytes are, whether they lie in the region, line, offset, depth. */
const FIELDS = 6;

/** Records packed for another thread (structured-clone safe). */
export interface PackedBatch {
  /** The region the scanner saw (values with their separators, so runs parse at once), then values that spanned chunks. */
  buffer: Uint8Array;
  /** Per item: byte start in `buffer`, length, 1 when inside the region, 1-based line, byte offset in the file, nesting depth. */
  meta: Float64Array;
  /** JSON documents: each item's last path element (its array index, or its key in a map). */
  last?: (string | number)[];
  /** Record index of the first item. */
  first: number;
}

/** What unpacking needs to know about the file. */
export interface UnpackContext {
  container: 'json' | 'jsonl';
  layout: RecordLayout;
  file?: string;
  maxDepth: number;
}

/**
 * Pack records the scanner found in `region` (captures or line bodies, all of them records, in file
 * order): the span of `region` they cover is copied once, and each value that spanned chunks after it.
 */
export function packRecords(region: Uint8Array, items: readonly (RawCapture | RawLine)[], first: number, json: boolean): PackedBatch {
  let from = -1;
  let to = -1;
  let spanning = 0;
  for (const item of items) {
    if (item.start < 0) spanning += item.bytes.length;
    else {
      if (from < 0) from = item.start;
      to = item.start + item.bytes.length;
    }
  }
  const regionLength = from < 0 ? 0 : to - from;
  const buffer = new Uint8Array(regionLength + spanning);
  if (regionLength) buffer.set(region.subarray(from, to));
  const meta = new Float64Array(items.length * FIELDS);
  const last: (string | number)[] | undefined = json ? new Array(items.length) : undefined;
  let tail = regionLength;
  for (let k = 0; k < items.length; k++) {
    const item = items[k];
    const m = k * FIELDS;
    if (item.start < 0) {
      buffer.set(item.bytes, tail);
      meta[m] = tail;
      tail += item.bytes.length;
    } else {
      meta[m] = item.start - from;
      meta[m + 2] = 1;
    }
    meta[m + 1] = item.bytes.length;
    meta[m + 3] = item.line;
    meta[m + 4] = item.offset;
    if (last) {
      const capture = item as RawCapture;
      meta[m + 5] = capture.depth;
      last[k] = capture.path[capture.path.length - 1];
    }
  }
  return { buffer, meta, last, first };
}

/** Number of records in a packed batch. */
export function packedCount(batch: PackedBatch): number {
  return batch.meta.length / FIELDS;
}

/**
 * The batch's items cut into consecutive groups of at most about `bytes` bytes each (at least one
 * item per group), as [from, to) ranges. Converting a group at a time keeps its strings and records
 * in V8's young generation, as the one-thread conversion's 64 KiB slices do.
 */
export function packedGroups(batch: PackedBatch, bytes: number): [number, number][] {
  const n = packedCount(batch);
  const out: [number, number][] = [];
  let from = 0;
  let size = 0;
  for (let k = 0; k < n; k++) {
    const length = batch.meta[k * FIELDS + 1];
    if (k > from && size + length > bytes) {
      out.push([from, k]);
      from = k;
      size = 0;
    }
    size += length;
  }
  if (n > from) out.push([from, n]);
  return out;
}

/** Decode and parse items [from, to) of a packed batch into record items, exactly as the scanner's own `push` would have. */
export function unpackRecords(batch: PackedBatch, ctx: UnpackContext, from = 0, to = packedCount(batch)): RawItem[] {
  const { buffer, meta, first } = batch;
  const n = to - from;
  const out: RawItem[] = new Array(n);
  if (ctx.container === 'jsonl') {
    for (let k = from; k < to; k++) {
      const m = k * FIELDS;
      const bytes = buffer.subarray(meta[m], meta[m] + meta[m + 1]);
      out[k - from] = lineToRawItem(parseJsonLine({ bytes, line: meta[m + 3], offset: meta[m + 4] }, ctx.file, ctx.maxDepth), first + k);
    }
    return out;
  }
  const prefix = ctx.layout.kind === 'array' ? [] : ctx.layout.path;
  const raws: RawCapture[] = new Array(n);
  for (let k = from; k < to; k++) {
    const m = k * FIELDS;
    raws[k - from] = {
      path: prefix.length ? [...prefix, batch.last![k]] : [batch.last![k]],
      bytes: buffer.subarray(meta[m], meta[m] + meta[m + 1]),
      start: meta[m + 2] === 1 ? meta[m] : -1,
      line: meta[m + 3],
      offset: meta[m + 4],
      selected: true,
      depth: meta[m + 5],
    };
  }
  const items = settleCaptures(buffer, raws, { file: ctx.file, maxDepth: ctx.maxDepth, lazyText: true });
  for (let k = 0; k < n; k++) out[k] = valueToRawItem(items[k], first + from + k, ctx.layout);
  return out;
}
