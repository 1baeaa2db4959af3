import type { ChatMessage } from '@vlit/core';
import { ValidationError } from '@vlit/core';
import { z } from 'zod';
import { contentToText, imagePath, parseNative, type RecordDialect, type EncodedNative } from '../codec.js';
import { decodeId, defineDialect, encodeId, type DecodedFields } from './define-dialect.js';
import { registerDialectSpec } from './spec.js';
import { defaultImageId, defaultImagePath, insertImageMarkers, stripImageMarkers, type ImageIdOptions } from './image-ids.js';
import { decodeTurns, encodeTurns, llavaTurnSchema } from './llava.js';

/**
 * One annotation of the review's released data: images by id (one id as a string, as in the release,
 * or a list), a type and a LLaVA-style conversation.
 */
export const reviewAnnotationSchema = z.looseObject({
  id: z.union([z.string().min(1), z.number()]).optional(),
  img_ids: z.union([z.string().min(1), z.array(z.union([z.string().min(1), z.number()]))]),
  instruction_type: z.string().min(1),
  conversations: z.array(llavaTurnSchema).min(1),
});
export type ReviewAnnotation = z.infer<typeof reviewAnnotationSchema>;

/** The review's instruction types, spelled as in its released file; `task` holds them in lower case. */
export const REVIEW_INSTRUCTION_TYPES = ['global', 'negative', 'region'] as const;

const KNOWN = ['id', 'img_ids', 'instruction_type', 'conversations'];

/**
 * The review's released format `{image_source, construction_time, annotations: [{img_ids,
 * instruction_type, conversations}]}`. `img_ids` is one id as a string (as released, e.g.
 * `"COCO_train2014_000000030722"`) or a list of ids; `instruction_type` in any case (`global`,
 * `Global`, ...) becomes `task` in lower case. Both are written back exactly as read (the spelling
 * and the string-or-list shape are kept as hints); new records get a string for one image and
 * lower-case types, as released. System prompts are not expressible; records have no id of their own
 * (`review-<index>` unless an `id` field is present).
 */
export function createReviewDialect(options: ImageIdOptions = {}): RecordDialect {
  const dialect = buildReviewDialect(options);
  // image-id functions are code: a dialect built with them has no spec and converts on the calling thread
  return options.imagePath || options.imageId ? dialect : registerDialectSpec(dialect, { kind: 'review' });
}

function buildReviewDialect(options: ImageIdOptions): RecordDialect {
  const toPath = options.imagePath ?? defaultImagePath;
  const toId = options.imageId ?? defaultImageId;
  return defineDialect({
    name: 'review',
    layout: { kind: 'wrapped', path: ['annotations'], header: ['image_source', 'construction_time'] },
    known: KNOWN,
    parse: (native) => parseNative(reviewAnnotationSchema, native, 'review annotation'),
    decode(r, ctx, hints): DecodedFields {
      const id = decodeId(r, `review-${ctx.index}`, hints);
      let ids: Array<string | number>;
      if (typeof r.img_ids === 'string') ids = [r.img_ids];
      else {
        ids = r.img_ids;
        // A one-element list stays a list on the way back; the default for one image is a string.
        if (ids.length === 1) hints.imageIdList = true;
      }
      if (ids.some((x) => typeof x === 'number')) {
        if (!ids.every((x) => typeof x === 'number')) throw new ValidationError('img_ids mixes numbers and strings', { details: { field: 'img_ids' } });
        hints.numericImageIds = true;
      }
      const task = r.instruction_type.toLowerCase();
      if (task !== r.instruction_type) hints.typeSpelling = r.instruction_type;
      const images = ids.map((x) => toPath(String(x)));
      const messages: ChatMessage[] = insertImageMarkers(decodeTurns(r.conversations, hints), images.length);
      return { id, images, messages, task };
    },
    encode(record, ctx, hints): EncodedNative {
      const out: Record<string, unknown> = {};
      encodeId(out, record, `review-${ctx.index}`, hints);
      const ids = record.images.map((ref) => {
        const id = toId(imagePath(ref));
        return hints.numericImageIds === true && /^\d+$/.test(id) ? Number(id) : id;
      });
      out.img_ids = ids.length === 1 && typeof ids[0] === 'string' && hints.imageIdList !== true ? ids[0] : ids;
      const task = record.task ?? 'global';
      out.instruction_type = typeof hints.typeSpelling === 'string' && hints.typeSpelling.toLowerCase() === task ? hints.typeSpelling : task;
      const { turns, dropped } = encodeTurns(record, hints);
      const firstUser = turns.findIndex((t) => t.from === 'human');
      if (firstUser !== -1) {
        const original = record.messages.filter((m) => m.role !== 'system');
        turns[firstUser] = { ...turns[firstUser], value: stripImageMarkers(original, contentToText(original[firstUser].content), record.images.length) };
      }
      out.conversations = turns;
      return { native: out, dropped };
    },
  });
}

/** The review's format with the default image naming (`<image id>.jpg`). */
export const reviewDialect: RecordDialect = createReviewDialect();
