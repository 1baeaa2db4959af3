// Readers for the common VQA, caption and POPE file formats (plain JSON in, items out).

import { FormatError } from '@vlit/core';
import { z } from 'zod';
import type { PopeQuestion } from './metrics/pope.js';
import type { CaptionItem, VqaItem } from './run/benchmarks.js';

const vqaQuestionsSchema = z.object({
  questions: z.array(z.object({ question_id: z.union([z.number(), z.string()]), image_id: z.union([z.number(), z.string()]), question: z.string() })),
});
const vqaAnnotationsSchema = z.object({
  annotations: z.array(
    z.object({
      question_id: z.union([z.number(), z.string()]),
      answer_type: z.string().optional(),
      question_type: z.string().optional(),
      answers: z.array(z.object({ answer: z.string() })),
    }),
  ),
});

/** VQAv2's COCO image file name for an image id and split, e.g. `COCO_val2014_000000000042.jpg`. */
export function cocoImageName(imageId: number | string, split = 'val2014'): string {
  return `COCO_${split}_${String(imageId).padStart(12, '0')}.jpg`;
}

/**
 * Join VQAv2 question and annotation files into items; the image is `imagePath(image_id)`
 * (default: the COCO val2014 file name). Questions without annotations are skipped and counted.
 */
export function parseVqaV2(
  questionsJson: unknown,
  annotationsJson: unknown,
  options: { imagePath?: (imageId: number | string) => string; file?: string } = {},
): { items: VqaItem[]; skipped: number } {
  const q = vqaQuestionsSchema.safeParse(questionsJson);
  if (!q.success) throw new FormatError('not a VQAv2 questions file', { cause: q.error, details: { file: options.file } });
  const a = vqaAnnotationsSchema.safeParse(annotationsJson);
  if (!a.success) throw new FormatError('not a VQAv2 annotations file', { cause: a.error, details: { file: options.file } });
  const byId = new Map(a.data.annotations.map((x) => [String(x.question_id), x]));
  const imagePath = options.imagePath ?? ((id) => cocoImageName(id));
  const items: VqaItem[] = [];
  let skipped = 0;
  for (const question of q.data.questions) {
    const ann = byId.get(String(question.question_id));
    if (!ann) {
      skipped++;
      continue;
    }
    items.push({
      id: String(question.question_id),
      question: question.question,
      images: [imagePath(question.image_id)],
      answers: ann.answers.map((x) => x.answer),
      ...(ann.answer_type ? { answerType: ann.answer_type } : {}),
      ...(ann.question_type ? { questionType: ann.question_type } : {}),
    });
  }
  return { items, skipped };
}

const cocoCaptionsSchema = z.object({
  images: z.array(z.object({ id: z.union([z.number(), z.string()]), file_name: z.string() })).optional(),
  annotations: z.array(z.object({ image_id: z.union([z.number(), z.string()]), caption: z.string() })),
});

/** Read a COCO captions annotation file into caption items (one per image, all its captions as references). */
export function parseCocoCaptions(json: unknown, options: { file?: string } = {}): CaptionItem[] {
  const parsed = cocoCaptionsSchema.safeParse(json);
  if (!parsed.success) throw new FormatError('not a COCO captions file', { cause: parsed.error, details: { file: options.file } });
  const names = new Map((parsed.data.images ?? []).map((i) => [String(i.id), i.file_name]));
  const refs = new Map<string, string[]>();
  for (const a of parsed.data.annotations) {
    const id = String(a.image_id);
    const list = refs.get(id) ?? [];
    list.push(a.caption);
    refs.set(id, list);
  }
  return [...refs].map(([id, references]) => ({ id, images: [names.get(id) ?? cocoImageName(id)], references }));
}

const popeLineSchema = z.object({ question_id: z.union([z.number(), z.string()]), image: z.string(), text: z.string(), label: z.enum(['yes', 'no']) });

/** Read a POPE question file (JSON lines with question_id, image, text, label). */
export function parsePopeJsonl(text: string, options: { file?: string } = {}): PopeQuestion[] {
  const out: PopeQuestion[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new FormatError(`line ${i + 1} is not JSON`, { cause: e, details: { file: options.file, record: i + 1 } });
    }
    const q = popeLineSchema.safeParse(value);
    if (!q.success) throw new FormatError(`line ${i + 1} is not a POPE question`, { cause: q.error, details: { file: options.file, record: i + 1 } });
    const object = /is there an? (.+?) in the im/i.exec(q.data.text)?.[1] ?? '';
    out.push({ id: String(q.data.question_id), image: q.data.image, question: q.data.text, label: q.data.label, object });
  });
  return out;
}
