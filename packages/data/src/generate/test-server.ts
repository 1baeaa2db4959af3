// Test support (not exported): a real OpenAI-compatible chat-completions server on 127.0.0.1 that
// injects 429s, 500s, slow replies and malformed JSON, driven by a seeded schedule.
import { createRng } from '@vlit/core';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'ok' | '429' | '500' | 'slow' | 'malformed' | 'no-choices';

export interface FakeServerOptions {
  apiKey: string;
  /** Seed of the fault schedule. */
  seed?: number;
  /** Chance of each fault on an attempt that is still allowed to fail. */
  faults?: Partial<Record<Exclude<Fault, 'ok'>, number>>;
  /** After this many failed attempts for one prompt, the next one succeeds. Default 3. */
  maxFaultsPerPrompt?: number;
  /** How long a slow reply takes (longer than the client's timeout). */
  slowMs?: number;
  /** Retry-After header value sent with 429s (omitted when undefined). */
  retryAfter?: string;
  /** Reply content for a request; default: echo-based conversation. */
  reply?: (request: { messages: Array<{ role: string; content: string }>; model: string; seed?: number }) => string;
  /** Fixed fault script for the n-th request overall (0-based), overriding the random schedule. */
  script?: Fault[];
  /** Called as each request arrives (before any gate), with its 0-based number. */
  onRequest?: (n: number) => void;
  /** Awaited before each request is answered: lets a test hold a job mid-run. */
  gate?: () => Promise<void>;
}

export interface FakeServer {
  baseUrl: string;
  requests: number;
  /** Successful (200 + valid body) responses per prompt key. */
  successes: Map<string, number>;
  maxInFlight: number;
  faultsServed: Record<Fault, number>;
  authFailures: number;
  close(): Promise<void>;
}

export async function startFakeServer(options: FakeServerOptions): Promise<FakeServer> {
  const rng = createRng(options.seed ?? 1);
  const faults = options.faults ?? {};
  const maxFaults = options.maxFaultsPerPrompt ?? 3;
  const failures = new Map<string, number>();
  let inFlight = 0;
  const state: FakeServer = {
    baseUrl: '',
    requests: 0,
    successes: new Map(),
    maxInFlight: 0,
    faultsServed: { ok: 0, '429': 0, '500': 0, slow: 0, malformed: 0, 'no-choices': 0 },
    authFailures: 0,
    close: async () => {},
  };
  const pick = (key: string, n: number): Fault => {
    if (options.script && n < options.script.length) return options.script[n];
    if ((failures.get(key) ?? 0) >= maxFaults) return 'ok';
    let u = rng.float();
    for (const [fault, p] of Object.entries(faults) as Array<[Exclude<Fault, 'ok'>, number]>) {
      if (u < p) return fault;
      u -= p;
    }
    return 'ok';
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const n = state.requests++;
    options.onRequest?.(n);
    let body = '';
    for await (const chunk of req) body += chunk;
    if (options.gate) await options.gate();
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404).end('not found');
      return;
    }
    if (req.headers.authorization !== `Bearer ${options.apiKey}`) {
      state.authFailures++;
      // Echo the presented key, as some servers do, so redaction can be tested.
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `invalid key ${req.headers.authorization}` }));
      return;
    }
    const request = JSON.parse(body) as { model: string; messages: Array<{ role: string; content: string }>; seed?: number };
    const key = JSON.stringify(request.messages);
    const fault = pick(key, n);
    state.faultsServed[fault]++;
    if (fault !== 'ok') failures.set(key, (failures.get(key) ?? 0) + 1);
    const content = options.reply ? options.reply(request) : `User: What is this?\nAssistant: A test image.`;
    const ok = JSON.stringify({ id: `c${n}`, object: 'chat.completion', model: request.model, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] });
    switch (fault) {
      case '429':
        res.writeHead(429, { 'content-type': 'application/json', ...(options.retryAfter !== undefined ? { 'retry-after': options.retryAfter } : {}) }).end('{"error":"rate limited"}');
        return;
      case '500':
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal"}');
        return;
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' }).end(ok.slice(0, Math.floor(ok.length / 2)));
        return;
      case 'no-choices':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"chat.completion","choices":[]}');
        return;
      case 'slow':
        await new Promise((r) => setTimeout(r, options.slowMs ?? 1500));
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(ok);
        return;
      case 'ok':
        state.successes.set(key, (state.successes.get(key) ?? 0) + 1);
        res.writeHead(200, { 'content-type': 'application/json' }).end(ok);
    }
  };
  const server = createServer((req, res) => {
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
