import { describe, expect, it } from 'vitest';
import { createTensor, isVlitError, type RawImage, type TextEmbedder, type VisionEncoder, type VlitRecordInput } from '@vlit/core';
import { createSharpCodec } from '@vlit/runtime/node';
import {
  createMemoryImageLoader,
  imagePathFilter,
  lexicalPathProblem,
  lengthFilter,
  qualityControl,
  relevanceFilter,
  runQualityControl,
  structureFilter,
  textDuplicateFilter,
} from '../index.js';

const rec = (id: string, q: string, a: string, images: string[] = []): VlitRecordInput => ({
  id,
  images,
  messages: [
    { role: 'user', content: `${images.map(() => '<image>').join('')}${q}` },
    { role: 'assistant', content: a },
  ],
});

/** A colour "encoder": one token, the image's mean RGB. A colour "embedder": colour words to RGB. */
const encoder: VisionEncoder = {
  id: 'mean-rgb',
  outputDim: 3,
  tokensPerImage: () => 1,
  async encode(images: readonly RawImage[]) {
    const out = new Float32Array(images.length * 3);
    images.forEach((im, i) => {
      for (let p = 0; p < im.width * im.height; p++) for (let c = 0; c < 3; c++) out[i * 3 + c] += im.data[p * 3 + c] / (im.width * im.height);
    });
    return createTensor('float32', [images.length, 1, 3], out);
  },
};
const embedder: TextEmbedder = {
  id: 'colour-words',
  dim: 3,
  async embed(texts) {
    return texts.map((t) => new Float32Array(/red/.test(t) ? [1, 0, 0] : /blue/.test(t) ? [0, 0, 1] : [1, 1, 1]));
  },
};

describe('filters', () => {
  it('path checks by hand', () => {
    expect(lexicalPathProblem('images/a.png')).toBeUndefined();
    expect(lexicalPathProblem('images/../a.png')).toBeUndefined();
    expect(lexicalPathProblem('images/../../a.png')?.reason).toBe('path-escape');
    expect(lexicalPathProblem('/etc/passwd')?.reason).toBe('path-escape');
    expect(lexicalPathProblem('C:\\x.png')?.reason).toBe('path-escape');
    expect(lexicalPathProblem('https://x/y.png')?.reason).toBe('remote-image');
  });

  it('structure, length and duplicates report their reasons; the stream yields one event per input', async () => {
    const input: unknown[] = [
      rec('a', 'Describe the picture in detail please.', 'A long and careful description of a quiet street with a red car.'),
      rec('a', 'Another question?', 'Another answer.'),
      rec('b', 'Describe the picture in detail please.', 'A long and careful description of a quiet street with a red car.'),
      rec('c', 'Describe the picture in detail please.', 'A long and careful description of a quiet street with a red car today.'),
      rec('d', '<Image> what is this?', 'A cat.'),
      {
        id: 'e',
        messages: [
          { role: 'assistant', content: 'Hi' },
          { role: 'user', content: 'Hello' },
          { role: 'assistant', content: 'Yes.' },
        ],
      },
      rec('f', 'Why?', 'word '.repeat(30)),
      { id: 'g', images: [], messages: [] },
    ];
    const filters = [structureFilter(), lengthFilter({ maxAnswerWords: 20 }), textDuplicateFilter({ scope: 'global', threshold: 0.7 })];
    const events = [];
    for await (const e of qualityControl(input, filters)) events.push(e);
    expect(events).toHaveLength(input.length);
    const r = await runQualityControl(input, filters);
    expect(r.rejects.map((x) => [x.id, x.filter, x.reason])).toEqual([
      ['a', 'structure', 'duplicate-id'],
      ['b', 'duplicate-conversation', 'duplicate-exact'],
      ['c', 'duplicate-conversation', 'duplicate-near'],
      ['d', 'structure', 'malformed-placeholder'],
      ['e', 'structure', 'role-order'],
      ['f', 'length', 'answer-too-long'],
      ['g', 'schema', 'invalid-schema'],
    ]);
    expect(r.counts).toMatchObject({ read: 8, kept: 1, rejected: 7, byFilter: { structure: 3, 'duplicate-conversation': 2, length: 1, schema: 1 } });
    await expect(qualityControl([], [structureFilter(), structureFilter()]).next()).rejects.toThrow(/unique names/);
  });

  it('image–text relevance through any encoder + embedder pair (real sharp images)', async () => {
    const codec = createSharpCodec();
    const solid = (rgb: number[]): RawImage => ({ width: 40, height: 40, channels: 3, data: new Uint8Array(40 * 40 * 3).map((_, i) => rgb[i % 3]) });
    const images = new Map([['red.png', await codec.encode(solid([230, 10, 10]), 'png')]]);
    const r = await runQualityControl(
      [rec('ok', 'What is it?', 'A red square.', ['red.png']), rec('bad', 'What is it?', 'A blue square.', ['red.png'])],
      [imagePathFilter(), relevanceFilter({ encoder, embedder, minScore: 50 })],
      { images: { codec, load: createMemoryImageLoader(images) } },
    );
    expect(r.kept.map((x) => x.id)).toEqual(['ok']);
    expect(r.rejects[0]).toMatchObject({ id: 'bad', filter: 'relevance', reason: 'low-relevance' });
    // cos([230,10,10], [0,0,1]) * 100 by hand
    expect(r.rejects[0].details?.score as number).toBeCloseTo((100 * 10) / Math.hypot(230, 10, 10), 0);
    try {
      relevanceFilter({ encoder, embedder: { ...embedder, dim: 4 }, minScore: 1 });
      expect.unreachable();
    } catch (err) {
      expect(isVlitError(err, 'VLIT_COMPATIBILITY')).toBe(true);
    }
  });
});
