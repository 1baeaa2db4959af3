import { isVlitError, vlitRecordSchema, type VlitRecord } from '@vlit/core';
import { builtinInstructionPools, createInstructionSampler } from '@vlit/templates';
import { describe, expect, it } from 'vitest';
import type { ImageAnnotationsInput } from '../annotations.js';
import { createAnnotationAdapter, adaptAnnotations } from './adapt.js';
import { majorityAnswer } from './answers.js';
import { spatialRelation } from './geometry.js';
import { mentionsCategory, pluralize } from './vocabulary.js';

// A 640x480 scene worked out by hand:
//   3 dogs along the bottom; a cat top-left (centre 70,130); a frisbee top-right (centre 520,125);
//   a bench bottom-middle (centre 340,420).
//   cat vs frisbee: dx = (70-520)/640 = -0.70, dy = 0.01            -> cat is left of the frisbee
//   frisbee vs bench: dx = 0.28, dy = (125-420)/480 = -0.61 >= 2*0.28 -> frisbee is above the bench
//   cat vs bench: dx = -0.42, dy = -0.60 < 2*0.42                    -> ambiguous, no relation
const scene: ImageAnnotationsInput = {
  imageId: '42',
  file: 'images/000042.jpg',
  width: 640,
  height: 480,
  captions: ['three dogs play on the grass while a person throws a frisbee', 'Dogs and a cat in a park.'],
  objects: [
    { category: 'dog', bbox: [10, 300, 50, 40], attributes: ['brown'] },
    { category: 'dog', bbox: [80, 310, 50, 40] },
    { category: 'dog', bbox: [150, 305, 50, 40] },
    { category: 'cat', bbox: [40, 100, 60, 60], attributes: ['black'] },
    { category: 'frisbee', bbox: [500, 110, 40, 30] },
    { category: 'bench', bbox: [300, 400, 80, 40] },
  ],
  regions: [{ bbox: [40, 100, 60, 60], description: 'a black cat sitting upright' }],
  vqa: [{ question: 'How many dogs are playing?', answers: ['3', 'three', '3', '3', '2', '3', 'three', '3', '3', '4'] }],
  ocr: [
    { text: 'PARK', bbox: [200, 20, 60, 20] },
    { text: 'CITY', bbox: [120, 22, 60, 20] },
    { text: 'closed', bbox: [120, 60, 60, 20] },
  ],
};

const userText = (r: VlitRecord, turn = 0): string => {
  const users = r.messages.filter((m) => m.role === 'user');
  return String(users[turn].content);
};
const assistantText = (r: VlitRecord, turn = 0): string => String(r.messages.filter((m) => m.role === 'assistant')[turn].content);

describe('geometry and answers', () => {
  it('computes left/right/above/below from COCO boxes with a margin', () => {
    const img = { width: 200, height: 200 };
    expect(spatialRelation([0, 0, 10, 10], [100, 0, 10, 10], img)).toBe('left of');
    expect(spatialRelation([100, 0, 10, 10], [0, 0, 10, 10], img)).toBe('right of');
    expect(spatialRelation([0, 0, 10, 10], [0, 150, 10, 10], img)).toBe('above');
    expect(spatialRelation([0, 150, 10, 10], [0, 0, 10, 10], img)).toBe('below');
    // Centres 10 px apart = 0.05 of the width: inside the default 0.1 margin.
    expect(spatialRelation([0, 0, 10, 10], [10, 0, 10, 10], img)).toBeUndefined();
    // Diagonal: 100 px right and 80 px down; neither axis dominates by 2x.
    expect(spatialRelation([0, 0, 10, 10], [100, 80, 10, 10], img)).toBeUndefined();
    expect(spatialRelation([0, 0, 10, 10], [10, 0, 10, 10], img, { margin: 0.01 })).toBe('left of');
  });

  it('takes the most common of the human answers, ties to the first given', () => {
    expect(majorityAnswer(['2', 'two', '2', '3', '2', '2', 'two', '2', '2', '2'])).toBe('2');
    expect(majorityAnswer(['red', 'blue', 'blue', 'red'])).toBe('red');
    expect(majorityAnswer(['Yes', 'yes.', 'no'])).toBe('Yes');
    expect(majorityAnswer([])).toBeUndefined();
  });

  it('pluralizes and matches category names', () => {
    expect(['dog', 'bus', 'person', 'wine glass', 'knife', 'sheep', 'strawberry'].map(pluralize)).toEqual([
      'dogs',
      'buses',
      'people',
      'wine glasses',
      'knives',
      'sheep',
      'strawberries',
    ]);
    expect(mentionsCategory('Two hot dogs on a plate', 'hot dog')).toBe(true);
    expect(mentionsCategory('a doghouse', 'dog')).toBe(false);
    expect(mentionsCategory('a Person  throws', 'person')).toBe(true);
  });
});

describe('annotation adaption', () => {
  it('answers counting questions with the number of instances (3 dogs, 1 cat)', () => {
    const { records } = adaptAnnotations(scene, { dataset: 'toy', seed: 1, tasks: { counting: 10 } });
    const byCategory = Object.fromEntries(records.map((r) => [r.metadata?.category as string, r]));
    expect(Object.keys(byCategory).sort()).toEqual(['bench', 'cat', 'dog', 'frisbee']);
    expect(assistantText(byCategory.dog)).toBe('3');
    expect(assistantText(byCategory.cat)).toBe('1');
    expect(userText(byCategory.dog)).toMatch(/\bdogs?\b/);
    expect(byCategory.dog.task).toBe('counting');
  });

  it('derives spatial relations from box geometry and skips ambiguous pairs', () => {
    const { records } = adaptAnnotations(scene, { dataset: 'toy', seed: 3, tasks: { spatial: 10 } });
    const facts = records.map((r) => `${r.metadata?.objectA} ${r.metadata?.relation} ${r.metadata?.objectB}`).sort();
    expect(facts).toEqual(['cat left of frisbee', 'frisbee above bench']);
    const cat = records.find((r) => r.metadata?.objectA === 'cat')!;
    expect(assistantText(cat)).toBe('The cat is to the left of the frisbee.');
    // Depth and "between" cannot be read from 2D boxes, so those phrasings are never used.
    for (let seed = 0; seed < 40; seed++) {
      for (const r of adaptAnnotations(scene, { dataset: 'toy', seed, tasks: { spatial: 10 } }).records) {
        expect(userText(r)).not.toMatch(/closer to the camera|between/);
        if (r.metadata?.relation === 'above') expect(userText(r)).not.toMatch(/left or to the right/);
      }
    }
  });

  it('asks about absent objects with answer "No." and never names a present or mentioned category', () => {
    const present = ['dog', 'cat', 'frisbee', 'bench', 'person' /* mentioned in a caption */];
    let negatives = 0;
    for (let seed = 0; seed < 20; seed++) {
      const { records } = adaptAnnotations(scene, { dataset: 'toy', seed, tasks: { negative: 20, existence: 4 } });
      for (const r of records) {
        if (r.task === 'negative') {
          negatives++;
          expect(assistantText(r)).toBe('No.');
          for (const p of present) expect(mentionsCategory(userText(r), p)).toBe(false);
        } else {
          expect(r.task).toBe('existence');
          expect(assistantText(r)).toBe('Yes.');
          expect(['dog', 'cat', 'frisbee', 'bench']).toContain(r.metadata?.category);
        }
      }
    }
    expect(negatives).toBe(20 * 20);
  });

  it('treats synonyms in the image text as mentions ("puppy" is a dog, "sofa" a couch)', () => {
    const room: ImageAnnotationsInput = {
      imageId: 'room',
      file: 'room.jpg',
      width: 100,
      height: 100,
      captions: ['A puppy sleeps on the sofa next to a kitten.'],
      objects: [{ category: 'cat', bbox: [10, 10, 20, 20] }],
    };
    const asked = new Set<string>();
    for (let seed = 0; seed < 10; seed++) {
      for (const r of adaptAnnotations(room, { dataset: 'toy', seed, tasks: { negative: 79 } }).records) asked.add(r.metadata?.category as string);
    }
    expect(asked.has('dog')).toBe(false);
    expect(asked.has('couch')).toBe(false);
    expect(asked.has('cat')).toBe(false);
    // Everything else in COCO's 80 is fair game: 80 - cat, dog, couch.
    expect(asked.size).toBe(77);
  });

  it('gives locations as boxes in the declared format and VQA the majority answer', () => {
    const { records } = adaptAnnotations(scene, { dataset: 'toy', seed: 5, tasks: { location: 10, vqa: 1, region: 1, ocr: 1 } });
    const location = records.filter((r) => r.task === 'location');
    // Only categories with one instance can be located unambiguously.
    expect(location.map((r) => r.metadata?.category).sort()).toEqual(['bench', 'cat', 'frisbee']);
    // cat: [40,100,60,60] -> xyxy [40,100,100,160] -> /640,/480 x1000 = [62.5, 208.3, 156.25, 333.3] rounded.
    const cat = location.find((r) => r.metadata?.category === 'cat')!;
    expect(assistantText(cat)).toBe('[63, 208, 156, 333]');
    expect(cat.metadata?.boxFormat).toBe('xyxy-norm1000');
    const vqa = records.find((r) => r.task === 'vqa')!;
    expect(assistantText(vqa)).toBe('3');
    expect(userText(vqa)).toMatch(/how many dogs are playing\?/i);
    const region = records.find((r) => r.task === 'region')!;
    expect(userText(region)).toContain('[63, 208, 156, 333]');
    expect(assistantText(region)).toBe('A black cat sitting upright.');
    // Reading order: the top row left to right, then the next row.
    expect(assistantText(records.find((r) => r.task === 'ocr')!)).toBe('CITY PARK closed');
  });

  it('writes canonical records with source and template provenance', () => {
    const { records, warnings } = adaptAnnotations(scene, { dataset: 'toy', seed: 9 });
    expect(warnings).toEqual([]);
    const pools = new Map(builtinInstructionPools.map((p) => [p.family, p]));
    expect(new Set(records.map((r) => r.id)).size).toBe(records.length);
    for (const r of records) {
      expect(vlitRecordSchema.safeParse(r).success).toBe(true);
      expect(r.images).toEqual([{ path: 'images/000042.jpg', width: 640, height: 480 }]);
      expect(r.source).toEqual({ dataset: 'toy', originalId: '42', method: 'annotation-adaption' });
      expect(userText(r).startsWith('<image>\n')).toBe(true);
      if (r.task === 'dialogue') continue;
      const template = r.metadata?.template as { id: string; family: string; phrasingIndex: number };
      expect(template.id).toBe(`${template.family}#${template.phrasingIndex}`);
      // The question is that phrasing with its slots filled: every literal piece of the phrasing appears in order.
      const raw = pools.get(template.family)!.phrasings[template.phrasingIndex];
      const pieces = raw
        .split(/\{[a-z_]+\}/)
        .map((s) => s.replace(/^a$|\ba $/, ''))
        .filter((s) => s.trim());
      let at = 0;
      for (const piece of pieces) {
        const found = userText(r).indexOf(piece.trim(), at);
        expect(found, `${raw} vs ${userText(r)}`).toBeGreaterThanOrEqual(0);
        at = found;
      }
    }
    expect(new Set(records.map((r) => r.task))).toEqual(
      new Set(['caption', 'vqa', 'counting', 'existence', 'negative', 'location', 'region', 'spatial', 'ocr', 'dialogue']),
    );
  });

  it('builds multi-turn dialogues that mix several tasks about one image', () => {
    for (let seed = 0; seed < 10; seed++) {
      const { records } = adaptAnnotations(scene, { dataset: 'toy', seed, tasks: { dialogue: 2 }, dialogueTurns: { min: 3, max: 5 } });
      expect(records).toHaveLength(2);
      for (const r of records) {
        const pairs = r.messages.length / 2;
        expect(pairs).toBeGreaterThanOrEqual(3);
        expect(pairs).toBeLessThanOrEqual(5);
        expect(r.messages.map((m) => m.role)).toEqual(Array.from({ length: pairs * 2 }, (_, i) => (i % 2 ? 'assistant' : 'user')));
        expect(r.messages.filter((m) => String(m.content).includes('<image>'))).toHaveLength(1);
        const turnTasks = r.metadata?.turnTasks as string[];
        expect(turnTasks[0]).toBe('caption');
        // Eight question kinds are available and at most four follow-ups are asked, so none repeats.
        expect(new Set(turnTasks).size).toBe(turnTasks.length);
        expect((r.metadata?.templates as unknown[] | undefined)?.length).toBe(pairs);
      }
    }
  });

  it('is deterministic by seed: same seed same records, another seed other phrasings', () => {
    const a = adaptAnnotations(scene, { dataset: 'toy', seed: 11 }).records;
    const b = adaptAnnotations(scene, { dataset: 'toy', seed: 11 }).records;
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    const c = adaptAnnotations(scene, { dataset: 'toy', seed: 12 }).records;
    const phrasings = (rs: VlitRecord[]) => rs.map((r) => `${r.id}=${JSON.stringify(r.metadata?.template ?? r.metadata?.templates)}`);
    const differing = phrasings(a).filter((p, i) => p !== phrasings(c)[i]);
    expect(differing.length).toBeGreaterThan(3);
    // Sampling is keyed by record, so adapting other images first changes nothing.
    const adapter = createAnnotationAdapter({ dataset: 'toy', seed: 11 });
    adapter.adapt({ ...scene, imageId: 'other' });
    expect(JSON.stringify(adapter.adapt(scene).records)).toBe(JSON.stringify(a));
  });

  it('never samples held-out phrasings for training, and only them for the held-out split', () => {
    const reference = createInstructionSampler({ seed: 7, holdout: 3 });
    const heldOut = (family: string) => new Set(reference.phrasingIndices(family, 'heldout'));
    const seen = { train: new Set<string>(), heldout: new Set<string>() };
    for (const split of ['train', 'heldout'] as const) {
      const adapter = createAnnotationAdapter({
        dataset: 'toy',
        seed: 7,
        holdout: 3,
        split,
        tasks: { caption: 2, counting: 4, existence: 4, negative: 8, location: 3, dialogue: 2 },
      });
      for (let i = 0; i < 30; i++) {
        for (const r of adapter.adapt({ ...scene, imageId: `img${i}` }).records) {
          const templates = (r.metadata?.templates ?? [r.metadata?.template]) as Array<{ family: string; phrasingIndex: number }>;
          for (const t of templates) {
            expect(heldOut(t.family).has(t.phrasingIndex)).toBe(split === 'heldout');
            seen[split].add(`${t.family}#${t.phrasingIndex}`);
          }
        }
      }
    }
    expect(seen.train.size).toBeGreaterThan(20);
    expect(seen.heldout.size).toBeGreaterThan(5);
  }, 30_000);

  it('rejects invalid annotations with a typed error naming image and field, and streams the rest', async () => {
    let caught: unknown;
    try {
      adaptAnnotations({ ...scene, width: -1 }, { dataset: 'toy' });
    } catch (error) {
      caught = error;
    }
    expect(isVlitError(caught, 'VLIT_VALIDATION')).toBe(true);
    expect((caught as { details: { record: string; field: string } }).details).toMatchObject({ record: '42', field: 'width' });

    const adapter = createAnnotationAdapter({ dataset: 'toy', tasks: { caption: 1 } });
    const rejects: number[] = [];
    const out: VlitRecord[] = [];
    for await (const r of adapter.adaptAll([scene, { imageId: 'bad' } as ImageAnnotationsInput, { ...scene, imageId: '43' }], {
      onReject: (r) => rejects.push(r.index),
    })) {
      out.push(r);
    }
    expect(rejects).toEqual([1]);
    expect(out.map((r) => r.source?.originalId)).toEqual(['42', '43']);
    expect(() => createAnnotationAdapter({ dataset: 'toy', tasks: { bogus: 1 } as never })).toThrow(/unknown adaption task/);
  });

  it('accepts an injected sampler and fits slot values to the phrasing', () => {
    const pools = [
      ...builtinInstructionPools.filter((p) => p.family !== 'vqa-open' && p.family !== 'counting'),
      { family: 'vqa-open', slots: ['question'], phrasings: ['Based on the image, {question}'] },
      { family: 'counting', slots: ['object'], phrasings: ['Count every {object} in the scene and give the total.'] },
    ];
    const sampler = createInstructionSampler({ seed: 1, pools });
    const { records } = adaptAnnotations(scene, { dataset: 'toy', sampler, tasks: { vqa: 1, counting: 4 } });
    expect(userText(records.find((r) => r.task === 'vqa')!)).toBe('<image>\nBased on the image, how many dogs are playing?');
    expect(userText(records.find((r) => r.metadata?.category === 'dog')!)).toBe('<image>\nCount every dog in the scene and give the total.');
  });

  it('uses "an" before vowels when filling object slots', () => {
    const apple: ImageAnnotationsInput = { imageId: 'a', file: 'a.jpg', width: 100, height: 100, objects: [{ category: 'apple', bbox: [10, 10, 20, 20] }] };
    let anApple = 0;
    for (let seed = 0; seed < 30; seed++) {
      for (const r of adaptAnnotations(apple, { dataset: 'toy', seed, tasks: { existence: 1 } }).records) {
        expect(userText(r)).not.toMatch(/\ba apple\b/i);
        if (/\ban apple\b/i.test(userText(r))) anApple++;
      }
    }
    // The article was actually filled in somewhere, so the check above checked something.
    expect(anApple).toBeGreaterThanOrEqual(1);
  });
});
