import { FormatError } from '@vlit/core';
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

  constructor(patterns: JsonPathPattern[], options: JsonStreamOptions = {}) {
    this.patterns = patterns;
    this.file = options.file;
    this.maxValueBytes = options.maxValueBytes ?? 64 * 1024 * 1024;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
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
    const out: JsonStreamItem[] = [];
    const n = chunk.length;
    let i = 0;
    if (!this.started && n > 0) {
      this.started = true;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3;
    }
    while (i < n) {
      if (this.state === State.Capture) {
        i = this.capture(chunk, i, out);
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
      this.fail(`a single value is larger than maxValueBytes (${this.maxValueBytes})`);
    }
    return out;
  }

  /** Signal the end of input; throws if the document is incomplete. */
  end(): JsonStreamItem[] {
    const out: JsonStreamItem[] = [];
    if (this.state === State.Capture && this.capScalar) {
      this.finishCapture(out);
    }
    if (this.state !== State.Done) {
      this.fail(this.afterRoot || this.frames.length || this.state !== State.Value ? 'unexpected end of JSON input' : 'empty JSON input');
    }
    return out;
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
    this.capLine = this.line;
    this.capOffset = this.consumed + i;
    this.capMaxDepth = 0;
    this.capSelected = m === 2;
    this.capEscape = false;
    if (c === QUOTE) {
      this.capScalar = false;
      this.capInString = true;
      this.capDepth = 0;
      this.capPieces.push(chunk.subarray(i, i + 1));
      this.capLength = 1;
      // the opening quote is consumed here; capture continues after it
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
  private capture(chunk: Uint8Array, start: number, out: JsonStreamItem[]): number {
    // the opening quote of a string value was already pushed as its own piece
    let i = start + this.pendingSkip;
    this.pendingSkip = 0;
    const pieceFrom = i;
    const n = chunk.length;
    if (this.capScalar) {
      for (; i < n; i++) {
        const c = chunk[i];
        if (c === COMMA || c === RBRACKET || c === RBRACE || c === SPACE || c === LF || c === CR || c === TAB) break;
      }
      this.capPieces.push(chunk.subarray(pieceFrom, i));
      this.capLength += i - pieceFrom;
      if (i < n) this.finishCapture(out);
      return i;
    }
    let depth = this.capDepth;
    let inString = this.capInString;
    let escape = this.capEscape;
    let line = this.line;
    let end = -1;
    for (; i < n; i++) {
      const c = chunk[i];
      if (inString) {
        if (escape) escape = false;
        else if (c === BACKSLASH) escape = true;
        else if (c === QUOTE) {
          inString = false;
          if (depth === 0) {
            end = i + 1;
            break;
          }
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
    this.capEscape = escape;
    const stop = end === -1 ? n : end;
    this.capPieces.push(chunk.subarray(pieceFrom, stop));
    this.capLength += stop - pieceFrom;
    if (end !== -1) this.finishCapture(out);
    return stop;
  }

  private finishCapture(out: JsonStreamItem[]): void {
    const bytes = concat(this.capPieces, this.capLength);
    this.capPieces = [];
    const path = this.path.slice();
    const selected = this.capSelected;
    const line = this.capLine;
    const offset = this.capOffset;
    this.capLength = 0;
    const last = path[path.length - 1];
    const details = { file: this.file, line, offset, record: typeof last === 'number' ? last : undefined, field: pathString(path) };
    // One bad value is one error item; the structure around it is intact, so scanning goes on.
    const text = tryDecode(bytes);
    if (text === undefined) {
      const at = offset + firstInvalidUtf8(bytes);
      const error = new FormatError(`invalid UTF-8 at byte offset ${at}`, { details: { ...details, offset: at } });
      out.push({ kind: 'error', path, text: lossy.decode(bytes), line, offset, selected, error });
    } else if (this.capMaxDepth > this.maxDepth) {
      const error = new FormatError(`value nested deeper than ${this.maxDepth} levels`, { details });
      out.push({ kind: 'error', path, text, line, offset, selected, error });
    } else {
      try {
        out.push({ kind: 'value', path, value: JSON.parse(text), text, line, offset, selected });
      } catch (cause) {
        const error = new FormatError(`malformed JSON value: ${(cause as Error).message}`, { cause, details });
        out.push({ kind: 'error', path, text, line, offset, selected, error });
      }
    }
    this.afterValue();
  }

  private key(chunk: Uint8Array, start: number): number {
    const n = chunk.length;
    let i = start;
    let escape = this.keyEscape;
    for (; i < n; i++) {
      const c = chunk[i];
      if (escape) escape = false;
      else if (c === BACKSLASH) escape = true;
      else if (c === QUOTE) break;
      else if (c === LF) this.fail('newline inside an object key');
    }
    this.keyEscape = escape;
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

/** Dotted form of a JSON path, e.g. `data.LA_00.image_ids.0`. */
export function pathString(path: readonly (string | number)[]): string {
  return path.length ? path.join('.') : '(root)';
}

/**
 * Stream values at selected paths out of one JSON document (constant memory apart from the largest
 * value). `patterns` like `[['*']]` (elements of a root array) or `[['data', '*']]` (members of `data`).
 */
export async function* streamJsonValues(
  source: ByteSource,
  patterns: JsonPathPattern[],
  options: JsonStreamOptions = {},
): AsyncGenerator<JsonStreamItem> {
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
 * Stream the values of a JSON Lines document, one per non-blank line. Each line is decoded on its own,
 * so a line that is not valid JSON, not valid UTF-8, nested deeper than `maxDepth` or longer than
 * `maxValueBytes` comes back as an `error` item with its 1-based line number and byte offset, and
 * reading goes on with the next line.
 */
export async function* streamJsonLines(source: ByteSource, options: JsonStreamOptions = {}): AsyncGenerator<JsonLineItem> {
  const max = options.maxValueBytes ?? 64 * 1024 * 1024;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const file = options.file;
  let pieces: Uint8Array[] = [];
  let length = 0;
  let line = 1;
  let lineOffset = 0;
  let consumed = 0;
  // An over-long line is skipped to its end; only its head is kept for the reject.
  let skipping = false;
  let skipped = 0;
  const emit = (bytes: Uint8Array): JsonLineItem | undefined => {
    if (bytes.length > max) return longLine(bytes.length, bytes.slice(0, LONG_LINE_HEAD));
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === CR) end--;
    let start = line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    while (start < end && (bytes[start] === SPACE || bytes[start] === TAB)) start++;
    if (start === end) return undefined;
    const body = bytes.subarray(start, end);
    const offset = lineOffset + start;
    const details = { file, line, record: line, offset };
    const text = tryDecode(body);
    if (text === undefined) {
      const at = offset + firstInvalidUtf8(body);
      return { kind: 'error', text: lossy.decode(body), line, offset, error: new FormatError(`invalid UTF-8 at byte offset ${at}`, { details: { ...details, offset: at } }) };
    }
    if (jsonDepth(body, maxDepth) > maxDepth) {
      return { kind: 'error', text, line, offset, error: new FormatError(`line nested deeper than ${maxDepth} levels`, { details }) };
    }
    try {
      return { kind: 'value', value: JSON.parse(text), text, line, offset };
    } catch (cause) {
      return { kind: 'error', text, line, offset, error: new FormatError(`malformed JSON line: ${(cause as Error).message}`, { cause, details }) };
    }
  };
  const longLine = (size: number, head: Uint8Array): JsonLineItem => {
    return {
      kind: 'error',
      text: lossy.decode(head),
      line,
      offset: lineOffset,
      truncated: true,
      error: new FormatError(`line of ${size} bytes is longer than maxValueBytes (${max})`, { details: { file, line, record: line, offset: lineOffset } }),
    };
  };
  for await (const chunk of byteChunks(source)) {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, from);
      if (nl === -1) break;
      let item: JsonLineItem | undefined;
      if (skipping) {
        skipped += nl - from;
        item = longLine(skipped, concat(pieces, length));
        skipping = false;
        skipped = 0;
        pieces = [];
        length = 0;
      } else if (pieces.length === 0) item = emit(chunk.subarray(from, nl));
      else {
        pieces.push(chunk.subarray(from, nl));
        item = emit(concat(pieces, length + nl - from));
        pieces = [];
        length = 0;
      }
      if (item) yield item;
      line++;
      from = nl + 1;
      lineOffset = consumed + from;
    }
    if (from < chunk.length) {
      if (skipping) skipped += chunk.length - from;
      else {
        pieces.push(chunk.subarray(from));
        length += chunk.length - from;
        if (length > max) {
          // Keep a copy of the head only: the chunks it came from may be reused by the source.
          const head = concat(pieces, length).slice(0, LONG_LINE_HEAD);
          skipping = true;
          skipped = length;
          pieces = [head];
          length = head.length;
        }
      }
    }
    consumed += chunk.length;
  }
  if (skipping) yield longLine(skipped, concat(pieces, length));
  else if (pieces.length) {
    const item = emit(concat(pieces, length));
    if (item) yield item;
  }
}

/** First non-whitespace byte of a source, and the source re-assembled so nothing is consumed. */
export async function peekFirstByte(source: ByteSource): Promise<{ first: number | undefined; source: AsyncIterable<Uint8Array> }> {
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
  async function* rest(): AsyncGenerator<Uint8Array> {
    for (const s of seen) yield s;
    for (;;) {
      const { done, value } = await iterator.next();
      if (done) return;
      yield value;
    }
  }
  return { first, source: rest() };
}
