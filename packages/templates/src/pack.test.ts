import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createRng } from '@vlit/core';
import { createBuiltinTemplate } from './chat-template.js';
import { buildWordLevelTokenizer } from './word-level-tokenizer.js';
import { encodeBatch, type EncodedSample } from './encode.js';
import { packSamples } from './pack.js';

const WORDS = 'the a red blue bus dog cat street park two three small large near left right of on in is are what where how many'.split(' ');

/** 1,000 deterministic records: 1-3 turns, 0-2 images, answers of 3-120 words. */
function makeRecords(n: number): unknown[] {
  const rng = createRng('pack-fixture');
  const sentence = (k: number) => Array.from({ length: k }, () => rng.choice(WORDS)).join(' ') + '.';
  return Array.from({ length: n }, (_, i) => {
    const turns = rng.int(1, 4);
    const images = rng.int(0, 3);
    const messages = [];
    for (let t = 0; t < turns; t++) {
      const marker = t < images ? '<image>\n' : '';
      const extra = t === turns - 1 ? '<image>\n'.repeat(Math.max(0, images - turns)) : '';
      messages.push({ role: 'user', content: marker + extra + sentence(rng.int(3, 20)) });
      messages.push({ role: 'assistant', content: sentence(rng.int(3, 120)) });
    }
    return { id: `s${i}`, images: Array.from({ length: images }, (_, k) => `img${i}-${k}.jpg`), messages };
  });
}

describe('packing', () => {
  it('packs 1,000 samples into 2,048-token sequences: no sample split, no image span cut, every label kept', () => {
    const template = createBuiltinTemplate('chatml');
    const tokenizer = buildWordLevelTokenizer({
      corpus: [WORDS.join(' ') + ' . user assistant'],
      specialTokens: ['<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|image_pad|>', '<|vision_end|>', '<|endoftext|>'],
    });
    const { encoded, counts } = encodeBatch(makeRecords(1000), { template, tokenizer, imageTokens: 144 });
    expect(counts).toEqual({ read: 1000, encoded: 1000, rejected: 0 });
    const byId = new Map<string, EncodedSample>(encoded.map((s) => [s.id, s]));
    const pad = tokenizer.tokenToId('<|endoftext|>')!;
    const result = packSamples(encoded, { maxLength: 2048, padTokenId: pad });

    expect(result.counts).toEqual({ read: 1000, packed: 1000, rejected: 0 });
    const seen = new Set<string>();
    let trainedIn = 0;
    let trainedOut = 0;
    for (const s of encoded) trainedIn += s.labels.filter((l) => l !== -100).length;
    for (const seq of result.sequences) {
      expect(seq.inputIds).toHaveLength(2048);
      expect(seq.attention.cuSeqlens).toEqual([0, ...seq.samples.map((x) => x.end)]);
      for (const slot of seq.samples) {
        expect(seen.has(slot.id)).toBe(false);
        seen.add(slot.id);
        const sample = byId.get(slot.id)!;
        // Whole sample, contiguous, in order: nothing split.
        expect(seq.inputIds.slice(slot.start, slot.end)).toEqual(sample.inputIds);
        expect(seq.labels.slice(slot.start, slot.end)).toEqual(sample.labels);
        expect(seq.positionIds.slice(slot.start, slot.end)).toEqual(sample.inputIds.map((_, k) => k));
      }
      for (const span of seq.imageSpans) {
        const slot = seq.samples.find((x) => x.id === span.sampleId)!;
        expect(span.start).toBeGreaterThanOrEqual(slot.start);
        expect(span.end).toBeLessThanOrEqual(slot.end);
        expect(span.end - span.start).toBe(144);
      }
      expect(seq.imageSpans).toHaveLength(seq.samples.reduce((n, x) => n + byId.get(x.id)!.imageSpans.length, 0));
      trainedOut += seq.labels.filter((l) => l !== -100).length;
    }
    expect(seen.size).toBe(1000);
    expect(trainedOut).toBe(trainedIn);
    const totalTokens = encoded.reduce((n, s) => n + s.inputIds.length, 0);
    expect(result.efficiency).toBeCloseTo(totalTokens / (result.sequences.length * 2048), 12);
    // A lower bound any packing must respect, and first-fit-decreasing should come close to it.
    expect(result.sequences.length).toBeGreaterThanOrEqual(Math.ceil(totalTokens / 2048));
    expect(result.efficiency).toBeGreaterThan(0.9);
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync(
      'test-artifacts/packing.json',
      JSON.stringify({ samples: 1000, maxLength: 2048, tokens: totalTokens, sequences: result.sequences.length, efficiency: result.efficiency }, null, 2),
    );
  });

  it('rejects a sample longer than the pack length instead of splitting it', () => {
    const s = {
      id: 'big',
      inputIds: [1, 2, 3],
      labels: [1, 2, 3],
      attentionMask: [1, 1, 1],
      imageSpans: [],
      messageSpans: [],
      text: '',
      segments: [],
      truncated: false,
      boundaryIssues: [],
      warnings: [],
    };
    const r = packSamples([s, { ...s, id: 'fits', inputIds: [1], labels: [1], attentionMask: [1] }], { maxLength: 2 });
    expect(r.rejects.map((x) => x.id)).toEqual(['big']);
    expect(r.counts).toEqual({ read: 2, packed: 1, rejected: 1 });
    expect(r.efficiency).toBe(0.5);
  });
});
