import { FormatError, type VlitErrorDetails } from '@vlit/core';
import { byteChunks, type ByteSource } from './source.js';

/** A location inside a JSON document: object keys and array indices from the root. */
export type JsonPath = (string | number)[];
/** A path pattern: `'*'` matches any key or index at that depth. */
export type JsonPathPattern = readonly (string | number)[];

/** One value found by the streaming scanner. */
export type JsonStreamItem =
  | {
      kind: 'value';
      /** Path of the value from the document root. */
      path: JsonPath;
      value: unknown;
      /** The value's JSON text, for rejects. */
      text: string;
      /** 1-based line where the value starts. */
      line: number;
      /** Byte offset in the document where the value starts. */
      offset?: number;
      /** True when the path matched a selected pattern; false for other top-level values. */
      selected: boolean;
    }
  | {
      kind: 'error';
      path: JsonPath;
      /** The text that failed to parse (invalid UTF-8 replaced by U+FFFD). */
      text: string;
      line: number;
      /** Byte offset in the document where the value starts. */
      offset?: number;
      selected: boolean;
      error: FormatError;
    };

/** Options of the streaming JSON scanners. */
export interface JsonStreamOptions {
  /** File name for error messages. */
  file?: string;
  /** Largest single value held in memory; a larger one is a FormatError (default 64 MiB). */
  maxValueBytes?: number;
  /**
   * Deepest nesting of arrays and objects inside one value (default 1000). A deeper value is an
   * `error` item with its text, never parsed: code downstream (validation, JSON.stringify, clones)
   * recurses and would overflow the stack on it.
   */
  maxDepth?: number;
  /**
   * Decode a value's `text` only when it is first read (`JsonValueScanner`, `streamJsonValues`;
   * default false). Saves decoding every value twice when callers need the text only for rejects;
   * the chunks handed in must then stay unchanged until the text is read.
   */
  lazyText?: boolean;
}

/** Default `maxDepth` of the streaming scanners. */
export const DEFAULT_MAX_JSON_DEPTH = 1000;

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

const enum State {
  Value,
  ArrayValueOrEnd,
  ObjectKeyOrEnd,
  ObjectKey,
  Key,
  Colon,
  CommaOrEnd,
  Capture,
  Done,
}

const decoder = new TextDecoder('utf-8', { fatal: true });
const lossy = new TextDecoder('utf-8');

/** Strict UTF-8 decoding; undefined when the bytes are not valid UTF-8. */
function tryDecode(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Offset of the first byte that breaks UTF-8 in `bytes` (for messages; only called on failure). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const need = b < 0x80 ? 0 : b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (need < 0 || i + need >= bytes.length) return i;
    for (let k = 1; k <= need; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    // overlongs and surrogates: let the strict decoder judge the sequence alone
    if (need > 0 && tryDecode(bytes.subarray(i, i + need + 1)) === undefined) return i;
    i += need + 1;
  }
  return bytes.length;
}

function decode(bytes: Uint8Array, file: string | undefined, line: number, offset?: number): string {
  const text = tryDecode(bytes);
  if (text !== undefined) return text;
  const at = firstInvalidUtf8(bytes);
  throw new FormatError('invalid UTF-8 in JSON text', { details: { file, line, offset: offset === undefined ? undefined : offset + at } });
}

/** Deepest array/object nesting in JSON bytes (strings skipped); stops counting past `limit`. */
export function jsonDepth(bytes: Uint8Array, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === LBRACE || c === LBRACKET) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === RBRACE || c === RBRACKET) depth--;
  }
  return max;
}

function concat(pieces: Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1) return pieces[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A value the scanner found, before decoding (`JsonValueScanner.pushRaw`). */
export interface RawCapture {
  path: JsonPath;
  bytes: Uint8Array;
  /** Start in the chunk it completed in; -1 when it spans chunks. */
  start: number;
  line: number;
  offset: number;
  selected: boolean;
  /** Deepest array/object nesting inside it. */
  depth: number;
}

/** Two captures are consecutive elements of the same array. */
function siblings(a: RawCapture, b: RawCapture): boolean {
  const n = a.path.length;
  if (b.path.length !== n || a.selected !== b.selected) return false;
  const x = a.path[n - 1];
  const y = b.path[n - 1];
  return typeof x === 'number' && y === x + 1;
}

/** A parsed value whose text is decoded from its bytes on first read (`lazyText`). */
class LazyValueItem {
  readonly kind = 'value' as const;
  readonly path: JsonPath;
  readonly value: unknown;
  readonly line: number;
  readonly offset: number;
  readonly selected: boolean;
  private bytes: Uint8Array | undefined;
  private decoded: string | undefined;
  constructor(raw: RawCapture, value: unknown) {
    this.path = raw.path;
    this.value = value;
    this.line = raw.line;
    this.offset = raw.offset;
    this.selected = raw.selected;
    this.bytes = raw.bytes;
  }
  get text(): string {
    if (this.decoded === undefined) {
      this.decoded = decoder.decode(this.bytes);
      this.bytes = undefined;
    }
    return this.decoded;
  }
}

function describe(byte: number): string {
  return byte >= 0x20 && byte < 0x7f ? `'${String.fromCharCode(byte)}'` : `byte 0x${byte.toString(16)}`;
}

/**
 * Push-based scanner that walks the structure of one JSON document and hands back whole values at
 * selected paths (e.g. every element of the root array, or every member of `data`), each parsed with
 * the native `JSON.parse`. Memory is bounded by the largest single value, not by the document.
 * Values off the selected paths are returned whole (`selected: false`), e.g. a `meta` header.
 * A value whose text is not valid JSON comes back as an `error` item and scanning goes on with the
 * next one; a broken document structure throws FormatError with the line.
 */
export class JsonValueScanner {
  private readonly patterns: JsonPathPattern[];
  private readonly file: string | undefined;
  private readonly maxValueBytes: number;
  private readonly maxDepth: number;
  /** Bytes of the document before the current chunk. */
  private consumed = 0;
  private capOffset = 0;
  private capMaxDepth = 0;
  private state: State = State.Value;
  private readonly frames: number[] = []; // 0 array, 1 object
  private readonly path: JsonPath = [];
  private line = 1;
  // capture
  private capPieces: Uint8Array[] = [];
  private capLength = 0;
  private capDepth = 0;
  private capInString = false;
  private capEscape = false;
  private capScalar = false;
  private capLine = 1;
  private capSelected = false;
  // key
  private keyPieces: Uint8Array[] = [];
  private keyLength = 0;
  private keyEscape = false;
  private afterRoot = false;
  private started = false;
  private readonly lazyText: boolean;
  /** Where the current capture starts in the current chunk; -1 when it began in an earlier one. */
  private capStart = -1;
  /** Values completed in the current `push`, not yet decoded. */
  private raws: RawCapture[] = [];
  private chunk: Uint8Array = new Uint8Array(0);

  constructor(patterns: JsonPathPattern[], options: JsonStreamOptions = {}) {
    this.patterns = patterns;
    this.file = options.file;
    this.maxValueBytes = options.maxValueBytes ?? 64 * 1024 * 1024;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
    this.lazyText = options.lazyText ?? false;
  }

  /** 0: no pattern goes through this path, 1: a pattern goes deeper, 2: a pattern ends here. */
  private match(): 0 | 1 | 2 {
    let best: 0 | 1 | 2 = 0;
    const path = this.path;
    for (const p of this.patterns) {
      if (p.length < path.length) continue;
      let ok = true;
      for (let i = 0; i < path.length; i++) {
        if (p[i] !== '*' && p[i] !== path[i]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (p.length === path.length) return 2;
      best = 1;
    }
    return best;
  }

  private fail(message: string): never {
    throw new FormatError(message, { details: { file: this.file, line: this.line, field: pathString(this.path) } });
  }

  /** Feed one chunk; returns the values completed inside it. */
  push(chunk: Uint8Array): JsonStreamItem[] {
    return settleCaptures(chunk, this.pushRaw(chunk), this.settleOptions);
  }

  /** Signal the end of input; throws if the document is incomplete. */
  end(): JsonStreamItem[] {
    return settleCaptures(this.chunk, this.endRaw(), this.settleOptions);
  }

  private get settleOptions(): SettleOptions {
    return { file: this.file, maxDepth: this.maxDepth, lazyText: this.lazyText };
  }

  /**
   * `push` without the parsing: the values completed inside `chunk`, as byte ranges (`bytes` is a view
   * of `chunk` when `start >= 0`). `settleCaptures(chunk, captures)` turns them into the items `push`
   * returns, on this thread or another.
   */
  pushRaw(chunk: Uint8Array): RawCapture[] {
    const n = chunk.length;
    let i = 0;
    this.chunk = chunk;
    this.capStart = -1;
    if (!this.started && n > 0) {
      this.started = true;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3;
    }
    while (i < n) {
      if (this.state === State.Capture) {
        i = this.capture(chunk, i);
        continue;
      }
      if (this.state === State.Key) {
        i = this.key(chunk, i);
        continue;
      }
      const c = chunk[i];
      if (c === SPACE || c === LF || c === CR || c === TAB) {
        if (c === LF) this.line++;
        i++;
        continue;
      }
      switch (this.state) {
        case State.Done:
          this.fail(`unexpected ${describe(c)} after the end of the JSON document`);
          break;
        case State.Value:
          this.startValue(chunk, i);
          if ((this.state as State) !== State.Capture) i++;
          break;
        case State.ArrayValueOrEnd:
          if (c === RBRACKET) {
            this.frames.pop();
            this.afterValue();
            i++;
          } else {
            this.path.push(0);
            this.state = State.Value;
          }
          break;
        case State.ObjectKeyOrEnd:
        case State.ObjectKey:
          if (c === RBRACE && this.state === State.ObjectKeyOrEnd) {
            this.frames.pop();
            this.afterValue();
          } else if (c === QUOTE) {
            this.state = State.Key;
            this.keyPieces = [];
            this.keyLength = 0;
            this.keyEscape = false;
          } else this.fail(`expected an object key, found ${describe(c)}`);
          i++;
          break;
        case State.Colon:
          if (c !== COLON) this.fail(`expected ':' after an object key, found ${describe(c)}`);
          this.state = State.Value;
          i++;
          break;
        case State.CommaOrEnd: {
          const top = this.frames[this.frames.length - 1];
          if (c === COMMA) {
            if (top === 0) {
              (this.path[this.path.length - 1] as number)++;
              this.state = State.Value;
            } else {
              this.path.pop();
              this.state = State.ObjectKey;
            }
          } else if ((c === RBRACKET && top === 0) || (c === RBRACE && top === 1)) {
            this.path.pop();
            this.frames.pop();
            this.afterValue();
          } else this.fail(`expected ',' or '${top === 0 ? ']' : '}'}', found ${describe(c)}`);
          i++;
          break;
        }
        default:
          this.fail('internal scanner state');
      }
    }
    this.consumed += n;
    if (this.state === State.Capture && this.capLength > this.maxValueBytes) {
      this.raws = [];
      this.fail(`a single value is larger than maxValueBytes (${this.maxValueBytes})`);
    }
    return this.takeRaws();
  }

  /** `end` without the parsing (see `pushRaw`). */
  endRaw(): RawCapture[] {
    this.raws = [];
    if (this.state === State.Capture && this.capScalar) {
      this.capStart = -1;
      this.finishCapture();
    }
    if (this.state !== State.Done) {
      this.fail(this.afterRoot || this.frames.length || this.state !== State.Value ? 'unexpected end of JSON input' : 'empty JSON input');
    }
    return this.takeRaws();
  }

  private takeRaws(): RawCapture[] {
    const raws = this.raws;
    this.raws = [];
    return raws;
  }

  private afterValue(): void {
    if (this.frames.length === 0) {
      this.state = State.Done;
      this.afterRoot = true;
    } else this.state = State.CommaOrEnd;
  }

  private startValue(chunk: Uint8Array, i: number): void {
    const c = chunk[i];
    const m = this.match();
    if (m === 1 && (c === LBRACKET || c === LBRACE)) {
      this.frames.push(c === LBRACKET ? 0 : 1);
      this.state = c === LBRACKET ? State.ArrayValueOrEnd : State.ObjectKeyOrEnd;
      return;
    }
    if (c === RBRACKET || c === RBRACE || c === COMMA || c === COLON) this.fail(`expected a value, found ${describe(c)}`);
    this.state = State.Capture;
    this.capPieces = [];
    this.capLength = 0;
    this.capStart = i;
    this.capLine = this.line;
    this.capOffset = this.consumed + i;
    this.capMaxDepth = 0;
    this.capSelected = m === 2;
    this.capEscape = false;
    if (c === QUOTE) {
      this.capScalar = false;
      this.capInString = true;
      this.capDepth = 0;
      // the opening quote is part of the value; scanning for its end starts after it
      this.pendingSkip = 1;
    } else if (c === LBRACKET || c === LBRACE) {
      this.capScalar = false;
      this.capInString = false;
      this.capDepth = 0;
      this.pendingSkip = 0;
    } else {
      this.capScalar = true;
      this.capInString = false;
      this.capDepth = 0;
      this.pendingSkip = 0;
    }
  }

  private pendingSkip = 0;

  /** Scan a captured value from `start`; returns where scanning stopped. */
  private capture(chunk: Uint8Array, start: number): number {
    let i = start + this.pendingSkip;
    this.pendingSkip = 0;
    const pieceFrom = start;
    const n = chunk.length;
    if (this.capScalar) {
      for (; i < n; i++) {
        const c = chunk[i];
        if (c === COMMA || c === RBRACKET || c === RBRACE || c === SPACE || c === LF || c === CR || c === TAB) break;
      }
      this.capPieces.push(chunk.subarray(pieceFrom, i));
      this.capLength += i - pieceFrom;
      if (i < n) this.finishCapture();
      return i;
    }
    let depth = this.capDepth;
    let inString = this.capInString;
    let esc = this.capEscape;
    let line = this.line;
    let end = -1;
    // a backslash ended the previous chunk: the byte it escapes is the first of this one
    if (esc && i < n) {
      esc = false;
      i++;
    }
    for (; i < n; i++) {
      const c = chunk[i];
      if (inString) {
        // Skip the string's body in one tight loop: only a quote or a backslash matters inside it.
        let j = i;
        let d = c;
        while (d !== QUOTE) {
          j += d === BACKSLASH ? 2 : 1;
          if (j >= n) break;
          d = chunk[j];
        }
        if (j >= n) {
          esc = j > n;
          i = n;
          break;
        }
        i = j;
        inString = false;
        if (depth === 0) {
          end = i + 1;
          break;
        }
      } else if (c === QUOTE) inString = true;
      else if (c === LBRACE || c === LBRACKET) {
        if (++depth > this.capMaxDepth) this.capMaxDepth = depth;
      } else if (c === RBRACE || c === RBRACKET) {
        if (--depth === 0) {
          end = i + 1;
          break;
        }
      } else if (c === LF) line++;
    }
    this.line = line;
    this.capDepth = depth;
    this.capInString = inString;
    this.capEscape = esc;
    const stop = end === -1 ? n : end;
    this.capPieces.push(chunk.subarray(pieceFrom, stop));
    this.capLength += stop - pieceFrom;
    if (end !== -1) this.finishCapture();
    return stop;
  }

  private finishCapture(): void {
    const pieces = this.capPieces;
    const bytes = concat(pieces, this.capLength);
    this.raws.push({
      path: this.path.slice(),
      bytes,
      start: pieces.length === 1 ? this.capStart : -1,
      line: this.capLine,
      offset: this.capOffset,
      selected: this.capSelected,
      depth: this.capMaxDepth,
    });
    this.capPieces = [];
    this.capLength = 0;
    this.afterValue();
  }

  private key(chunk: Uint8Array, start: number): number {
    const n = chunk.length;
    let i = start;
    let esc = this.keyEscape;
    for (; i < n; i++) {
      const c = chunk[i];
      if (esc) esc = false;
      else if (c === BACKSLASH) esc = true;
      else if (c === QUOTE) break;
      else if (c === LF) this.fail('newline inside an object key');
    }
    this.keyEscape = esc;
    this.keyPieces.push(chunk.subarray(start, i));
    this.keyLength += i - start;
    if (i === n) return i;
    const raw = decode(concat(this.keyPieces, this.keyLength), this.file, this.line);
    let key: string;
    try {
      key = JSON.parse(`"${raw}"`) as string;
    } catch (cause) {
      this.fail(`malformed object key: ${(cause as Error).message}`);
    }
    this.path.push(key);
    this.state = State.Colon;
    this.keyPieces = [];
    return i + 1;
  }
}

/** What `settleCaptures` needs to know. */
export interface SettleOptions {
  file?: string;
  maxDepth: number;
  lazyText?: boolean;
}

/**
 * Decode and parse captured values (`JsonValueScanner.pushRaw`) into stream items. Runs of sibling
 * array elements that lie whole in `region` (`start >= 0`) are decoded once and parsed with one
 * `JSON.parse` of `[run]`; a run holding anything bad (invalid UTF-8, a malformed or too-deep value)
 * is parsed value by value instead, so each value still gets its own item and error.
 */
export function settleCaptures(region: Uint8Array, raws: readonly RawCapture[], options: SettleOptions): JsonStreamItem[] {
  const out: JsonStreamItem[] = [];
  const batchable = (raw: RawCapture): boolean => raw.start >= 0 && raw.depth <= options.maxDepth && typeof raw.path[raw.path.length - 1] === 'number';
  let k = 0;
  while (k < raws.length) {
    let m = k + 1;
    if (batchable(raws[k])) {
      while (m < raws.length && batchable(raws[m]) && siblings(raws[m - 1], raws[m])) m++;
      if (m - k > 1 && parseRun(region, raws, k, m, out, options)) {
        k = m;
        continue;
      }
    }
    for (; k < m; k++) out.push(parseOne(raws[k], options));
  }
  return out;
}

/** Parse raws[k..m) (sibling array elements, all in `chunk`) with one JSON.parse; false if any is bad. */
function parseRun(chunk: Uint8Array, raws: readonly RawCapture[], k: number, m: number, out: JsonStreamItem[], options: SettleOptions): boolean {
  const base = raws[k].start;
  const last = raws[m - 1];
  const region = chunk.subarray(base, last.start + last.bytes.length);
  const text = tryDecode(region);
  if (text === undefined) return false;
  let values: unknown;
  try {
    values = JSON.parse(`[${text}]`);
  } catch {
    return false;
  }
  if (!Array.isArray(values) || values.length !== m - k) return false;
  // ASCII: byte offsets are character offsets, so each value's text is a slice of the run's text
  const ascii = text.length === region.length;
  for (let r = k; r < m; r++) {
    const raw = raws[r];
    const value: unknown = values[r - k];
    if (ascii) {
      const from = raw.start - base;
      out.push({
        kind: 'value',
        path: raw.path,
        value,
        text: text.slice(from, from + raw.bytes.length),
        line: raw.line,
        offset: raw.offset,
        selected: raw.selected,
      });
    } else if (options.lazyText) out.push(new LazyValueItem(raw, value));
    else out.push({ kind: 'value', path: raw.path, value, text: decoder.decode(raw.bytes), line: raw.line, offset: raw.offset, selected: raw.selected });
  }
  return true;
}

/** Decode and parse one value: a `value` item, or an `error` item naming why. */
function parseOne(raw: RawCapture, options: SettleOptions): JsonStreamItem {
  const { path, bytes, line, offset, selected } = raw;
  const last = path[path.length - 1];
  const details = (): VlitErrorDetails => ({ file: options.file, line, offset, record: typeof last === 'number' ? last : undefined, field: pathString(path) });
  // One bad value is one error item; the structure around it is intact, so scanning goes on.
  const text = tryDecode(bytes);
  if (text === undefined) {
    const at = offset + firstInvalidUtf8(bytes);
    const error = new FormatError(`invalid UTF-8 at byte offset ${at}`, { details: { ...details(), offset: at } });
    return { kind: 'error', path, text: lossy.decode(bytes), line, offset, selected, error };
  }
  if (raw.depth > options.maxDepth) {
    const error = new FormatError(`value nested deeper than ${options.maxDepth} levels`, { details: details() });
    return { kind: 'error', path, text, line, offset, selected, error };
  }
  try {
    return { kind: 'value', path, value: JSON.parse(text), text, line, offset, selected };
  } catch (cause) {
    const error = new FormatError(`malformed JSON value: ${(cause as Error).message}`, { cause, details: details() });
    return { kind: 'error', path, text, line, offset, selected, error };
  }
}

/** Dotted form of a JSON path, e.g. `data.LA_00.image_ids.0`. */
export function pathString(path: readonly (string | number)[]): string {
  return path.length ? path.join('.') : '(root)';
}

/**
 * Stream values at selected paths out of one JSON document (constant memory apart from the largest
 * value). `patterns` like `[['*']]` (elements of a root array) or `[['data', '*']]` (members of `data`).
 */
export async function* streamJsonValues(source: ByteSource, patterns: JsonPathPattern[], options: JsonStreamOptions = {}): AsyncGenerator<JsonStreamItem> {
  const scanner = new JsonValueScanner(patterns, options);
  for await (const chunk of byteChunks(source)) {
    const items = scanner.push(chunk);
    for (const item of items) yield item;
  }
  for (const item of scanner.end()) yield item;
}

/** One line of a JSON Lines file. */
export type JsonLineItem =
  | { kind: 'value'; value: unknown; text: string; line: number; offset?: number }
  | {
      kind: 'error';
      /** The line's text (invalid UTF-8 replaced by U+FFFD; only the first bytes of an over-long line). */
      text: string;
      line: number;
      /** Byte offset of the line in the document. */
      offset?: number;
      /** True when `text` holds only the start of the line. */
      truncated?: boolean;
      error: FormatError;
    };

/** Bytes of an over-long line kept as its reject text. */
const LONG_LINE_HEAD = 64 * 1024;

/**
 * Push-based JSON Lines scanner: feed chunks, get back the lines completed in each, one item per
 * non-blank line. Each line is decoded on its own, so a line that is not valid JSON, not valid UTF-8,
 * nested deeper than `maxDepth` or longer than `maxValueBytes` is an `error` item with its 1-based
 * line number and byte offset, and scanning goes on with the next line.
 */
export class JsonLinesScanner {
  private readonly max: number;
  private readonly maxDepth: number;
  private readonly file: string | undefined;
  private pieces: Uint8Array[] = [];
  private length = 0;
  private line = 1;
  private lineOffset = 0;
  private consumed = 0;
  // An over-long line is skipped to its end; only its head is kept for the reject.
  private skipping = false;
  private skipped = 0;

  constructor(options: JsonStreamOptions = {}) {
    this.max = options.maxValueBytes ?? 64 * 1024 * 1024;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
    this.file = options.file;
  }

  /** The body of one line (BOM, indentation and CR cut), or an error item for an over-long one; undefined when blank. */
  private cut(bytes: Uint8Array, at: number): RawLine | JsonLineItem | undefined {
    if (bytes.length > this.max) return this.longLine(bytes.length, bytes.slice(0, LONG_LINE_HEAD));
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === CR) end--;
    let start = this.line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    while (start < end && (bytes[start] === SPACE || bytes[start] === TAB)) start++;
    if (start === end) return undefined;
    return { kind: 'raw', bytes: bytes.subarray(start, end), start: at < 0 ? -1 : at + start, line: this.line, offset: this.lineOffset + start };
  }

  private longLine(size: number, head: Uint8Array): JsonLineItem {
    const { file, line, lineOffset, max } = this;
    return {
      kind: 'error',
      text: lossy.decode(head),
      line,
      offset: lineOffset,
      truncated: true,
      error: new FormatError(`line of ${size} bytes is longer than maxValueBytes (${max})`, { details: { file, line, record: line, offset: lineOffset } }),
    };
  }

  /** While skipping an over-long line: keep its first LONG_LINE_HEAD bytes, however the chunks cut it. */
  private keepHead(bytes: Uint8Array): void {
    const room = LONG_LINE_HEAD - this.length;
    if (room <= 0 || bytes.length === 0) return;
    const head = concat([...this.pieces, bytes.slice(0, room)], this.length + Math.min(room, bytes.length));
    this.pieces = [head];
    this.length = head.length;
  }

  /** Feed one chunk; returns the lines completed inside it. */
  push(chunk: Uint8Array): JsonLineItem[] {
    return this.settle(this.pushRaw(chunk));
  }

  /** Signal the end of input; returns the last line if it had no newline. */
  end(): JsonLineItem[] {
    return this.settle(this.endRaw());
  }

  private settle(lines: (RawLine | JsonLineItem)[]): JsonLineItem[] {
    const out: JsonLineItem[] = new Array(lines.length);
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i];
      out[i] = l.kind === 'raw' ? parseJsonLine(l, this.file, this.maxDepth) : l;
    }
    return out;
  }

  /**
   * `push` without the parsing: each line completed inside `chunk` as its body's bytes (a view of
   * `chunk` when `start >= 0`), or an error item for an over-long line. `parseJsonLine` parses a body,
   * on this thread or another.
   */
  pushRaw(chunk: Uint8Array): (RawLine | JsonLineItem)[] {
    const out: (RawLine | JsonLineItem)[] = [];
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, from);
      if (nl === -1) break;
      let item: RawLine | JsonLineItem | undefined;
      if (this.skipping) {
        this.keepHead(chunk.subarray(from, nl));
        this.skipped += nl - from;
        item = this.longLine(this.skipped, concat(this.pieces, this.length));
        this.skipping = false;
        this.skipped = 0;
        this.pieces = [];
        this.length = 0;
      } else if (this.pieces.length === 0) item = this.cut(chunk.subarray(from, nl), from);
      else {
        this.pieces.push(chunk.subarray(from, nl));
        item = this.cut(concat(this.pieces, this.length + nl - from), -1);
        this.pieces = [];
        this.length = 0;
      }
      if (item) out.push(item);
      this.line++;
      from = nl + 1;
      this.lineOffset = this.consumed + from;
    }
    if (from < chunk.length) {
      if (this.skipping) {
        this.keepHead(chunk.subarray(from));
        this.skipped += chunk.length - from;
      } else {
        this.pieces.push(chunk.subarray(from));
        this.length += chunk.length - from;
        if (this.length > this.max) {
          // Keep a copy of the head only: the chunks it came from may be reused by the source.
          const head = concat(this.pieces, this.length).slice(0, LONG_LINE_HEAD);
          this.skipping = true;
          this.skipped = this.length;
          this.pieces = [head];
          this.length = head.length;
        }
      }
    }
    this.consumed += chunk.length;
    return out;
  }

  /** `end` without the parsing (see `pushRaw`). */
  endRaw(): (RawLine | JsonLineItem)[] {
    if (this.skipping) return [this.longLine(this.skipped, concat(this.pieces, this.length))];
    if (this.pieces.length) {
      const item = this.cut(concat(this.pieces, this.length), -1);
      this.pieces = [];
      if (item) return [item];
    }
    return [];
  }
}

/** One line's body found by `JsonLinesScanner.pushRaw`, before decoding. */
export interface RawLine {
  kind: 'raw';
  /** The body: the line without its BOM, indentation and CR. */
  bytes: Uint8Array;
  /** Where `bytes` starts in the chunk it was found in; -1 when the line spans chunks. */
  start: number;
  /** 1-based line number. */
  line: number;
  /** Byte offset of the body in the document. */
  offset: number;
}

/** Decode and parse one JSON Lines body: a `value` item, or an `error` item naming why. */
export function parseJsonLine(raw: Omit<RawLine, 'kind' | 'start'>, file: string | undefined, maxDepth: number): JsonLineItem {
  const { bytes: body, line, offset } = raw;
  const details = { file, line, record: line, offset };
  const text = tryDecode(body);
  if (text === undefined) {
    const at = offset + firstInvalidUtf8(body);
    return {
      kind: 'error',
      text: lossy.decode(body),
      line,
      offset,
      error: new FormatError(`invalid UTF-8 at byte offset ${at}`, { details: { ...details, offset: at } }),
    };
  }
  if (jsonDepth(body, maxDepth) > maxDepth) {
    return { kind: 'error', text, line, offset, error: new FormatError(`line nested deeper than ${maxDepth} levels`, { details }) };
  }
  try {
    return { kind: 'value', value: JSON.parse(text), text, line, offset };
  } catch (cause) {
    return { kind: 'error', text, line, offset, error: new FormatError(`malformed JSON line: ${(cause as Error).message}`, { cause, details }) };
  }
}

/**
 * Stream the values of a JSON Lines document, one per non-blank line. Each line is decoded on its own,
 * so a line that is not valid JSON, not valid UTF-8, nested deeper than `maxDepth` or longer than
 * `maxValueBytes` comes back as an `error` item with its 1-based line number and byte offset, and
 * reading goes on with the next line.
 */
export async function* streamJsonLines(source: ByteSource, options: JsonStreamOptions = {}): AsyncGenerator<JsonLineItem> {
  const scanner = new JsonLinesScanner(options);
  for await (const chunk of byteChunks(source)) {
    for (const item of scanner.push(chunk)) yield item;
  }
  for (const item of scanner.end()) yield item;
}

/**
 * First non-whitespace byte of a source, and the source re-assembled so nothing is consumed. Its
 * `return()` passes on to the source even before the first `next()`, so a caller that gives up after
 * looking at `first` closes the source (a file) by calling it.
 */
export async function peekFirstByte(source: ByteSource): Promise<{ first: number | undefined; source: AsyncIterableIterator<Uint8Array> }> {
  const iterator = byteChunks(source)[Symbol.asyncIterator]();
  const seen: Uint8Array[] = [];
  let first: number | undefined;
  for (;;) {
    const { done, value } = await iterator.next();
    if (done) break;
    seen.push(value);
    let j = 0;
    // skip a UTF-8 byte order mark
    if (seen.length === 1 && value[0] === 0xef && value[1] === 0xbb && value[2] === 0xbf) j = 3;
    for (; j < value.length; j++) {
      const c = value[j];
      if (c !== SPACE && c !== LF && c !== CR && c !== TAB) {
        first = c;
        break;
      }
    }
    if (first !== undefined) break;
  }
  let replayed = 0;
  const rest: AsyncIterableIterator<Uint8Array> = {
    [Symbol.asyncIterator]() {
      return rest;
    },
    async next() {
      if (replayed < seen.length) return { done: false, value: seen[replayed++] };
      return iterator.next();
    },
    async return(value?: unknown) {
      replayed = seen.length;
      // stopped early (an error, a consumer that quits): let the source close its file
      await iterator.return?.(undefined);
      return { done: true, value };
    },
  };
  return { first, source: rest };
}
