// Test support (not exported): the test kit's fake OpenAI-compatible server (a real HTTP server on
// 127.0.0.1) with a seeded schedule of faults per prompt on top: 429s, 500s, slow replies, malformed
// JSON and replies without choices.
import { createRng } from '@vlit/core';
import { sendJson, startFakeOpenAIServer, type FakeOpenAIStep } from '@vlit/test-kit/node';

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
  const step: FakeOpenAIStep = async (res, seen) => {
    const n = seen.n;
    options.onRequest?.(n);
    if (options.gate) await options.gate();
    if (seen.headers.authorization !== `Bearer ${options.apiKey}`) {
      state.authFailures++;
      // Echo the presented key, as some servers do, so redaction can be tested.
      return sendJson(res, 401, { error: `invalid key ${seen.headers.authorization}` });
    }
    const request = seen.body as { model: string; messages: Array<{ role: string; content: string }>; seed?: number };
    const key = JSON.stringify(request.messages);
    const fault = pick(key, n);
    state.faultsServed[fault]++;
    if (fault !== 'ok') failures.set(key, (failures.get(key) ?? 0) + 1);
    const content = options.reply ? options.reply(request) : `User: What is this?\nAssistant: A test image.`;
    const ok = JSON.stringify({
      id: `c${n}`,
      object: 'chat.completion',
      model: request.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    });
    switch (fault) {
      case '429':
        return sendJson(res, 429, '{"error":"rate limited"}', options.retryAfter !== undefined ? { 'retry-after': options.retryAfter } : {});
      case '500':
        return sendJson(res, 500, '{"error":"internal"}');
      case 'malformed':
        return sendJson(res, 200, ok.slice(0, Math.floor(ok.length / 2)));
      case 'no-choices':
        return sendJson(res, 200, '{"object":"chat.completion","choices":[]}');
      case 'slow':
        // Slower than the client's timeout: held until the client hangs up, or answered after slowMs.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.slowMs ?? 1500);
          res.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        return sendJson(res, 200, ok);
      case 'ok':
        state.successes.set(key, (state.successes.get(key) ?? 0) + 1);
        return sendJson(res, 200, ok);
    }
  };
  const server = await startFakeOpenAIServer({ fallback: step });
  state.baseUrl = server.baseURL;
  state.close = () => server.close();
  Object.defineProperty(state, 'maxInFlight', { get: () => server.maxInFlight });
  Object.defineProperty(state, 'requests', { get: () => server.requests.length });
  return state;
}
