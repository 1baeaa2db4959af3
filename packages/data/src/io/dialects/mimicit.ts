import type { ChatMessage } from '@vlit/core';
import { ValidationError } from '@vlit/core';
import { z } from 'zod';
import { contentToText, imagePath, parseNative, type EncodedNative, type RecordDialect } from '../codec.js';
import { defineDialect, type DecodedFields } from './define-dialect.js';
import { registerDialectSpec } from './spec.js';
import { defaultImageId, defaultImagePath, insertImageMarkers, stripImageMarkers, type ImageIdOptions } from './image-ids.js';

/** One MIMIC-IT instruction (a member of the instructions file's `data`, keyed by instruction id). */
export const mimicItEntrySchema = z.looseObject({
  instruction: z.string(),
  answer: z.string(),
  image_ids: z.array(z.string().min(1)),
  rel_ins_ids: z.array(z.string()).optional(),
});
export type MimicItEntry = z.infer<typeof mimicItEntrySchema>;

const KNOWN = ['instruction', 'answer', 'image_ids', 'rel_ins_ids'];

/**
 * MIMIC-IT instructions JSON `{meta, data: {id: {instruction, answer, image_ids, rel_ins_ids}}}`.
 * One instruction/answer pair per entry: system prompts and further turns are not expressible.
 * Images are named by id; `imagePath`/`imageId` map ids to paths under the root (the images JSON,
 * id -> base64, is unpacked to files by `extractMimicItImages` in `@vlit/data/node`).
 */
export function createMimicItDialect(options: ImageIdOptions = {}): RecordDialect {
  const dialect = buildMimicItDialect(options);
  // image-id functions are code: a dialect built with them has no spec and converts on the calling thread
  return options.imagePath || options.imageId ? dialect : registerDialectSpec(dialect, { kind: 'mimicit' });
}

function buildMimicItDialect(options: ImageIdOptions): RecordDialect {
  const toPath = options.imagePath ?? defaultImagePath;
  const toId = options.imageId ?? defaultImageId;
  return defineDialect({
    name: 'mimicit',
    layout: { kind: 'map', path: ['data'], header: ['meta'] },
    known: KNOWN,
    parse: (native) => parseNative(mimicItEntrySchema, native, 'MIMIC-IT instruction'),
    decode(r, ctx, hints): DecodedFields {
      if (!ctx.key) throw new ValidationError('a MIMIC-IT instruction needs its id (the key in data)', { details: { field: '(key)' } });
      if (r.rel_ins_ids?.length) hints.relInsIds = r.rel_ins_ids;
      const images = r.image_ids.map(toPath);
      const messages: ChatMessage[] = insertImageMarkers(
        [
          { role: 'user', content: r.instruction },
          { role: 'assistant', content: r.answer },
        ],
        images.length,
      );
      return { id: ctx.key, images, messages };
    },
    encode(record, _ctx, hints): EncodedNative {
      const dropped: NonNullable<EncodedNative['dropped']> = [];
      let user: number | undefined;
      let assistant: number | undefined;
      record.messages.forEach((m, index) => {
        if (user === undefined && m.role === 'user') user = index;
        else if (user !== undefined && assistant === undefined && m.role === 'assistant') assistant = index;
        else dropped.push({ index, message: m });
      });
      // An instruction file entry without an instruction is not MIMIC-IT; the writer sends it to the rejects.
      if (user === undefined)
        throw new ValidationError('MIMIC-IT cannot hold a conversation with no user turn (no instruction)', { details: { field: 'messages' } });
      const userText = contentToText(record.messages[user].content);
      const out: Record<string, unknown> = {
        instruction: stripImageMarkers(record.messages, userText, record.images.length),
        answer: assistant === undefined ? '' : contentToText(record.messages[assistant].content),
        image_ids: record.images.map((ref) => toId(imagePath(ref))),
        rel_ins_ids: Array.isArray(hints.relInsIds) ? hints.relInsIds : [],
      };
      return { native: out, key: record.id, dropped };
    },
  });
}

/** MIMIC-IT with the default image naming (`<image id>.jpg`). */
export const mimicItDialect: RecordDialect = createMimicItDialect();
