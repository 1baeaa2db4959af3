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
import { createInstructionSampler, fillInstruction, type BoxFormat, type InstructionSampler, type InstructionSplit } from '@vlit/templates';
import { imageAnnotationsSchema, type ImageAnnotations, type ImageAnnotationsInput } from '../annotations.js';
import { ADAPT_TASKS, ADAPT_TASK_FAMILIES, DEFAULT_TASK_MIX, type AdaptTask } from './tasks.js';
import { CANDIDATE_BUILDERS, capitalize, imageObjects, sentence, type CandidateContext, type QaItem } from './candidates.js';
import type { SpatialRelationOptions } from './geometry.js';
import { COCO_CATEGORIES, createCategoryVocabulary } from '../quality/vocabulary/coco-categories.js';
import { categoryForms, indefiniteArticle } from './vocabulary.js';

export { ADAPT_TASKS, ADAPT_TASK_FAMILIES, DEFAULT_TASK_MIX, type AdaptTask } from './tasks.js';

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

const MAX_PHRASING_TRIES = 24;

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
    ? (Object.fromEntries(ADAPT_TASKS.map((t) => [t, options.tasks?.[t] ?? 0])) as Record<AdaptTask, number>)
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

  const candidateContext: CandidateContext = { negativeCandidates, boxFormatOf, regionFromObjects: options.regionFromObjects, spatial: options.spatial };
  function computeCandidates(image: ImageAnnotations, task: AdaptTask): QaItem[] {
    return task === 'dialogue' ? [] : CANDIDATE_BUILDERS[task](image, imageObjects(image), candidateContext, task);
  }

  function recordOf(
    image: ImageAnnotations,
    task: AdaptTask,
    id: string,
    pairs: Array<{ question: string; answer: string }>,
    metadata: Record<string, unknown>,
  ): VlitRecord {
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
      details: {
        record: id,
        field: issue.path.map(String).join('.') || '(root)',
        issues: r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
      },
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
