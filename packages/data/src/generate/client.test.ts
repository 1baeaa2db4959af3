import { isVlitError } from '@vlit/core';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createChatCompletionClient } from './client.js';
import { canonicalJson, promptHash, sha256Hex } from './hash.js';
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

// Retries, backoff, Retry-After, timeouts and the limiter are tested with core's client
// (packages/core/src/openai); these check the adapter: its errors and its concurrency default.
describe('chat-completions client against a real local server', () => {
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
    // A real server on 127.0.0.1 that holds each request until three are held, then answers those
    // three: three are in flight at once whatever the timing. While it holds them, the client may
    // have sent no fourth: requests sent (counted in fetch) minus requests answered is checked at every hold.
    let sent = 0;
    let answered = 0;
    let unanswered = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    let held: Array<() => void> = [];
    const gated = createServer(async (req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let counted = true;
      const done = (): void => {
        if (counted) inFlight--;
        counted = false;
      };
      res.once('finish', done);
      res.once('close', done);
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: Array<{ content: string }> };
      await new Promise<void>((release) => {
        held.push(release);
        unanswered = Math.max(unanswered, sent - answered);
        if (held.length < 3) return;
        const batch = held;
        held = [];
        for (const r of batch) r();
      });
      answered++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: `re ${body.messages[0].content}` }, finish_reason: 'stop' }] }));
    });
    await new Promise<void>((resolve) => gated.listen(0, '127.0.0.1', resolve));
    try {
      const baseUrl = `http://127.0.0.1:${(gated.address() as AddressInfo).port}/v1`;
      const countingFetch: typeof fetch = (input, init) => {
        sent++;
        return fetch(input, init);
      };
      const client = createChatCompletionClient({ baseUrl, apiKey: KEY, model: 'm', maxConcurrency: 3, timeoutMs: 5000, fetch: countingFetch });
      const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => client.complete({ messages: [{ role: 'user', content: `q${i}` }] })));
      expect(replies.map((r) => r.content)).toEqual(Array.from({ length: 12 }, (_, i) => `re q${i}`));
      expect(sent).toBe(12);
      expect(unanswered).toBe(3);
      expect(maxInFlight).toBeLessThanOrEqual(3);
      expect(maxInFlight).toBe(3);
    } finally {
      gated.closeAllConnections();
      await new Promise((resolve) => gated.close(resolve));
    }
  });
});

describe('prompt hash', () => {
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
});
