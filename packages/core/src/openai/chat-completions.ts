/**
 * The one client of the OpenAI chat-completions wire format (`POST <baseURL>/chat/completions`)
 * that every Vlit package uses: OpenAI, vLLM, llama.cpp server, SGLang, Vlit's own server, ...
 * Browser-safe: global `fetch` and `AbortController` only. Retries 408/409/425/429/5xx, timeouts,
 * network errors and malformed bodies with exponential backoff and jitter, honouring Retry-After.
 * The API key goes only into the Authorization header: it is cut out of every error and event.
 */
import { BackendError, InvalidArgumentError, UnsupportedError } from '../errors.js';
import { createConcurrencyLimiter, type ConcurrencyLimiter } from './limiter.js';
import { isRetryableStatus, nonNegativeOption, parseRetryAfter, resolveRetryPolicy, retryDelay } from './retry-policy.js';
import { parseServerSentEvents } from './sse.js';
import {
  chatCompletionsChunkSchema,
  chatCompletionsRequestSchema,
  chatCompletionsResponseSchema,
  type ChatCompletionsChunk,
  type ChatCompletionsRequest,
  type ChatCompletionsResponse,
} from './wire.js';

// The Retry-After and status rules belong to the retry policy; they stay importable from the client.
export { isRetryableStatus, parseRetryAfter } from './retry-policy.js';

/** A retry about to happen, reported to `onRetry`. Never carries the API key. */
export interface ChatCompletionsRetryEvent {
  /** Attempt that failed, from 1. */
  attempt: number;
  /** Why: `http-429`, `http-503`, `timeout`, `network`, `malformed-json`, `malformed-response`. */
  reason: string;
  status?: number;
  /** What went wrong, in words (redacted). */
  message: string;
  /** Wait before the next attempt. */
  delayMs: number;
  /** True when the wait came from the server's Retry-After header. */
  retryAfter: boolean;
}

/** Options of createChatCompletionsClient. */
export interface ChatCompletionsClientOptions {
  /** Base URL including the version path, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`. */
  baseURL: string;
  /** Sent as `Authorization: Bearer <key>`; cut out of every error and event. */
  apiKey?: string;
  /** Extra request headers (e.g. an organisation id). */
  headers?: Record<string, string>;
  /** Per-attempt limit: the whole reply for `complete`, up to the response headers for `stream`. Default 60 000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt. Default 5. */
  maxRetries?: number;
  /**
   * The n-th retry waits d = min(maxMs, initialMs * 2^(n-1)), of which the fraction `jitter` is
   * random: a uniform time in [d (1 - jitter), d]. Defaults 500 ms, 30 000 ms, 0.5.
   */
  backoff?: { initialMs?: number; maxMs?: number; jitter?: number };
  /** Longest Retry-After honoured; longer values are cut to this. Default 120 000 ms. */
  maxRetryAfterMs?: number;
  /** Requests in flight at once (a stream holds its slot until it ends). Default unlimited. */
  maxConcurrency?: number;
  /** fetch implementation; default the global one. */
  fetch?: typeof fetch;
  /** Wait between attempts (injectable for tests); default a timer that an abort cuts short. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Uniform [0, 1) source for jitter. Default Math.random. */
  random?: () => number;
  /** Called before each retry. */
  onRetry?: (event: ChatCompletionsRetryEvent) => void;
}

/** Options of one call. */
export interface ChatCompletionsCallOptions {
  signal?: AbortSignal;
}

/** A validated reply and the HTTP attempts it took (1 = no retry). */
export interface ChatCompletionsReply {
  response: ChatCompletionsResponse;
  attempts: number;
}

/** An open server-sent event stream of chunks; iterate it once, or `cancel()` it to free its slot. */
export interface ChatCompletionsStream extends AsyncIterable<ChatCompletionsChunk> {
  /** HTTP attempts it took to open (1 = no retry). */
  readonly attempts: number;
  /** Stop reading and release the connection. */
  cancel(): Promise<void>;
}

/** A client of one OpenAI-compatible chat-completions endpoint. */
export interface ChatCompletionsClient {
  /** The base URL without trailing slashes. */
  readonly baseURL: string;
  /** The endpoint, without credentials or query (safe to log). */
  readonly endpoint: string;
  /** POST a request, retrying transient failures; throws BackendError (details: status, reason, attempts) when it gives up. */
  complete(body: ChatCompletionsRequest, options?: ChatCompletionsCallOptions): Promise<ChatCompletionsReply>;
  /** POST with `stream: true`; resolves once the server answers 200 (opening is retried like `complete`). */
  stream(body: ChatCompletionsRequest, options?: ChatCompletionsCallOptions): Promise<ChatCompletionsStream>;
}

class AttemptFailure {
  constructor(
    readonly reason: string,
    readonly problem: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {}
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The server's own words from an error body (`error.message`, `error`, `message`), else the start of the body. */
function errorText(text: string): string {
  try {
    const json = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof json.error === 'string' ? json.error : (json.error?.message ?? json.message);
    if (typeof m === 'string') return `: ${m.slice(0, 500)}`;
  } catch {
    // not JSON
  }
  return text ? `: ${text.slice(0, 200)}` : '';
}

function explain(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return `${error.message}${error.cause instanceof Error ? ` (${error.cause.message})` : ''}`;
}

/** Create a client of an OpenAI-compatible chat-completions endpoint with retries, backoff, timeouts and a concurrency limit. */
export function createChatCompletionsClient(options: ChatCompletionsClientOptions): ChatCompletionsClient {
  if (!options || typeof options.baseURL !== 'string' || !/^https?:\/\//i.test(options.baseURL)) {
    throw new InvalidArgumentError('baseURL must be an http(s) URL', { details: { field: 'baseURL' } });
  }
  const baseURL = options.baseURL.replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(baseURL);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/chat/completions`;
  } catch (cause) {
    throw new InvalidArgumentError('baseURL is not a valid URL', { cause, details: { field: 'baseURL' } });
  }
  const endpoint = `${url.origin}${url.pathname}`;
  const apiKey = options.apiKey;
  const timeoutMs = nonNegativeOption(options.timeoutMs, 60_000, 'timeoutMs');
  const policy = resolveRetryPolicy(options);
  const f = options.fetch ?? globalThis.fetch;
  if (typeof f !== 'function') throw new UnsupportedError('no fetch implementation available; pass options.fetch', { details: { field: 'fetch' } });
  const doFetch: typeof fetch = options.fetch ? f : (input, init) => f.call(globalThis, input, init);
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;
  const limiter: ConcurrencyLimiter | undefined = options.maxConcurrency === undefined ? undefined : createConcurrencyLimiter(options.maxConcurrency);
  // Whatever a server echoes back, the key must not leave through an error message or event.
  const redact = (text: string): string => (apiKey ? text.split(apiKey).join('[redacted]') : text);

  function fail(
    model: unknown,
    reason: string,
    problem: string,
    extra: { status?: number; attempts: number; retryable: boolean; aborted?: boolean },
    cause?: unknown,
  ): BackendError {
    const gaveUp = extra.retryable && !extra.aborted ? ` (gave up after ${extra.attempts} attempts)` : '';
    return new BackendError(redact(`chat completion${typeof model === 'string' ? ` with ${model}` : ''} at ${endpoint} failed: ${problem}${gaveUp}`), {
      cause,
      details: {
        field: 'chat.completions',
        endpoint,
        ...(typeof model === 'string' ? { model } : {}),
        status: extra.status,
        reason,
        attempts: extra.attempts,
        retryable: extra.retryable,
        ...(extra.aborted ? { aborted: true } : {}),
      },
    });
  }

  function checkBody(body: ChatCompletionsRequest): void {
    const parsed = chatCompletionsRequestSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidArgumentError(redact(`chat-completions request: ${issue?.message ?? 'invalid'}`), {
        details: {
          field: `body.${issue?.path.join('.') ?? ''}`,
          issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), message: redact(i.message) })),
        },
      });
    }
  }

  interface Opened {
    response: Response;
    /** Ends the attempt: unlinks the caller's signal and frees the slot. */
    close: () => void;
    controller: AbortController;
  }

  async function attempt(payload: string, stream: boolean, signal: AbortSignal | undefined): Promise<ChatCompletionsResponse | Opened | AttemptFailure> {
    const release = limiter ? await limiter.acquire() : () => undefined;
    if (signal?.aborted) {
      release();
      throw signal.reason;
    }
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    let keepOpen = false;
    const close = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      release();
    };
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: stream ? 'text/event-stream' : 'application/json',
        ...options.headers,
      };
      if (apiKey) headers.authorization = `Bearer ${apiKey}`;
      const response = await doFetch(url, { method: 'POST', headers, body: payload, signal: controller.signal });
      if (response.ok && stream) {
        clearTimeout(timer);
        keepOpen = true;
        return { response, close, controller };
      }
      const text = await response.text();
      if (!response.ok) {
        const retryable = isRetryableStatus(response.status);
        const retryAfterMs = retryable ? parseRetryAfter(response.headers.get('retry-after')) : undefined;
        return new AttemptFailure(`http-${response.status}`, `HTTP ${response.status}${errorText(text)}`, retryable, response.status, retryAfterMs);
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return new AttemptFailure('malformed-json', `the reply is not JSON: ${text.slice(0, 200)}`, true, response.status);
      }
      const parsed = chatCompletionsResponseSchema.safeParse(json);
      if (!parsed.success) {
        return new AttemptFailure(
          'malformed-response',
          `the reply is not a chat completion with choices[0].message: ${text.slice(0, 200)}`,
          true,
          response.status,
        );
      }
      return parsed.data;
    } catch (error) {
      if (signal?.aborted) throw error;
      if (timedOut) return new AttemptFailure('timeout', `timed out after ${timeoutMs} ms`, true);
      return new AttemptFailure('network', `network error: ${explain(error)}`, true);
    } finally {
      if (!keepOpen) close();
    }
  }

  async function send(
    body: ChatCompletionsRequest,
    stream: boolean,
    signal: AbortSignal | undefined,
  ): Promise<{ value: ChatCompletionsResponse | Opened; attempts: number }> {
    checkBody(body);
    const payload = JSON.stringify(stream ? { ...body, stream: true } : body);
    const aborted = (attempts: number): BackendError => fail(body.model, 'aborted', 'aborted', { attempts, retryable: false, aborted: true }, signal?.reason);
    for (let n = 1; ; n++) {
      if (signal?.aborted) throw aborted(n - 1);
      let result: Awaited<ReturnType<typeof attempt>>;
      try {
        result = await attempt(payload, stream, signal);
      } catch (error) {
        if (signal?.aborted) throw aborted(n);
        throw error;
      }
      if (!(result instanceof AttemptFailure)) return { value: result, attempts: n };
      const wait = retryDelay(policy, { attempt: n, retryable: result.retryable, retryAfterMs: result.retryAfterMs }, random);
      if (!wait) throw fail(body.model, result.reason, result.problem, { status: result.status, attempts: n, retryable: result.retryable });
      options.onRetry?.({ attempt: n, reason: result.reason, status: result.status, message: redact(result.problem), ...wait });
      await sleep(wait.delayMs, signal);
      if (signal?.aborted) throw aborted(n);
    }
  }

  function openStream(opened: Opened, model: unknown, attempts: number, signal: AbortSignal | undefined): ChatCompletionsStream {
    const { response, close, controller } = opened;
    let closed = false;
    const finish = (): void => {
      if (closed) return;
      closed = true;
      close();
    };
    const problem = (reason: string, text: string, cause?: unknown): BackendError =>
      fail(model, reason, text, { status: response.status, attempts, retryable: false, ...(signal?.aborted ? { aborted: true } : {}) }, cause);
    async function* chunks(): AsyncGenerator<ChatCompletionsChunk, void, undefined> {
      if (!response.body) {
        finish();
        throw problem('malformed-response', 'the streamed reply has no body');
      }
      try {
        const events = parseServerSentEvents(response.body);
        for (;;) {
          let next: IteratorResult<string, void>;
          try {
            next = await events.next();
          } catch (error) {
            if (signal?.aborted) throw problem('aborted', 'aborted', signal.reason);
            throw problem('stream-broken', `the stream broke: ${explain(error)}`);
          }
          if (next.done || next.value === '[DONE]') return;
          let json: unknown;
          try {
            json = JSON.parse(next.value);
          } catch {
            throw problem('malformed-json', `a streamed event is not JSON: ${next.value.slice(0, 200)}`);
          }
          const error = (json as { error?: unknown } | null)?.error;
          if (error !== undefined && error !== null) {
            const m = typeof error === 'string' ? error : (error as { message?: unknown }).message;
            throw problem('stream-error', `stream error: ${typeof m === 'string' ? m : 'unknown'}`);
          }
          const parsed = chatCompletionsChunkSchema.safeParse(json);
          if (!parsed.success) throw problem('malformed-response', `a streamed event is not a chat-completion chunk: ${next.value.slice(0, 200)}`);
          yield parsed.data;
        }
      } finally {
        controller.abort();
        finish();
      }
    }
    let iterated = false;
    return {
      attempts,
      [Symbol.asyncIterator]() {
        if (iterated) throw new InvalidArgumentError('a chat-completions stream can be read once', { details: { field: 'stream' } });
        iterated = true;
        return chunks();
      },
      async cancel() {
        controller.abort();
        finish();
        await response.body?.cancel().catch(() => undefined);
      },
    };
  }

  return {
    baseURL,
    endpoint,
    async complete(body, callOptions = {}) {
      if (body?.stream === true) throw new InvalidArgumentError('complete() sends non-streamed requests; use stream()', { details: { field: 'body.stream' } });
      const { value, attempts } = await send(body, false, callOptions.signal);
      return { response: value as ChatCompletionsResponse, attempts };
    },
    async stream(body, callOptions = {}) {
      const { value, attempts } = await send(body, true, callOptions.signal);
      return openStream(value as Opened, body.model, attempts, callOptions.signal);
    },
  };
}
