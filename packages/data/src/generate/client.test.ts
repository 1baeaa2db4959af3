import { isVlitError } from '@vlit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createChatCompletionClient, parseRetryAfter } from './client.js';
import { canonicalJson, promptHash, sha256Hex } from './hash.js';
import { createConcurrencyLimiter } from './limiter.js';
import { startFakeServer, type FakeServer } from './test-server.js';

const KEY = 'sk-test-SECRET-0123456789';
const messages = [{ role: 'user' as const, content: 'hello' }];
let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function recordingSleep() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}

describe('chat-completions client against a real local server', () => {
  it('honours Retry-After on 429 and retries 500s with exponential backoff and jitter', async () => {
    server = await startFakeServer({ apiKey: KEY, script: ['429', '500', '500', '500', 'ok'], retryAfter: '7' });
    const { delays, sleep } = recordingSleep();
    const events: string[] = [];
    const client = createChatCompletionClient({
      baseUrl: server.baseUrl, apiKey: KEY, model: 'm', sleep, backoff: { initialMs: 100, maxMs: 250 },
      onRetry: (e) => events.push(`${e.reason}${e.retryAfter ? ' (retry-after)' : ''}`),
    });
    const result = await client.complete({ messages });
    expect(result.content).toBe('User: What is this?\nAssistant: A test image.');
    expect(result.attempts).toBe(5);
    expect(events).toEqual(['http-429 (retry-after)', 'http-500', 'http-500', 'http-500']);
    // 7 s from the header, then retries 2..4 wait in [d/2, d] with d = min(250, 100 * 2^(n-1)) = 200, 250, 250.
    expect(delays[0]).toBe(7000);
    const caps = [200, 250, 250];
    delays.slice(1).forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(caps[i] / 2);
      expect(d).toBeLessThanOrEqual(caps[i]);
    });
  });

  it('retries timeouts, malformed JSON bodies and bodies without choices', async () => {
    server = await startFakeServer({ apiKey: KEY, script: ['slow', 'malformed', 'no-choices', 'ok'], slowMs: 2000 });
    const { sleep } = recordingSleep();
    const reasons: string[] = [];
    const client = createChatCompletionClient({ baseUrl: server.baseUrl, apiKey: KEY, model: 'm', sleep, timeoutMs: 150, onRetry: (e) => reasons.push(e.reason) });
    const result = await client.complete({ messages });
    expect(reasons).toEqual(['timeout', 'malformed-json', 'malformed-response']);
    expect(result.attempts).toBe(4);
  });

  it('gives up with a typed error after maxRetries and fails fast on 401, never revealing the key', async () => {
    server = await startFakeServer({ apiKey: KEY, script: ['500', '500', '500'] });
    const { sleep } = recordingSleep();
    const client = createChatCompletionClient({ baseUrl: server.baseUrl, apiKey: KEY, model: 'm', sleep, maxRetries: 2 });
    const err = await client.complete({ messages }).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_BACKEND')).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ status: 500, attempts: 3, reason: 'http-500' });

    const wrongKey = `${KEY}-wrong`;
    const before = server.requests;
    const bad = createChatCompletionClient({ baseUrl: server.baseUrl, apiKey: wrongKey, model: 'm', sleep });
    const authErr = (await bad.complete({ messages }).catch((e: unknown) => e)) as Error & { details: Record<string, unknown> };
    expect(server.requests - before).toBe(1);
    expect(authErr.details.status).toBe(401);
    // The server echoed the key it was sent; the error must not carry it anywhere.
    const everything = `${authErr.message} ${JSON.stringify(authErr.details)} ${authErr.stack}`;
    expect(everything).not.toContain(wrongKey);
    expect(everything).toContain('[redacted]');
  });

  it('keeps at most maxConcurrency requests in flight', async () => {
    server = await startFakeServer({ apiKey: KEY, script: Array(12).fill('slow'), slowMs: 60 });
    const client = createChatCompletionClient({ baseUrl: server.baseUrl, apiKey: KEY, model: 'm', maxConcurrency: 3, timeoutMs: 5000 });
    await Promise.all(Array.from({ length: 12 }, (_, i) => client.complete({ messages: [{ role: 'user', content: `q${i}` }] })));
    expect(server.maxInFlight).toBe(3);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('prompt hash and limiter', () => {
  it('hashes with SHA-256 over canonical JSON (key order does not matter)', async () => {
    // Known SHA-256 test vector.
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    const a = await promptHash({ model: 'm', messages, params: { temperature: 0.2, seed: 1 } });
    const b = await promptHash({ model: 'm', messages, params: { seed: 1, temperature: 0.2 } });
    const c = await promptHash({ model: 'm', messages, params: { seed: 2, temperature: 0.2 } });
    const d = await promptHash({ model: 'other', messages, params: { seed: 1, temperature: 0.2 } });
    expect(a).toBe(b);
    expect(new Set([a, c, d]).size).toBe(3);
    expect(a).toBe(await sha256Hex('{"messages":[{"content":"hello","role":"user"}],"model":"m","params":{"seed":1,"temperature":0.2}}'));
  });

  it('limits concurrency and runs waiters in order', async () => {
    const limiter = createConcurrencyLimiter(2);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        limiter.run(async () => {
          active++;
          peak = Math.max(peak, active);
          order.push(i);
          await new Promise((r) => setTimeout(r, 5));
          active--;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(() => createConcurrencyLimiter(0)).toThrow(/positive integer/);
  });
});
