import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isVlitError, type RawImage } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { closedPort, fakeStep, sendJson, startFakeOpenAIServer, type FakeOpenAIRequest, type FakeOpenAIServer } from '@vlit/test-kit/node';
import { createOpenAICompatibleModel } from '../index.js';

const KEY = 'sk-test-SECRET-1234567890';
const runtime = createNodeRuntime();

/** Answers request n (from 1 since the last reset) of the test kit's fake server. */
type Handler = (req: FakeOpenAIRequest, res: ServerResponse, n: number) => void | Promise<void>;

let server: FakeOpenAIServer;
let baseURL: string;
let handler: Handler;
let seen: FakeOpenAIRequest[] = [];

beforeAll(async () => {
  // No apiKey check in the server: the 401 test scripts its own reply.
  server = await startFakeOpenAIServer({ fallback: (res, req) => handler(req, res, req.n + 1) });
  baseURL = server.baseURL;
  seen = server.requests;
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
});

const json = sendJson;

function completion(text: string, finish = 'stop'): unknown {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finish }],
    usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
  };
}

function model(extra: Partial<Parameters<typeof createOpenAICompatibleModel>[0]> = {}) {
  return createOpenAICompatibleModel({ baseURL, apiKey: KEY, model: 'tiny-vlm', backoff: { initialMs: 1 }, images: runtime.images, ...extra });
}

const image: RawImage = {
  width: 2,
  height: 2,
  channels: 3,
  data: new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]),
};

describe('OpenAI-compatible remote model against a real HTTP server on 127.0.0.1', () => {
  it('sends the chat request with the bearer key and images as PNG data URLs, and reads the reply', async () => {
    handler = (_req, res) => json(res, 200, completion('A red pixel.'));
    const r = await model().generate(
      {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: '<image>\nWhat is in the image?' },
        ],
        images: [image],
      },
      { maxNewTokens: 8, temperature: 0.2, stop: ['\n'], seed: 3 },
    );
    expect(r).toEqual({ text: 'A red pixel.', tokenIds: [], finishReason: 'stop', usage: { promptTokens: 12, completionTokens: 3 } });
    expect(seen).toHaveLength(1);
    const req = seen[0];
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.body).toMatchObject({ model: 'tiny-vlm', stream: false, max_tokens: 8, temperature: 0.2, stop: ['\n'], seed: 3 });
    const messages = req.body.messages as { role: string; content: unknown }[];
    expect(messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
    const parts = messages[1].content as { type: string; text?: string; image_url?: { url: string } }[];
    expect(parts.map((p) => p.type)).toEqual(['image_url', 'text']);
    expect(parts[1].text).toBe('\nWhat is in the image?');
    const url = parts[0].image_url!.url;
    expect(url.startsWith('data:image/png;base64,')).toBe(true);
    const decoded = await runtime.images.decode(new Uint8Array(Buffer.from(url.slice('data:image/png;base64,'.length), 'base64')));
    expect(Array.from(decoded.data)).toEqual(Array.from(image.data));
  });

  it('streams tokens over server-sent events', async () => {
    handler = (req, res) =>
      fakeStep.stream([
        ...['A ', 'red', ' pixel', '.'].map((piece) => ({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })),
        `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'length' }], usage: { prompt_tokens: 4, completion_tokens: 4 } })}\r\n\r\n`,
      ])(res, req);
    const got: string[] = [];
    const r = await model().chat([{ role: 'user', content: 'hi' }], { onToken: (t) => got.push(t) });
    expect(got).toEqual(['A ', 'red', ' pixel', '.']);
    expect(r).toEqual({ text: 'A red pixel.', finishReason: 'length', usage: { promptTokens: 4, completionTokens: 4 }, attempts: 1 });
    expect(seen[0].body.stream).toBe(true);
  });

  it('retries 429 and 5xx with backoff (Retry-After honoured) and then succeeds', async () => {
    handler = (_req, res, n) => {
      if (n === 1) return json(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '0' });
      if (n === 2) return json(res, 503, { error: { message: 'overloaded' } });
      json(res, 200, completion('ok'));
    };
    const r = await model().chat([{ role: 'user', content: 'hi' }]);
    expect(r.text).toBe('ok');
    expect(r.attempts).toBe(3);
    expect(seen).toHaveLength(3);
  });

  it('reports each retry to onRetry (status, reason, wait; never the key), and nothing on success', async () => {
    handler = (_req, res, n) => {
      if (n === 1) return json(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '0' });
      if (n === 2) return json(res, 503, { error: { message: `overloaded for ${KEY}` } });
      if (n === 3) return; // never answers: a timeout
      json(res, 200, completion('ok'));
    };
    const events: Array<Record<string, unknown>> = [];
    const r = await model({
      backoff: { initialMs: 4, maxMs: 100, jitter: 0 },
      maxRetryAfterMs: 100,
      timeoutMs: 150,
      onRetry: (e) => events.push({ ...e }),
    }).chat([{ role: 'user', content: 'hi' }]);
    expect(r).toMatchObject({ text: 'ok', attempts: 4 });
    // Backoff 4 * 2^(n-1) without jitter; Retry-After: 0 from the server wins on the first.
    expect(events.map(({ attempt, status, reason, delayMs, retryAfter }) => ({ attempt, status, reason, delayMs, retryAfter }))).toEqual([
      { attempt: 1, status: 429, reason: 'http-429', delayMs: 0, retryAfter: true },
      { attempt: 2, status: 503, reason: 'http-503', delayMs: 8, retryAfter: false },
      { attempt: 3, status: undefined, reason: 'timeout', delayMs: 16, retryAfter: false },
    ]);
    expect(events[2].message).toMatch(/timed out/);
    expect(JSON.stringify(events)).not.toContain(KEY);
    const quiet: unknown[] = [];
    handler = (_req, res) => json(res, 200, completion('ok'));
    await model({ onRetry: (e) => quiet.push(e) }).chat([{ role: 'user', content: 'hi' }]);
    expect(quiet).toEqual([]);
  });

  it('gives up after maxRetries with a typed error naming the status and attempts', async () => {
    handler = (_req, res) => json(res, 500, { error: { message: 'boom' } });
    const err = await model({ maxRetries: 2 })
      .chat([{ role: 'user', content: 'hi' }])
      .catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_BACKEND')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ status: 500, attempts: 3, retryable: true });
    expect((err as Error).message).toContain('boom');
    expect(seen).toHaveLength(3);
  });

  it('does not retry a 401, and never puts the key in the error (even when the server echoes it)', async () => {
    handler = (req, res) => json(res, 401, { error: { message: `Incorrect API key provided: ${String(req.headers.authorization)}` } });
    const err = await model()
      .chat([{ role: 'user', content: 'hi' }])
      .catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_BACKEND')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ status: 401, attempts: 1, retryable: false });
    expect(seen).toHaveLength(1);
    const everything = JSON.stringify({ message: (err as Error).message, details: (err as { details: unknown }).details, cause: String((err as Error).cause) });
    expect(everything).not.toContain(KEY);
    expect((err as Error).message).toContain('[redacted]');
  });

  it('retries network errors and timeouts, then fails with a typed error', async () => {
    const closed = createOpenAICompatibleModel({
      baseURL: `http://127.0.0.1:${await closedPort()}/v1`,
      apiKey: KEY,
      model: 'x',
      maxRetries: 1,
      backoff: { initialMs: 1 },
    });
    const net = await closed.chat([{ role: 'user', content: 'hi' }]).catch((e: unknown) => e);
    expect(isVlitError(net, 'VLIT_BACKEND')).toBe(true);
    expect((net as Error).message).toMatch(/network error/);
    expect((net as { details: Record<string, unknown> }).details).toMatchObject({ attempts: 2 });
    handler = () => undefined; // never answers
    const slow = await model({ timeoutMs: 100, maxRetries: 1 })
      .chat([{ role: 'user', content: 'hi' }])
      .catch((e: unknown) => e);
    expect(isVlitError(slow, 'VLIT_BACKEND')).toBe(true);
    expect((slow as Error).message).toMatch(/timed out/);
    expect(seen).toHaveLength(2);
  });

  it('refuses what it cannot do with typed errors: scoring, images without a codec, too few images', async () => {
    handler = (_req, res) => json(res, 200, completion('ok'));
    await expect(model().score({ messages: [{ role: 'user', content: 'q' }] }, ['a'])).rejects.toMatchObject({ code: 'VLIT_UNSUPPORTED' });
    await expect(model({ images: undefined }).generate({ messages: [{ role: 'user', content: '<image> q' }], images: [image] })).rejects.toMatchObject({
      code: 'VLIT_INVALID_ARGUMENT',
    });
    await expect(model().generate({ messages: [{ role: 'user', content: '<image><image> q' }], images: [image] })).rejects.toMatchObject({
      code: 'VLIT_INVALID_ARGUMENT',
    });
    expect(() => createOpenAICompatibleModel({ baseURL: 'ftp://x', model: 'm' })).toThrowError(expect.objectContaining({ code: 'VLIT_INVALID_ARGUMENT' }));
    expect(seen).toHaveLength(0);
  });
});
