// Four-option questions about world scenes, one kind per thing the world can say, grouped by SEED-Bench dimension.
import { InvalidArgumentError, type Rng } from '@vlit/core';
import { z } from 'zod';
import { inverseRelation, type SpatialRelation } from '../adapt/geometry.js';
import { worldObjectName, type WorldObject, type WorldScene } from './scene.js';
import {
  pluralShape,
  WORLD_BACKGROUND_NAMES,
  WORLD_COLOR_NAMES,
  WORLD_LOCATIONS,
  WORLD_SHAPES,
  WORLD_SIZE_NAMES,
  WORLD_WORDS,
  type WorldShape,
} from './vocabulary.js';
import questionKindsJson from './question-kinds.json';

/** SEED-Bench-1 image dimension codes the world asks about. */
export const WORLD_DIMENSIONS = ['SU', 'II', 'IA', 'IL', 'IC', 'SR', 'IIR', 'VR', 'TR'] as const;
/** A SEED-Bench-1 image dimension code. */
export type WorldDimension = (typeof WORLD_DIMENSIONS)[number];

/** One kind of question: its dimension, the phrasings training data may use, and the phrasings kept for evaluation. */
export interface WorldQuestionKind {
  kind: string;
  dimension: WorldDimension;
  /** Phrasings for training data and the benchmark's seen split; `{slot}`s are filled per question. */
  train: readonly string[];
  /** Phrasings reserved for the benchmark's unseen split: no training data may use them. */
  heldout: readonly string[];
}

const questionKindsSchema = z
  .array(
    z.object({
      kind: z.string().min(1),
      dimension: z.enum(WORLD_DIMENSIONS),
      train: z.array(z.string().min(1)).min(1),
      heldout: z.array(z.string().min(1)).min(1),
    }),
  )
  .refine((kinds) => new Set(kinds.map((k) => k.kind)).size === kinds.length, 'kind names must be unique');

/**
 * Every question kind of the world, from `question-kinds.json` (the phrasings are the benchmark's data,
 * so they live in a data file; checked against the schema when the module loads). Held-out phrasings
 * share no template with the training ones or with @vlit/templates' pools.
 */
export const WORLD_QUESTION_KINDS: readonly WorldQuestionKind[] = questionKindsSchema.parse(questionKindsJson);

/** Every phrasing reserved for evaluation (unfilled templates); training-data builders must not use them. */
export const WORLD_HELDOUT_PHRASINGS: readonly string[] = WORLD_QUESTION_KINDS.flatMap((k) => k.heldout);

const heldoutPatterns = WORLD_HELDOUT_PHRASINGS.map((p) => new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\{[a-z_]+\\\}/g, '.+')}$`, 'i'));

/** True when `text` is one of the reserved evaluation phrasings with any slot values (case-insensitive, trimmed). */
export function isWorldHeldoutPhrasing(text: string): boolean {
  const t = text.trim();
  return heldoutPatterns.some((p) => p.test(t));
}

/** The options shared by every interaction-pair question, in canonical order. */
export const WORLD_CONTACT_OPTIONS = ['they overlap', 'they touch', 'they are apart', 'one is inside the other'] as const;
/** The options shared by every relation-direction question, in canonical order. */
export const WORLD_DIRECTION_OPTIONS = ['to the left', 'to the right', 'above', 'below'] as const;

/** A question about one scene before its options are ordered: slot values, the answer, wrong options, and the facts asked about. */
export interface WorldFact {
  kind: string;
  dimension: WorldDimension;
  slots: Record<string, string>;
  answer: string;
  /** Wrong options, at least three, none equal to the answer. */
  distractors: string[];
  /** The slot values plus structured facts (object names, the direction asked), for checks and reports. */
  params: Record<string, string>;
}

const DIRECTION_TEXT: Record<SpatialRelation, string> = { 'left of': 'to the left of', 'right of': 'to the right of', above: 'above', below: 'below' };
const DIRECTION_OPTION: Record<SpatialRelation, (typeof WORLD_DIRECTION_OPTIONS)[number]> = {
  'left of': 'to the left',
  'right of': 'to the right',
  above: 'above',
  below: 'below',
};
const CONTACT_OPTION = { overlapping: 'they overlap', touching: 'they touch', apart: 'they are apart' } as const;

function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return m;
}

/** Names of (colour, shape) pairs absent from the scene, for object distractors. */
function absentNames(scene: WorldScene): string[] {
  const present = new Set(scene.objects.map(worldObjectName));
  return WORLD_SHAPES.flatMap((s) => WORLD_COLOR_NAMES.map((c) => `${c} ${s}`)).filter((n) => !present.has(n));
}

/** Relation of object i to object j on one axis, read "i is <dir> j", or null. */
function axisRelation(scene: WorldScene, i: number, j: number, axis: 'horizontal' | 'vertical'): SpatialRelation | null {
  const r = scene.relations.find((x) => (x.a === i && x.b === j) || (x.a === j && x.b === i));
  if (!r) return null;
  const v = r[axis];
  if (v === null) return null;
  return r.a === i ? v : inverseRelation(v);
}

/** Pick wrong options: first from `preferred` (harder, in-scene), then from `fallback`, never the answer. */
function pickDistractors(rng: Rng, answer: string, preferred: readonly string[], fallback: readonly string[], k = 3): string[] | undefined {
  const out: string[] = [];
  const take = (pool: readonly string[]): void => {
    const fresh = [...new Set(pool)].filter((x) => x !== answer && !out.includes(x));
    out.push(...rng.sample(fresh, Math.min(k - out.length, fresh.length)));
  };
  take(preferred);
  if (out.length < k) take(fallback);
  return out.length === k ? out : undefined;
}

function numbers(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => String(from + i));
}

/**
 * A question of `kind` about `scene`, or undefined when the scene cannot pose it unambiguously
 * (e.g. no word for text recognition, no shape whose colour is unique for identity-of-color).
 */
export function askWorldQuestion(scene: WorldScene, kind: string, rng: Rng): WorldFact | undefined {
  const spec = WORLD_QUESTION_KINDS.find((k) => k.kind === kind);
  if (!spec) throw new InvalidArgumentError(`unknown world question kind '${kind}'`, { details: { field: 'kind' } });
  const objs = scene.objects;
  const fact = (
    slots: Record<string, string>,
    answer: string,
    distractors: string[] | undefined,
    params: Record<string, string> = {},
  ): WorldFact | undefined => (distractors ? { kind, dimension: spec.dimension, slots, answer, distractors, params: { ...slots, ...params } } : undefined);
  if (objs.length === 0) return undefined;
  const byShape = countBy(objs, (o) => o.shape);
  const byColor = countBy(objs, (o) => o.color);
  switch (kind) {
    case 'scene-count': {
      const answer = String(objs.length);
      return fact({}, answer, pickDistractors(rng, answer, [], numbers(1, 7)));
    }
    case 'scene-background':
      return fact({}, scene.background, pickDistractors(rng, scene.background, [], WORLD_BACKGROUND_NAMES));
    case 'identity-present': {
      const absent = WORLD_SHAPES.filter((s) => !byShape.has(s));
      if (absent.length < 3) return undefined;
      const answer = rng.choice([...byShape.keys()]);
      return fact({}, answer, pickDistractors(rng, answer, absent, []));
    }
    case 'identity-of-color': {
      const unique = objs.filter((o) => byColor.get(o.color) === 1);
      if (!unique.length) return undefined;
      const o = rng.choice(unique);
      return fact({ color: o.color }, o.shape, pickDistractors(rng, o.shape, [], WORLD_SHAPES), { object: worldObjectName(o) });
    }
    case 'attribute-color': {
      const unique = objs.filter((o) => byShape.get(o.shape) === 1);
      if (!unique.length) return undefined;
      const o = rng.choice(unique);
      return fact({ shape: o.shape }, o.color, pickDistractors(rng, o.color, [], WORLD_COLOR_NAMES), { object: worldObjectName(o) });
    }
    case 'attribute-size': {
      const o = rng.choice(objs);
      return fact({ object: worldObjectName(o) }, o.size, pickDistractors(rng, o.size, [], WORLD_SIZE_NAMES), { object: worldObjectName(o) });
    }
    case 'location': {
      const clear = objs.filter((o) => o.locationClear);
      if (!clear.length) return undefined;
      const o = rng.choice(clear);
      return fact({ object: worldObjectName(o) }, o.location, pickDistractors(rng, o.location, [], WORLD_LOCATIONS), { object: worldObjectName(o) });
    }
    case 'count-shape': {
      const absent = WORLD_SHAPES.filter((s) => !byShape.has(s));
      const shape: WorldShape = absent.length && rng.float() < 0.25 ? rng.choice(absent) : rng.choice([...byShape.keys()] as WorldShape[]);
      const answer = String(byShape.get(shape) ?? 0);
      return fact({ shapes: pluralShape(shape) }, answer, pickDistractors(rng, answer, [], numbers(0, 6)), { shape });
    }
    case 'count-color': {
      const absent = WORLD_COLOR_NAMES.filter((c) => !byColor.has(c));
      const color = absent.length && rng.float() < 0.25 ? rng.choice(absent) : rng.choice([...byColor.keys()]);
      const answer = String(byColor.get(color) ?? 0);
      return fact({ color }, answer, pickDistractors(rng, answer, [], numbers(0, 6)), { color });
    }
    case 'relation-direction': {
      const decided = scene.relations.filter((r) => r.direction !== null);
      if (!decided.length) return undefined;
      const r = rng.choice(decided);
      const flip = rng.float() < 0.5;
      const [i, j] = flip ? [r.b, r.a] : [r.a, r.b];
      const direction = flip ? inverseRelation(r.direction as SpatialRelation) : (r.direction as SpatialRelation);
      const answer = DIRECTION_OPTION[direction];
      return fact(
        { object_a: worldObjectName(objs[i]), object_b: worldObjectName(objs[j]) },
        answer,
        pickDistractors(rng, answer, [], WORLD_DIRECTION_OPTIONS),
        {
          object_a: worldObjectName(objs[i]),
          object_b: worldObjectName(objs[j]),
          direction,
        },
      );
    }
    case 'relation-which': {
      const options: Array<{ ref: WorldObject; direction: SpatialRelation; right: WorldObject[]; wrong: WorldObject[] }> = [];
      for (const ref of objs) {
        for (const direction of ['left of', 'right of', 'above', 'below'] as const) {
          const axis = direction === 'left of' || direction === 'right of' ? 'horizontal' : 'vertical';
          const others = objs.filter((o) => o !== ref);
          const right = others.filter((o) => axisRelation(scene, o.index, ref.index, axis) === direction);
          // Wrong only when clearly not that way: on the other side of the reference's centre (or level with it).
          const d = axis === 'horizontal' ? 0 : 1;
          const sign = direction === 'left of' || direction === 'above' ? -1 : 1;
          const wrong = others.filter((o) => sign * (o.center[d] - ref.center[d]) <= 0);
          if (right.length) options.push({ ref, direction, right, wrong });
        }
      }
      if (!options.length) return undefined;
      const pick = rng.choice(options);
      const answerObj = rng.choice(pick.right);
      const answer = worldObjectName(answerObj);
      const excluded = new Set(pick.right.map(worldObjectName));
      const fallback = absentNames(scene).filter((n) => !excluded.has(n));
      return fact(
        { direction: DIRECTION_TEXT[pick.direction], object: worldObjectName(pick.ref) },
        answer,
        pickDistractors(rng, answer, pick.wrong.map(worldObjectName), fallback),
        {
          object: worldObjectName(pick.ref),
          direction: pick.direction,
        },
      );
    }
    case 'interaction-pair': {
      if (!scene.relations.length) return undefined;
      const contacts = scene.relations.filter((r) => r.contact !== 'apart');
      const r = contacts.length && rng.float() < 0.7 ? rng.choice(contacts) : rng.choice(scene.relations);
      const [i, j] = rng.float() < 0.5 ? [r.a, r.b] : [r.b, r.a];
      const answer = CONTACT_OPTION[r.contact];
      return fact({ object_a: worldObjectName(objs[i]), object_b: worldObjectName(objs[j]) }, answer, pickDistractors(rng, answer, [], WORLD_CONTACT_OPTIONS), {
        object_a: worldObjectName(objs[i]),
        object_b: worldObjectName(objs[j]),
      });
    }
    case 'interaction-which': {
      const contacts = scene.relations.filter((r) => r.contact !== 'apart');
      if (!contacts.length) return undefined;
      const r = rng.choice(contacts);
      const ref = objs[rng.float() < 0.5 ? r.a : r.b];
      const contact = r.contact as 'overlapping' | 'touching';
      const partner = (x: (typeof scene.relations)[number]): number => (x.a === ref.index ? x.b : x.a);
      const mine = scene.relations.filter((x) => x.a === ref.index || x.b === ref.index);
      const right = mine.filter((x) => x.contact === contact).map((x) => worldObjectName(objs[partner(x)]));
      const wrong = mine.filter((x) => x.contact === 'apart').map((x) => worldObjectName(objs[partner(x)]));
      const answer = rng.choice(right);
      // Shapes touching the reference in the other way are neither right nor safely wrong: left out.
      const inScene = new Set(objs.map(worldObjectName));
      const fallback = absentNames(scene).filter((n) => !inScene.has(n));
      const verb = contact === 'overlapping' ? 'overlaps' : 'touches';
      return fact({ verb, object: worldObjectName(ref) }, answer, pickDistractors(rng, answer, wrong, fallback), { object: worldObjectName(ref), contact });
    }
    case 'reasoning-most-color': {
      const ranked = [...byColor.entries()].sort((a, b) => b[1] - a[1]);
      if (ranked[0][1] < 2 || (ranked[1] && ranked[1][1] === ranked[0][1])) return undefined;
      const answer = ranked[0][0];
      return fact(
        {},
        answer,
        pickDistractors(
          rng,
          answer,
          ranked.slice(1).map(([c]) => c),
          WORLD_COLOR_NAMES,
        ),
      );
    }
    case 'reasoning-largest': {
      if (objs.length < 2) return undefined;
      const ranked = [...objs].sort((a, b) => b.area - a.area);
      // A clear winner only: the eye cannot rank shapes within a few percent of each other's area.
      if (ranked[0].area < 1.3 * ranked[1].area) return undefined;
      const answer = worldObjectName(ranked[0]);
      return fact({}, answer, pickDistractors(rng, answer, ranked.slice(1).map(worldObjectName), absentNames(scene)));
    }
    case 'text-word': {
      if (!scene.text) return undefined;
      const answer = scene.text.word;
      return fact({}, answer, pickDistractors(rng, answer, [], WORLD_WORDS));
    }
    default:
      return undefined;
  }
}

/** Fill a phrasing's `{slot}`s; every slot must have a value. */
export function fillWorldPhrasing(phrasing: string, slots: Record<string, string>): string {
  return phrasing.replace(/\{([a-z_]+)\}/g, (_, name: string) => {
    const v = slots[name];
    if (v === undefined) throw new InvalidArgumentError(`phrasing '${phrasing}' needs slot '${name}'`, { details: { field: `slots.${name}` } });
    return v;
  });
}
