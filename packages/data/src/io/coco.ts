import { isVlitError, ValidationError, type ProgressCallback, type VlitRecord } from '@vlit/core';
import { z } from 'zod';
import { imageAnnotationsSchema, type ImageAnnotations, type ObjectAnnotation } from '../annotations.js';
import { locateError, parseNative, withField } from './codec.js';
import { streamJsonValues, type JsonStreamItem } from './json-stream.js';
import { checkRelativePath } from './paths.js';
import { toRejectedRecord, type RejectedRecord } from './records.js';
import type { ByteSource } from './source.js';

/** COCO `images` entry. */
export const cocoImageSchema = z.looseObject({
  id: z.union([z.number(), z.string().min(1)]),
  file_name: z.string().min(1),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});
/** COCO captions annotation. */
export const cocoCaptionSchema = z.looseObject({
  id: z.union([z.number(), z.string()]).optional(),
  image_id: z.union([z.number(), z.string().min(1)]),
  caption: z.string().min(1),
});
/** COCO instances annotation (segmentation and the rest are ignored). */
export const cocoInstanceSchema = z.looseObject({
  id: z.union([z.number(), z.string()]).optional(),
  image_id: z.union([z.number(), z.string().min(1)]),
  category_id: z.union([z.number(), z.string().min(1)]),
  bbox: z.tuple([z.number(), z.number(), z.number().nonnegative(), z.number().nonnegative()]),
});
/** COCO category. */
export const cocoCategorySchema = z.looseObject({ id: z.union([z.number(), z.string().min(1)]), name: z.string().min(1) });
/** VQAv2 question. */
export const vqaQuestionSchema = z.looseObject({
  question_id: z.union([z.number(), z.string().min(1)]),
  image_id: z.union([z.number(), z.string().min(1)]),
  question: z.string().min(1),
});
/** VQAv2 annotation (answers for one question). */
export const vqaAnswerSetSchema = z.looseObject({
  question_id: z.union([z.number(), z.string().min(1)]),
  image_id: z.union([z.number(), z.string().min(1)]).optional(),
  answers: z.array(z.looseObject({ answer: z.string() })).min(1),
  multiple_choice_answer: z.string().optional(),
  answer_type: z.string().optional(),
  question_type: z.string().optional(),
});

/** Annotation files to join into per-image `ImageAnnotations` (each optional). */
export interface CocoSources {
  captions?: ByteSource;
  instances?: ByteSource;
  vqaQuestions?: ByteSource;
  vqaAnnotations?: ByteSource;
}

/** Options of `readImageAnnotations`. */
export interface ReadImageAnnotationsOptions {
  /** File names for errors, per source. */
  files?: Partial<Record<keyof CocoSources, string>>;
  /** Path of an image under the dataset root from its COCO `file_name` (default: the file name). */
  imagePath?: (fileName: string, imageId: string) => string;
  /** Facts about images that no COCO `images` list describes (VQA-only input). */
  imageInfo?: (imageId: string) => { file: string; width: number; height: number } | undefined;
  /** Receives each bad entry; reading continues. Without it the first bad entry throws. */
  onReject?: (reject: RejectedRecord) => void;
  onProgress?: ProgressCallback;
}

interface Pending {
  image: ImageAnnotations;
}

/**
 * Join COCO captions, COCO instances and VQAv2 questions + annotations into one `ImageAnnotations`
 * per image (in the order images are first listed). Files are streamed, but a join needs every
 * annotation before the first image is complete: memory grows with the annotations, not the text.
 * Bad entries are typed errors naming the file, the array index and the field (or rejects).
 */
export async function* readImageAnnotations(sources: CocoSources, options: ReadImageAnnotationsOptions = {}): AsyncGenerator<ImageAnnotations> {
  const images = new Map<string, Pending>();
  const categories = new Map<string, string>();
  const vqaAnswers = new Map<string, z.infer<typeof vqaAnswerSetSchema>>();
  const toPath = options.imagePath ?? ((f: string) => f);
  let done = 0;

  const fail = (err: unknown, file: string | undefined, index: number, text: string, field?: string): void => {
    let e = err;
    if (isVlitError(e) && field && e.details.field) e = withField(e, `${field}.${e.details.field}`);
    const located = locateError(e, { file, index });
    if (!options.onReject) throw located;
    options.onReject(toRejectedRecord(located, text));
  };

  async function each(
    source: ByteSource | undefined,
    file: string | undefined,
    arrays: string[],
    handle: (array: string, item: JsonStreamItem & { kind: 'value' }, index: number) => void,
  ): Promise<void> {
    if (!source) return;
    for await (const item of streamJsonValues(
      source,
      arrays.map((a) => [a, '*']),
      { file },
    )) {
      if (!item.selected) continue;
      const array = String(item.path[0]);
      const index = item.path[1] as number;
      done++;
      if (options.onProgress && done % 10000 === 0) options.onProgress({ stage: 'read-annotations', done });
      if (item.kind === 'error') {
        fail(item.error, file, index, item.text);
        continue;
      }
      try {
        handle(array, item, index);
      } catch (err) {
        fail(err, file, index, item.text, `${array}.${index}`);
      }
    }
  }

  const addImage = (value: unknown): void => {
    const img = parseNative(cocoImageSchema, value, 'COCO image');
    const id = String(img.id);
    if (images.has(id)) return;
    const file = checkRelativePath(toPath(img.file_name, id), { field: 'file_name' });
    images.set(id, { image: imageAnnotationsSchema.parse({ imageId: id, file, width: img.width, height: img.height }) });
  };
  const imageFor = (imageId: string): ImageAnnotations => {
    let entry = images.get(imageId);
    if (!entry && options.imageInfo) {
      const info = options.imageInfo(imageId);
      if (info) {
        entry = {
          image: imageAnnotationsSchema.parse({ imageId, file: checkRelativePath(info.file, { field: 'image_id' }), width: info.width, height: info.height }),
        };
        images.set(imageId, entry);
      }
    }
    if (!entry) throw new ValidationError(`image_id ${imageId} is not in any images list`, { details: { field: 'image_id' } });
    return entry.image;
  };

  const files = options.files ?? {};
  // Every images list is read before any annotation is attached, since an annotation may name an
  // image listed in another file or later in the same one; categories may also follow annotations.
  const deferred: { attach: () => void; file?: string; index: number; text: string; field: string }[] = [];
  const defer = (file: string | undefined, array: string, index: number, text: string, attach: () => void): void => {
    deferred.push({ attach, file, index, text, field: `${array}.${index}` });
  };
  await each(sources.captions, files.captions, ['images', 'annotations'], (array, item, index) => {
    if (array === 'images') return addImage(item.value);
    const c = parseNative(cocoCaptionSchema, item.value, 'COCO caption');
    defer(files.captions, array, index, item.text, () => imageFor(String(c.image_id)).captions.push(c.caption));
  });
  await each(sources.instances, files.instances, ['images', 'annotations', 'categories'], (array, item, index) => {
    if (array === 'images') return addImage(item.value);
    if (array === 'categories') {
      const c = parseNative(cocoCategorySchema, item.value, 'COCO category');
      categories.set(String(c.id), c.name);
      return;
    }
    const a = parseNative(cocoInstanceSchema, item.value, 'COCO instance');
    const object: Omit<ObjectAnnotation, 'category'> = { bbox: a.bbox };
    if (a.id !== undefined) object.id = a.id;
    const attributes = (item.value as { attributes?: unknown }).attributes;
    if (Array.isArray(attributes) && attributes.every((x) => typeof x === 'string')) object.attributes = attributes;
    defer(files.instances, array, index, item.text, () => {
      const image = imageFor(String(a.image_id));
      const name = categories.get(String(a.category_id));
      if (name === undefined) throw new ValidationError(`category_id ${String(a.category_id)} is not in categories`, { details: { field: 'category_id' } });
      image.objects.push({ ...object, category: name } as ObjectAnnotation);
    });
  });
  await each(sources.vqaAnnotations, files.vqaAnnotations, ['annotations'], (_array, item) => {
    const a = parseNative(vqaAnswerSetSchema, item.value, 'VQAv2 annotation');
    vqaAnswers.set(String(a.question_id), a);
  });
  await each(sources.vqaQuestions, files.vqaQuestions, ['questions'], (array, item, index) => {
    const q = parseNative(vqaQuestionSchema, item.value, 'VQAv2 question');
    const answers = vqaAnswers.get(String(q.question_id));
    if (!answers) throw new ValidationError(`question ${String(q.question_id)} has no annotation`, { details: { field: 'question_id' } });
    defer(files.vqaQuestions, array, index, item.text, () => {
      imageFor(String(q.image_id)).vqa.push({
        question: q.question,
        answers: answers.answers.map((x) => x.answer),
        ...(answers.answer_type ? { answerType: answers.answer_type } : {}),
      });
    });
  });
  for (const d of deferred) {
    try {
      d.attach();
    } catch (err) {
      fail(err, d.file, d.index, d.text, d.field);
    }
  }
  for (const { image } of images.values()) yield image;
  options.onProgress?.({ stage: 'read-annotations', done, total: done });
}

/** Options of `readVqaV2Records`. */
export interface VqaV2RecordOptions {
  files?: { questions?: string; annotations?: string };
  /** Image path from an image id and the questions file's `data_subtype` (default `<subtype>/COCO_<subtype>_<id, 12 digits>.jpg`). */
  imagePath?: (imageId: string, subtype: string | undefined) => string;
  onReject?: (reject: RejectedRecord) => void;
  dataset?: string;
}

/** The image file VQAv2/COCO 2014 uses for an image id. */
export function defaultVqaImagePath(imageId: string, subtype: string | undefined): string {
  const name = `COCO_${subtype ?? 'train2014'}_${imageId.padStart(12, '0')}.jpg`;
  return subtype ? `${subtype}/${name}` : name;
}

/**
 * VQAv2 questions + annotations as canonical records (one per question: `<image>` + question,
 * answered with `multiple_choice_answer`; all ten answers kept in `metadata.vqav2`). The annotations
 * file is indexed by question id first (memory grows with it); questions are streamed.
 */
export async function* readVqaV2Records(
  sources: { questions: ByteSource; annotations: ByteSource },
  options: VqaV2RecordOptions = {},
): AsyncGenerator<VlitRecord> {
  const answers = new Map<string, z.infer<typeof vqaAnswerSetSchema>>();
  const reject = (err: unknown, file: string | undefined, index: number, text: string, id?: string): void => {
    const located = locateError(err, { file, index, id });
    if (!options.onReject) throw located;
    options.onReject(toRejectedRecord(located, text));
  };
  for await (const item of streamJsonValues(sources.annotations, [['annotations', '*']], { file: options.files?.annotations })) {
    if (!item.selected) continue;
    const index = item.path[1] as number;
    if (item.kind === 'error') {
      reject(item.error, options.files?.annotations, index, item.text);
      continue;
    }
    try {
      const a = parseNative(vqaAnswerSetSchema, item.value, 'VQAv2 annotation');
      answers.set(String(a.question_id), a);
    } catch (err) {
      reject(err, options.files?.annotations, index, item.text);
    }
  }
  let subtype: string | undefined;
  const toPath = options.imagePath ?? defaultVqaImagePath;
  for await (const item of streamJsonValues(sources.questions, [['questions', '*']], { file: options.files?.questions })) {
    if (!item.selected) {
      if (item.kind === 'value' && item.path[0] === 'data_subtype' && typeof item.value === 'string') subtype = item.value;
      continue;
    }
    const index = item.path[1] as number;
    if (item.kind === 'error') {
      reject(item.error, options.files?.questions, index, item.text);
      continue;
    }
    try {
      const q = parseNative(vqaQuestionSchema, item.value, 'VQAv2 question');
      const id = String(q.question_id);
      const a = answers.get(id);
      if (!a) throw new ValidationError(`question ${id} has no annotation`, { details: { field: 'question_id', record: id } });
      const path = checkRelativePath(toPath(String(q.image_id), subtype), { field: 'image_id' });
      const vqav2: Record<string, unknown> = { answers: a.answers.map((x) => x.answer) };
      if (a.answer_type !== undefined) vqav2.answer_type = a.answer_type;
      if (a.question_type !== undefined) vqav2.question_type = a.question_type;
      yield {
        id,
        images: [path],
        messages: [
          { role: 'user', content: `<image>\n${q.question}` },
          { role: 'assistant', content: a.multiple_choice_answer ?? a.answers[0].answer },
        ],
        task: 'vqa',
        source: { dataset: options.dataset ?? 'vqav2', dialect: 'vqav2', originalId: id },
        metadata: { vqav2 },
      };
    } catch (err) {
      if (!isVlitError(err)) throw err;
      const qid = (item.value as { question_id?: unknown })?.question_id;
      reject(err, options.files?.questions, index, item.text, qid === undefined ? undefined : String(qid));
    }
  }
}

/** COCO captions and instances JSON for a set of images (the inverse of readImageAnnotations for those parts). */
export function toCocoJson(annotations: Iterable<ImageAnnotations>): { captions: Record<string, unknown>; instances: Record<string, unknown> } {
  const imgs: Record<string, unknown>[] = [];
  const caps: Record<string, unknown>[] = [];
  const insts: Record<string, unknown>[] = [];
  const cats = new Map<string, number>();
  let capId = 1;
  let instId = 1;
  for (const a of annotations) {
    const imageId = /^\d+$/.test(a.imageId) ? Number(a.imageId) : a.imageId;
    imgs.push({ id: imageId, file_name: a.file, width: a.width, height: a.height });
    for (const c of a.captions) caps.push({ id: capId++, image_id: imageId, caption: c });
    for (const o of a.objects) {
      if (!cats.has(o.category)) cats.set(o.category, cats.size + 1);
      const entry: Record<string, unknown> = {
        id: o.id ?? instId,
        image_id: imageId,
        category_id: cats.get(o.category),
        bbox: o.bbox,
        area: o.bbox[2] * o.bbox[3],
        iscrowd: 0,
      };
      if (o.attributes) entry.attributes = o.attributes;
      insts.push(entry);
      instId++;
    }
  }
  const categories = [...cats].map(([name, id]) => ({ id, name }));
  return { captions: { images: imgs, annotations: caps }, instances: { images: imgs, annotations: insts, categories } };
}

/** VQAv2 questions and annotations JSON for the VQA pairs of a set of images. */
export function toVqaV2Json(
  annotations: Iterable<ImageAnnotations>,
  subtype = 'train2014',
): { questions: Record<string, unknown>; annotations: Record<string, unknown> } {
  const qs: Record<string, unknown>[] = [];
  const as: Record<string, unknown>[] = [];
  let qid = 1;
  for (const a of annotations) {
    const imageId = /^\d+$/.test(a.imageId) ? Number(a.imageId) : a.imageId;
    for (const v of a.vqa) {
      qs.push({ image_id: imageId, question: v.question, question_id: qid });
      const entry: Record<string, unknown> = {
        question_id: qid,
        image_id: imageId,
        answers: v.answers.map((answer, i) => ({ answer, answer_confidence: 'yes', answer_id: i + 1 })),
        multiple_choice_answer: v.answers[0],
      };
      if (v.answerType) entry.answer_type = v.answerType;
      as.push(entry);
      qid++;
    }
  }
  return { questions: { data_subtype: subtype, questions: qs }, annotations: { data_subtype: subtype, annotations: as } };
}
