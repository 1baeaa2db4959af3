import { FormatError, InvalidArgumentError, type ProgressCallback, type VlitError, type VlitRecord, type VlitWarning } from '@vlit/core';
import {
  bareMessage,
  decodeRecord,
  encodeRecord,
  locateError,
  type RecordDecodeOptions,
  type RecordEncodeOptions,
  type RecordDialect,
  type RecordLayout,
} from './codec.js';
import { createAlpacaDialect, createShareGptDialect, type ShareGptOptions } from './dialects/sharegpt.js';
import { llavaDialect } from './dialects/llava.js';
import { openAiDialect } from './dialects/openai.js';
import { createMimicItDialect } from './dialects/mimicit.js';
import { createReviewDialect } from './dialects/review.js';
import type { ImageIdOptions } from './dialects/image-ids.js';
import { vlitDialect } from './dialects/canonical.js';
import type { DialectSpec } from './dialects/spec.js';
import { JsonLinesScanner, JsonValueScanner, peekFirstByte, pathString, type JsonLineItem, type JsonPathPattern, type JsonStreamItem } from './json-stream.js';
import { byteChunks, type ByteSource } from './source.js';

/** Names of the built-in record dialects. */
export type DialectName = 'vlit' | 'llava' | 'sharegpt' | 'alpaca' | 'openai' | 'mimicit' | 'review';
/** Every built-in record dialect name. */
export const DIALECT_NAMES: readonly DialectName[] = ['vlit', 'llava', 'sharegpt', 'alpaca', 'openai', 'mimicit', 'review'];

/** Options of `getDialect` for the dialects that take some. */
export interface DialectOptions extends ShareGptOptions, ImageIdOptions {}

/** A built-in dialect by name (configured with columns/tags or image-id mappings where they apply). */
export function getDialect(name: DialectName, options: DialectOptions = {}): RecordDialect {
  switch (name) {
    case 'vlit':
      return vlitDialect;
    case 'llava':
      return llavaDialect;
    case 'sharegpt':
      return createShareGptDialect(options);
    case 'alpaca':
      return createAlpacaDialect(options);
    case 'openai':
      return openAiDialect;
    case 'mimicit':
      return createMimicItDialect(options);
    case 'review':
      return createReviewDialect(options);
    default:
      throw new InvalidArgumentError(`unknown dialect '${String(name)}'; known: ${DIALECT_NAMES.join(', ')}`, { details: { field: 'dialect' } });
  }
}

/** A dialect named or given. */
export function resolveDialect(d: RecordDialect | DialectName): RecordDialect {
  return typeof d === 'string' ? getDialect(d) : d;
}

/** Build a built-in dialect again from its spec (`dialectSpec`), e.g. on another thread. */
export function dialectFromSpec(spec: DialectSpec): RecordDialect {
  switch (spec.kind) {
    case 'sharegpt':
      return createShareGptDialect(spec.options, spec.name);
    case 'alpaca':
      return createAlpacaDialect(spec.options, spec.name);
    default:
      return getDialect(spec.kind);
  }
}

/** A record that could not be read or written, with where and why. Written as one JSONL line to a rejects file. */
export interface RejectedRecord {
  file?: string;
  /** Position of the record in its file (0-based). */
  index: number;
  /** 1-based line where the record starts, when known. */
  line?: number;
  /** Byte offset in the file where the record (or the bad byte, for invalid UTF-8) is, when known. */
  offset?: number;
  id?: string;
  /** The failing field (native field path for reads, canonical for writes). */
  field: string;
  reason: string;
  /** The error code, e.g. `VLIT_VALIDATION`. */
  code: string;
  /** The record's original text (invalid UTF-8 shown as U+FFFD), at most `MAX_REJECT_RAW_CHARS` characters. */
  raw: string;
  /** Present (true) when `raw` holds only the start of the record's text. */
  truncated?: true;
}

/** Longest `raw` text a reject keeps (64 Ki characters); longer text is cut and flagged `truncated`. */
export const MAX_REJECT_RAW_CHARS = 64 * 1024;

/** The error of a rejected record as a rejects entry; `raw` is capped at MAX_REJECT_RAW_CHARS. */
export function toRejectedRecord(err: VlitError, raw: string, truncated = false): RejectedRecord {
  const d = err.details;
  const out: RejectedRecord = {
    file: typeof d.file === 'string' ? d.file : undefined,
    index: typeof d.index === 'number' ? d.index : typeof d.record === 'number' ? d.record : -1,
    field: typeof d.field === 'string' ? d.field : '(root)',
    reason: bareMessage(err),
    code: err.code,
    raw: raw.length > MAX_REJECT_RAW_CHARS ? raw.slice(0, MAX_REJECT_RAW_CHARS) : raw,
  };
  if (typeof d.line === 'number') out.line = d.line;
  if (typeof d.offset === 'number') out.offset = d.offset;
  if (typeof d.record === 'string') out.id = d.record;
  if (truncated || raw.length > MAX_REJECT_RAW_CHARS) out.truncated = true;
  return out;
}

/** JSON array (`json`) or JSON Lines (`jsonl`); `auto` looks at the first byte. */
export type RecordContainer = 'json' | 'jsonl' | 'auto';

/** Options of `readRecords`. */
export interface ReadRecordsOptions extends RecordDecodeOptions {
  dialect: RecordDialect | DialectName;
  /** For array-layout dialects (default `auto`). */
  container?: RecordContainer;
  /** Receives each bad record; reading continues. Without it the first bad record throws. */
  onReject?: (reject: RejectedRecord) => void;
  /** Receives file-level values beside the records (MIMIC-IT `meta`, the review's `image_source`). */
  onHeader?: (key: string, value: unknown) => void;
  onProgress?: ProgressCallback;
  /** Records between progress events (default 10000). */
  progressEvery?: number;
  /** Largest single record in bytes (default 64 MiB). */
  maxValueBytes?: number;
  /** Deepest nesting of arrays/objects in one record (default 1000); a deeper record is a reject with its text. */
  maxDepth?: number;
}

/** One value read from a file: a native record, a broken one, or a file-level header value. */
export interface RawItem {
  kind: 'value' | 'error' | 'header';
  value?: unknown;
  /** Holds the item's text (read it only when needed: it may be decoded on first read). */
  source: { readonly text: string };
  line: number;
  offset?: number;
  truncated?: boolean;
  index: number;
  key?: string;
  error?: FormatError;
}

/**
 * Bytes scanned (and so records converted) at a time. Small enough that a batch's strings and
 * records stay in V8's young generation (decoding and parsing 1 MiB at once is many times slower
 * per byte: large strings and objects outlive the nursery and cost full collections).
 */
export const SCAN_SLICE = 64 * 1024;

/** Push `bytes` through a scanner one SCAN_SLICE at a time, yielding each non-empty batch of converted items (the end's too). */
async function* scanInSlices<T>(
  bytes: ByteSource,
  scanner: { push(chunk: Uint8Array): T[]; end(): T[] },
  toItems: (items: T[]) => RawItem[],
): AsyncGenerator<RawItem[]> {
  for await (const chunk of byteChunks(bytes)) {
    for (let at = 0; at < chunk.length; at += SCAN_SLICE) {
      const batch = toItems(scanner.push(chunk.subarray(at, at + SCAN_SLICE)));
      if (batch.length) yield batch;
    }
  }
  const last = toItems(scanner.end());
  if (last.length) yield last;
}

/** The container of a file whose first non-blank byte is `first`: JSON Lines, or one JSON document; a wrong first byte throws. */
export function detectContainer(dialect: RecordDialect, first: number, options: Pick<ReadRecordsOptions, 'container' | 'file'>): 'json' | 'jsonl' {
  const layout = dialect.layout;
  let container: RecordContainer = layout.kind === 'array' ? (options.container ?? 'auto') : 'json';
  if (container === 'auto') container = first === 0x5b ? 'json' : 'jsonl';
  if (container === 'jsonl') return container;
  const expected = layout.kind === 'array' ? 0x5b : 0x7b;
  if (first !== expected) {
    throw new FormatError(`a ${dialect.name} ${layout.kind === 'array' ? 'JSON file must be an array' : 'file must be a JSON object'}`, {
      details: { file: options.file, line: 1, field: '(root)' },
    });
  }
  return container;
}

/** The path pattern of a dialect's records inside its JSON document. */
export function recordPattern(layout: RecordLayout): JsonPathPattern {
  return layout.kind === 'array' ? ['*'] : [...layout.path, '*'];
}

/** A JSON Lines item as the record item at `index`. */
export function lineToRawItem(item: JsonLineItem, index: number): RawItem {
  return item.kind === 'value'
    ? { kind: 'value', value: item.value, source: item, line: item.line, offset: item.offset, index }
    : { kind: 'error', source: item, line: item.line, offset: item.offset, truncated: item.truncated, index, error: item.error };
}

/** A selected JSON value as the record item at `index` (map layouts key it by its member name). */
export function valueToRawItem(item: JsonStreamItem, index: number, layout: RecordLayout): RawItem {
  const key = layout.kind === 'map' ? String(item.path[item.path.length - 1]) : undefined;
  if (item.kind === 'value') return { kind: 'value', value: item.value, source: item, line: item.line, offset: item.offset, index, key };
  return { kind: 'error', source: item, line: item.line, offset: item.offset, index, key, error: item.error };
}

/** A value off the records' path (MIMIC-IT `meta`) as a header item. */
export function headerToRawItem(item: JsonStreamItem): RawItem {
  if (item.kind === 'error') return { kind: 'header', source: item, line: item.line, index: -1, error: item.error };
  return { kind: 'header', value: item.value, source: item, line: item.line, index: -1, key: pathString(item.path) };
}

/**
 * The values of a file, one batch per slice of a chunk read: the per-record work downstream runs synchronously
 * over a batch (no promise per record), and a value's text is decoded only if it is read.
 */
async function* rawItemBatches(source: ByteSource, dialect: RecordDialect, options: ReadRecordsOptions): AsyncGenerator<RawItem[]> {
  const file = options.file;
  const layout = dialect.layout;
  const { first, source: bytes } = await peekFirstByte(source);
  if (first === undefined) return; // an empty file holds no records
  let container: 'json' | 'jsonl';
  try {
    container = detectContainer(dialect, first, options);
  } catch (err) {
    await bytes.return?.();
    throw err;
  }
  let index = 0;
  if (container === 'jsonl') {
    const lines = new JsonLinesScanner({ file, maxValueBytes: options.maxValueBytes, maxDepth: options.maxDepth });
    const toItems = (items: JsonLineItem[]): RawItem[] => items.map((item) => lineToRawItem(item, index++));
    yield* scanInSlices(bytes, lines, toItems);
    return;
  }
  const scanner = new JsonValueScanner([recordPattern(layout)], { file, maxValueBytes: options.maxValueBytes, maxDepth: options.maxDepth, lazyText: true });
  const toItems = (items: JsonStreamItem[]): RawItem[] => items.map((item) => (item.selected ? valueToRawItem(item, index++, layout) : headerToRawItem(item)));
  yield* scanInSlices(bytes, scanner, toItems);
}

/** A header item: handed to `onHeader`, or its error thrown (a broken header is no record to reject). */
function takeHeader(item: RawItem, onHeader: ((key: string, value: unknown) => void) | undefined): void {
  if (item.error) throw item.error;
  onHeader?.(item.key!, item.value);
}

/** What reading reports as it goes: header items to `onHeader`, and record items counted to `onProgress`. */
interface ReadReports {
  onHeader?: (key: string, value: unknown) => void;
  onProgress?: ProgressCallback;
  progressEvery?: number;
}

/** A counter of the record items read: `take` says whether an item is a record (a header is handed on), `end` reports the total. */
function readCounter(options: ReadReports): { take(item: RawItem): boolean; end(): void } {
  const every = options.progressEvery ?? 10000;
  let done = 0;
  return {
    take(item) {
      if (item.kind === 'header') {
        takeHeader(item, options.onHeader);
        return false;
      }
      done++;
      if (options.onProgress && done % every === 0) options.onProgress({ stage: 'read', done });
      return true;
    },
    end() {
      options.onProgress?.({ stage: 'read', done, total: done });
    },
  };
}

/** A record item decoded into a canonical record, or its reject. */
type DecodedItem = { kind: 'record'; record: VlitRecord } | { kind: 'reject'; reject: RejectedRecord; error: VlitError };

function decodeItem(dialect: RecordDialect, item: RawItem, options: ReadRecordsOptions): DecodedItem {
  if (item.kind === 'error') {
    const err = locateError(item.error, { file: options.file, index: item.index, line: item.line, id: item.key });
    return { kind: 'reject', reject: toRejectedRecord(err, item.source.text, item.truncated), error: err };
  }
  try {
    return {
      kind: 'record',
      record: decodeRecord(dialect, item.value, { file: options.file, index: item.index, line: item.line, key: item.key, id: item.key }, options),
    };
  } catch (err) {
    // decodeRecord turns any failure (even a stack overflow) into a located VlitError.
    const located = locateError(err, { file: options.file, index: item.index, line: item.line, id: item.key });
    return { kind: 'reject', reject: toRejectedRecord(located, item.source.text), error: located };
  }
}

/** One item of a record stream: a record (with its source text), or a reject with its reason. */
export type RecordItem =
  | { kind: 'record'; record: VlitRecord; index: number; line: number; text: string }
  | { kind: 'reject'; reject: RejectedRecord; error: VlitError };

/**
 * Stream records and rejects out of a file's bytes in any dialect, in constant memory. Every item
 * read comes out exactly once, as a record or a reject (counts add up).
 */
export async function* readRecordItems(source: ByteSource, options: ReadRecordsOptions): AsyncGenerator<RecordItem> {
  const dialect = resolveDialect(options.dialect);
  const counter = readCounter(options);
  for await (const batch of rawItemBatches(source, dialect, options)) {
    for (const item of batch) {
      if (!counter.take(item)) continue;
      const decoded = decodeItem(dialect, item, options);
      if (decoded.kind === 'reject') yield decoded;
      else yield { kind: 'record', record: decoded.record, index: item.index, line: item.line, text: item.source.text };
    }
  }
  counter.end();
}

/**
 * Stream canonical records out of a file's bytes. A bad record goes to `onReject` when given (and
 * reading continues), else it throws its typed error naming the file, record index, line and field.
 */
export async function* readRecords(source: ByteSource, options: ReadRecordsOptions): AsyncGenerator<VlitRecord> {
  for await (const item of readRecordItems(source, options)) {
    if (item.kind === 'record') yield item.record;
    else if (options.onReject) options.onReject(item.reject);
    else throw item.error;
  }
}

/** Options of `writeRecords`. */
export interface WriteRecordsOptions extends RecordEncodeOptions {
  dialect: RecordDialect | DialectName;
  /** For array-layout dialects (default `jsonl`). */
  container?: 'json' | 'jsonl';
  /** File-level values for map/wrapped layouts (MIMIC-IT `meta`; the review's `image_source`, `construction_time`). */
  header?: Record<string, unknown>;
  /** Receives each written record's warnings (what the dialect cannot express), after the record is encoded; a record rejected by the target reports none. */
  onWarning?: (warning: VlitWarning) => void;
  /** Receives records that cannot be written at all; without it they throw. */
  onReject?: (reject: RejectedRecord) => void;
  /** The original text of a record for its reject (a conversion passes what it read); default: the record as JSON. */
  rawText?: (record: VlitRecord) => string | undefined;
  onProgress?: ProgressCallback;
  progressEvery?: number;
}

/** Totals of one write. */
export interface WriteStats {
  written: number;
  rejected: number;
  warnings: number;
}

/**
 * Encodes records one at a time into a dialect's text (JSONL lines, a JSON array, or the dialect's
 * wrapping object), synchronously; `writeRecords` and `convertRecords` share it.
 */
export class RecordTextWriter {
  private readonly dialect: RecordDialect;
  private readonly layout: RecordLayout;
  readonly container: 'json' | 'jsonl';
  private readonly every: number;
  /** Map layouts: the keys written so far (a repeated one is a reject). */
  readonly keys: Set<string> | undefined;
  /** Records handed to `write`/`encode` so far (a write reject's index). */
  index = 0;
  /** Whether the opening text has been given out. */
  opened = false;

  /** Records come from `decodeRecord` (already normalised), so the canonical dialect writes them as they are. */
  private readonly asIs: boolean;

  constructor(
    private readonly options: WriteRecordsOptions,
    private readonly stats: WriteStats,
    normalized = false,
  ) {
    this.dialect = resolveDialect(options.dialect);
    this.asIs = normalized && this.dialect === vlitDialect;
    this.layout = this.dialect.layout;
    this.container = this.layout.kind === 'array' ? (options.container ?? 'jsonl') : 'json';
    this.every = options.progressEvery ?? 10000;
    this.keys = this.layout.kind === 'map' ? new Set<string>() : undefined;
  }

  private open(): string {
    const { layout, options } = this;
    this.opened = true;
    if (layout.kind === 'array') return this.container === 'json' ? '[\n' : '';
    const head = layout.header
      .filter((k) => options.header?.[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}: ${JSON.stringify(options.header![k])},\n`)
      .join('');
    const body = layout.path.map((k) => `${JSON.stringify(k)}: `).join('{');
    return `{${head}${body}${layout.kind === 'map' ? '{' : '['}\n`;
  }

  /**
   * The text of one record (with what goes before it), or undefined when the dialect cannot hold it
   * and it went to `onReject` (`rawText` gives its original text). Throws without `onReject`.
   */
  write(record: VlitRecord, rawText?: () => string | undefined): string | undefined {
    const text = this.encode(record, rawText);
    if (text === undefined) return undefined;
    const prefix = this.prefix();
    return this.container === 'jsonl' ? `${prefix}${text}\n` : `${prefix}${text}`;
  }

  /** What goes before the next record's text: the opening text the first time, then the separator (JSON Lines end each line instead). */
  prefix(): string {
    return this.opened ? (this.container === 'jsonl' ? '' : ',\n') : this.open();
  }

  /** The text of one record alone (no separator, no newline), counted as written; undefined when it went to `onReject`. */
  encode(record: VlitRecord, rawText?: () => string | undefined): string | undefined {
    const { dialect, options, stats, layout } = this;
    const at = this.index++;
    let text: string;
    let warnings: VlitWarning[];
    try {
      // encodeRecord with the canonical dialect is normalizeRecord, which a normalised record passes unchanged
      const encoded = this.asIs ? { native: record, key: undefined, warnings: [] } : encodeRecord(dialect, record, stats.written, options);
      if (this.keys) {
        if (this.keys.has(encoded.key!)) {
          throw new FormatError(`duplicate record id '${encoded.key}': ${dialect.name} keys records by id`, { details: { field: 'id' } });
        }
        this.keys.add(encoded.key!);
      }
      const json = JSON.stringify(encoded.native);
      text = layout.kind === 'map' ? `${JSON.stringify(encoded.key)}: ${json}` : json;
      warnings = encoded.warnings;
    } catch (err) {
      const located = locateError(err, { file: options.file, index: at, id: record?.id });
      if (!options.onReject) throw located;
      stats.rejected++;
      options.onReject(toRejectedRecord(located, rawText?.() ?? options.rawText?.(record) ?? safeStringify(record)));
      return undefined;
    }
    // A written record's warnings, outside the try: an onWarning that throws stops the conversion (it is not the record's fault).
    for (const w of warnings) {
      stats.warnings++;
      options.onWarning?.(w);
    }
    stats.written++;
    if (options.onProgress && stats.written % this.every === 0) options.onProgress({ stage: 'write', done: stats.written });
    return text;
  }

  /** The closing text, in pieces. */
  finish(): string[] {
    const { layout, container, options, stats } = this;
    const out: string[] = [];
    if (!this.opened) {
      const start = this.open();
      if (layout.kind === 'array') {
        if (container === 'json') out.push('[]\n');
        return out;
      }
      out.push(start.slice(0, -1));
    } else if (layout.kind === 'array' && container === 'jsonl') return out;
    else out.push('\n');
    if (layout.kind === 'array') out.push(']\n');
    else out.push(`${layout.kind === 'map' ? '}' : ']'}${'}'.repeat(layout.path.length)}\n`);
    options.onProgress?.({ stage: 'write', done: stats.written, total: stats.written });
    return out;
  }
}

/**
 * Encode canonical records into a dialect as a stream of text chunks (JSONL lines, a JSON array, or
 * the dialect's wrapping object). `stats` (if given) is filled as the stream is consumed.
 */
export async function* writeRecords(
  records: AsyncIterable<VlitRecord> | Iterable<VlitRecord>,
  options: WriteRecordsOptions,
  stats: WriteStats = { written: 0, rejected: 0, warnings: 0 },
): AsyncGenerator<string> {
  const writer = new RecordTextWriter(options, stats);
  for await (const record of records) {
    const text = writer.write(record);
    if (text !== undefined) yield text;
  }
  for (const text of writer.finish()) yield text;
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch (err) {
    // Too deep or cyclic to serialise: say so rather than write "[object Object]".
    const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
    return `(record${typeof id === 'string' ? ` ${JSON.stringify(id)}` : ''} cannot be serialised: ${err instanceof Error ? err.message : String(err)})`;
  }
}

/** Totals of a conversion: read = written + rejected. */
export interface ConversionStats {
  read: number;
  written: number;
  rejected: number;
  warnings: number;
}

/** The outcome of a conversion in words, and whether it should count as a success. */
export interface ConversionVerdict {
  /** False when records were read but none was written (every one rejected): callers should fail. */
  ok: boolean;
  /** One line, e.g. `read 3 = written 0 + rejected 3: nothing was written, every record was rejected`. */
  message: string;
}

/**
 * Judge a conversion's counts. Writing 0 of N records is never a silent success: it usually means the
 * input is in another dialect or shape than the one named, so the verdict is not ok and says so.
 */
export function conversionVerdict(stats: ConversionStats): ConversionVerdict {
  const counts = `read ${stats.read} = written ${stats.written} + rejected ${stats.rejected}`;
  if (stats.read > 0 && stats.written === 0) {
    return { ok: false, message: `${counts}: nothing was written, every record was rejected (is the input in the dialect named?)` };
  }
  return { ok: true, message: counts };
}

/** Options of `convertRecords`. */
export interface ConvertOptions {
  from: RecordDialect | DialectName;
  to: RecordDialect | DialectName;
  file?: string;
  dataset?: string;
  fromContainer?: RecordContainer;
  toContainer?: 'json' | 'jsonl';
  header?: Record<string, unknown>;
  onHeader?: (key: string, value: unknown) => void;
  carrier?: boolean;
  onReject?: (reject: RejectedRecord) => void;
  onWarning?: (warning: VlitWarning) => void;
  onProgress?: ProgressCallback;
  progressEvery?: number;
  maxValueBytes?: number;
  maxDepth?: number;
  /** Extra check on each decoded record (e.g. node's symlink-aware root check); a thrown VlitError rejects it. */
  check?: (record: VlitRecord, position: { index: number; line: number }) => Promise<void> | void;
}

/**
 * Convert a stream from one dialect to another as text chunks (one per record, then the closing
 * text), in constant memory. Bad input and records the target cannot hold go to `onReject` (or
 * throw without it); `stats` adds up.
 */
export async function* convertRecords(
  source: ByteSource,
  options: ConvertOptions,
  stats: ConversionStats = { read: 0, written: 0, rejected: 0, warnings: 0 },
): AsyncGenerator<string> {
  for await (const pieces of convertRecordBatches(source, options, stats)) {
    for (const piece of pieces) yield piece;
  }
}

/**
 * `convertRecords` a batch at a time: the records of each slice of input read are converted together,
 * synchronously, and come out as one array of text pieces (no promise per record; a record's text is
 * decoded only for a reject). `convertFile` writes these arrays.
 */
export async function* convertRecordBatches(
  source: ByteSource,
  options: ConvertOptions,
  stats: ConversionStats = { read: 0, written: 0, rejected: 0, warnings: 0 },
): AsyncGenerator<string[]> {
  const conversion = startConversion(options, stats);
  for await (const batch of rawItemBatches(source, conversion.from, conversion.readOptions)) {
    const parts: string[] = [];
    await conversion.convert(batch, parts);
    if (parts.length) yield parts;
  }
  const closing = conversion.finish();
  if (closing.length) yield closing;
}

/** One conversion's state: the dialects, the writer and its counts. `convertRecordBatches` and the parallel `convertFile` share it. */
export interface Conversion {
  readonly from: RecordDialect;
  readonly readOptions: ReadRecordsOptions;
  readonly writer: RecordTextWriter;
  /** The writer's counts (`stats.written` and `stats.warnings` follow them). */
  readonly writeStats: WriteStats;
  /** Hand a reject on (counted in `stats.rejected`). */
  reject(r: RejectedRecord): void;
  /** Convert items in order, appending each written record's text (with what goes before it) to `out`. */
  convert(items: readonly RawItem[], out: string[]): Promise<void>;
  /** The closing text (the counts are final after it). */
  finish(): string[];
}

/** Set up a conversion (see `Conversion`). */
export function startConversion(options: ConvertOptions, stats: ConversionStats): Conversion {
  const reject = (r: RejectedRecord): void => {
    stats.rejected++;
    options.onReject?.(r);
  };
  const from = resolveDialect(options.from);
  const readOptions: ReadRecordsOptions = {
    dialect: from,
    container: options.fromContainer,
    file: options.file,
    dataset: options.dataset,
    maxValueBytes: options.maxValueBytes,
    maxDepth: options.maxDepth,
  };
  const writeStats: WriteStats = { written: 0, rejected: 0, warnings: 0 };
  const writer = new RecordTextWriter(
    {
      dialect: options.to,
      container: options.toContainer,
      header: options.header,
      carrier: options.carrier,
      onWarning: options.onWarning,
      onReject: options.onReject ? reject : undefined,
    },
    writeStats,
    true,
  );
  const counter = readCounter(options);
  const sync = (): void => {
    stats.written = writeStats.written;
    stats.warnings = writeStats.warnings;
  };
  return {
    from,
    readOptions,
    writer,
    writeStats,
    reject,
    async convert(items, out) {
      await convertItems(items, { from, readOptions, check: options.check, reject: options.onReject ? reject : undefined, counter }, stats, (record, text) => {
        const written = writer.write(record, text);
        if (written !== undefined) out.push(written);
      });
      sync();
    },
    finish() {
      counter.end();
      const closing = writer.finish();
      sync();
      return closing;
    },
  };
}

/** What `convertItems` needs besides the items. */
export interface ItemContext {
  from: RecordDialect;
  readOptions: ReadRecordsOptions;
  check?: ConvertOptions['check'];
  /** Receives rejects; without it the first bad record throws. */
  reject?: (r: RejectedRecord) => void;
  counter?: { take(item: RawItem): boolean };
}

/**
 * Decode and check items in order, handing each good record to `write` with a getter of its source
 * text; bad records go to `ctx.reject` (or throw). Counts `stats.read`.
 */
export async function convertItems(
  items: readonly RawItem[],
  ctx: ItemContext,
  stats: Pick<ConversionStats, 'read'>,
  write: (record: VlitRecord, text: () => string) => void,
): Promise<void> {
  const { from, readOptions, check, reject, counter } = ctx;
  for (const item of items) {
    if (counter ? !counter.take(item) : item.kind === 'header') continue;
    stats.read++;
    const decoded = decodeItem(from, item, readOptions);
    if (decoded.kind === 'reject') {
      if (!reject) throw decoded.error;
      reject(decoded.reject);
      continue;
    }
    const record = decoded.record;
    if (check) {
      try {
        const pending = check(record, { index: item.index, line: item.line });
        if (pending) await pending;
      } catch (err) {
        const located = locateError(err, { file: readOptions.file, index: item.index, line: item.line, id: record.id });
        if (!reject) throw located;
        reject(toRejectedRecord(located, item.source.text));
        continue;
      }
    }
    // The text the record was read from, so a record the target cannot hold is rejected with it.
    write(record, () => item.source.text);
  }
}
