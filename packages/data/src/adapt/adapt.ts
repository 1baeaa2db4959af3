import {
  InvalidArgumentError,
  ValidationError,
  isVlitError,
  createRng,
  parseVlitRecord,
  type ChatMessage,
  type ProgressCallback,
  type Rng,
  type VlitRecord,
  type VlitWarning,
} from '@vlit/core';
import {
  createInstructionSampler,
  fillInstruction,
  formatBox,
  type BoxFormat,
  type InstructionSampler,
  type InstructionSplit,
} from '@vlit/templates';
import { imageAnnotationsSchema, type ImageAnnotations, type ImageAnnotationsInput } from '../annotations.js';
import { majorityAnswer } from './answers.js';
import { cocoBoxToXyxy, spatialRelation, type SpatialRelation, type SpatialRelationOptions } from './geometry.js';
import { COCO_CATEGORIES, createCategoryVocabulary } from '../quality/vocabulary/coco-categories.js';
import { categoryForms, indefiniteArticle, mentionsForm, pluralize } from './vocabulary.js';

/** The record kinds annotation adaption produces; each record's `task` is one of these. */
export const ADAPT_TASKS = [
  'caption',
  'vqa',
  'counting',
  'existence',
  'negative',
  'location',
  'region',
  'spatial',
  'ocr',
  'dialogue',
] as const;
export type AdaptTask = (typeof ADAPT_TASKS)[number];

/** The instruction family of @vlit/templates each task samples its phrasings from. */
export const ADAPT_TASK_FAMILIES: Readonly<Record<AdaptTask, string>> = {
  caption: 'caption-brief',
  vqa: 'vqa-open',
  counting: 'counting',
  existence: 'yes-no',
  negative: 'yes-no',
  location: 'region-location',
  region: 'region-description',
  spatial: 'spatial-relation',
  ocr: 'ocr',
  dialogue: 'dialogue',
};

/** Records per image per task when no `tasks` mix is given. */
export const DEFAULT_TASK_MIX: Readonly<Record<AdaptTask, number>> = {
  caption: 1,
  vqa: 2,
  counting: 1,
  existence: 1,
  negative: 1,
  location: 1,
  region: 1,
  spatial: 1,
  ocr: 1,
  dialogue: 1,
};

/** Options of createAnnotationAdapter. */
export interface AnnotationAdapterOptions {
  /** Dataset name written to each record's `source.dataset`, and the prefix of record ids. */
  dataset: string;
  /** Seed of every choice (phrasings, which objects, negatives, dialogue turns). Default 0. */
  seed?: number | string;
  /** Instruction sampler to use; default: the built-in pools of @vlit/templates seeded with `seed`. */
  sampler?: InstructionSampler;
  /** Phrasings held out per family when the default sampler is built (count or fraction). Default 0. */
  holdout?: number;
  /** Sample training phrasings (default) or only the held-out ones (for unseen-instruction evaluation). */
  split?: InstructionSplit;
  /**
   * Maximum records per image for each task. When given, tasks left out produce nothing; when
   * absent, DEFAULT_TASK_MIX applies.
   */
  tasks?: Partial<Record<AdaptTask, number>>;
  /** Category names absent objects are drawn from for `negative` questions. Default: COCO's 80. */
  negativeVocabulary?: readonly string[];
  /** Margins that decide when two boxes are in a clear spatial relation. */
  spatial?: SpatialRelationOptions;
  /** Box format when the template family declares none. Default `xyxy-norm1000`. */
  boxFormat?: BoxFormat;
  /** Question–answer pairs per dialogue, inclusive range. Default { min: 3, max: 5 }. */
  dialogueTurns?: { min: number; max: number };
  /** Put `<image>` before (default) or after the first instruction. */
  imagePlacement?: 'before' | 'after';
  /** An optional system message opening every record. */
  systemPrompt?: string;
  /** Describe object boxes (category + attributes) in `region` records when an image has no region annotations. Default true. */
  regionFromObjects?: boolean;
}

/** What adapting one image gives. */
export interface AdaptResult {
  records: VlitRecord[];
  warnings: VlitWarning[];
}

/** Turns image annotations into canonical VLIT records. */
export interface AnnotationAdapter {
  /** Records for one image; throws ValidationError (record = image id) when the annotations are invalid. */
  adapt(image: ImageAnnotationsInput): AdaptResult;
  /**
   * Records for a stream of images. Invalid annotations are passed to `onReject` with the error and
   * skipped (never silently); warnings go to `onWarning`.
   */
  adaptAll(
    images: Iterable<ImageAnnotationsInput> | AsyncIterable<ImageAnnotationsInput>,
    handlers?: {
      onReject?: (reject: { index: number; error: ValidationError }) => void;
      onWarning?: (w: VlitWarning) => void;
      /** Called after each image with images read so far. */
      onProgress?: ProgressCallback;
    },
  ): AsyncGenerator<VlitRecord>;
}

/** One question and its answer before an instruction phrasing is chosen. */
interface QaItem {
  task: AdaptTask;
  slots: Record<string, string>;
  answer: string;
  /** Whether a raw phrasing of the family can be answered by `answer`. */
  accepts?: (phrasing: string) => boolean;
  meta: Record<string, unknown>;
}

const MAX_PHRASING_TRIES = 24;

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

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/**
 * Fit a raw phrasing to its slot values so the filled text reads as English: `a {object}` -> `an
 * {object}` before vowels, `every {object}` singular, and a question lower-cased after `Based on the image,`.
 */
function fitPhrasing(raw: string, slots: Record<string, string>): { phrasing: string; slots: Record<string, string> } {
  let phrasing = raw;
  const fitted = { ...slots };
  if (slots.object !== undefined && indefiniteArticle(slots.object) === 'an') {
    phrasing = phrasing.replace(/\b([Aa]) \{object\}/g, (_, a: string) => `${a}n {object}`);
  }
  if (slots.object_singular !== undefined) phrasing = phrasing.replace(/\bevery \{object\}/g, 'every {object_singular}');
  // Only when the second letter is lower case, so acronyms and "I" keep their capitals.
  if (slots.question !== undefined && /,\s*\{question\}/.test(phrasing) && /^[A-Z][a-z]/.test(slots.question)) {
    fitted.question = slots.question.charAt(0).toLowerCase() + slots.question.slice(1);
  }
  return { phrasing, slots: fitted };
}

/** Build an annotation adapter (Annotation Adaption: annotations rewritten with instruction templates). */
export function createAnnotationAdapter(options: AnnotationAdapterOptions): AnnotationAdapter {
  if (!options.dataset) throw new InvalidArgumentError('dataset name is required', { details: { field: 'dataset' } });
  const seed = options.seed ?? 0;
  const sampler = options.sampler ?? createInstructionSampler({ seed, holdout: options.holdout });
  const split = options.split ?? 'train';
  const mix: Record<AdaptTask, number> = options.tasks
    ? Object.fromEntries(ADAPT_TASKS.map((t) => [t, options.tasks?.[t] ?? 0])) as Record<AdaptTask, number>
    : { ...DEFAULT_TASK_MIX };
  for (const [task, n] of Object.entries(mix)) {
    if (!(Number.isInteger(n) && n >= 0)) {
      throw new InvalidArgumentError(`task count must be a non-negative integer, got ${n}`, { details: { field: `tasks.${task}` } });
    }
  }
  for (const task of Object.keys(options.tasks ?? {})) {
    if (!(ADAPT_TASKS as readonly string[]).includes(task)) {
      throw new InvalidArgumentError(`unknown adaption task '${task}'; known: ${ADAPT_TASKS.join(', ')}`, { details: { field: `tasks.${task}` } });
    }
  }
  const turns = options.dialogueTurns ?? { min: 3, max: 5 };
  if (!(Number.isInteger(turns.min) && Number.isInteger(turns.max) && turns.min >= 2 && turns.max >= turns.min)) {
    throw new InvalidArgumentError(`dialogueTurns must be integers with 2 <= min <= max`, { details: { field: 'dialogueTurns' } });
  }
  const vocabulary = [...new Set((options.negativeVocabulary ?? COCO_CATEGORIES).map((v) => v.trim()).filter(Boolean))];
  const synonyms = createCategoryVocabulary({ categories: vocabulary });
  const negativeCandidates = vocabulary.map((name) => ({ name, forms: [...new Set([name, ...synonyms.synonyms(name)].flatMap(categoryForms))] }));
  const root = createRng(seed);
  const rngFor = (imageId: string, label: string): Rng => root.fork(`adapt\u0000${imageId}\u0000${label}`);
  const boxFormatOf = (family: string): BoxFormat => sampler.pool(family).boxFormat ?? options.boxFormat ?? 'xyxy-norm1000';

  /** Sample a phrasing this item can answer; keyed by record (and turn) so reordering changes nothing. */
  const instruct = (item: QaItem, key: string, warnings: VlitWarning[], imageId: string) => {
    const family = ADAPT_TASK_FAMILIES[item.task];
    const pool = sampler.pool(family);
    for (let attempt = 0; attempt < MAX_PHRASING_TRIES; attempt++) {
      const sampled = sampler.sample(family, item.slots, { key: attempt ? `${key}#${attempt}` : key, split });
      const raw = pool.phrasings[sampled.phrasingIndex];
      if (item.accepts && !item.accepts(raw)) continue;
      const fitted = fitPhrasing(raw, item.slots);
      return {
        text: fillInstruction(fitted.phrasing, fitted.slots),
        template: { id: `${family}#${sampled.phrasingIndex}`, family, phrasingIndex: sampled.phrasingIndex, split },
      };
    }
    warnings.push({
      code: 'VLIT_W_NO_PHRASING',
      message: `no ${split} phrasing of family ${family} can ask this ${item.task} question; skipped`,
      details: { record: imageId, field: 'task', task: item.task, family },
    });
    return undefined;
  };

  const withImage = (text: string): string => (options.imagePlacement === 'after' ? `${text}\n<image>` : `<image>\n${text}`);

  // Dialogues draw on every task's candidates; compute each once per image.
  let memoImage: ImageAnnotations | undefined;
  let memo = new Map<AdaptTask, QaItem[]>();
  function candidates(image: ImageAnnotations, task: AdaptTask): QaItem[] {
    if (memoImage !== image) {
      memoImage = image;
      memo = new Map();
    }
    let items = memo.get(task);
    if (!items) memo.set(task, (items = computeCandidates(image, task)));
    return items;
  }

  function computeCandidates(image: ImageAnnotations, task: AdaptTask): QaItem[] {
    const byCategory = new Map<string, ImageAnnotations['objects']>();
    for (const o of image.objects) {
      const name = o.category.trim();
      byCategory.set(name, [...(byCategory.get(name) ?? []), o]);
    }
    const unique = [...byCategory.entries()].filter(([, list]) => list.length === 1).map(([name, list]) => ({ name, object: list[0] }));
    switch (task) {
      case 'caption':
        return image.captions.filter((c) => c.trim()).map((c, i) => ({ task, slots: {}, answer: sentence(capitalize(c.trim())), meta: { captionIndex: i } }));
      case 'vqa':
        return image.vqa.flatMap((q, i) => {
          const answer = majorityAnswer(q.answers);
          return answer === undefined
            ? []
            : [{ task, slots: { question: q.question.trim() }, answer, meta: { vqaIndex: i, answerType: q.answerType, humanAnswers: q.answers.length } }];
        });
      case 'counting':
        return [...byCategory.entries()].map(([name, list]) => ({
          task,
          slots: { object: pluralize(name), object_singular: name },
          answer: String(list.length),
          meta: { category: name, count: list.length },
        }));
      case 'existence':
        return [...byCategory.keys()].map((name) => ({ task, slots: { object: name }, answer: 'Yes.', meta: { category: name, present: true } }));
      case 'negative': {
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
        const absent = negativeCandidates
          .filter(({ forms }) => forms.every((form) => !mentionsForm(haystack, form) && !presentForms.some((p) => mentionsForm(form, p))))
          .map(({ name }) => name);
        return absent.map((name) => ({ task, slots: { object: name }, answer: 'No.', meta: { category: name, present: false } }));
      }
      case 'location': {
        const format = boxFormatOf(ADAPT_TASK_FAMILIES.location);
        return unique.flatMap(({ name, object }) => {
          const box = cocoBoxToXyxy(object.bbox, image.width, image.height);
          if (!(box[2] > box[0] && box[3] > box[1])) return [];
          return [{ task, slots: { object: name }, answer: formatBox({ box, width: image.width, height: image.height }, format), meta: { category: name, boxFormat: format, box } }];
        });
      }
      case 'region': {
        const format = boxFormatOf(ADAPT_TASK_FAMILIES.region);
        const described = image.regions.length
          ? image.regions.map((r) => ({ bbox: r.bbox, answer: sentence(capitalize(r.description.trim())), from: 'region' }))
          : options.regionFromObjects === false
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
      }
      case 'spatial': {
        const items: QaItem[] = [];
        for (let i = 0; i < unique.length; i++) {
          for (let j = i + 1; j < unique.length; j++) {
            const relation = spatialRelation(unique[i].object.bbox, unique[j].object.bbox, image, options.spatial);
            if (!relation) continue;
            const horizontal = relation === 'left of' || relation === 'right of';
            items.push({
              task,
              slots: { object_a: unique[i].name, object_b: unique[j].name },
              answer: `The ${unique[i].name} is ${RELATION_TEXT[relation]} the ${unique[j].name}.`,
              accepts: (p) =>
                !SPATIAL_UNANSWERABLE.test(p) && !(SPATIAL_HORIZONTAL_ONLY.test(p) && !horizontal) && !(SPATIAL_VERTICAL_ONLY.test(p) && horizontal),
              meta: { objectA: unique[i].name, objectB: unique[j].name, relation },
            });
          }
        }
        return items;
      }
      case 'ocr': {
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
      }
      case 'dialogue':
        return [];
    }
  }

  function recordOf(image: ImageAnnotations, task: AdaptTask, id: string, pairs: Array<{ question: string; answer: string }>, metadata: Record<string, unknown>): VlitRecord {
    const messages: ChatMessage[] = options.systemPrompt ? [{ role: 'system', content: options.systemPrompt }] : [];
    pairs.forEach((p, i) => {
      messages.push({ role: 'user', content: i === 0 ? withImage(p.question) : p.question });
      messages.push({ role: 'assistant', content: p.answer });
    });
    return parseVlitRecord(
      {
        id,
        images: [{ path: image.file, width: image.width, height: image.height }],
        messages,
        task,
        source: { dataset: options.dataset, originalId: image.imageId, method: 'annotation-adaption' },
        metadata: { imageId: image.imageId, seed, ...metadata },
      },
      { record: id },
    );
  }

  function adaptImage(image: ImageAnnotations): AdaptResult {
    const records: VlitRecord[] = [];
    const warnings: VlitWarning[] = [];
    for (const task of ADAPT_TASKS) {
      const n = mix[task];
      if (!n) continue;
      if (task === 'dialogue') {
        for (let k = 0; k < n; k++) {
          const record = dialogue(image, k, warnings);
          if (record) records.push(record);
        }
        continue;
      }
      const rng = rngFor(image.imageId, task);
      const all = candidates(image, task);
      const chosen = rng.sample(all, Math.min(n, all.length));
      chosen.forEach((item, k) => {
        const id = `${options.dataset}:${image.imageId}:${task}:${k}`;
        const instruction = instruct(item, id, warnings, image.imageId);
        if (!instruction) return;
        records.push(recordOf(image, task, id, [{ question: instruction.text, answer: item.answer }], { template: instruction.template, ...item.meta }));
      });
    }
    return { records, warnings };
  }

  /** A multi-turn dialogue mixing several tasks about one image, opened by a dialogue phrasing answered with a caption. */
  function dialogue(image: ImageAnnotations, k: number, warnings: VlitWarning[]): VlitRecord | undefined {
    const id = `${options.dataset}:${image.imageId}:dialogue:${k}`;
    const rng = rngFor(image.imageId, `dialogue\u0000${k}`);
    const wanted = rng.int(turns.min, turns.max + 1);
    const pool: QaItem[] = (['vqa', 'counting', 'existence', 'negative', 'spatial', 'location', 'region', 'ocr'] as const).flatMap((t) => candidates(image, t));
    rng.shuffle(pool);
    // Round-robin over tasks (in shuffled order) so a dialogue mixes kinds of questions before repeating one.
    const groups = new Map<AdaptTask, QaItem[]>();
    for (const item of pool) groups.set(item.task, [...(groups.get(item.task) ?? []), item]);
    const order: QaItem[] = [];
    for (let round = 0; order.length < pool.length; round++) {
      for (const group of groups.values()) if (group[round]) order.push(group[round]);
    }
    const pairs: Array<{ question: string; answer: string }> = [];
    const templates: unknown[] = [];
    const tasks: string[] = [];
    const captions = image.captions.filter((c) => c.trim());
    if (captions.length) {
      const opener = instruct({ task: 'dialogue', slots: {}, answer: '', meta: {} }, `${id}:turn0`, warnings, image.imageId);
      if (opener) {
        pairs.push({ question: opener.text, answer: sentence(capitalize(rng.choice(captions).trim())) });
        templates.push(opener.template);
        tasks.push('caption');
      }
    }
    for (const item of order) {
      if (pairs.length >= wanted) break;
      const instruction = instruct(item, `${id}:turn${pairs.length}`, warnings, image.imageId);
      if (!instruction) continue;
      pairs.push({ question: instruction.text, answer: item.answer });
      templates.push(instruction.template);
      tasks.push(item.task);
    }
    if (pairs.length < 2) return undefined;
    return recordOf(image, 'dialogue', id, pairs, { templates, turnTasks: tasks });
  }

  function validate(input: ImageAnnotationsInput, index?: number): ImageAnnotations {
    const r = imageAnnotationsSchema.safeParse(input);
    if (r.success) return r.data;
    const id = typeof (input as { imageId?: unknown })?.imageId === 'string' ? (input as { imageId: string }).imageId : index;
    const issue = r.error.issues[0];
    throw new ValidationError(`invalid image annotations: ${issue.message}`, {
      cause: r.error,
      details: { record: id, field: issue.path.map(String).join('.') || '(root)', issues: r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) },
    });
  }

  return {
    adapt: (image) => adaptImage(validate(image)),
    async *adaptAll(images, handlers = {}) {
      let index = 0;
      for await (const input of images) {
        let parsed: ImageAnnotations;
        try {
          parsed = validate(input, index);
        } catch (error) {
          if (!isVlitError(error, 'VLIT_VALIDATION')) throw error;
          handlers.onReject?.({ index, error: error as ValidationError });
          index++;
          handlers.onProgress?.({ stage: 'adapt', done: index });
          continue;
        }
        index++;
        handlers.onProgress?.({ stage: 'adapt', done: index, message: parsed.imageId });
        const { records, warnings } = adaptImage(parsed);
        for (const w of warnings) handlers.onWarning?.(w);
        yield* records;
      }
    },
  };
}

/** Adapt one image's annotations with a one-off adapter (see createAnnotationAdapter). */
export function adaptAnnotations(image: ImageAnnotationsInput, options: AnnotationAdapterOptions): AdaptResult {
  return createAnnotationAdapter(options).adapt(image);
}
