import type { ChatMessage, ContentPart } from '@vlit/core';
import { IMAGE_PLACEHOLDER, UnsupportedError, ValidationError } from '@vlit/core';
import { z } from 'zod';
import { extraFields, imagePath, parseNative, type EncodedNative, type RecordDialect } from '../codec.js';
import { decodeId, defineDialect, encodeId, type DecodedFields } from './define-dialect.js';
import { registerDialectSpec } from './spec.js';

/** An OpenAI-style content part: text, `image_url` (`{url}` or a string) or ms-swift/Qwen `image`. */
export const openAiPartSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text'), text: z.string() }),
  z.looseObject({ type: z.literal('image_url'), image_url: z.union([z.string().min(1), z.looseObject({ url: z.string().min(1) })]) }),
  z.looseObject({ type: z.literal('image'), image: z.string().min(1) }),
]);
/** One OpenAI-style message; ms-swift's `loss` is the per-turn train flag. */
export const openAiMessageSchema = z.looseObject({
  role: z.string(),
  content: z.union([z.string(), z.array(openAiPartSchema)]),
  loss: z.boolean().nullable().optional(),
});
/** An ms-swift / OpenAI-style record: `messages` (content strings with `<image>` or parts) plus `images`. */
export const openAiRecordSchema = z.looseObject({
  id: z.union([z.string().min(1), z.number()]).optional(),
  messages: z.array(openAiMessageSchema).min(1),
  images: z.array(z.string().min(1)).optional(),
});
export type OpenAiRecord = z.infer<typeof openAiRecordSchema>;

const KNOWN = ['id', 'messages', 'images'];
const MESSAGE_KNOWN = ['role', 'content', 'loss'];

/** ms-swift / OpenAI messages: system prompts, train flags (`loss`), content parts and images all expressible. */
export const openAiDialect: RecordDialect = registerDialectSpec(
  defineDialect({
    name: 'openai',
    layout: { kind: 'array' },
    known: KNOWN,
    parse: (native) => parseNative(openAiRecordSchema, native, 'OpenAI-style record'),
    decode(r, ctx, hints): DecodedFields {
      const id = decodeId(r, `openai-${ctx.index}`, hints);
      const tagged = r.images ?? [];
      if (r.images && r.images.length === 0) hints.emptyImages = true;
      let nextTagged = 0;
      const images: string[] = [];
      const messageFields: Record<string, Record<string, unknown>> = {};
      const messages = r.messages.map((m, i): ChatMessage => {
        if (m.role !== 'system' && m.role !== 'user' && m.role !== 'assistant') {
          throw new UnsupportedError(`role '${m.role}' has no canonical equivalent`, { details: { field: `messages.${i}.role` } });
        }
        const extra = extraFields(m, MESSAGE_KNOWN);
        if (extra) messageFields[i] = extra;
        let content: ChatMessage['content'];
        if (typeof m.content === 'string') {
          const n = m.content.split(IMAGE_PLACEHOLDER).length - 1;
          for (let k = 0; k < n; k++) {
            if (nextTagged >= tagged.length) {
              throw new ValidationError(`more ${IMAGE_PLACEHOLDER} tags than entries in images (${tagged.length})`, {
                details: { field: `messages.${i}.content` },
              });
            }
            images.push(tagged[nextTagged++]);
          }
          content = m.content;
        } else {
          content = m.content.map((p): ContentPart => {
            if (p.type === 'text') return { type: 'text', text: p.text };
            if (p.type === 'image') {
              hints.imagePart = 'image';
              images.push(p.image);
            } else images.push(typeof p.image_url === 'string' ? p.image_url : p.image_url.url);
            return { type: 'image' };
          });
        }
        const msg: ChatMessage = { role: m.role, content };
        if (typeof m.loss === 'boolean') msg.train = m.loss;
        return msg;
      });
      if (nextTagged !== tagged.length) {
        throw new ValidationError(`${tagged.length} entries in images but ${nextTagged} ${IMAGE_PLACEHOLDER} tag(s) in messages`, {
          details: { field: 'images' },
        });
      }
      if (Object.keys(messageFields).length) hints.messageFields = messageFields;
      return { id, images, messages };
    },
    encode(record, ctx, hints): EncodedNative {
      const out: Record<string, unknown> = {};
      encodeId(out, record, `openai-${ctx.index}`, hints);
      const paths = record.images.map(imagePath);
      let next = 0;
      const tagged: string[] = [];
      const messageFields = (hints.messageFields ?? {}) as Record<string, Record<string, unknown>>;
      out.messages = record.messages.map((m, i) => {
        let content: unknown;
        if (typeof m.content === 'string') {
          const n = m.content.split(IMAGE_PLACEHOLDER).length - 1;
          for (let k = 0; k < n; k++) tagged.push(paths[next++]);
          content = m.content;
        } else {
          content = m.content.map((p) => {
            if (p.type === 'text') return { type: 'text', text: p.text };
            const path = paths[next++];
            return hints.imagePart === 'image' ? { type: 'image', image: path } : { type: 'image_url', image_url: { url: path } };
          });
        }
        const msg: Record<string, unknown> = { role: m.role, content };
        if (m.train !== undefined) msg.loss = m.train;
        return { ...msg, ...(messageFields[i] ?? {}) };
      });
      if (tagged.length || hints.emptyImages === true) out.images = tagged;
      return { native: out };
    },
  }),
  { kind: 'openai' },
);
