// World scenes as annotations: COCO captions/instances JSON with the world's extra facts, and ImageAnnotations for adaption.
import { createRng } from '@vlit/core';
import type { ImageAnnotations } from '../annotations.js';
import { askWorldQuestion, fillWorldPhrasing, WORLD_QUESTION_KINDS, type WorldDimension } from './questions.js';
import { worldObjectName, type WorldScene } from './scene.js';
import { WORLD_SHAPES } from './vocabulary.js';

/** The image path of a scene under the dataset root (default `images/<scene id>.png`). */
export function worldImagePath(scene: Pick<WorldScene, 'id'>): string {
  return `images/${scene.id}.png`;
}

/** Two captions per scene: every shape with its size and colour, then how they meet and the word. */
export function worldCaptions(scene: WorldScene): string[] {
  const names = scene.objects.map((o) => `a ${o.size} ${o.color} ${o.shape}`);
  const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : (names[0] ?? 'nothing');
  const first = `${list.charAt(0).toUpperCase()}${list.slice(1)} on a ${scene.background} background.`;
  const n = scene.objects.length;
  const parts = [`${n} ${n === 1 ? 'shape' : 'shapes'} on a ${scene.background} background.`];
  for (const r of scene.relations) {
    if (r.contact === 'apart') continue;
    parts.push(
      `The ${worldObjectName(scene.objects[r.a])} ${r.contact === 'overlapping' ? 'overlaps' : 'touches'} the ${worldObjectName(scene.objects[r.b])}.`,
    );
  }
  if (scene.text) {
    const where = scene.text.baseline < scene.height / 2 ? 'top' : 'bottom';
    parts.push(`The word "${scene.text.word}" is written at the ${where}.`);
  }
  return [first, parts.join(' ')];
}

/** A question–answer pair for training data, asked with a training phrasing. */
export interface WorldQaPair {
  kind: string;
  dimension: WorldDimension;
  question: string;
  answer: string;
  /** The three wrong options the benchmark would offer, for multiple-choice training builders. */
  distractors: string[];
}

/** Options of worldTrainingQuestions: `phrasings: 'first'` asks every kind with its first training phrasing only (a one-template dataset). */
export interface WorldTrainingQuestionOptions {
  /** `all` (default): a seeded choice among the kind's training phrasings; `first`: always the first one. */
  phrasings?: 'all' | 'first';
}

/** One training-phrased question per kind the scene can pose (seeded; never a held-out phrasing). */
export function worldTrainingQuestions(scene: WorldScene, seed: number | string = 0, options: WorldTrainingQuestionOptions = {}): WorldQaPair[] {
  const root = createRng(seed).fork(`qa\u0000${scene.id}`);
  const out: WorldQaPair[] = [];
  for (const spec of WORLD_QUESTION_KINDS) {
    const rng = root.fork(spec.kind);
    const fact = askWorldQuestion(scene, spec.kind, rng);
    if (!fact) continue;
    // The choice is drawn either way so that `first` changes the phrasing only, never the facts asked.
    const drawn = rng.choice(spec.train);
    const phrasing = options.phrasings === 'first' ? spec.train[0] : drawn;
    out.push({
      kind: fact.kind,
      dimension: fact.dimension,
      question: fillWorldPhrasing(phrasing, fact.slots),
      answer: fact.answer,
      distractors: fact.distractors,
    });
  }
  return out;
}

/**
 * The scene as annotation adaption's input: captions, objects (attributes = [size, colour]), the word as
 * OCR, and the training questions as VQA pairs (answerType = question kind). Adapt with
 * `negativeVocabulary: WORLD_SHAPES` so negative questions ask about absent shapes.
 */
export function worldImageAnnotations(
  scene: WorldScene,
  options: { seed?: number | string; file?: string; phrasings?: 'all' | 'first' } = {},
): ImageAnnotations {
  return {
    imageId: scene.id,
    file: options.file ?? worldImagePath(scene),
    width: scene.width,
    height: scene.height,
    captions: worldCaptions(scene),
    objects: scene.objects.map((o) => ({ id: `${scene.id}:${o.index}`, category: o.shape, bbox: o.bbox, attributes: [o.size, o.color] })),
    regions: [],
    ocr: scene.text ? [{ text: scene.text.word, bbox: scene.text.bbox }] : [],
    vqa: worldTrainingQuestions(scene, options.seed, { phrasings: options.phrasings }).map((q) => ({
      question: q.question,
      answers: [q.answer],
      answerType: q.kind,
    })),
  };
}

/** COCO captions and instances JSON of world scenes, with the world's facts in extra fields. */
export interface WorldCocoJson {
  captions: { info: Record<string, unknown>; images: Record<string, unknown>[]; annotations: Record<string, unknown>[] };
  instances: {
    info: Record<string, unknown>;
    images: Record<string, unknown>[];
    categories: Record<string, unknown>[];
    annotations: Record<string, unknown>[];
  };
}

/**
 * COCO-style JSON for scenes. Instances carry `segmentation` (the drawn outline), `attributes`
 * ([size, colour], as the COCO reader passes to adaption), `color`, `size`, `center`, `radius`, `z`
 * (drawing order), `center_visible`, `location`, `location_clear`. Images carry `background`, `text`
 * (word, bbox, ink) and `relations` between annotation ids (`horizontal`, `vertical`, `direction`,
 * `contact`, `gap`, `overlap_area`). Annotation ids count from 1 in scene order.
 */
export function toWorldCoco(
  scenes: Iterable<WorldScene>,
  options: { info?: Record<string, unknown>; imagePath?: (scene: WorldScene) => string } = {},
): WorldCocoJson {
  const info = { description: 'Vlit synthetic visual world', version: 1, ...options.info };
  const toPath = options.imagePath ?? worldImagePath;
  const categories = WORLD_SHAPES.map((name, i) => ({ id: i + 1, name, supercategory: 'shape' }));
  const images: Record<string, unknown>[] = [];
  const captionImages: Record<string, unknown>[] = [];
  const instances: Record<string, unknown>[] = [];
  const captions: Record<string, unknown>[] = [];
  let annId = 1;
  let capId = 1;
  for (const scene of scenes) {
    const ids = scene.objects.map(() => annId++);
    const base = { id: scene.id, file_name: toPath(scene), width: scene.width, height: scene.height };
    captionImages.push(base);
    images.push({
      ...base,
      background: scene.background,
      text: scene.text ? { word: scene.text.word, bbox: scene.text.bbox, ink: scene.text.ink, font_size: scene.text.fontSize } : null,
      relations: scene.relations.map((r) => ({
        subject_id: ids[r.a],
        object_id: ids[r.b],
        horizontal: r.horizontal,
        vertical: r.vertical,
        direction: r.direction,
        contact: r.contact,
        gap: r.gap,
        overlap_area: r.overlapArea,
      })),
    });
    scene.objects.forEach((o, k) => {
      instances.push({
        id: ids[k],
        image_id: scene.id,
        category_id: WORLD_SHAPES.indexOf(o.shape) + 1,
        bbox: o.bbox,
        area: o.area,
        iscrowd: 0,
        segmentation: [o.polygon.flatMap(([x, y]) => [x, y])],
        attributes: [o.size, o.color],
        color: o.color,
        size: o.size,
        center: o.center,
        radius: o.radius,
        z: o.index,
        center_visible: o.centerVisible,
        location: o.location,
        location_clear: o.locationClear,
      });
    });
    for (const caption of worldCaptions(scene)) captions.push({ id: capId++, image_id: scene.id, caption });
  }
  return {
    captions: { info, images: captionImages, annotations: captions },
    instances: { info, images, categories, annotations: instances },
  };
}
