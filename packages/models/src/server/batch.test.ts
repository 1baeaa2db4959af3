import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchGenerationItem, ChatMessage, GenerationOptions, VisionLanguageModel, VisionLanguageRequest } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import type { ComposedVisionLanguageModel } from '../compose/index.js';
import { testComposedModel, testImage } from '../compose/testing/fixtures.js';
import type { LlamaDecoder } from '../decoder/llama.js';
import { startOpenAIServer, type OpenAIServer, type ServerLogEntry } from './index.js';
import { dataUrl, post, waitUntil } from './testing/harness.js';

const node = createNodeRuntime({ session: { intraOpThreads: 1 } });
let model: ComposedVisionLanguageModel;
let lm: LlamaDecoder;
const servers: OpenAIServer[] = [];
const images = [testImage(40, 32, 7), testImage(40, 32, 99), testImage(32, 40, 5)];
let pngs: Uint8Array[];

beforeAll(async () => {
  ({ model, languageModel: lm } = await testComposedModel(node, { id: 'vlit-tiny' }));
  pngs = await Promise.all(images.map((i) => node.images.encode(i, 'png')));
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await lm.dispose();
});

const TEXTS = ['What is in the picture?', 'Describe the image.', 'How many shapes are there?', 'What does the text say?'];

/** Request i of the test: text i % 4, image i % 3 (none for every fourth), max_tokens 4..11. */
function requestFor(i: number): { body: Record<string, unknown>; request: VisionLanguageRequest; options: GenerationOptions } {
  const text = TEXTS[i % 4];
  const withImage = i % 4 !== 3;
  const content = withImage
    ? [
        { type: 'image_url', image_url: { url: dataUrl(pngs[i % 3]) } },
        { type: 'text', text },
      ]
    : text;
  const messages: ChatMessage[] = [{ role: 'user', content: withImage ? [{ type: 'image' }, { type: 'text', text }] : [{ type: 'text', text }] }];
  return {
    body: { model: 'vlit-tiny', messages: [{ role: 'user', content }], max_tokens: 4 + i, ...(i % 2 ? { stream: true } : {}) },
    request: { messages, ...(withImage ? { images: [images[i % 3]] } : {}) },
    options: { maxNewTokens: 4 + i },
  };
}

async function contentOf(res: Response, stream: boolean): Promise<{ text: string; finish: string; completion?: number }> {
  if (!stream) {
    const body = (await res.json()) as { choices: Array<{ message: { content: string }; finish_reason: string }>; usage: { completion_tokens: number } };
    return { text: body.choices[0].message.content, finish: body.choices[0].finish_reason, completion: body.usage.completion_tokens };
  }
  const events = (await res.text())
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
  expect(events.at(-1)).toBe('[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: Array<{ delta: { content?: string }; finish_reason: string | null }> });
  const withChoices = chunks.filter((c) => c.choices.length > 0);
  return { text: withChoices.map((c) => c.choices[0].delta.content ?? '').join(''), finish: withChoices.at(-1)!.choices[0].finish_reason! };
}

async function waitFor(condition: () => boolean): Promise<void> {
  expect(await waitUntil(condition)).toBe(true);
}

/** The model behind a gate: the first request (alone, via generate) waits until the test opens it. */
function gatedModel(): { model: VisionLanguageModel; open: () => void; entered: () => number; batchSizes: number[] } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let entered = 0;
  const batchSizes: number[] = [];
  return {
    open,
    entered: () => entered,
    batchSizes,
    model: {
      id: 'vlit-tiny',
      async generate(request, options) {
        entered++;
        await gate;
        return model.generate(request, options);
      },
      async generateBatch(items: readonly BatchGenerationItem[]) {
        batchSizes.push(items.length);
        return model.generateBatch(items);
      },
      score: (request, candidates) => model.score(request, candidates),
    },
  };
}

describe('the server batches concurrent requests', () => {
  it('8 concurrent requests (streaming and not, different prompts and max_tokens) each get the tokens they get alone, and the stats show one batch of 7', async () => {
    const gated = gatedModel();
    const s = await startOpenAIServer({ models: gated.model, images: node.images, allowUnauthenticated: true, concurrency: 1, maxQueue: 16 });
    servers.push(s);
    expect(s.stats()).toMatchObject({ maxBatchSize: 8, batches: 0 });
    const cases = Array.from({ length: 8 }, (_, i) => requestFor(i));
    const expected = [];
    for (const c of cases) expected.push(await model.generate(c.request, c.options));
    // The first request holds the only slot at the gate while the other seven queue up behind it.
    const first = post(s.url, cases[0].body);
    await waitFor(() => gated.entered() === 1);
    const rest = cases.slice(1).map((c) => post(s.url, c.body));
    await waitFor(() => s.stats().waiting === 7);
    gated.open();
    const replies = await Promise.all([first, ...rest]);
    expect(replies.map((r) => r.status)).toEqual(new Array(8).fill(200));
    for (let i = 0; i < 8; i++) {
      const got = await contentOf(replies[i], i % 2 === 1);
      expect(got.text, `request ${i}`).toBe(expected[i].text);
      expect(got.finish).toBe(expected[i].finishReason === 'length' ? 'length' : 'stop');
      if (got.completion !== undefined) expect(got.completion).toBe(expected[i].usage.completionTokens);
    }
    expect(new Set(expected.map((e) => e.text)).size).toBeGreaterThan(2);
    expect(gated.batchSizes).toEqual([7]);
    expect(s.stats()).toMatchObject({ running: 0, waiting: 0, batches: 1, batchedRequests: 7, largestBatch: 7 });
  });

  it('a client hanging up ends only its own row: the other rows of the batch are answered in full, and the slot is freed', async () => {
    const gated = gatedModel();
    const logs: ServerLogEntry[] = [];
    const s = await startOpenAIServer({
      models: gated.model,
      images: node.images,
      allowUnauthenticated: true,
      concurrency: 1,
      maxQueue: 16,
      onLog: (e) => logs.push(e),
    });
    servers.push(s);
    const cases = Array.from({ length: 5 }, (_, i) => requestFor(i));
    const expected = [];
    for (const c of cases) expected.push(await model.generate(c.request, c.options));
    const first = post(s.url, cases[0].body);
    await waitFor(() => gated.entered() === 1);
    const leaving = new AbortController();
    const hangUp = post(s.url, { ...cases[1].body, max_tokens: 64, stream: true }, {}, leaving.signal).then(
      async (res) => {
        // Read the first event, then hang up while the batch is still generating.
        const reader = res.body!.getReader();
        await reader.read();
        leaving.abort();
        return 'left';
      },
      () => 'left',
    );
    const rest = [2, 3, 4].map((i) => post(s.url, cases[i].body));
    await waitFor(() => s.stats().waiting === 4);
    gated.open();
    expect(await hangUp).toBe('left');
    const replies = await Promise.all([first, ...rest]);
    const indexes = [0, 2, 3, 4];
    for (let k = 0; k < replies.length; k++) {
      expect(replies[k].status).toBe(200);
      expect((await contentOf(replies[k], indexes[k] % 2 === 1)).text).toBe(expected[indexes[k]].text);
    }
    expect(gated.batchSizes).toEqual([4]);
    await waitFor(() => s.stats().running === 0 && s.stats().waiting === 0);
    await waitFor(() => logs.length === 5);
    expect(logs.filter((l) => l.status === 200 && l.code === undefined)).toHaveLength(4);
  });

  it('maxBatchSize 1 switches batching off, and models without generateBatch are called one request at a time', async () => {
    const gated = gatedModel();
    const s = await startOpenAIServer({ models: gated.model, images: node.images, allowUnauthenticated: true, concurrency: 1, maxQueue: 16, maxBatchSize: 1 });
    servers.push(s);
    const first = post(s.url, requestFor(0).body);
    await waitFor(() => gated.entered() === 1);
    const rest = [2, 4].map((i) => post(s.url, requestFor(i).body));
    await waitFor(() => s.stats().waiting === 2);
    gated.open();
    expect((await Promise.all([first, ...rest])).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(gated.batchSizes).toEqual([]);
    expect(gated.entered()).toBe(3);
    expect(s.stats()).toMatchObject({ batches: 0, batchedRequests: 0, largestBatch: 0 });
    await expect(startOpenAIServer({ models: model, images: node.images, allowUnauthenticated: true, maxBatchSize: 0 })).rejects.toMatchObject({
      code: 'VLIT_INVALID_ARGUMENT',
      details: { field: 'maxBatchSize' },
    });
  });
});
