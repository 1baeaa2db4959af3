import { registerDialectSpec } from './spec.js';
import { normalizeRecord, type DraftRecord, type EncodedNative, type RecordDialect } from '../codec.js';

/** Vlit's canonical records (core's `vlitRecordSchema`), one per JSON Lines line; expresses everything. */
export const vlitDialect: RecordDialect = registerDialectSpec(
  {
    name: 'vlit',
    layout: { kind: 'array' },
    decode(native): DraftRecord {
      // validation happens once, in decodeRecord, against core's schema
      return native as unknown as DraftRecord;
    },
    encode(record): EncodedNative {
      return { native: normalizeRecord(record) as unknown as Record<string, unknown> };
    },
  },
  { kind: 'vlit' },
);
