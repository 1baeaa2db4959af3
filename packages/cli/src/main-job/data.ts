/**
 * The main job's instruction data: annotation adaption of the world's training scenes (held-out
 * phrasings dropped), realistic planted faults, and the caption pairs of LLaVA's stage 1.
 */
import { createRng, isVlitError, type VlitRecord } from '@vlit/core';
import {
  createAnnotationAdapter,
  isWorldHeldoutPhrasing,
  pluralShape,
  worldCaptions,
  worldImageAnnotations,
  WORLD_COLOR_NAMES,
  WORLD_SHAPES,
  type AdaptTask,
  type ImageAnnotations,
  type WorldScene,
  type WorldShape,
} from '@vlit/data';
import { builtinInstructionPools, createInstructionSampler } from '@vlit/templates';

/** The kinds of fault the job plants, as a noisy Self-Instruct-style source would make them. */
export type PlantedFaultKind = 'wrong-count' | 'hallucinated-object' | 'duplicate';

/** One planted fault: the record id and what is wrong with it. */
export interface PlantedFault {
  id: string;
  kind: PlantedFaultKind;
}

/** Adapted records of the training scenes, with what was dropped. */
export interface AdaptedData {
  records: VlitRecord[];
  annotations: ImageAnnotations[];
  /** Records dropped because an instruction used a phrasing reserved for the unseen-phrasing split. */
  droppedHeldoutPhrasings: number;
  /** Images whose annotations adaption refused. */
  refused: number;
  byTask: Record<string, number>;
}

/** Text of a message's content (image parts left out). */
export function contentText(content: VlitRecord['messages'][number]['content']): string {
  return typeof content === 'string' ? content : content.map((p) => (p.type === 'text' ? p.text : '')).join(' ');
}

/**
 * Annotation adaption of every training scene; records asking with a held-out phrasing are dropped (and counted).
 * `phrasings: 'first'` builds a one-template dataset: every instruction family of @vlit/templates and every
 * world question kind is asked with its first phrasing only (the same facts, one wording per task).
 */
export function adaptWorldScenes(
  scenes: readonly WorldScene[],
  seed: number,
  tasks?: Partial<Record<AdaptTask, number>>,
  options: { phrasings?: 'all' | 'first' } = {},
): AdaptedData {
  const phrasings = options.phrasings ?? 'all';
  const sampler =
    phrasings === 'first'
      ? createInstructionSampler({ seed, pools: builtinInstructionPools.map((p) => ({ ...p, phrasings: p.phrasings.slice(0, 1) })) })
      : undefined;
  const adapter = createAnnotationAdapter({
    dataset: 'vlit-world',
    seed,
    negativeVocabulary: WORLD_SHAPES,
    ...(tasks ? { tasks } : {}),
    ...(sampler ? { sampler } : {}),
  });
  const records: VlitRecord[] = [];
  const annotations: ImageAnnotations[] = [];
  const byTask: Record<string, number> = {};
  let dropped = 0;
  let refused = 0;
  for (const scene of scenes) {
    const ann = worldImageAnnotations(scene, { seed, phrasings });
    annotations.push(ann);
    let adapted: VlitRecord[];
    try {
      adapted = adapter.adapt(ann).records;
    } catch (err) {
      // adapt() throws a ValidationError for invalid annotations: the image is refused and counted, never silently.
      if (!isVlitError(err, 'VLIT_VALIDATION')) throw err;
      refused++;
      continue;
    }
    for (const r of adapted) {
      const heldout = r.messages.some(
        (m) =>
          m.role === 'user' &&
          isWorldHeldoutPhrasing(
            contentText(m.content)
              .replace(/<image>/g, '')
              .trim(),
          ),
      );
      if (heldout) {
        dropped++;
        continue;
      }
      records.push(r);
      const task = r.task ?? 'unknown';
      byTask[task] = (byTask[task] ?? 0) + 1;
    }
  }
  return { records, annotations, droppedHeldoutPhrasings: dropped, refused, byTask };
}

function imageRecord(id: string, file: string, imageId: string, question: string, answer: string, task: string): VlitRecord {
  return {
    id,
    images: [file],
    task,
    metadata: { imageId },
    messages: [
      { role: 'user', content: [{ type: 'image' }, { type: 'text', text: question }] },
      { role: 'assistant', content: answer },
    ],
  };
}

/**
 * Faults a noisy source makes, planted at seeded scenes: counts that disagree with the image, objects
 * that are not there, and copies of a conversation already in the data. Quality control should catch them.
 */
export function plantFaults(scenes: readonly WorldScene[], adapted: readonly VlitRecord[], seed: number): { records: VlitRecord[]; planted: PlantedFault[] } {
  const rng = createRng(seed).fork('planted-faults');
  const records: VlitRecord[] = [];
  const planted: PlantedFault[] = [];
  const byImage = new Map<string, VlitRecord[]>();
  for (const r of adapted) {
    const ref = r.images[0];
    const path = ref === undefined ? '' : typeof ref === 'string' ? ref : ref.path;
    byImage.set(path, [...(byImage.get(path) ?? []), r]);
  }
  for (const scene of scenes) {
    const file = `images/${scene.id}.png`;
    const shapes = [...new Set(scene.objects.map((o) => o.shape))];
    const roll = rng.float();
    if (roll < 0.06 && shapes.length) {
      const shape = rng.choice(shapes);
      const n = scene.objects.filter((o) => o.shape === shape).length;
      const wrong = n + 1 + rng.int(0, 2);
      const id = `fault-count-${scene.id}`;
      records.push(
        imageRecord(id, file, scene.id, `How many ${pluralShape(shape)} are in the image?`, `There are ${wrong} ${pluralShape(shape)}.`, 'counting'),
      );
      planted.push({ id, kind: 'wrong-count' });
    } else if (roll < 0.1 && shapes.length) {
      const absent = WORLD_SHAPES.filter((s) => !shapes.includes(s));
      if (!absent.length) continue;
      const ghost: WorldShape = rng.choice(absent);
      const id = `fault-ghost-${scene.id}`;
      records.push(
        imageRecord(
          id,
          file,
          scene.id,
          'Describe the image briefly.',
          `A ${rng.choice(WORLD_COLOR_NAMES)} ${ghost} next to a ${rng.choice(shapes)}.`,
          'caption',
        ),
      );
      planted.push({ id, kind: 'hallucinated-object' });
    } else if (roll < 0.13) {
      const own = byImage.get(file) ?? [];
      if (!own.length) continue;
      const original = rng.choice(own);
      const id = `fault-dup-${scene.id}`;
      records.push({ ...original, id });
      planted.push({ id, kind: 'duplicate' });
    }
  }
  return { records, planted };
}

/** Stage 1's caption pairs (LLaVA's plain format: the image, then its caption), both captions of each scene. */
export function captionRecords(scenes: readonly WorldScene[], keptImages: ReadonlySet<string>): VlitRecord[] {
  const out: VlitRecord[] = [];
  for (const scene of scenes) {
    const file = `images/${scene.id}.png`;
    if (!keptImages.has(file)) continue;
    worldCaptions(scene).forEach((caption, k) => {
      out.push({
        id: `caption-${scene.id}-${k}`,
        images: [file],
        task: 'caption',
        metadata: { imageId: scene.id },
        messages: [
          { role: 'user', content: [{ type: 'image' }] },
          { role: 'assistant', content: caption },
        ],
      });
    });
  }
  return out;
}
