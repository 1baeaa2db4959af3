import { describe, expect, it } from 'vitest';
import type { VlitRecord } from '@vlit/core';
import { balanceByCategory, largestRemainder, mixingProbabilities, planMixture, sampleMixture, shardJsonl, toLlamaFactoryMix, toLlavaJson } from '../index.js';

describe('mixing plans', () => {
  it('temperature mixing p ∝ n^(1/T), by hand', () => {
    const sources = [
      { name: 'a', size: 100 },
      { name: 'b', size: 400 },
    ];
    expect(mixingProbabilities(sources, 'temperature', 1)).toEqual([0.2, 0.8]);
    const t2 = mixingProbabilities(sources, 'temperature', 2); // sqrt: 10, 20
    expect(t2[0]).toBeCloseTo(1 / 3, 12);
    expect(t2[1]).toBeCloseTo(2 / 3, 12);
    const plan = planMixture({ sources, strategy: 'temperature', temperature: 2, total: 300 });
    expect(plan.sources.map((s) => [s.samples, s.effectiveEpochs])).toEqual([
      [100, 1],
      [200, 0.5],
    ]);
  });

  it('weighted mixing with an epoch cap redistributes to the others', () => {
    const plan = planMixture({
      sources: [
        { name: 'small', size: 10, weight: 1 },
        { name: 'big', size: 1000, weight: 1 },
      ],
      total: 100,
      maxEpochs: 2,
    });
    expect(plan.strategy).toBe('weighted');
    expect(plan.sources.map((s) => s.samples)).toEqual([20, 80]);
    expect(plan.sources.map((s) => s.effectiveEpochs)).toEqual([2, 0.08]);
    const capped = planMixture({
      sources: [
        { name: 'a', size: 100 },
        { name: 'b', size: 400 },
      ],
      total: 1000,
      maxEpochs: 1,
    });
    expect(capped.total).toBe(500);
    expect(capped.warnings.map((w) => w.code)).toEqual(['VLIT_W_MIX_CAPPED']);
    expect(largestRemainder([1, 1, 1], 10)).toEqual([4, 3, 3]);
  });

  it('sampling is deterministic by seed, honours the plan and epochs, and interleaves evenly', () => {
    const sources = { a: Array.from({ length: 10 }, (_, i) => `a${i}`), b: Array.from({ length: 100 }, (_, i) => `b${i}`) };
    const plan = planMixture({
      sources: [
        { name: 'a', size: 10, weight: 1 },
        { name: 'b', size: 100, weight: 2 },
      ],
      total: 60,
    });
    const s1 = sampleMixture(sources, plan, { seed: 42 });
    expect(sampleMixture(sources, plan, { seed: 42 })).toEqual(s1);
    expect(sampleMixture(sources, plan, { seed: 43 })).not.toEqual(s1);
    const fromA = s1.filter((s) => s.source === 'a');
    expect(fromA).toHaveLength(20);
    // Two whole passes: every item of a exactly twice, once per epoch.
    for (let i = 0; i < 10; i++)
      expect(
        fromA
          .filter((s) => s.item === `a${i}`)
          .map((s) => s.epoch)
          .sort(),
      ).toEqual([0, 1]);
    expect(new Set(s1.filter((s) => s.source === 'b').map((s) => s.item)).size).toBe(40);
    for (let L = 6; L <= 60; L += 6) {
      const n = s1.slice(0, L).filter((s) => s.source === 'a').length;
      expect(Math.abs(n - L / 3)).toBeLessThanOrEqual(2);
    }
  });

  it('balances categories by downsampling, upsampling and temperature', () => {
    const items = [...Array.from({ length: 6 }, (_, i) => ({ c: 'x', i })), ...Array.from({ length: 2 }, (_, i) => ({ c: 'y', i }))];
    const down = balanceByCategory(items, { category: (t) => t.c, mode: 'downsample', seed: 1 });
    expect(down.items.filter((t) => t.c === 'x')).toHaveLength(2);
    expect(down.items.filter((t) => t.c === 'y')).toHaveLength(2);
    const up = balanceByCategory(items, { category: (t) => t.c, mode: 'upsample', seed: 1 });
    expect(up.plan.sources.map((s) => [s.name, s.samples, s.effectiveEpochs])).toEqual([
      ['x', 6, 1],
      ['y', 6, 3],
    ]);
    const temp = balanceByCategory(items, { category: (t) => t.c, mode: 'temperature', temperature: 1e9, seed: 1 });
    expect(temp.plan.sources.map((s) => s.samples)).toEqual([4, 4]);
  });

  it('exports LLaMA-Factory interleave_probs and LLaVA JSON', () => {
    const plan = planMixture({
      sources: [
        { name: 'coco', size: 3 },
        { name: 'vqa', size: 6 },
      ],
      strategy: 'proportional',
    });
    const lf = toLlamaFactoryMix(plan, { datasetNames: { coco: 'vlit_coco' } });
    expect(lf.dataset).toEqual(['vlit_coco', 'vqa']);
    expect(lf.interleave_probs).toEqual([0.333333, 0.666667]);
    expect(lf.yaml).toBe('dataset: vlit_coco,vqa\nmix_strategy: interleave_over\ninterleave_probs: 0.333333,0.666667\n');
    const r: VlitRecord = {
      id: 'r1',
      images: ['img/1.png'],
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'image' }, { type: 'text', text: '\nWhat is it?' }] },
        { role: 'assistant', content: 'A dog.' },
      ],
    };
    const { entries, warnings } = toLlavaJson([r]);
    expect(entries).toEqual([
      {
        id: 'r1',
        image: 'img/1.png',
        conversations: [
          { from: 'human', value: '<image>\nWhat is it?' },
          { from: 'gpt', value: 'A dog.' },
        ],
      },
    ]);
    expect(warnings.map((w) => w.details?.field)).toEqual(['messages.0']);
  });

  it('shards JSONL by byte size', () => {
    // Each line {"id":"rN"}\n is 12 bytes.
    const recs = Array.from({ length: 5 }, (_, i) => ({ id: `r${i}` }));
    const shards = [...shardJsonl(recs, { targetBytes: 25, prefix: 'p' })];
    expect(shards.map((s) => [s.name, s.lines.length, s.bytes, s.firstId, s.lastId])).toEqual([
      ['p-00000.jsonl', 2, 24, 'r0', 'r1'],
      ['p-00001.jsonl', 2, 24, 'r2', 'r3'],
      ['p-00002.jsonl', 1, 12, 'r4', 'r4'],
    ]);
    expect([...shardJsonl(recs, { targetBytes: 5 })]).toHaveLength(5); // each oversized line gets its own shard
  });
});
