import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage, GenerationResult, VisionLanguageRequest } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import type { ComposedVisionLanguageModel } from './index.js';
import type { LlamaDecoder } from '../decoder/llama.js';
import { question, testComposedModel, testImage } from './testing/fixtures.js';

const node = createNodeRuntime({ session: { intraOpThreads: 1 } });
let lm: LlamaDecoder;
let model: ComposedVisionLanguageModel;

beforeAll(async () => {
  ({ model, languageModel: lm } = await testComposedModel(node));
});
afterAll(async () => {
  await lm.dispose();
});

const textOnly = (text: string): ChatMessage[] => [{ role: 'user', content: text }];
const twoImages: ChatMessage[] = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'How many shapes are there ?' }, { type: 'image' }] }];

// Eight requests with prompts of different lengths: text only, one image, two images, a system turn.
const REQUESTS: VisionLanguageRequest[] = [
  { messages: question('What is in the picture?'), images: [testImage(40, 32, 1)] },
  { messages: textOnly('hello') },
  { messages: question('Describe the image.', true), images: [testImage(32, 32, 2)] },
  { messages: twoImages, images: [testImage(40, 32, 3), testImage(48, 40, 4)] },
  { messages: textOnly('A red square on a blue field . What does the text say ?') },
  { messages: question('How many shapes are there?'), images: [testImage(36, 30, 5)] },
  { messages: question('yes'), images: [testImage(40, 32, 6)] },
  { messages: textOnly('one two three') },
];

function values(settled: PromiseSettledResult<GenerationResult>[]): GenerationResult[] {
  return settled.map((s, i) => {
    if (s.status !== 'fulfilled') throw new Error(`item ${i} failed: ${String(s.reason)}`);
    return s.value;
  });
}

describe('the composed model generates batches', () => {
  it('8 requests of different prompt lengths (0, 1 and 2 images), greedy: each gets exactly what generate gives it alone', async () => {
    const options = { maxNewTokens: 12, stop: [] };
    const batched = values(await model.generateBatch(REQUESTS.map((request) => ({ request, options }))));
    const alone = [];
    for (const request of REQUESTS) alone.push(await model.generate(request, options));
    expect(batched).toEqual(alone);
    expect(new Set(alone.map((r) => r.usage.promptTokens)).size).toBeGreaterThan(4);
    expect(new Set(alone.map((r) => r.tokenIds.join(','))).size).toBeGreaterThan(3);
  });

  it('per-request settings and streaming; a request that cannot be prepared fails alone', async () => {
    const streamed: string[][] = [[], [], [], []];
    const items = [
      { request: REQUESTS[0], options: { maxNewTokens: 3, onToken: (t: string) => streamed[0].push(t) } },
      { request: { messages: question('What is in the picture?'), images: [] }, options: { maxNewTokens: 5 } },
      { request: REQUESTS[3], options: { maxNewTokens: 8, temperature: 0.8, seed: 9, onToken: (t: string) => streamed[2].push(t) } },
      { request: REQUESTS[4], options: { maxNewTokens: 6, repetitionPenalty: 1.4 } },
    ];
    const settled = await model.generateBatch(items);
    expect(settled[1].status).toBe('rejected');
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'VLIT_INVALID_ARGUMENT', details: { field: 'images' } });
    for (const i of [0, 2, 3]) {
      const pieces: string[] = [];
      const alone = await model.generate(items[i].request, { ...items[i].options, onToken: (t) => pieces.push(t) });
      expect(settled[i]).toEqual({ status: 'fulfilled', value: alone });
      if (i !== 3) expect(streamed[i].join('')).toBe(alone.text);
    }
  });
});
