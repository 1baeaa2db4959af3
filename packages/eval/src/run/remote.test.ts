// Remote evaluation against a real OpenAI-compatible server on 127.0.0.1 that injects 429s, 500s
// and replies slower than the client's timeout. The server answers through the same constructed
// VisionLanguageModel that the local run uses, so the remote path (@vlit/models' remote model: PNG
// data URLs, HTTP, retries; eval's caching) must reproduce the local scores exactly. Eval receives
// the remote model as a VisionLanguageModel contract; the judge goes through core's chat-completions client.
import { fakeStep, sendJson, startFakeOpenAIServer, type FakeOpenAIServer } from '@vlit/test-kit/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSharpCodec } from '@vlit/runtime/node';
import { isVlitError, type ChatMessage, type RawImage, type VisionLanguageModel } from '@vlit/core';
import { createChatCompletionsClient, type ChatCompletionsRetryEvent } from '@vlit/core/openai';
import { createOpenAICompatibleModel } from '@vlit/models';
import { createPixelModel, makeImage } from '../testing.js';
import { createOpenAIJudge } from '../judge.js';
import { createMemoryCache } from './cache.js';
import { createMultipleChoiceBenchmark } from './benchmarks.js';
import { captionBenchmarkFixture, popeBenchmarkFixture, vqaBenchmarkFixture } from '../benchmarks.fixtures.js';
import { evaluate } from './evaluate.js';

const codec = createSharpCodec();
const loadImage = async (ref: unknown) => makeImage(String(ref));

let server: FakeOpenAIServer;
let baseURL: string;
let requests = 0;
const injected = { 429: 0, 500: 0, slow: 0 };

type WireMessage = { role: ChatMessage['role']; content: string | Array<{ type: string; text?: string; image_url?: { url: string } }> };

/** The server side: OpenAI messages back to Vlit messages + decoded images, then the local model. */
async function answer(model: VisionLanguageModel, body: { messages: WireMessage[]; max_tokens?: number; temperature?: number; seed?: number }) {
  const images: RawImage[] = [];
  const messages: ChatMessage[] = [];
  for (const m of body.messages) {
    if (typeof m.content === 'string') {
      messages.push({ role: m.role, content: m.content });
      continue;
    }
    let text = '';
    for (const part of m.content) {
      if (part.type === 'text') text += part.text ?? '';
      else {
        const url = part.image_url?.url ?? '';
        const b64 = url.slice(url.indexOf(',') + 1);
        images.push(await codec.decode(new Uint8Array(Buffer.from(b64, 'base64')), { channels: 3 }));
        text += '<image>';
      }
    }
    messages.push({ role: m.role, content: text });
  }
  const out = await model.generate({ messages, images }, { maxNewTokens: body.max_tokens, temperature: body.temperature, seed: body.seed });
  return {
    id: `cmpl-${requests}`,
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: out.text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1 },
  };
}

const served = createPixelModel('pixel-model');

beforeAll(async () => {
  server = await startFakeOpenAIServer({
    fallback: async (res, req) => {
      const n = ++requests;
      const body = req.body as Parameters<typeof answer>[1] & { model?: string };
      if (body.model === 'judge') return fakeStep.reply('B')(res, req);
      if (n % 6 === 1) {
        injected[429]++;
        return sendJson(res, 429, '{"error":{"message":"queue full"}}', { 'retry-after': '0' });
      }
      if (n % 6 === 3) {
        injected[500]++;
        return sendJson(res, 500, 'internal error');
      }
      if (n % 9 === 4) {
        injected.slow++;
        // Never answered: held until the client's timeout makes it hang up and retry.
        return fakeStep.hold()(res, req);
      }
      try {
        sendJson(res, 200, await answer(served, body));
      } catch (e) {
        sendJson(res, 400, String(e));
      }
    },
  });
  baseURL = server.baseURL;
});

afterAll(async () => {
  await server.close();
});

function benchmarks() {
  const mc = createMultipleChoiceBenchmark({
    id: 'mc',
    method: 'generate',
    circular: true,
    items: Array.from({ length: 6 }, (_, i) => ({
      id: `m${i}`,
      question: `What is shown in picture ${i}?`,
      options: ['a cat', 'a dog', 'a bus', 'a tree'],
      answer: i % 4,
      dimension: ['SU', 'IA', 'TR'][i % 3],
      images: [`mc-${i}.png`],
    })),
  });
  return [mc, vqaBenchmarkFixture('vqa', 10), captionBenchmarkFixture('captions'), popeBenchmarkFixture('pope')];
}

describe('remote evaluation through an OpenAI-compatible server', () => {
  it('gives exactly the local scores despite 429s, 500s and timeouts, and reruns from the cache', async () => {
    const local = await evaluate({ model: createPixelModel('pixel-model'), benchmarks: benchmarks(), loadImage, decoding: { maxNewTokens: 32 } });
    const events: ChatCompletionsRetryEvent[] = [];
    const remoteModel = createOpenAICompatibleModel({
      baseURL,
      model: 'pixel-model',
      images: codec,
      maxRetries: 8,
      backoff: { initialMs: 5, maxMs: 20, jitter: 0 },
      maxRetryAfterMs: 20,
      timeoutMs: 400,
      onRetry: (e) => events.push(e),
    });
    const cache = createMemoryCache();
    const progress: number[] = [];
    const remote = await evaluate({
      model: remoteModel,
      benchmarks: benchmarks(),
      loadImage,
      decoding: { maxNewTokens: 32 },
      cache,
      batchSize: 4,
      onProgress: (p) => p.stage === 'predict' && progress.push(p.done),
    });

    expect(remote.stats).toEqual({ units: 58, fromCache: 0, computed: 58, failed: 0 });
    expect(injected[429]).toBeGreaterThan(0);
    expect(injected[500]).toBeGreaterThan(0);
    expect(injected.slow).toBeGreaterThan(0);
    // Every retry event answers an injected fault; on a busy machine the client may already have timed
    // out (and retried) before an injected reply arrives, so a fault can go unseen but never be invented.
    for (const status of [429, 500] as const) {
      const seen = events.filter((e) => e.status === status).length;
      expect(seen).toBeGreaterThan(0);
      expect(seen).toBeLessThanOrEqual(injected[status]);
    }
    expect(events.some((e) => e.status === undefined && /timed out|abort/i.test(e.message))).toBe(true);
    expect(progress.at(-1)).toBe(58);

    expect(remote.benchmarks.map((b) => b.metrics)).toEqual(local.benchmarks.map((b) => b.metrics));
    expect(remote.benchmarks.map((b) => b.groups)).toEqual(local.benchmarks.map((b) => b.groups));
    expect(remote.benchmarks.map((b) => b.items)).toEqual(local.benchmarks.map((b) => b.items));
    // The scores are not trivial: some right, some wrong.
    expect(local.benchmarks[1].metrics.accuracy).toBeGreaterThan(0);
    expect(local.benchmarks[1].metrics.accuracy).toBeLessThan(1);
    expect(local.benchmarks[2].metrics.ciderD).toBeGreaterThan(0);
    expect(local.benchmarks[0].metrics.perPassAccuracy).toBeGreaterThan(0);

    const before = requests;
    const again = await evaluate({ model: remoteModel, benchmarks: benchmarks(), loadImage, decoding: { maxNewTokens: 32 }, cache });
    expect(requests).toBe(before);
    expect(again.stats).toMatchObject({ fromCache: 58, computed: 0 });
    expect(again.benchmarks.map((b) => b.metrics)).toEqual(local.benchmarks.map((b) => b.metrics));
  }, 60_000);

  it('remote models cannot score by likelihood: a typed error says so', async () => {
    const m = createOpenAICompatibleModel({ baseURL, model: 'x' });
    await expect(m.score({ messages: [{ role: 'user', content: 'hi' }] }, ['a'])).rejects.toSatisfy((e: unknown) => isVlitError(e, 'VLIT_UNSUPPORTED'));
  });

  it('a client error that is not retryable fails at once with a typed error', async () => {
    const client = createChatCompletionsClient({ baseURL: baseURL.replace('/v1', '/nowhere'), maxRetries: 3, backoff: { initialMs: 1 } });
    await expect(client.complete({ model: 'x', messages: [] })).rejects.toSatisfy(
      (e: unknown) => isVlitError(e, 'VLIT_BACKEND') && (e as { details: { status?: number } }).details.status === 404,
    );
  });
});

describe('judge', () => {
  it('reads answers the cascade cannot, logs prompt and reply, and caches them', async () => {
    const vague: VisionLanguageModel = {
      id: 'vague',
      generate: async () => ({
        text: 'Hard to say, maybe the second one?',
        tokenIds: [],
        finishReason: 'stop',
        usage: { promptTokens: 0, completionTokens: 0 },
      }),
      score: async () => [],
    };
    const items = [0, 1, 2].map((i) => ({ id: `j${i}`, question: `Which animal ${i}?`, options: ['cat', 'dog', 'cow'], answer: 1, images: [] }));
    const judgeCache = createMemoryCache();
    const judge = createOpenAIJudge({ client: createChatCompletionsClient({ baseURL }), model: 'judge', cache: judgeCache });
    const bench = () => createMultipleChoiceBenchmark({ id: 'judged', items, method: 'generate' });
    const first = await evaluate({ model: vague, benchmarks: [bench()], judge });
    const r = first.benchmarks[0];
    expect(r.metrics.accuracy).toBe(1);
    expect(r.extraction).toEqual({ judge: 3 });
    expect(r.judgeLog).toHaveLength(3);
    expect(r.judgeLog![0]).toMatchObject({ item: 'j0#0', judge: 'openai:judge', reply: 'B', index: 1, cached: false });
    expect(r.judgeLog![0].prompt).toContain('Which animal 0?');
    expect(r.judgeLog![0].prompt).toContain('Answer: Hard to say, maybe the second one?');
    expect(first.manifest.judge).toMatchObject({ id: 'openai:judge', model: 'judge', temperature: 0 });
    const before = requests;
    const second = await evaluate({ model: vague, benchmarks: [bench()], judge });
    expect(requests).toBe(before);
    expect(second.benchmarks[0].judgeLog!.every((j) => j.cached)).toBe(true);
  });
});
