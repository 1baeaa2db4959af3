// The test kit's fake OpenAI-compatible server, driven by plain fetch (what any client sends) and by
// core's chat-completions client (the one client the packages use).
import { createChatCompletionsClient, type ChatCompletionsRetryEvent } from '@vlit/core/openai';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeStep, startFakeOpenAIServer, type FakeOpenAIServer } from './openai-server.js';

const KEY = 'sk-test-SECRET-42';
const messages = [{ role: 'user' as const, content: 'hello' }];
let server: FakeOpenAIServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const post = (baseURL: string, body: unknown, key = KEY, path = '/chat/completions') =>
  fetch(`${baseURL}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('startFakeOpenAIServer', () => {
  it('answers from the script, then the fallback, and logs every request', async () => {
    server = await startFakeOpenAIServer({ apiKey: KEY, script: [fakeStep.status(503), fakeStep.reply('first')] });
    const a = await post(server.baseURL, { model: 'm', messages });
    expect(a.status).toBe(503);
    expect(await a.json()).toEqual({ error: { message: 'boom' } });
    const b = (await (await post(server.baseURL, { model: 'm', messages })).json()) as { choices: Array<{ message: { content: string } }>; model: string };
    expect(b.choices[0].message.content).toBe('first');
    expect(b.model).toBe('m');
    const c = (await (await post(server.baseURL, { model: 'm', messages })).json()) as { choices: Array<{ message: { content: string } }> };
    // The default fallback echoes the messages as JSON.
    expect(c.choices[0].message.content).toBe('echo [{"role":"user","content":"hello"}]');
    const wrong = await post(server.baseURL, { model: 'm', messages }, 'other-key');
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('other-key');
    expect((await post(server.baseURL, {}, KEY, '/models')).status).toBe(404);
    expect(server.requests.map((r) => [r.n, r.method, r.path])).toEqual([
      [0, 'POST', '/v1/chat/completions'],
      [1, 'POST', '/v1/chat/completions'],
      [2, 'POST', '/v1/chat/completions'],
      [3, 'POST', '/v1/chat/completions'],
      [4, 'POST', '/v1/models'],
    ]);
    expect(server.requests[0].body).toEqual({ model: 'm', messages });
    expect(server.requests[0].headers.authorization).toBe(`Bearer ${KEY}`);
    server.reset();
    expect(server.requests).toHaveLength(0);
  });

  it('drives core client retries: Retry-After, 5xx, a malformed body, then success', async () => {
    server = await startFakeOpenAIServer({ apiKey: KEY, script: [fakeStep.retryAfter('7'), fakeStep.status(500), fakeStep.malformed()] });
    const delays: number[] = [];
    const events: ChatCompletionsRetryEvent[] = [];
    const client = createChatCompletionsClient({
      baseURL: server.baseURL,
      apiKey: KEY,
      sleep: async (ms) => void delays.push(ms),
      onRetry: (e) => events.push(e),
    });
    const r = await client.complete({ model: 'm', messages });
    expect(r.attempts).toBe(4);
    expect(events.map((e) => e.reason)).toEqual(['http-429', 'http-500', 'malformed-json']);
    expect(delays[0]).toBe(7000);
    expect(server.requests).toHaveLength(4);
  });

  it('holds a request until the test releases it, counting it in flight meanwhile', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    server = await startFakeOpenAIServer({ script: [fakeStep.hold(released, fakeStep.reply('late'))] });
    const arrived = server.nextRequest();
    const client = createChatCompletionsClient({ baseURL: server.baseURL });
    const reply = client.complete({ model: 'm', messages });
    const seen = await arrived;
    expect(seen.n).toBe(0);
    expect(server.inFlight).toBe(1);
    release();
    expect((await reply).response.choices[0].message.content).toBe('late');
    expect(server.maxInFlight).toBe(1);
  });

  it('a held request the client gives up on is never answered, and the client retries', async () => {
    server = await startFakeOpenAIServer({ script: [fakeStep.hold()] });
    const reasons: string[] = [];
    const client = createChatCompletionsClient({
      baseURL: server.baseURL,
      timeoutMs: 300,
      sleep: async () => undefined,
      onRetry: (e) => reasons.push(e.reason),
    });
    const r = await client.complete({ model: 'm', messages });
    // The first attempt can only time out; on a busy machine a later one may too, never anything else.
    expect(reasons[0]).toBe('timeout');
    expect(new Set(reasons)).toEqual(new Set(['timeout']));
    expect(r.attempts).toBe(reasons.length + 1);
    expect(server.requests).toHaveLength(r.attempts);
  });

  it('streams server-sent events that core client reads chunk by chunk until [DONE]', async () => {
    server = await startFakeOpenAIServer({
      script: [
        fakeStep.stream([{ choices: [{ index: 0, delta: { content: 'A ' } }] }, { choices: [{ index: 0, delta: { content: 'cat' }, finish_reason: 'stop' }] }]),
      ],
    });
    const s = await createChatCompletionsClient({ baseURL: server.baseURL }).stream({ model: 'm', messages });
    const text: string[] = [];
    for await (const chunk of s) text.push(chunk.choices[0]?.delta?.content ?? '');
    expect(text).toEqual(['A ', 'cat']);
    expect(server.requests[0].body.stream).toBe(true);
  });
});
