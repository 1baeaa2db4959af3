// The Self-Instruct generator's view of an OpenAI-compatible endpoint: one model, string messages,
// text replies. The wire work (retries, backoff, Retry-After, timeouts, the concurrency limit, key
// redaction) is core's chat-completions client; this file only adapts its shape.
import {
  BackendError,
  createChatCompletionsClient,
  InvalidArgumentError,
  isVlitError,
  type ChatCompletionsClient,
  type ChatCompletionsClientOptions,
  type ChatCompletionsRetryEvent,
} from '@vlit/core';

export { parseRetryAfter } from '@vlit/core';

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

/** A retry about to happen, reported to `onRetry` (core's `ChatCompletionsRetryEvent`). */
export type ChatCompletionRetryEvent = ChatCompletionsRetryEvent;

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

/** Create a client of an OpenAI-compatible chat-completions endpoint with retries, backoff and a concurrency limit (core's client, one model). */
export function createChatCompletionClient(options: ChatCompletionClientOptions): ChatCompletionClient {
  if (!options.model) throw new InvalidArgumentError('model is required', { details: { field: 'model' } });
  const wire: ChatCompletionsClientOptions = {
    baseURL: options.baseUrl,
    apiKey: options.apiKey,
    headers: options.headers,
    timeoutMs: options.timeoutMs,
    maxRetries: options.maxRetries,
    backoff: { initialMs: options.backoff?.initialMs, maxMs: options.backoff?.maxMs, jitter: 0.5 },
    maxRetryAfterMs: options.maxRetryAfterMs,
    maxConcurrency: options.maxConcurrency ?? 4,
    fetch: options.fetch,
    sleep: options.sleep,
    random: options.random,
    onRetry: options.onRetry,
  };
  let client: ChatCompletionsClient;
  try {
    client = createChatCompletionsClient(wire);
  } catch (cause) {
    if (isVlitError(cause, 'VLIT_INVALID_ARGUMENT') && cause.details.field === 'baseURL') {
      throw new InvalidArgumentError('baseUrl is not a valid http(s) URL', { cause, details: { field: 'baseUrl' } });
    }
    throw cause;
  }
  return {
    model: options.model,
    endpoint: client.endpoint,
    async complete(request) {
      const { response, attempts } = await client.complete(
        { ...request.params, model: options.model, messages: request.messages.map((m) => ({ role: m.role, content: m.content })) },
        { signal: request.signal },
      );
      const choice = response.choices[0];
      if (typeof choice.message.content !== 'string') {
        // A well-formed reply without text (a refusal, a tool call): asking again gives the same.
        throw new BackendError(`chat completion at ${client.endpoint} returned no text content`, {
          details: { field: 'chat.completions', endpoint: client.endpoint, model: options.model, reason: 'no-content', attempts },
        });
      }
      return { content: choice.message.content, finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : undefined, attempts };
    },
  };
}
