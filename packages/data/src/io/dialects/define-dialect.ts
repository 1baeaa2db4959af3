import { ValidationError, type VlitRecord } from '@vlit/core';
import type { DecodeContext, DraftRecord, EncodeContext, EncodedNative, RecordDialect, RecordLayout } from '../codec.js';
import { buildMetadata, extraFields, hintsOf, writeExtras } from '../codec.js';

/** The canonical fields a dialect reads from one native item; `defineDialect` adds `source` and `metadata`. */
export type DecodedFields = Pick<DraftRecord, 'id' | 'images' | 'messages' | 'task'>;

/** What is particular to one dialect; what every dialect does alike is left to `defineDialect`. */
export interface DialectSpec<T extends Record<string, unknown>> {
  name: string;
  layout: RecordLayout;
  /** Native fields the dialect maps itself; every other field becomes metadata and is written back as it was. */
  known: readonly string[];
  /** Validate one native item; throws a ValidationError naming the field. */
  parse(native: unknown): T;
  /** The canonical fields of a valid item; what is needed to write it back exactly goes into `hints`. */
  decode(native: T, ctx: DecodeContext, hints: Record<string, unknown>): DecodedFields;
  /** The native item of a record, its own fields only (the metadata's fields are appended after them). */
  encode(record: VlitRecord, ctx: EncodeContext, hints: Record<string, unknown>): EncodedNative;
}

/**
 * A RecordDialect from its spec: the dialect's hints live in `metadata[name]`, native fields it does
 * not know become metadata and are written back after its own, and `source` names the dialect.
 */
export function defineDialect<T extends Record<string, unknown>>(spec: DialectSpec<T>): RecordDialect {
  const { name, layout, known } = spec;
  return {
    name,
    layout,
    decode(native, ctx): DraftRecord {
      const r = spec.parse(native);
      const hints: Record<string, unknown> = {};
      const fields = spec.decode(r, ctx, hints);
      return { ...fields, source: { dataset: ctx.dataset ?? name, dialect: name }, metadata: buildMetadata(extraFields(r, known), name, hints) };
    },
    encode(record, ctx): EncodedNative {
      const encoded = spec.encode(record, ctx, hintsOf(record, name));
      writeExtras(encoded.native, record.metadata, known, name);
      return encoded;
    },
  };
}

/** A native `id` (a non-empty string or a number, hinted `numericId` to write it back as one), or `fallback` when absent. */
export function decodeId(native: Record<string, unknown>, fallback: string, hints: Record<string, unknown>): string {
  const id = native.id;
  if (id === undefined) return fallback;
  if (typeof id === 'number') {
    hints.numericId = true;
    return String(id);
  }
  if (typeof id !== 'string' || id === '') throw new ValidationError('id must be a non-empty string or a number', { details: { field: 'id' } });
  return id;
}

/** The record id as a native value: a number again when it was read as one. */
export function nativeId(record: VlitRecord, hints: Record<string, unknown>): string | number {
  return hints.numericId === true && /^-?\d+$/.test(record.id) ? Number(record.id) : record.id;
}

/** Set `out.id`, unless the record's id is the `fallback` that `decodeId` gives a record without one. */
export function encodeId(out: Record<string, unknown>, record: VlitRecord, fallback: string, hints: Record<string, unknown>): void {
  if (record.id !== fallback) out.id = nativeId(record, hints);
}
