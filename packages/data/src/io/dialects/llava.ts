import type { ChatMessage, VlitRecord } from '@vlit/core';
import { z } from 'zod';
import { contentToText, extraFields, imagePath, parseNative, type EncodedNative, type RecordDialect } from '../codec.js';
import { defineDialect, nativeId, type DecodedFields } from './define-dialect.js';
import { registerDialectSpec } from './spec.js';

/** One LLaVA turn: `human` asks, `gpt` answers; `<image>` marks where images go. */
export const llavaTurnSchema = z.looseObject({ from: z.enum(['human', 'gpt']), value: z.string() });
/** A LLaVA record (LLaVA-Instruct / LLaVA-1.5 mix): `image` is one path, a list, or absent. */
export const llavaRecordSchema = z.looseObject({
  id: z.union([z.string().min(1), z.number()]),
  image: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  conversations: z.array(llavaTurnSchema).min(1),
});
export type LlavaRecord = z.infer<typeof llavaRecordSchema>;

const KNOWN = ['id', 'image', 'conversations'];
const TURN_KNOWN = ['from', 'value'];

const hasOwn = Object.prototype.hasOwnProperty;

function plainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !hasOwn.call(value, '__proto__');
}

/**
 * True when `native` certainly passes `llavaRecordSchema` (the common case), so it can be read as is:
 * zod would return an equal copy with the known keys first, which no reader here depends on. Anything
 * unusual (an own `__proto__` key, which zod's copy drops) goes through zod for the exact error.
 */
function plainLlavaRecord(native: unknown): native is LlavaRecord {
  if (!plainObject(native)) return false;
  const { id, image, conversations } = native;
  if (typeof id === 'string' ? id.length === 0 : typeof id !== 'number' || !Number.isFinite(id)) return false;
  if (image !== undefined) {
    if (typeof image === 'string') {
      if (image.length === 0) return false;
    } else if (Array.isArray(image)) {
      for (const p of image) if (typeof p !== 'string' || p.length === 0) return false;
    } else return false;
  }
  if (!Array.isArray(conversations) || conversations.length === 0) return false;
  for (const t of conversations) {
    if (!plainObject(t) || (t.from !== 'human' && t.from !== 'gpt') || typeof t.value !== 'string') return false;
  }
  return true;
}

/** Decode the `from`/`value` turns shared by LLaVA and the review's format. */
export function decodeTurns(turns: Record<string, unknown>[], hints: Record<string, unknown>): ChatMessage[] {
  const turnFields: Record<string, Record<string, unknown>> = {};
  const messages = turns.map((t, i) => {
    const extra = extraFields(t, TURN_KNOWN);
    if (extra) turnFields[i] = extra;
    return { role: t.from === 'human' ? 'user' : 'assistant', content: t.value as string } as ChatMessage;
  });
  if (Object.keys(turnFields).length) hints.turnFields = turnFields;
  return messages;
}

/** Encode messages as `from`/`value` turns; system messages cannot be expressed and are returned as dropped. */
export function encodeTurns(
  record: VlitRecord,
  hints: Record<string, unknown>,
): { turns: Record<string, unknown>[]; dropped: NonNullable<EncodedNative['dropped']> } {
  const dropped: NonNullable<EncodedNative['dropped']> = [];
  const turnFields = (hints.turnFields ?? {}) as Record<string, Record<string, unknown>>;
  const turns: Record<string, unknown>[] = [];
  record.messages.forEach((m, index) => {
    if (m.role === 'system') {
      dropped.push({ index, message: m });
      return;
    }
    turns.push({ from: m.role === 'user' ? 'human' : 'gpt', value: contentToText(m.content), ...(turnFields[turns.length] ?? {}) });
  });
  return { turns, dropped };
}

/** LLaVA: `{id, image, conversations:[{from, value}]}`; no system prompt, no per-turn train flags. */
export const llavaDialect: RecordDialect = registerDialectSpec(
  defineDialect({
    name: 'llava',
    layout: { kind: 'array' },
    known: KNOWN,
    parse: (native) => (plainLlavaRecord(native) ? native : parseNative(llavaRecordSchema, native, 'LLaVA record')),
    decode(r, _ctx, hints): DecodedFields {
      if (typeof r.id === 'number') hints.numericId = true;
      let images: string[] = [];
      if (typeof r.image === 'string') images = [r.image];
      else if (Array.isArray(r.image)) {
        images = r.image;
        if (images.length <= 1) hints.imageList = true;
      }
      return { id: String(r.id), images, messages: decodeTurns(r.conversations, hints) };
    },
    encode(record, _ctx, hints): EncodedNative {
      const out: Record<string, unknown> = { id: nativeId(record, hints) };
      const paths = record.images.map(imagePath);
      if (paths.length > 1 || (hints.imageList === true && paths.length <= 1)) out.image = paths;
      else if (paths.length === 1) out.image = paths[0];
      const { turns, dropped } = encodeTurns(record, hints);
      out.conversations = turns;
      return { native: out, dropped };
    },
  }),
  { kind: 'llava' },
);
