import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { builtinInstructionPools } from '@vlit/templates';
import {
  buildWorldBenchmark,
  createAnnotationAdapter,
  createWorld,
  isWorldHeldoutPhrasing,
  readImageAnnotations,
  toSeedBenchJson,
  toVqaV2Json,
  toWorldCoco,
  WORLD_DIMENSIONS,
  WORLD_HELDOUT_PHRASINGS,
  WORLD_QUESTION_KINDS,
  WORLD_SHAPES,
  worldImageAnnotations,
  worldSceneSvg,
  worldTrainingQuestions,
} from '../index.js';

const world = createWorld({ seed: 31 });
const train = world.scenes('train', 120);
const heldout = world.scenes('heldout', 120);
const questions = buildWorldBenchmark(heldout, { seed: 31 });
const seen = toSeedBenchJson(questions, 'seen');
const unseen = toSeedBenchJson(questions, 'unseen');

// SEED-Bench-1's question record as its README and JSON define it (SEED-Bench/SEED-Bench.json).
const seedQuestion = z.object({
  question_id: z.union([z.string(), z.number()]),
  question: z.string().min(1),
  choice_a: z.string().min(1),
  choice_b: z.string().min(1),
  choice_c: z.string().min(1),
  choice_d: z.string().min(1),
  answer: z.enum(['A', 'B', 'C', 'D']),
  data_id: z.string().min(1),
  data_type: z.literal('image'),
  question_type_id: z.number().int().min(1).max(9),
});
const SEED_IDS: Record<string, number> = {
  'Scene Understanding': 1,
  'Instance Identity': 2,
  'Instance Attributes': 3,
  'Instance Location': 4,
  'Instance Counting': 5,
  'Spatial Relation': 6,
  'Instance Interaction': 7,
  'Visual Reasoning': 8,
  'Text Recognition': 9,
};

/** The scene facts, read back from the exported COCO JSON only. */
interface Fact {
  background: string;
  word: string | null;
  width: number;
  objects: Array<{ id: number; name: string; shape: string; color: string; size: string; center: [number, number]; area: number }>;
  contact: (a: string, b: string) => string | undefined;
}
function factsFromCoco(coco: ReturnType<typeof toWorldCoco>): Map<string, Fact> {
  const cats = new Map(coco.instances.categories.map((c) => [c.id as number, c.name as string]));
  const out = new Map<string, Fact>();
  for (const img of coco.instances.images) {
    const anns = coco.instances.annotations.filter((a) => a.image_id === img.id);
    const objects = anns.map((a) => {
      const poly = (a.segmentation as number[][])[0];
      let s = 0;
      for (let i = 0; i < poly.length; i += 2) {
        const j = (i + 2) % poly.length;
        s += poly[i] * poly[j + 1] - poly[j] * poly[i + 1];
      }
      const shape = cats.get(a.category_id as number) as string;
      return {
        id: a.id as number,
        name: `${a.color as string} ${shape}`,
        shape,
        color: a.color as string,
        size: a.size as string,
        center: a.center as [number, number],
        area: Math.abs(s) / 2,
      };
    });
    const rel = img.relations as Array<{ subject_id: number; object_id: number; contact: string }>;
    const idOf = (name: string): number | undefined => objects.find((o) => o.name === name)?.id;
    out.set(img.id as string, {
      background: img.background as string,
      word: (img.text as { word: string } | null)?.word ?? null,
      width: img.width as number,
      objects,
      contact: (a, b) =>
        rel.find((r) => (r.subject_id === idOf(a) && r.object_id === idOf(b)) || (r.subject_id === idOf(b) && r.object_id === idOf(a)))?.contact,
    });
  }
  return out;
}

const CONTACT_TEXT: Record<string, string> = { overlapping: 'they overlap', touching: 'they touch', apart: 'they are apart' };

/** Whether `option` truly answers question `q` about scene `f`, decided from the annotations with the test's own rules. */
function isTrue(q: (typeof questions)[number], option: string, f: Fact): boolean {
  const p = q.params;
  const byName = (n: string) => f.objects.find((o) => o.name === n);
  const W = f.width;
  switch (q.kind) {
    case 'scene-count':
      return option === String(f.objects.length);
    case 'scene-background':
      return option === f.background;
    case 'identity-present':
      return f.objects.some((o) => o.shape === option);
    case 'identity-of-color': {
      const m = f.objects.filter((o) => o.color === p.color);
      expect(m).toHaveLength(1);
      return option === m[0].shape;
    }
    case 'attribute-color': {
      const m = f.objects.filter((o) => o.shape === p.shape);
      expect(m).toHaveLength(1);
      return option === m[0].color;
    }
    case 'attribute-size':
      return option === byName(p.object)?.size;
    case 'location': {
      const [x, y] = byName(p.object)!.center;
      const cell = (v: number) => (v < W / 3 ? 0 : v < (2 * W) / 3 ? 1 : 2);
      const near = (v: number) => Math.min(Math.abs(v - W / 3), Math.abs(v - (2 * W) / 3)) < 0.04 * W;
      expect(near(x) || near(y)).toBe(false);
      const names = [
        ['top left', 'top', 'top right'],
        ['left', 'center', 'right'],
        ['bottom left', 'bottom', 'bottom right'],
      ];
      return option === names[cell(y)][cell(x)];
    }
    case 'count-shape':
      return option === String(f.objects.filter((o) => o.shape === p.shape).length);
    case 'count-color':
      return option === String(f.objects.filter((o) => o.color === p.color).length);
    case 'relation-direction': {
      const a = byName(p.object_a)!.center;
      const b = byName(p.object_b)!.center;
      const dx = a[0] - b[0];
      const dy = a[1] - b[1];
      const m = 0.1 * W;
      const truth: Record<string, boolean> = {
        'to the left': dx <= -m && Math.abs(dx) >= 2 * Math.abs(dy),
        'to the right': dx >= m && Math.abs(dx) >= 2 * Math.abs(dy),
        above: dy <= -m && Math.abs(dy) >= 2 * Math.abs(dx),
        below: dy >= m && Math.abs(dy) >= 2 * Math.abs(dx),
      };
      return truth[option] ?? false;
    }
    case 'relation-which': {
      const o = byName(option);
      if (!o) return false;
      const ref = byName(p.object)!.center;
      const m = 0.1 * W;
      const d = { 'left of': ref[0] - o.center[0], 'right of': o.center[0] - ref[0], above: ref[1] - o.center[1], below: o.center[1] - ref[1] }[
        p.direction as 'left of'
      ];
      return d >= m;
    }
    case 'interaction-pair':
      return option === CONTACT_TEXT[f.contact(p.object_a, p.object_b) as string];
    case 'interaction-which':
      return !!byName(option) && f.contact(option, p.object) === p.contact;
    case 'reasoning-most-color': {
      const n = (c: string) => f.objects.filter((o) => o.color === c).length;
      return f.objects.every((o) => o.color === option || n(o.color) < n(option));
    }
    case 'reasoning-largest': {
      const o = byName(option);
      return !!o && f.objects.every((x) => x === o || x.area < o.area);
    }
    case 'text-word':
      return option === f.word;
    default:
      throw new Error(`test has no rule for ${q.kind}`);
  }
}

describe('held-out benchmark in SEED-Bench-1 format', () => {
  it('is valid SEED-Bench-1 JSON with every dimension asked, seen and unseen alike', () => {
    for (const file of [seen, unseen]) {
      expect(file.question_type).toEqual(SEED_IDS);
      for (const q of file.questions) expect(seedQuestion.safeParse(q).success).toBe(true);
      const ids = file.questions.map((q) => q.question_id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const code of WORLD_DIMENSIONS) {
        const id = SEED_IDS[Object.keys(SEED_IDS)[WORLD_DIMENSIONS.indexOf(code)]];
        expect(file.questions.filter((q) => q.question_type_id === id).length, code).toBeGreaterThanOrEqual(10);
      }
    }
    // JSON round trip keeps everything (no undefined, no typed arrays).
    expect(JSON.parse(JSON.stringify(seen))).toEqual(seen);
  });

  it('has exactly one correct option per question, by rules applied to the exported annotations', () => {
    const facts = factsFromCoco(toWorldCoco(heldout));
    for (const q of questions) {
      const f = facts.get(q.sceneId)!;
      expect(new Set(q.options).size).toBe(4);
      const truths = q.options.map((o) => isTrue(q, o, f));
      expect(truths.filter(Boolean), `${q.id} ${q.question} ${q.options.join('|')}`).toHaveLength(1);
      expect(truths[q.answer], q.id).toBe(true);
    }
    expect(new Set(questions.map((q) => q.kind))).toEqual(new Set(WORLD_QUESTION_KINDS.map((k) => k.kind)));
  });

  it('balances answer letters within each dimension', () => {
    for (const code of WORLD_DIMENSIONS) {
      const qs = questions.filter((q) => q.dimension === code);
      const letters = [0, 1, 2, 3].map((k) => qs.filter((q) => q.answer === k).length);
      for (const n of letters) expect(Math.abs(n - qs.length / 4), `${code}: ${letters.join('/')}`).toBeLessThanOrEqual(Math.max(1, 0.05 * qs.length));
    }
  });

  it('uses only held-out scenes, disjoint from training scenes by id and by content', () => {
    const trainIds = new Set(train.map((s) => s.id));
    const trainSvgs = new Set(train.map((s) => worldSceneSvg(s)));
    for (const q of seen.questions) {
      expect(q.data_id).toMatch(/^images\/heldout-\d{6}\.png$/);
      expect(trainIds.has(q.scene_id as string)).toBe(false);
    }
    for (const s of heldout) expect(trainSvgs.has(worldSceneSvg(s))).toBe(false);
    expect(() => buildWorldBenchmark(train.slice(0, 1), { seed: 1 })).toThrow(expect.objectContaining({ code: 'VLIT_INVALID_ARGUMENT' }));
  });

  it('asks the unseen split with reserved phrasings that no training question or template pool uses', () => {
    for (let i = 0; i < questions.length; i++) {
      expect(unseen.questions[i].question).not.toBe(seen.questions[i].question);
      expect(isWorldHeldoutPhrasing(unseen.questions[i].question as string)).toBe(true);
      expect(isWorldHeldoutPhrasing(seen.questions[i].question as string)).toBe(false);
      expect([unseen.questions[i].choice_a, unseen.questions[i].answer]).toEqual([seen.questions[i].choice_a, seen.questions[i].answer]);
    }
    const trainingQuestions = train.flatMap((s) => worldTrainingQuestions(s, 31).map((q) => q.question));
    expect(trainingQuestions.length).toBeGreaterThan(train.length * 5);
    for (const q of trainingQuestions) expect(isWorldHeldoutPhrasing(q)).toBe(false);
    // No template of @vlit/templates is a reserved phrasing, whatever fills its slots.
    const fill = (p: string) => p.replace(/\{[a-z_]+\}/g, 'red circle');
    for (const pool of builtinInstructionPools) {
      for (const phrasing of pool.phrasings) {
        expect(WORLD_HELDOUT_PHRASINGS).not.toContain(phrasing);
        expect(isWorldHeldoutPhrasing(fill(phrasing))).toBe(false);
      }
    }
    // Reserved and training phrasings of each kind never coincide.
    for (const k of WORLD_QUESTION_KINDS) for (const p of k.heldout) expect(k.train).not.toContain(p);
  });
});

describe("worldTrainingQuestions with phrasings: 'first' (a one-template dataset)", () => {
  it('asks the same facts as the default, each kind with the first training phrasing of WORLD_QUESTION_KINDS', () => {
    const firstOf = new Map(WORLD_QUESTION_KINDS.map((k) => [k.kind, k.train[0]]));
    const pattern = (p: string) => new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\{[a-z_]+\\\}/g, '.+')}$`);
    let kinds = 0;
    for (const scene of train.slice(0, 30)) {
      const all = worldTrainingQuestions(scene, 31);
      const one = worldTrainingQuestions(scene, 31, { phrasings: 'first' });
      expect(one.map((q) => [q.kind, q.answer, q.distractors])).toEqual(all.map((q) => [q.kind, q.answer, q.distractors]));
      for (const q of one) {
        expect(q.question).toMatch(pattern(firstOf.get(q.kind) as string));
        kinds++;
      }
    }
    expect(kinds).toBeGreaterThan(30 * 5);
    // The default really varies the phrasing: some kind is asked with another phrasing than the first.
    const varied = train
      .slice(0, 30)
      .flatMap((s) => worldTrainingQuestions(s, 31))
      .some((q) => !pattern(firstOf.get(q.kind) as string).test(q.question));
    expect(varied).toBe(true);
  });
});

describe('world annotations feed the COCO reader and annotation adaption', () => {
  it('round-trips through readImageAnnotations and adapts into records whose answers match the annotations', async () => {
    const scenes = train.slice(0, 25);
    const coco = toWorldCoco(scenes);
    const expected = scenes.map((s) => worldImageAnnotations(s, { seed: 31 }));
    const vqa = toVqaV2Json(expected);
    const read = [];
    for await (const a of readImageAnnotations({
      captions: JSON.stringify(coco.captions),
      instances: JSON.stringify(coco.instances),
      vqaQuestions: JSON.stringify(vqa.questions),
      vqaAnnotations: JSON.stringify(vqa.annotations),
    }))
      read.push(a);
    expect(read.map((a) => a.imageId)).toEqual(scenes.map((s) => s.id));
    read.forEach((a, i) => {
      expect(a.objects).toEqual(
        expected[i].objects.map(({ id, category, bbox, attributes }) => ({
          id: Number(coco.instances.annotations.find((x) => x.image_id === a.imageId && x.bbox === bbox)?.id),
          category,
          bbox,
          attributes,
        })),
      );
      expect(a.captions).toEqual(expected[i].captions);
      expect(a.vqa.map((v) => [v.question, v.answers])).toEqual(expected[i].vqa.map((v) => [v.question, v.answers]));
    });

    const adapter = createAnnotationAdapter({
      dataset: 'world',
      seed: 31,
      negativeVocabulary: WORLD_SHAPES,
      tasks: { counting: 3, negative: 1, ocr: 1, vqa: 3, region: 1 },
    });
    let counted = 0;
    let negatives = 0;
    let ocr = 0;
    for (let i = 0; i < read.length; i++) {
      // OCR is not part of COCO: the in-memory annotations carry it.
      const { records } = adapter.adapt({ ...read[i], ocr: expected[i].ocr });
      const scene = scenes[i];
      for (const r of records) {
        const answer = r.messages[r.messages.length - 1].content as string;
        if (r.task === 'counting') {
          const category = (r.metadata as { category: string }).category;
          expect(answer).toBe(String(scene.objects.filter((o) => o.shape === category).length));
          counted++;
        }
        if (r.task === 'negative') {
          const category = (r.metadata as { category: string }).category;
          expect(WORLD_SHAPES).toContain(category);
          expect(scene.objects.some((o) => o.shape === category)).toBe(false);
          negatives++;
        }
        if (r.task === 'ocr') {
          expect(answer).toBe(scene.text?.word);
          ocr++;
        }
      }
    }
    expect(counted).toBeGreaterThan(25);
    expect(negatives).toBeGreaterThan(15);
    expect(ocr).toBeGreaterThan(3);
  });
});
