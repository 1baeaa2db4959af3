import {
  chatMessageSchema,
  CompatibilityError,
  ConflictError,
  FormatError,
  imageRefSchema,
  InvalidArgumentError,
  isVlitError,
  LimitExceededError,
  NotFoundError,
  PathEscapeError,
  recordSourceSchema,
  UnsupportedError,
  ValidationError,
  VlitError,
  safeParseVlitRecord,
  type ChatMessage,
  type ContentPart,
  type VlitErrorDetails,
  type VlitRecord,
  type VlitWarning,
} from '@vlit/core';
import { z } from 'zod';
import { checkRelativePath } from './paths.js';

/** Name of the native field that carries what a dialect cannot express, so a round trip is exact. */
export const CARRIER_FIELD = 'vlit';

/** Warning code for content a target dialect cannot express. */
export const NOT_EXPRESSIBLE = 'VLIT_W_NOT_EXPRESSIBLE';

/** How records sit in a dialect's files. */
export type RecordLayout =
  /** A JSON array of records, or JSON Lines. */
  | { kind: 'array' }
  /** One JSON object whose member at `path` maps record ids to records (MIMIC-IT `data`). */
  | { kind: 'map'; path: string[]; header: string[] }
  /** One JSON object whose member at `path` is an array of records (the review's `annotations`). */
  | { kind: 'wrapped'; path: string[]; header: string[] };

/** What a dialect's decoder knows about the record it decodes. */
export interface DecodeContext {
  /** Position of the record in its file (0-based). */
  index: number;
  /** Map key of the record (map layouts). */
  key?: string;
  /** Dataset name for `source.dataset`; defaults to the dialect name. */
  dataset?: string;
}

/** What a dialect's encoder knows about the record it encodes. */
export interface EncodeContext {
  index: number;
}

/** The result of encoding one record into a dialect. */
export interface EncodedNative {
  native: Record<string, unknown>;
  /** Map key (map layouts). */
  key?: string;
  /** Messages the dialect cannot hold at all, with their index in the canonical conversation. */
  dropped?: { index: number; message: ChatMessage }[];
}

/** A canonical record before validation, as dialect decoders build it. */
export interface DraftRecord {
  id: string;
  images: VlitRecord['images'];
  messages: ChatMessage[];
  task?: string;
  source?: VlitRecord['source'];
  metadata?: Record<string, unknown>;
}

/** A dataset dialect: native items <-> canonical records. */
export interface RecordDialect {
  /** Stable name, e.g. `llava`. */
  readonly name: string;
  readonly layout: RecordLayout;
  /** Decode one native item (the carrier field already removed). Throws VlitErrors naming the field. */
  decode(native: unknown, ctx: DecodeContext): DraftRecord;
  /** Encode one canonical record; the carrier is added by the caller. */
  encode(record: VlitRecord, ctx: EncodeContext): EncodedNative;
}

const carrierSchema = z.strictObject({
  id: z.string().min(1).optional(),
  images: z.array(imageRefSchema).optional(),
  messages: z.array(chatMessageSchema).optional(),
  removed: z.array(z.strictObject({ index: z.number().int().nonnegative(), message: chatMessageSchema })).optional(),
  train: z.array(z.boolean().nullable()).optional(),
  task: z.string().nullable().optional(),
  source: recordSourceSchema.nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).nullable().optional(),
});
/** What a native record carries in its `vlit` field: the canonical content its dialect cannot express. */
export type RecordCarrier = z.infer<typeof carrierSchema>;

/** Where a record sits, for errors and rejects. */
export interface RecordPosition {
  file?: string;
  index: number;
  line?: number;
  id?: string;
}

const ERROR_CLASSES: Record<string, new (message: string, options?: { cause?: unknown; details?: VlitErrorDetails }) => VlitError> = {
  VLIT_FORMAT: FormatError,
  VLIT_VALIDATION: ValidationError,
  VLIT_PATH_ESCAPE: PathEscapeError,
  VLIT_UNSUPPORTED: UnsupportedError,
  VLIT_INVALID_ARGUMENT: InvalidArgumentError,
  VLIT_NOT_FOUND: NotFoundError,
  VLIT_COMPATIBILITY: CompatibilityError,
  VLIT_LIMIT_EXCEEDED: LimitExceededError,
  VLIT_CONFLICT: ConflictError,
};

/** The message of a Vlit error without the location suffix its constructor appended. */
export function bareMessage(err: VlitError): string {
  // Rebuild the suffix core's constructor appends from the same details, and cut exactly that.
  const d = err.details;
  const parts: string[] = [];
  if (d.file !== undefined) parts.push(`file ${d.file}`);
  if (d.record !== undefined) parts.push(`record ${String(d.record)}`);
  if (d.field !== undefined) parts.push(`field ${d.field}`);
  const suffix = parts.length ? ` (${parts.join(', ')})` : '';
  if (suffix && err.message.endsWith(suffix)) return err.message.slice(0, -suffix.length);
  const at = err.message.lastIndexOf(' (');
  return at > 0 && err.message.endsWith(')') && /\((file|record|field) /.test(err.message.slice(at)) ? err.message.slice(0, at) : err.message;
}

/** Re-issue a Vlit error (same class and code) with the file, record and line filled in. */
export function locateError(err: unknown, position: RecordPosition): VlitError {
  if (!isVlitError(err)) {
    return new FormatError(`unexpected failure: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
      details: { file: position.file, record: position.id ?? position.index, index: position.index, line: position.line, field: '(root)' },
    });
  }
  const Ctor = ERROR_CLASSES[err.code] ?? FormatError;
  const details: VlitErrorDetails = {
    ...err.details,
    file: err.details.file ?? position.file,
    record: position.id ?? err.details.record ?? position.index,
    index: position.index,
    line: position.line ?? (err.details.line as number | undefined),
    field: err.details.field ?? '(root)',
  };
  return new Ctor(bareMessage(err), { cause: err, details });
}

/** Re-issue a Vlit error (same class and code) with another field path. */
export function withField(err: VlitError, field: string): VlitError {
  const Ctor = ERROR_CLASSES[err.code] ?? FormatError;
  return new Ctor(bareMessage(err), { cause: err, details: { ...err.details, field } });
}

/** Validate a native value with a zod schema; failures are ValidationErrors naming the first field. */
export function parseNative<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  throw new ValidationError(`invalid ${what}: ${issues[0].message}`, {
    cause: result.error,
    details: { field: issues[0].path || '(root)', issues },
  });
}

/** True for plain JSON objects. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Split a native object into its known fields and the rest (which becomes metadata). */
export function extraFields(native: Record<string, unknown>, known: readonly string[]): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined;
  for (const k of Object.keys(native)) {
    if (known.includes(k)) continue;
    (extra ??= {})[k] = native[k];
  }
  return extra;
}

/**
 * Metadata entries written as native top-level fields, except keys the dialect reserves
 * (those stay out and the carrier keeps them) and the dialect's own hint object.
 */
export function writeExtras(out: Record<string, unknown>, metadata: Record<string, unknown> | undefined, reserved: readonly string[], hintKey: string): void {
  if (!metadata) return;
  for (const [k, v] of Object.entries(metadata)) {
    if (k === hintKey || k === CARRIER_FIELD || reserved.includes(k) || v === undefined) continue;
    out[k] = v;
  }
}

/** Merge metadata from extra native fields and dialect hints (hints under the dialect's name). */
export function buildMetadata(
  extra: Record<string, unknown> | undefined,
  hintKey: string,
  hints: Record<string, unknown>,
): Record<string, unknown> | undefined {
  const hasHints = Object.keys(hints).length > 0;
  if (!extra && !hasHints) return undefined;
  const out: Record<string, unknown> = { ...(extra ?? {}) };
  if (hasHints) out[hintKey] = hints;
  return out;
}

/** The dialect hints a record carries for `dialect` (`metadata[dialect]`), if any. */
export function hintsOf(record: VlitRecord, dialect: string): Record<string, unknown> {
  const h = record.metadata?.[dialect];
  return isObject(h) ? h : {};
}

/** Flatten message content to a string, images as `<image>` markers. */
export function contentToText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  return content.map((p) => (p.type === 'text' ? p.text : '<image>')).join('');
}

/** The path of an image reference. */
export function imagePath(ref: VlitRecord['images'][number]): string {
  return typeof ref === 'string' ? ref : ref.path;
}

/** Structural equality of JSON values (object key order counts, so written bytes match too). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return false;
    if (!jsonEqual((a as Record<string, unknown>)[ka[i]], (b as Record<string, unknown>)[kb[i]])) return false;
  }
  return true;
}

function cloneMessage(m: ChatMessage): ChatMessage {
  const out: ChatMessage = { role: m.role, content: typeof m.content === 'string' ? m.content : m.content.map((p) => ({ ...p }) as ContentPart) };
  if (m.train !== undefined) out.train = m.train;
  return out;
}

/** A canonical record with keys in schema order and no undefined members (stable JSON bytes). */
export function normalizeRecord(record: VlitRecord | DraftRecord): VlitRecord {
  const out: VlitRecord = { id: record.id, images: record.images ?? [], messages: record.messages.map(cloneMessage) };
  if (record.task !== undefined) out.task = record.task;
  if (record.source !== undefined) {
    const s = record.source;
    const source: NonNullable<VlitRecord['source']> = { dataset: s.dataset };
    if (s.dialect !== undefined) source.dialect = s.dialect;
    if (s.originalId !== undefined) source.originalId = s.originalId;
    if (s.method !== undefined) source.method = s.method;
    out.source = source;
  }
  if (record.metadata !== undefined) out.metadata = record.metadata;
  return out;
}

function applyCarrier(draft: DraftRecord, carrier: RecordCarrier): DraftRecord {
  const out: DraftRecord = { ...draft };
  if (carrier.id !== undefined) out.id = carrier.id;
  if (carrier.images !== undefined) out.images = carrier.images;
  if (carrier.messages !== undefined) out.messages = carrier.messages;
  else {
    let messages = draft.messages.slice();
    for (const r of [...(carrier.removed ?? [])].sort((a, b) => a.index - b.index)) {
      if (r.index > messages.length) {
        throw new ValidationError(`carried message index ${r.index} is past the conversation (${messages.length} messages)`, {
          details: { field: `${CARRIER_FIELD}.removed` },
        });
      }
      messages.splice(r.index, 0, r.message);
    }
    if (carrier.train) {
      if (carrier.train.length !== messages.length) {
        throw new ValidationError(`carried train flags (${carrier.train.length}) do not match the ${messages.length} messages`, {
          details: { field: `${CARRIER_FIELD}.train` },
        });
      }
      messages = messages.map((m, i) => {
        const t = carrier.train![i];
        const copy = cloneMessage(m);
        if (t === null) delete copy.train;
        else copy.train = t;
        return copy;
      });
    }
    out.messages = messages;
  }
  if (carrier.task !== undefined) out.task = carrier.task ?? undefined;
  if (carrier.source !== undefined) out.source = carrier.source ?? undefined;
  if (carrier.metadata !== undefined) out.metadata = carrier.metadata ?? undefined;
  return out;
}

/** Options shared by decoding entry points. */
export interface RecordDecodeOptions {
  dataset?: string;
  file?: string;
}

/**
 * Decode one native item into a validated canonical record: dialect decoding, the carrier (`vlit`)
 * applied, schema validation, and a pure check that every image path stays under the dataset root.
 * Throws typed errors naming the file, record and field.
 */
export function decodeRecord(
  dialect: RecordDialect,
  native: unknown,
  position: RecordPosition & { key?: string },
  options: RecordDecodeOptions = {},
): VlitRecord {
  let id: string | undefined = position.id;
  try {
    if (!isObject(native)) {
      throw new ValidationError(
        `a ${dialect.name} record must be a JSON object, got ${Array.isArray(native) ? 'an array' : native === null ? 'null' : typeof native}`,
        {
          details: { field: '(root)' },
        },
      );
    }
    let body = native;
    let carrier: RecordCarrier | undefined;
    if (CARRIER_FIELD in native && dialect.name !== 'vlit') {
      const { [CARRIER_FIELD]: raw, ...rest } = native;
      body = rest;
      try {
        carrier = parseNative(carrierSchema, raw, `${CARRIER_FIELD} carrier`);
      } catch (err) {
        const e = err as VlitError;
        throw new ValidationError(bareMessage(e), { cause: e, details: { ...e.details, field: `${CARRIER_FIELD}.${e.details.field}` } });
      }
    }
    const nativeId = body.id;
    if (typeof nativeId === 'string' || typeof nativeId === 'number') id = String(nativeId);
    let draft = dialect.decode(body, { index: position.index, key: position.key, dataset: options.dataset });
    id = draft.id;
    if (carrier) draft = applyCarrier(draft, carrier);
    id = draft.id;
    const parsed = safeParseVlitRecord(draft);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
      throw new ValidationError(`invalid record: ${issues[0].message}`, { cause: parsed.error, details: { field: issues[0].path || '(root)', issues } });
    }
    const record = parsed.data;
    record.images.forEach((ref, i) => {
      checkRelativePath(imagePath(ref), { field: `images.${i}` });
    });
    return normalizeRecord(record);
  } catch (err) {
    throw locateError(err, { ...position, id });
  }
}

/** One record encoded into a dialect, with what its dialect could not express. */
export interface EncodedRecord {
  native: Record<string, unknown>;
  key?: string;
  warnings: VlitWarning[];
}

/** Options of encoding entry points. */
export interface RecordEncodeOptions {
  /** Keep what the dialect cannot express in the native `vlit` field (default true). */
  carrier?: boolean;
  file?: string;
}

function sourceIsImplied(record: VlitRecord, dialect: RecordDialect): boolean {
  const s = record.source;
  if (!s) return false;
  return s.dialect === dialect.name && Object.keys(s).every((k) => k === 'dataset' || k === 'dialect');
}

/**
 * Encode one canonical record into a dialect. The native result is decoded back and compared with the
 * record: whatever differs goes into the `vlit` carrier (unless `carrier: false`) and each field the
 * dialect cannot express (other than source and metadata, which are carried quietly) is a warning.
 */
export function encodeRecord(dialect: RecordDialect, record: VlitRecord, index: number, options: RecordEncodeOptions = {}): EncodedRecord {
  const canonical = normalizeRecord(record);
  const { native, key, dropped = [] } = dialect.encode(canonical, { index });
  const warnings: VlitWarning[] = [];
  if (dialect.name === 'vlit') return { native, key, warnings };
  const back = normalizeRecord(dialect.decode(native, { index, key }));
  const carrier: RecordCarrier = {};
  if (back.id !== canonical.id) carrier.id = canonical.id;
  if (!jsonEqual(back.images, canonical.images)) carrier.images = canonical.images;
  if (!jsonEqual(back.messages, canonical.messages)) {
    let hinted = back.messages.slice();
    for (const d of dropped) hinted.splice(d.index, 0, d.message);
    const anyTrain = canonical.messages.some((m) => m.train !== undefined);
    const train = anyTrain ? canonical.messages.map((m) => (m.train === undefined ? null : m.train)) : undefined;
    if (train && hinted.length === train.length) {
      hinted = hinted.map((m, i) => {
        const c = cloneMessage(m);
        if (train[i] === null) delete c.train;
        else c.train = train[i]!;
        return c;
      });
    }
    if (jsonEqual(hinted, canonical.messages)) {
      if (dropped.length) carrier.removed = dropped;
      if (
        train &&
        !jsonEqual(
          back.messages.map((m) => m.train ?? null),
          train,
        )
      )
        carrier.train = train;
    } else carrier.messages = canonical.messages;
  }
  if (back.task !== canonical.task) carrier.task = canonical.task ?? null;
  if (!jsonEqual(back.source, canonical.source) && !sourceIsImplied(canonical, dialect)) carrier.source = canonical.source ?? null;
  if (!jsonEqual(back.metadata, canonical.metadata)) carrier.metadata = canonical.metadata ?? null;

  const keep = options.carrier !== false;
  const warn = (field: string, message: string): void => {
    warnings.push({
      code: NOT_EXPRESSIBLE,
      message: `${message}; ${keep ? `kept in the '${CARRIER_FIELD}' field` : 'dropped (carrier disabled)'}`,
      details: { file: options.file, record: canonical.id, index, field, dialect: dialect.name, keptIn: keep ? CARRIER_FIELD : null },
    });
  };
  if (carrier.id !== undefined) warn('id', `${dialect.name} cannot express the record id '${canonical.id}'`);
  if (carrier.images !== undefined) warn('images', `${dialect.name} cannot express these image references exactly`);
  for (const d of carrier.removed ?? []) warn(`messages.${d.index}`, `${dialect.name} cannot express a ${d.message.role} message at position ${d.index}`);
  if (carrier.train !== undefined) warn('messages.train', `${dialect.name} cannot express per-turn train flags`);
  if (carrier.messages !== undefined) warn('messages', `${dialect.name} cannot express this conversation exactly`);
  if (carrier.task !== undefined) warn('task', `${dialect.name} cannot express the task '${canonical.task ?? ''}'`);
  if (keep && Object.keys(carrier).length) native[CARRIER_FIELD] = carrier;
  return { native, key, warnings };
}
