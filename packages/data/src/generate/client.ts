import { BackendError, InvalidArgumentError } from '@vlit/core';
import { createConcurrencyLimiter } from './limiter.js';

/** One message of an OpenAI-style chat-completions request. */
export interface ChatCompletionMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Sampling parameters sent with the request (any extra OpenAI-compatible field is passed through). */
export interface ChatCompletionParams {
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  seed?: number;
  [key: string]: unknown;
}

/** A completed chat completion. */
export interface ChatCompletionResult {
  /** The assistant's reply text. */
  content: string;
  /** `stop`, `length`, ... as the server reported it. */
  finishReason?: string;
  /** HTTP attempts it took (1 = no retry). */
  attempts: number;
}

/** A retry about to happen, reported to `onRetry`. */
export interface ChatCompletionRetryEvent {
  /** Attempt that failed, from 1. */
  attempt: number;
  /** Why: `http-429`, `http-503`, `timeout`, `network`, `malformed-json`, `malformed-response`. */
  reason: string;
  status?: number;
  /** Wait before the next attempt. */
  delayMs: number;
  /** True when the wait came from the server's Retry-After header. */
  retryAfter: boolean;
}

/** Options of createChatCompletionClient. */
export interface ChatCompletionClientOptions {
  /** Base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`. */
  baseUrl: string;
  /** Bearer token; never included in errors, events or provenance. */
  apiKey?: string;
  model: string;
  /** Per-attempt limit for the whole request, body included. Default 60 000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt on 408/409/425/429/5xx, timeouts, network errors and malformed bodies. Default 5. */
  maxRetries?: number;
  /** Exponential backoff: the n-th retry waits a uniform time in [d/2, d], d = min(maxMs, initialMs * 2^(n-1)). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Longest Retry-After honoured; longer values are cut to this. Default 120 000 ms. */
  maxRetryAfterMs?: number;
  /** Requests in flight at once. Default 4. */
  maxConcurrency?: number;
  /** Extra request headers (e.g. an organisation id). */
  headers?: Record<string, string>;
  /** fetch implementation; default the global one. */
  fetch?: typeof fetch;
  /** Sleep used between attempts (injectable for tests). */
  sleep?: (ms: number) => Promise<void>;
  /** Uniform [0, 1) source for jitter. Default Math.random. */
  random?: () => number;
  onRetry?: (event: ChatCompletionRetryEvent) => void;
}

/** A client of one OpenAI-compatible chat-completions endpoint and model. */
export interface ChatCompletionClient {
  readonly model: string;
  /** The endpoint, without credentials or query. */
  readonly endpoint: string;
  /** Send one request, retrying transient failures; throws BackendError when it gives up. */
  complete(request: { messages: readonly ChatCompletionMessage[]; params?: ChatCompletionParams; signal?: AbortSignal }): Promise<ChatCompletionResult>;
}

const RETRYABLE_STATUS = new Set([408, 409, 425, 429]);

/** Milliseconds a Retry-After header asks for (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

class AttemptFailure {
  constructor(
    readonly reason: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
    readonly snippet?: string,
  ) {}
}

/** Create a client of an OpenAI-compatible chat-completions endpoint with retries, backoff and a concurrency limit. */
export function createChatCompletionClient(options: ChatCompletionClientOptions): ChatCompletionClient {
  let url: URL;
  try {
    url = new URL(`${options.baseUrl.replace(/\/+$/, '')}/chat/completions`);
  } catch (cause) {
    throw new InvalidArgumentError('baseUrl is not a valid URL', { cause, details: { field: 'baseUrl' } });
  }
  if (!options.model) throw new InvalidArgumentError('model is required', { details: { field: 'model' } });
  const endpoint = `${url.origin}${url.pathname}`;
  const apiKey = options.apiKey;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxRetries = options.maxRetries ?? 5;
  const initialMs = options.backoff?.initialMs ?? 500;
  const maxMs = options.backoff?.maxMs ?? 30_000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 120_000;
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const limiter = createConcurrencyLimiter(options.maxConcurrency ?? 4);
  // Whatever a server echoes back, the key must not leave through an error message.
  const redact = (text: string): string => (apiKey ? text.split(apiKey).join('[redacted]') : text);

  async function attempt(body: string, outer: AbortSignal | undefined): Promise<{ content: string; finishReason?: string } | AttemptFailure> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const onOuterAbort = (): void => controller.abort();
    outer?.addEventListener('abort', onOuterAbort);
    try {
      const response = await doFetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
          ...options.headers,
        },
        body,
        signal: controller.signal,
      });
      const text = await response.text();
      if (!response.ok) {
        const retryable = RETRYABLE_STATUS.has(response.status) || response.status >= 500;
        return new AttemptFailure(`http-${response.status}`, retryable, response.status, parseRetryAfter(response.headers.get('retry-after')), text.slice(0, 200));
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return new AttemptFailure('malformed-json', true, response.status, undefined, text.slice(0, 200));
      }
      const choice = (json as { choices?: Array<{ message?: { content?: unknown }; finish_reason?: unknown }> })?.choices?.[0];
      if (typeof choice?.message?.content !== 'string') {
        return new AttemptFailure('malformed-response', true, response.status, undefined, text.slice(0, 200));
      }
      return { content: choice.message.content, finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : undefined };
    } catch (error) {
      if (outer?.aborted) throw error;
      return new AttemptFailure(controller.signal.aborted ? 'timeout' : 'network', true, undefined, undefined, error instanceof Error ? error.message : String(error));
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    }
  }

  return {
    model: options.model,
    endpoint,
    async complete(request) {
      const body = JSON.stringify({ ...request.params, model: options.model, messages: request.messages });
      for (let n = 1; ; n++) {
        const result = await limiter.run(() => attempt(body, request.signal));
        if (!(result instanceof AttemptFailure)) return { ...result, attempts: n };
        if (!result.retryable || n > maxRetries) {
          throw new BackendError(
            redact(
              `chat completion failed at ${endpoint} (${result.reason}${result.retryable ? `, gave up after ${n} attempts` : ''})${result.snippet ? `: ${result.snippet}` : ''}`,
            ),
            { details: { field: 'chat.completions', endpoint, model: options.model, status: result.status, reason: result.reason, attempts: n } },
          );
        }
        const backoff = Math.min(maxMs, initialMs * 2 ** (n - 1));
        const fromServer = result.retryAfterMs !== undefined;
        const delayMs = fromServer ? Math.min(result.retryAfterMs as number, maxRetryAfterMs) : backoff / 2 + random() * (backoff / 2);
        options.onRetry?.({ attempt: n, reason: result.reason, status: result.status, delayMs, retryAfter: fromServer });
        await sleep(delayMs);
        if (request.signal?.aborted) throw request.signal.reason ?? new BackendError('chat completion aborted', { details: { endpoint } });
      }
    },
  };
}
