// The shared chat-completions client against a real HTTP server on 127.0.0.1 that replies from a
// per-request script: 429s with Retry-After, 5xx, replies slower than the timeout, malformed bodies,
// 401s that echo the key, server-sent event streams. The one exception to using the test kit's fake
// server (`startFakeOpenAIServer` in @vlit/test-kit/node): core cannot depend on the test kit, which
// depends on core, so this file keeps its own small server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { text as readText } from 'node:stream/consumers';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isVlitError } from '../errors.js';
import { createChatCompletionsClient, parseRetryAfter, type ChatCompletionsClientOptions, type ChatCompletionsRetryEvent } from './chat-completions.js';
import { createConcurrencyLimiter } from './limiter.js';

const KEY = 'sk-test-SECRET-0123456789';
const messages = [{ role: 'user' as const, content: 'hello' }];

interface Seen {
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}
type Step = (res: ServerResponse, req: Seen) => void | Promise<void>;

let server: Server;
let baseURL: string;
let script: Step[] = [];
let fallback: Step;
let seen: Seen[] = [];
let inFlight = 0;
let maxInFlight = 0;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}
const reply = (text: string, finish = 'stop') => ({
  id: 'c1',
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finish }],
  usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
});
const ok: Step = (res, req) => json(res, 200, reply(`echo ${JSON.stringify(req.body.messages)}`));
const status =
  (code: number, body: unknown = { error: { message: 'boom' } }, headers: Record<string, string> = {}): Step =>
  (res) =>
    json(res, code, body, headers);
// Replies after `ms`, or never once the client has hung up (no timer outlives the connection).
const slow =
  (ms: number): Step =>
  async (res, req) => {
    const hungUp = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      res.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!hungUp) ok(res, req);
  };
const sse =
  (events: string[], gapMs = 2): Step =>
  async (res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const e of events) {
      if (res.destroyed) return;
      res.write(e);
      await new Promise((r) => setTimeout(r, gapMs));
    }
    res.end();
  };
const data = (chunk: unknown, sep = '\n\n') => `data: ${JSON.stringify(chunk)}${sep}`;

/** Log the request, check its route and key, then answer with the step scripted for it. */
async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const text = await readText(req);
  const s: Seen = { headers: req.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  const n = seen.push(s) - 1;
  if (req.url !== '/v1/chat/completions') return json(res, 404, { error: { message: `no route ${req.url}` } });
  if (req.headers.authorization !== `Bearer ${KEY}`) {
    // Echo the presented key, as some servers do, so redaction can be tested.
    return json(res, 401, { error: { message: `Incorrect API key provided: ${String(req.headers.authorization)}` } });
  }
  await (script[n] ?? fallback)(res, s);
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    // A request counts as in flight while its step runs: every step here has ended its reply (or seen
    // the client hang up) when it returns, before the client can read the reply and send another.
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await answer(req, res);
    } finally {
      inFlight--;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  script = [];
  fallback = ok;
  seen = [];
  maxInFlight = 0;
});

function recordingSleep() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}
function client(extra: Partial<ChatCompletionsClientOptions> = {}) {
  return createChatCompletionsClient({ baseURL, apiKey: KEY, ...extra });
}

describe('chat-completions client: retries, backoff and Retry-After', () => {
  it('honours Retry-After on 429 and retries 5xx with exponential backoff and jitter', async () => {
    script = [status(429, { error: 'slow down' }, { 'retry-after': '7' }), status(500), status(503), status(502), ok];
    const { delays, sleep } = recordingSleep();
    const events: ChatCompletionsRetryEvent[] = [];
    const c = client({ sleep, backoff: { initialMs: 100, maxMs: 250 }, onRetry: (e) => events.push(e) });
    const r = await c.complete({ model: 'm', messages, temperature: 0.2, seed: 1 });
    expect(r.attempts).toBe(5);
    expect(r.response.choices[0].message.content).toBe('echo [{"role":"user","content":"hello"}]');
    expect(r.response.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 2 });
    expect(events.map((e) => `${e.reason}${e.retryAfter ? ' (retry-after)' : ''}`)).toEqual(['http-429 (retry-after)', 'http-500', 'http-503', 'http-502']);
    expect(events.map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
    expect(events[1]).toMatchObject({ status: 500, message: 'HTTP 500: boom' });
    // 7 s from the header, then retries 2..4 wait in [d/2, d] with d = min(250, 100 * 2^(n-1)) = 200, 250, 250.
    expect(delays).toHaveLength(4);
    expect(delays[0]).toBe(7000);
    const caps = [200, 250, 250];
    delays.slice(1).forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(caps[i] / 2);
      expect(d).toBeLessThanOrEqual(caps[i]);
    });
    // Every attempt sent the same body, with the key only in the Authorization header.
    expect(seen).toHaveLength(5);
    for (const s of seen) {
      expect(s.body).toEqual({ model: 'm', messages, temperature: 0.2, seed: 1 });
      expect(s.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(s.headers.accept).toBe('application/json');
    }
  });

  it('waits exactly d without jitter, and d * (1 - jitter) + u * d * jitter with it', async () => {
    script = [status(500), status(500), status(500), ok];
    const plain = recordingSleep();
    await client({ sleep: plain.sleep, backoff: { initialMs: 10, maxMs: 30, jitter: 0 } }).complete({ model: 'm', messages });
    expect(plain.delays).toEqual([10, 20, 30]);
    script = [status(500), status(500), ok];
    seen = [];
    const jittered = recordingSleep();
    await client({ sleep: jittered.sleep, random: () => 0.25, backoff: { initialMs: 100, maxMs: 1000, jitter: 0.4 } }).complete({ model: 'm', messages });
    // d = 100: 60 + 0.25 * 40 = 70; d = 200: 120 + 0.25 * 80 = 140.
    expect(jittered.delays).toEqual([70, 140]);
  });

  it('reads Retry-After as an HTTP date and cuts it to maxRetryAfterMs', async () => {
    const inTenMinutes = new Date(Date.now() + 600_000).toUTCString();
    script = [status(503, 'busy', { 'retry-after': inTenMinutes }), status(429, 'busy', { 'retry-after': '0.25' }), ok];
    const { delays, sleep } = recordingSleep();
    const r = await client({ sleep, maxRetryAfterMs: 5000 }).complete({ model: 'm', messages });
    expect(r.attempts).toBe(3);
    expect(delays).toEqual([5000, 250]);
  });

  it('retries timeouts, malformed JSON bodies and bodies without choices', async () => {
    // The limit applies to every attempt: it is far above what a local reply takes, far below the slow one.
    script = [slow(10_000), status(200, '{"choices":[{"mess'), status(200, { object: 'chat.completion', choices: [] }), ok];
    const { sleep } = recordingSleep();
    const reasons: string[] = [];
    const r = await client({ sleep, timeoutMs: 1000, onRetry: (e) => reasons.push(e.reason) }).complete({ model: 'm', messages });
    expect(reasons).toEqual(['timeout', 'malformed-json', 'malformed-response']);
    expect(r.attempts).toBe(4);
  });

  it('gives up after maxRetries with a typed error naming status, reason and attempts', async () => {
    fallback = status(500);
    const { sleep } = recordingSleep();
    const err = (await client({ sleep, maxRetries: 2 })
      .complete({ model: 'm', messages })
      .catch((e: unknown) => e)) as Error & { details: Record<string, unknown> };
    expect(isVlitError(err, 'VLIT_BACKEND')).toBe(true);
    expect(err.details).toMatchObject({ status: 500, attempts: 3, reason: 'http-500', retryable: true, model: 'm', endpoint: `${baseURL}/chat/completions` });
    expect(err.message).toContain('boom');
    expect(err.message).toContain('gave up after 3 attempts');
    expect(seen).toHaveLength(3);
  });

  it('fails fast on 401 and 404, never revealing the key (even when the server echoes it)', async () => {
    const wrongKey = `${KEY}-wrong`;
    const events: unknown[] = [];
    const bad = createChatCompletionsClient({ baseURL, apiKey: wrongKey, onRetry: (e) => events.push(e) });
    const authErr = (await bad.complete({ model: 'm', messages }).catch((e: unknown) => e)) as Error & { details: Record<string, unknown> };
    expect(seen).toHaveLength(1);
    expect(isVlitError(authErr, 'VLIT_BACKEND')).toBe(true);
    expect(authErr.details).toMatchObject({ status: 401, attempts: 1, retryable: false, reason: 'http-401' });
    const everything = `${authErr.message} ${JSON.stringify(authErr.details)} ${authErr.stack} ${String(authErr.cause)} ${JSON.stringify(events)}`;
    expect(everything).not.toContain(wrongKey);
    expect(authErr.message).toContain('[redacted]');

    const lost = createChatCompletionsClient({ baseURL: baseURL.replace('/v1', '/nowhere'), apiKey: KEY, maxRetries: 3 });
    const notFound = (await lost.complete({ model: 'm', messages: [] }).catch((e: unknown) => e)) as { details: Record<string, unknown> };
    expect(notFound.details).toMatchObject({ status: 404, attempts: 1 });
    expect(seen).toHaveLength(2);
  });

  it('retries network errors, then fails with a typed error', async () => {
    // The server hangs up without a reply, as a crashed server or a dropping proxy does.
    fallback = (res) => void res.socket?.destroy();
    const reasons: string[] = [];
    const dropped = client({ maxRetries: 1, backoff: { initialMs: 1 }, onRetry: (e) => reasons.push(e.reason) });
    const err = (await dropped.complete({ model: 'm', messages }).catch((e: unknown) => e)) as Error & { details: Record<string, unknown> };
    expect(isVlitError(err, 'VLIT_BACKEND')).toBe(true);
    expect(err.message).toMatch(/network error/);
    expect(err.details).toMatchObject({ reason: 'network', attempts: 2 });
    expect(reasons).toEqual(['network']);
  });

  it('keeps at most maxConcurrency requests in flight', async () => {
    // The server holds each request until three are held, then answers those three, so three are in
    // flight at once whatever the timing. While it holds them, the client may have sent no fourth:
    // requests sent (counted in fetch) minus requests answered is checked at every hold.
    let sent = 0;
    let answered = 0;
    let unanswered = 0;
    const countingFetch: typeof fetch = (input, init) => {
      sent++;
      return fetch(input, init);
    };
    let held: Array<() => void> = [];
    fallback = async (res, req) => {
      await new Promise<void>((release) => {
        held.push(release);
        unanswered = Math.max(unanswered, sent - answered);
        if (held.length < 3) return;
        const batch = held;
        held = [];
        for (const r of batch) r();
      });
      answered++;
      ok(res, req);
    };
    const c = client({ maxConcurrency: 3, timeoutMs: 5000, fetch: countingFetch });
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => c.complete({ model: 'm', messages: [{ role: 'user', content: `q${i}` }] })));
    expect(sent).toBe(12);
    expect(seen).toHaveLength(12);
    expect(unanswered).toBe(3);
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(maxInFlight).toBe(3);
    expect(replies.map((r) => r.response.choices[0].message.content)).toEqual(Array.from({ length: 12 }, (_, i) => `echo [{"role":"user","content":"q${i}"}]`));
  });

  it('stops at once when the caller aborts, during a request or a backoff wait', async () => {
    // The caller aborts as the server receives the request (which is never answered).
    const controller = new AbortController();
    fallback = () => controller.abort();
    const err = (await client({ timeoutMs: 10_000 })
      .complete({ model: 'm', messages }, { signal: controller.signal })
      .catch((e: unknown) => e)) as { details: Record<string, unknown> };
    expect(isVlitError(err, 'VLIT_BACKEND')).toBe(true);
    expect(err.details).toMatchObject({ reason: 'aborted', aborted: true, retryable: false });
    expect(seen).toHaveLength(1);

    fallback = status(503, 'busy', { 'retry-after': '3600' });
    seen = [];
    const waiting = new AbortController();
    const delays: number[] = [];
    // The caller aborts as the backoff wait begins (an hour asked for, cut to the 120 s default).
    const onRetry = (e: ChatCompletionsRetryEvent): void => {
      delays.push(e.delayMs);
      waiting.abort();
    };
    const err2 = (await client({ onRetry })
      .complete({ model: 'm', messages }, { signal: waiting.signal })
      .catch((e: unknown) => e)) as { details: Record<string, unknown> };
    expect(err2.details).toMatchObject({ reason: 'aborted', attempts: 1 });
    expect(delays).toEqual([120_000]);
    expect(seen).toHaveLength(1);
  });

  it('refuses bad options and request bodies before sending anything', async () => {
    expect(() => createChatCompletionsClient({ baseURL: 'ftp://x' })).toThrowError(expect.objectContaining({ code: 'VLIT_INVALID_ARGUMENT' }));
    expect(() => client({ maxRetries: -1 })).toThrowError(expect.objectContaining({ code: 'VLIT_INVALID_ARGUMENT' }));
    expect(() => client({ maxConcurrency: 0 })).toThrow(/positive integer/);
    const c = client();
    await expect(c.complete({ model: '', messages })).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    await expect(c.complete({ model: 'm', messages: [{ role: 'robot', content: 'x' }] } as never)).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    await expect(c.complete({ model: 'm', messages, stream: true })).rejects.toMatchObject({ code: 'VLIT_INVALID_ARGUMENT' });
    expect(seen).toHaveLength(0);
    expect(c.endpoint).toBe(`${baseURL}/chat/completions`);
    expect(createChatCompletionsClient({ baseURL: `${baseURL}//` }).baseURL).toBe(baseURL);
  });
});

describe('chat-completions client: streaming', () => {
  it('yields the chunks of a server-sent event stream (LF and CRLF separated) until [DONE]', async () => {
    script = [
      sse([
        ': keep-alive comment\n\n',
        data({ choices: [{ index: 0, delta: { role: 'assistant', content: 'A ' }, finish_reason: null }] }),
        data({ choices: [{ index: 0, delta: { content: 'red' }, finish_reason: null }] }, '\r\n\r\n'),
        // One event split across two writes.
        'data: {"choices":[{"index":0,"delta":{"content":" pix',
        'el."},"finish_reason":null}]}\n\n',
        data({ choices: [{ index: 0, delta: {}, finish_reason: 'length' }] }),
        data({ choices: [], usage: { prompt_tokens: 4, completion_tokens: 3 } }),
        'data: [DONE]\n\n',
        data({ choices: [{ index: 0, delta: { content: 'after done' } }] }),
      ]),
    ];
    const s = await client().stream({ model: 'm', messages, max_tokens: 8 });
    expect(s.attempts).toBe(1);
    const chunks = [];
    for await (const c of s) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? null)).toEqual(['A ', 'red', ' pixel.', null, null]);
    expect(chunks.map((c) => c.choices[0]?.finish_reason ?? null)).toEqual([null, null, null, 'length', null]);
    expect(chunks[4].usage).toEqual({ prompt_tokens: 4, completion_tokens: 3 });
    expect(seen[0].body).toEqual({ model: 'm', messages, max_tokens: 8, stream: true });
    expect(seen[0].headers.accept).toBe('text/event-stream');
  });

  it('retries opening a stream on 503, then holds the concurrency slot until the stream ends', async () => {
    script = [status(503), sse([data({ choices: [{ delta: { content: 'x' } }] }), 'data: [DONE]\n\n']), sse(['data: [DONE]\n\n'])];
    const { sleep } = recordingSleep();
    const text: string[] = [];
    // How much of the first stream the caller had read when each request went out.
    const readAtSend: number[] = [];
    const countingFetch: typeof fetch = (input, init) => {
      readAtSend.push(text.length);
      return fetch(input, init);
    };
    const c = client({ sleep, maxConcurrency: 1, fetch: countingFetch });
    const first = await c.stream({ model: 'm', messages });
    expect(first.attempts).toBe(2);
    // The second request waits for the slot the first stream holds: it goes out only once the first
    // stream has been read to its end, never while it is still open.
    const second = c.stream({ model: 'm', messages });
    expect(readAtSend).toEqual([0, 0]);
    for await (const chunk of first) text.push(chunk.choices[0]?.delta?.content ?? '');
    expect(text).toEqual(['x']);
    const s2 = await second;
    expect(readAtSend).toEqual([0, 0, 1]);
    for await (const _ of s2) throw new Error('no chunks expected');
    expect(seen).toHaveLength(3);
  });

  it('turns an error event, a non-JSON event and an abort into typed errors', async () => {
    script = [sse([data({ choices: [{ delta: { content: 'a' } }] }), data({ error: { message: `overloaded ${KEY}` } })])];
    const s = await client().stream({ model: 'm', messages });
    const got: string[] = [];
    const err = (await (async () => {
      for await (const c of s) got.push(c.choices[0]?.delta?.content ?? '');
    })().catch((e: unknown) => e)) as Error & { details: Record<string, unknown> };
    expect(got).toEqual(['a']);
    expect(err.details).toMatchObject({ reason: 'stream-error', status: 200, attempts: 1 });
    expect(err.message).toContain('overloaded [redacted]');

    script = [sse(['data: {not json\n\n'])];
    seen = [];
    const bad = await client().stream({ model: 'm', messages });
    await expect(
      (async () => {
        for await (const _ of bad) void _;
      })(),
    ).rejects.toMatchObject({ code: 'VLIT_BACKEND', details: { reason: 'malformed-json' } });

    script = [
      sse(
        Array.from({ length: 200 }, (_, i) => data({ choices: [{ delta: { content: `${i}` } }] })),
        10,
      ),
    ];
    seen = [];
    const controller = new AbortController();
    const long = await client().stream({ model: 'm', messages }, { signal: controller.signal });
    let n = 0;
    const aborted = await (async () => {
      for await (const _ of long) if (++n === 3) controller.abort();
    })().catch((e: unknown) => e);
    expect(isVlitError(aborted, 'VLIT_BACKEND')).toBe(true);
    expect((aborted as { details: Record<string, unknown> }).details).toMatchObject({ reason: 'aborted', aborted: true });
    expect(n).toBe(3);
  });
});

describe('parseRetryAfter and the concurrency limiter', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter('-3')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
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
    expect(limiter.active).toBe(0);
    expect(() => createConcurrencyLimiter(0)).toThrow(/positive integer/);
  });

  it('hands out slots with acquire; releasing twice frees one slot only', async () => {
    const limiter = createConcurrencyLimiter(1);
    const release = await limiter.acquire();
    let second = false;
    const waiting = limiter.acquire().then((r) => {
      second = true;
      return r;
    });
    // The second caller is queued, not admitted.
    expect(limiter.waiting).toBe(1);
    expect(limiter.active).toBe(1);
    expect(second).toBe(false);
    release();
    release();
    const release2 = await waiting;
    expect(second).toBe(true);
    expect(limiter.active).toBe(1);
    expect(limiter.waiting).toBe(0);
    release2();
    expect(limiter.active).toBe(0);
  });
});
