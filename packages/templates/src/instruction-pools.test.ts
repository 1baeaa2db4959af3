import { describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { builtinInstructionPools, createInstructionSampler, fillInstruction, formatBox, parseInstructionPool } from './instruction-pools.js';

const FAMILIES = [
  'caption-brief',
  'caption-detailed',
  'vqa-open',
  'vqa-multiple-choice',
  'yes-no',
  'counting',
  'region-location',
  'region-description',
  'spatial-relation',
  'ocr',
  'visual-reasoning',
  'dialogue',
];

describe('instruction pools', () => {
  it('has every task family with at least 10 distinct phrasings', () => {
    expect(builtinInstructionPools.map((p) => p.family)).toEqual(FAMILIES);
    for (const p of builtinInstructionPools) {
      expect(new Set(p.phrasings).size).toBeGreaterThanOrEqual(10);
    }
    expect(builtinInstructionPools.find((p) => p.family === 'region-location')!.boxFormat).toBe('xyxy-norm1000');
  });

  it('samples deterministically by seed and by key, independent of call order', () => {
    const a = createInstructionSampler({ seed: 7 });
    const b = createInstructionSampler({ seed: 7 });
    const seqA = Array.from({ length: 20 }, () => a.sample('counting', { object: 'dogs' }).phrasingIndex);
    const seqB = Array.from({ length: 20 }, () => b.sample('counting', { object: 'dogs' }).phrasingIndex);
    expect(seqA).toEqual(seqB);
    expect(new Set(seqA).size).toBeGreaterThan(3);
    const k1 = a.sample('yes-no', { object: 'cat' }, { key: 'rec-9' });
    b.sample('ocr'); // consuming b's stream must not change keyed choices
    expect(b.sample('yes-no', { object: 'cat' }, { key: 'rec-9' })).toEqual(k1);
    expect(createInstructionSampler({ seed: 8 }).sample('yes-no', { object: 'cat' }, { key: 'rec-9' }).family).toBe('yes-no');
  });

  it('holds out phrasings: train samples never use them, heldout samples only use them', () => {
    const s = createInstructionSampler({ seed: 'holdout', holdout: 3 });
    for (const family of FAMILIES) {
      const held = s.phrasingIndices(family, 'heldout');
      const train = s.phrasingIndices(family, 'train');
      expect(held).toHaveLength(3);
      expect(held.filter((i) => train.includes(i))).toEqual([]);
      expect(held.length + train.length).toBe(s.pool(family).phrasings.length);
    }
    for (let i = 0; i < 200; i++) {
      expect(s.phrasingIndices('ocr', 'heldout')).not.toContain(s.sample('ocr').phrasingIndex);
      expect(s.phrasingIndices('ocr', 'heldout')).toContain(s.sample('ocr', {}, { split: 'heldout' }).phrasingIndex);
    }
  });

  it('fills slots and refuses missing ones', () => {
    expect(fillInstruction('How many {object} are there?', { object: 'dogs' })).toBe('How many dogs are there?');
    expect(() => fillInstruction('Is there a {object}?', {})).toThrow(/slot \{object\}/);
  });

  it('registers user pools validated by zod, with typed errors naming the pool and field', () => {
    const s = createInstructionSampler({ seed: 1, pools: [] });
    s.register({ family: 'chart', slots: ['axis'], phrasings: ['Read the {axis} axis.', 'What does the {axis} axis show?'] });
    expect(s.sample('chart', { axis: 'x' }, { key: 1 }).text).toMatch(/x axis/);
    let err: unknown;
    try {
      parseInstructionPool({ family: 'bad', slots: [], phrasings: ['Use {missing}.'] });
    } catch (e) {
      err = e;
    }
    expect(isVlitError(err, 'VLIT_VALIDATION')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ record: 'bad', field: 'phrasings.0' });
  });

  it('formats boxes in the declared coordinate format (hand-computed)', () => {
    const box = { box: [64, 48, 320, 240] as const, width: 640, height: 480 };
    expect(formatBox(box, 'xyxy-pixels')).toBe('[64, 48, 320, 240]');
    expect(formatBox(box, 'xywh-pixels')).toBe('[64, 48, 256, 192]');
    expect(formatBox(box, 'xyxy-norm1')).toBe('[0.1, 0.1, 0.5, 0.5]');
    expect(formatBox(box, 'xyxy-norm1000')).toBe('[100, 100, 500, 500]');
    expect(() => formatBox({ ...box, box: [0, 0, 700, 10] }, 'xyxy-pixels')).toThrow(/not inside/);
  });
});
