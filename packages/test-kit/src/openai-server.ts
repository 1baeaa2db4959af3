/**
 * The one fake OpenAI-compatible chat-completions server for Vlit's tests: a real node:http server
 * on 127.0.0.1 that answers each request with a step (a scripted list, then a fallback), logs every
 * request, and counts requests in flight. Steps reply, fail with a status (and Retry-After), stream
 * server-sent events, send malformed bodies, or hold a request until the test (or the client hanging
 * up) releases it: delays are driven by events, never by wall-clock guesses.
 * Core's own client test keeps a small server of its own: core cannot depend on this package.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the fake server saw it. */
export interface FakeOpenAIRequest {
  /** 0-based arrival number. */
  n: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (`{}` when empty or not JSON). */
  body: Record<string, unknown>;
  /** The body as text. */
  text: string;
}

/** What answers one request: write to `res` (it may already be closed when the client hung up). */
export type FakeOpenAIStep = (res: ServerResponse, req: FakeOpenAIRequest) => void | Promise<void>;

/** Options of startFakeOpenAIServer. */
export interface FakeOpenAIServerOptions {
  /** When set, requests without `Authorization: Bearer <apiKey>` get a 401 that echoes the key they sent. */
  apiKey?: string;
  /** Steps for requests 0, 1, 2, ... (mutable later through `server.script`). */
  script?: FakeOpenAIStep[];
  /** The step for requests past the script. Default: reply with `echo <messages as JSON>`. */
  fallback?: FakeOpenAIStep;
  /** The path served (default `/v1/chat/completions`); any other path gets a 404. */
  path?: string;
}

/** A running fake server. */
export interface FakeOpenAIServer {
  /** Base URL with `/v1`, for a client's `baseURL`. */
  readonly baseURL: string;
  /** Every request, in arrival order (auth failures and 404s included). */
  readonly requests: FakeOpenAIRequest[];
  script: FakeOpenAIStep[];
  fallback: FakeOpenAIStep;
  /** Requests whose reply has not finished now; and the most at once since the last reset. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** Resolves with the next request to arrive (before it is answered). */
  nextRequest(): Promise<FakeOpenAIRequest>;
  /** Clear the log, the script and the peak; restore the default fallback. */
  reset(): void;
  close(): Promise<void>;
}

/** A chat.completion body with one assistant message. */
export function chatCompletionBody(
  content: string | null,
  extra: { finishReason?: string; model?: string; id?: string; usage?: Record<string, number> } = {},
): Record<string, unknown> {
  return {
    id: extra.id ?? 'chatcmpl-fake',
    object: 'chat.completion',
    ...(extra.model !== undefined ? { model: extra.model } : {}),
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: extra.finishReason ?? 'stop' }],
    usage: extra.usage ?? { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
  };
}

/** Write a JSON (or raw text) body with a status, unless the client has gone. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

/** Steps for the fake server. */
export const fakeStep = {
  /** 200 with a chat completion whose text is `content` (or computed from the request). */
  reply(
    content: string | ((req: FakeOpenAIRequest) => string | Promise<string>),
    extra: { finishReason?: string; usage?: Record<string, number> } = {},
  ): FakeOpenAIStep {
    return async (res, req) =>
      sendJson(
        res,
        200,
        chatCompletionBody(typeof content === 'string' ? content : await content(req), {
          ...extra,
          model: typeof req.body.model === 'string' ? req.body.model : undefined,
          id: `chatcmpl-${req.n}`,
        }),
      );
  },
  /** A status with an OpenAI error body (or the given body) and headers. */
  status(code: number, body: unknown = { error: { message: 'boom' } }, headers: Record<string, string> = {}): FakeOpenAIStep {
    return (res) => sendJson(res, code, body, headers);
  },
  /** A 429 (or another status) asking the client to wait `retryAfter` (seconds or an HTTP date). */
  retryAfter(retryAfter: string, code = 429): FakeOpenAIStep {
    return (res) => sendJson(res, code, { error: { message: 'rate limited' } }, { 'retry-after': retryAfter });
  },
  /** 200 with a body that is not a chat completion (cut JSON, or anything else). */
  malformed(text = '{"choices":[{"mess'): FakeOpenAIStep {
    return (res) => sendJson(res, 200, text);
  },
  /** Holds the request until `release` settles (then runs `then`), or forever while the client stays; never answers a client that hung up. */
  hold(release: Promise<unknown> = new Promise(() => undefined), then: FakeOpenAIStep = defaultFallback): FakeOpenAIStep {
    return async (res, req) => {
      const hungUp = await new Promise<boolean>((resolve) => {
        res.once('close', () => resolve(true));
        release.then(
          () => resolve(false),
          () => resolve(false),
        );
      });
      if (!hungUp && !res.destroyed) await then(res, req);
    };
  },
  /** A server-sent event stream of `events` (raw strings written as they are, objects as `data:` events), ending with `[DONE]` unless `done` is false. */
  stream(events: Array<string | Record<string, unknown>>, options: { done?: boolean } = {}): FakeOpenAIStep {
    return async (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const all = [...events, ...(options.done === false ? [] : ['data: [DONE]\n\n'])];
      for (const e of all) {
        if (res.destroyed) return;
        // Each write waits for the socket to take it, so the client sees the events one by one.
        await new Promise<void>((resolve) => res.write(typeof e === 'string' ? e : `data: ${JSON.stringify(e)}\n\n`, () => resolve()));
      }
      res.end();
    };
  },
};

const defaultFallback: FakeOpenAIStep = (res, req) =>
  sendJson(res, 200, chatCompletionBody(`echo ${JSON.stringify(req.body.messages)}`, { id: `chatcmpl-${req.n}` }));

/** A port on 127.0.0.1 that nothing listens on (bound by the system, read, and closed again), for testing refused connections. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Start the fake OpenAI-compatible server on 127.0.0.1 (a free port). */
export async function startFakeOpenAIServer(options: FakeOpenAIServerOptions = {}): Promise<FakeOpenAIServer> {
  const path = options.path ?? '/v1/chat/completions';
  const requests: FakeOpenAIRequest[] = [];
  const waiters: Array<(r: FakeOpenAIRequest) => void> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const state = {
    script: options.script ?? [],
    fallback: options.fallback ?? defaultFallback,
  };
  const server = createServer(async (req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    // Out of flight once the reply is sent ('finish') or the connection drops, whichever comes first.
    let counted = true;
    const done = (): void => {
      if (counted) inFlight--;
      counted = false;
    };
    res.once('finish', done);
    res.once('close', done);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = text ? JSON.parse(text) : {};
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      body = {};
    }
    const seen: FakeOpenAIRequest = { n: requests.length, method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, text };
    requests.push(seen);
    waiters.splice(0).forEach((w) => w(seen));
    try {
      if (req.method !== 'POST' || req.url !== path) return sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}` } });
      if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
        // Echo the presented key, as some servers do, so clients' redaction can be tested.
        return sendJson(res, 401, { error: { message: `Incorrect API key provided: ${String(req.headers.authorization)}` } });
      }
      await (state.script[seen.n] ?? state.fallback)(res, seen);
    } catch (error) {
      sendJson(res, 500, { error: { message: `fake server step failed: ${error instanceof Error ? error.message : String(error)}` } });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return {
    baseURL,
    requests,
    get script() {
      return state.script;
    },
    set script(s: FakeOpenAIStep[]) {
      state.script = s;
    },
    get fallback() {
      return state.fallback;
    },
    set fallback(f: FakeOpenAIStep) {
      state.fallback = f;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    nextRequest: () => new Promise<FakeOpenAIRequest>((resolve) => waiters.push(resolve)),
    reset() {
      requests.length = 0;
      state.script = [];
      state.fallback = options.fallback ?? defaultFallback;
      maxInFlight = inFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
