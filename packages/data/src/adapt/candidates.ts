/**
 * Candidate question–answer items of each annotation-adaption task, one builder per task family. The
 * adapter samples from these and phrases each with an instruction template.
 */
import { formatBox, type BoxFormat } from '@vlit/templates';
import type { ImageAnnotations } from '../annotations.js';
import { ADAPT_TASK_FAMILIES, type AdaptTask } from './tasks.js';
import { majorityAnswer } from './answers.js';
import { cocoBoxToXyxy, spatialRelation, type SpatialRelation, type SpatialRelationOptions } from './geometry.js';
import { categoryForms, indefiniteArticle, mentionsForm, pluralize } from './vocabulary.js';

/** One question and its answer before an instruction phrasing is chosen. */
export interface QaItem {
  task: AdaptTask;
  slots: Record<string, string>;
  answer: string;
  /** Whether a raw phrasing of the family can be answered by `answer`. */
  accepts?: (phrasing: string) => boolean;
  meta: Record<string, unknown>;
}

const RELATION_TEXT: Record<SpatialRelation, string> = {
  'left of': 'to the left of',
  'right of': 'to the right of',
  above: 'above',
  below: 'below',
};

// 2D boxes say nothing about depth or what lies between two objects.
const SPATIAL_UNANSWERABLE = /closer to the camera|between/i;
const SPATIAL_HORIZONTAL_ONLY = /left or (to the )?right/i;
const SPATIAL_VERTICAL_ONLY = /above or below(?!, or)/i;

/** The text with its first letter upper-cased. */
export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The text trimmed, ending in a full stop unless it already ends a sentence. */
export function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** What the candidate builders take from the adapter's options. */
export interface CandidateContext {
  /** Vocabulary categories with every form they may be written in, for `negative`. */
  negativeCandidates: ReadonlyArray<{ name: string; forms: readonly string[] }>;
  /** The box format of an instruction family. */
  boxFormatOf(family: string): BoxFormat;
  /** False: no `region` items from object boxes when an image has no regions. */
  regionFromObjects?: boolean;
  spatial?: SpatialRelationOptions;
}

/** An image's objects by category, and the categories that have exactly one object. */
export interface ImageObjects {
  byCategory: Map<string, ImageAnnotations['objects']>;
  unique: Array<{ name: string; object: ImageAnnotations['objects'][number] }>;
}

/** Group an image's objects by (trimmed) category. */
export function imageObjects(image: ImageAnnotations): ImageObjects {
  const byCategory = new Map<string, ImageAnnotations['objects']>();
  for (const o of image.objects) {
    const name = o.category.trim();
    byCategory.set(name, [...(byCategory.get(name) ?? []), o]);
  }
  const unique = [...byCategory.entries()].filter(([, list]) => list.length === 1).map(([name, list]) => ({ name, object: list[0] }));
  return { byCategory, unique };
}

type CandidateBuilder = (image: ImageAnnotations, objects: ImageObjects, ctx: CandidateContext, task: AdaptTask) => QaItem[];

/** Each non-empty caption, as a sentence. */
const captionCandidates: CandidateBuilder = (image, objects, ctx, task) => {
  return image.captions.filter((c) => c.trim()).map((c, i) => ({ task, slots: {}, answer: sentence(capitalize(c.trim())), meta: { captionIndex: i } }));
};

/** Each VQA question with a majority answer. */
const vqaCandidates: CandidateBuilder = (image, objects, ctx, task) => {
  return image.vqa.flatMap((q, i) => {
    const answer = majorityAnswer(q.answers);
    return answer === undefined
      ? []
      : [{ task, slots: { question: q.question.trim() }, answer, meta: { vqaIndex: i, answerType: q.answerType, humanAnswers: q.answers.length } }];
  });
};

/** How many of each category. */
const countingCandidates: CandidateBuilder = (image, objects, ctx, task) => {
  const { byCategory } = objects;
  return [...byCategory.entries()].map(([name, list]) => ({
    task,
    slots: { object: pluralize(name), object_singular: name },
    answer: String(list.length),
    meta: { category: name, count: list.length },
  }));
};

/** Each present category: yes. */
const existenceCandidates: CandidateBuilder = (image, objects, ctx, task) => {
  const { byCategory } = objects;
  return [...byCategory.keys()].map((name) => ({ task, slots: { object: name }, answer: 'Yes.', meta: { category: name, present: true } }));
};

/** Categories of the vocabulary that neither the objects nor any text of the image mention (under any synonym): no. */
const negativeCandidates: CandidateBuilder = (image, objects, ctx, task) => {
  const { byCategory } = objects;
  const present = [...byCategory.keys()];
  // Skip anything the image's own text mentions: COCO object lists are incomplete, and "no" must be true.
  const texts = [
    ...image.captions,
    ...image.regions.map((r) => r.description),
    ...image.vqa.flatMap((q) => [q.question, ...q.answers]),
    ...image.ocr.map((o) => o.text),
    ...image.objects.flatMap((o) => o.attributes ?? []),
  ];
  // A category counts as mentioned under any of its synonyms ("puppy" is a dog), in either direction.
  // One lower-cased haystack (joined by newlines, which are word boundaries) instead of one test per text.
  const haystack = [...present, ...texts].join('\n').toLowerCase();
  const presentForms = present.flatMap(categoryForms);
  const absent = ctx.negativeCandidates
    .filter(({ forms }) => forms.every((form) => !mentionsForm(haystack, form) && !presentForms.some((p) => mentionsForm(form, p))))
    .map(({ name }) => name);
  return absent.map((name) => ({ task, slots: { object: name }, answer: 'No.', meta: { category: name, present: false } }));
};

/** The box of each category with exactly one object, in the family's box format. */
const locationCandidates: CandidateBuilder = (image, objects, ctx, task) => {
  const { unique } = objects;
  const format = ctx.boxFormatOf(ADAPT_TASK_FAMILIES.location);
  return unique.flatMap(({ name, object }) => {
    const box = cocoBoxToXyxy(object.bbox, image.width, image.height);
    if (!(box[2] > box[0] && box[3] > box[1])) return [];
    return [
      {
        task,
        slots: { object: name },
        answer: formatBox({ box, width: image.width, height: image.height }, format),
        meta: { category: name, boxFormat: format, box },
      },
    ];
  });
};

/** A description for each region box (or each object box, from its category and attributes, when the image has no regions). */
const regionCandidates: CandidateBuilder = (image, objects, ctx, task) => {
  const format = ctx.boxFormatOf(ADAPT_TASK_FAMILIES.region);
  const described = image.regions.length
    ? image.regions.map((r) => ({ bbox: r.bbox, answer: sentence(capitalize(r.description.trim())), from: 'region' }))
    : ctx.regionFromObjects === false
      ? []
      : image.objects.map((o) => {
          const words = [...(o.attributes ?? []), o.category.trim()].join(' ');
          return { bbox: o.bbox, answer: `${capitalize(indefiniteArticle(words))} ${words}.`, from: 'object' };
        });
  return described.flatMap(({ bbox, answer, from }) => {
    const box = cocoBoxToXyxy(bbox, image.width, image.height);
    if (!(box[2] > box[0] && box[3] > box[1])) return [];
    return [{ task, slots: { box: formatBox({ box, width: image.width, height: image.height }, format) }, answer, meta: { boxFormat: format, box, from } }];
  });
};

/** The clear spatial relation between each pair of single-object categories. */
const spatialCandidates: CandidateBuilder = (image, objects, ctx, task) => {
  const { unique } = objects;
  const items: QaItem[] = [];
  for (let i = 0; i < unique.length; i++) {
    for (let j = i + 1; j < unique.length; j++) {
      const relation = spatialRelation(unique[i].object.bbox, unique[j].object.bbox, image, ctx.spatial);
      if (!relation) continue;
      const horizontal = relation === 'left of' || relation === 'right of';
      items.push({
        task,
        slots: { object_a: unique[i].name, object_b: unique[j].name },
        answer: `The ${unique[i].name} is ${RELATION_TEXT[relation]} the ${unique[j].name}.`,
        accepts: (p) => !SPATIAL_UNANSWERABLE.test(p) && !(SPATIAL_HORIZONTAL_ONLY.test(p) && !horizontal) && !(SPATIAL_VERTICAL_ONLY.test(p) && horizontal),
        meta: { objectA: unique[i].name, objectB: unique[j].name, relation },
      });
    }
  }
  return items;
};

/** All OCR tokens in reading order (top to bottom, then left to right). */
const ocrCandidates: CandidateBuilder = (image, objects, ctx, task) => {
  if (!image.ocr.length) return [];
  // Reading order: top to bottom, then left to right; tokens without boxes keep their order at the end.
  const ordered = image.ocr
    .map((o, i) => ({ o, i }))
    .sort((a, b) => {
      if (!a.o.bbox || !b.o.bbox) return a.o.bbox ? -1 : b.o.bbox ? 1 : a.i - b.i;
      const rowA = a.o.bbox[1] + a.o.bbox[3] / 2;
      const rowB = b.o.bbox[1] + b.o.bbox[3] / 2;
      const sameRow = Math.abs(rowA - rowB) < Math.min(a.o.bbox[3], b.o.bbox[3]) / 2;
      return sameRow ? a.o.bbox[0] - b.o.bbox[0] : rowA - rowB;
    });
  return [{ task, slots: {}, answer: ordered.map(({ o }) => o.text.trim()).join(' '), meta: { tokens: image.ocr.length } }];
};

/** The candidate builder of every task but `dialogue` (which draws on the others). */
export const CANDIDATE_BUILDERS: Readonly<Record<Exclude<AdaptTask, 'dialogue'>, CandidateBuilder>> = {
  caption: captionCandidates,
  vqa: vqaCandidates,
  counting: countingCandidates,
  existence: existenceCandidates,
  negative: negativeCandidates,
  location: locationCandidates,
  region: regionCandidates,
  spatial: spatialCandidates,
  ocr: ocrCandidates,
};
