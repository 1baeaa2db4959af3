// The held-out benchmark: four-option questions about held-out scenes, written in SEED-Bench-1's JSON format.
import { createRng, InvalidArgumentError } from '@vlit/core';
import { worldImagePath } from './annotations.js';
import { askWorldQuestion, fillWorldPhrasing, WORLD_DIMENSIONS, WORLD_QUESTION_KINDS, type WorldDimension } from './questions.js';
import type { WorldScene } from './scene.js';

/** SEED-Bench-1's dimension names and question_type_id for each code. */
export const SEED_BENCH_DIMENSIONS: Readonly<Record<WorldDimension, { name: string; id: number }>> = {
  SU: { name: 'Scene Understanding', id: 1 },
  II: { name: 'Instance Identity', id: 2 },
  IA: { name: 'Instance Attributes', id: 3 },
  IL: { name: 'Instance Location', id: 4 },
  IC: { name: 'Instance Counting', id: 5 },
  SR: { name: 'Spatial Relation', id: 6 },
  IIR: { name: 'Instance Interaction', id: 7 },
  VR: { name: 'Visual Reasoning', id: 8 },
  TR: { name: 'Text Recognition', id: 9 },
};

/** One benchmark question with both phrasings. */
export interface WorldBenchmarkQuestion {
  /** `<scene id>:<kind>`. */
  id: string;
  sceneId: string;
  /** Image path under the dataset root. */
  image: string;
  dimension: WorldDimension;
  kind: string;
  /** Asked with a training phrasing. */
  question: string;
  /** The same question asked with a phrasing reserved for evaluation. */
  unseenQuestion: string;
  options: [string, string, string, string];
  /** 0-based index of the correct option. */
  answer: number;
  /** Facts the question is about (object names, direction), for checks and reports. */
  params: Record<string, string>;
}

/** Options of buildWorldBenchmark. */
export interface WorldBenchmarkOptions {
  /** Seed of phrasing, distractor and answer-position choices. */
  seed: number | string;
  /** Only these kinds (default: all). */
  kinds?: readonly string[];
  /** Image path of a scene (default `images/<id>.png`). */
  imagePath?: (scene: WorldScene) => string;
}

/**
 * Questions for every kind each scene can pose, with answer positions balanced per dimension: positions
 * are dealt from shuffled runs of A-D, so counts per dimension differ by at most one. Throws when a
 * scene is not from the held-out split, so training scenes can never leak into the benchmark.
 */
export function buildWorldBenchmark(scenes: Iterable<WorldScene>, options: WorldBenchmarkOptions): WorldBenchmarkQuestion[] {
  const kinds = options.kinds ? WORLD_QUESTION_KINDS.filter((k) => options.kinds?.includes(k.kind)) : WORLD_QUESTION_KINDS;
  for (const k of options.kinds ?? []) {
    if (!WORLD_QUESTION_KINDS.some((s) => s.kind === k)) throw new InvalidArgumentError(`unknown world question kind '${k}'`, { details: { field: 'kinds' } });
  }
  const root = createRng(options.seed).fork('benchmark');
  const positionRng = root.fork('positions');
  const deck = new Map<WorldDimension, number[]>();
  const nextPosition = (dimension: WorldDimension): number => {
    let d = deck.get(dimension);
    if (!d || d.length === 0) deck.set(dimension, (d = positionRng.shuffle([0, 1, 2, 3])));
    return d.pop() as number;
  };
  const toPath = options.imagePath ?? worldImagePath;
  const out: WorldBenchmarkQuestion[] = [];
  for (const scene of scenes) {
    if (scene.split !== 'heldout') {
      throw new InvalidArgumentError(`benchmark scenes must come from the heldout split, got ${scene.id}`, { details: { record: scene.id, field: 'split' } });
    }
    for (const spec of kinds) {
      const rng = root.fork(`${scene.id}\u0000${spec.kind}`);
      const fact = askWorldQuestion(scene, spec.kind, rng);
      if (!fact) continue;
      const position = nextPosition(fact.dimension);
      const wrong = rng.shuffle(fact.distractors.slice(0, 3));
      const options = [...wrong];
      options.splice(position, 0, fact.answer);
      out.push({
        id: `${scene.id}:${spec.kind}`,
        sceneId: scene.id,
        image: toPath(scene),
        dimension: fact.dimension,
        kind: spec.kind,
        question: fillWorldPhrasing(rng.choice(spec.train), fact.slots),
        unseenQuestion: fillWorldPhrasing(rng.choice(spec.heldout), fact.slots),
        options: options as [string, string, string, string],
        answer: position,
        params: fact.params,
      });
    }
  }
  return out;
}

/** SEED-Bench-1 JSON of benchmark questions, asked with training phrasings (`seen`) or reserved ones (`unseen`). */
export function toSeedBenchJson(
  questions: readonly WorldBenchmarkQuestion[],
  phrasing: 'seen' | 'unseen' = 'seen',
): {
  questions: Record<string, unknown>[];
  question_type: Record<string, number>;
} {
  const letters = 'ABCD';
  return {
    questions: questions.map((q) => ({
      question_id: phrasing === 'seen' ? q.id : `${q.id}:unseen`,
      question: phrasing === 'seen' ? q.question : q.unseenQuestion,
      choice_a: q.options[0],
      choice_b: q.options[1],
      choice_c: q.options[2],
      choice_d: q.options[3],
      answer: letters[q.answer],
      data_id: q.image,
      data_type: 'image',
      question_type_id: SEED_BENCH_DIMENSIONS[q.dimension].id,
      // Extra fields (ignored by SEED-Bench readers): where the question came from.
      scene_id: q.sceneId,
      kind: q.kind,
      phrasing,
      params: q.params,
    })),
    question_type: Object.fromEntries(WORLD_DIMENSIONS.map((d) => [SEED_BENCH_DIMENSIONS[d].name, SEED_BENCH_DIMENSIONS[d].id])),
  };
}
