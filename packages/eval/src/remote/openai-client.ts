// The eval's client of the OpenAI chat-completions wire format, for remote models and judges: a
// thin adapter over core's chat-completions client, which retries 408/409/425/429/5xx, timeouts,
// network failures and malformed replies with exponential back-off (honouring Retry-After), times
// out each attempt, and keeps the API key out of every error and event.

import {
  chatCompletionsResponseSchema,
  createChatCompletionsClient,
  type ChatCompletionsContentPart,
  type ChatCompletionsMessage,
  type ChatCompletionsRequest,
  type ChatCompletionsResponse,
} from '@vlit/core';

/** A content part of an OpenAI chat message (core's `ChatCompletionsContentPart`). */
export type OpenAIContentPart = ChatCompletionsContentPart;

/** An OpenAI chat message (core's `ChatCompletionsMessage`). */
export type OpenAIChatMessage = ChatCompletionsMessage;

/** The request body of `POST /v1/chat/completions` (core's `ChatCompletionsRequest`; extra fields pass through). */
export type ChatCompletionRequest = ChatCompletionsRequest;

/** Schema of the reply fields Vlit reads (core's `chatCompletionsResponseSchema`). */
export const chatCompletionResponseSchema = chatCompletionsResponseSchema;
export type ChatCompletionResponse = ChatCompletionsResponse;

/** What happened on one attempt, for callers that want to count retries. */
export interface RequestEvent {
  /** The attempt that failed, from 0. */
  attempt: number;
  status?: number;
  /** What went wrong, in words (the API key cut out). */
  error?: string;
  retryInMs?: number;
}

/** Options for `createOpenAIClient`. */
export interface OpenAIClientOptions {
  /** Base URL including `/v1`, e.g. `http://127.0.0.1:8000/v1`. */
  baseURL: string;
  apiKey?: string;
  /** Retries after the first attempt (default 5). */
  maxRetries?: number;
  /** First back-off delay in ms, doubled each retry (default 250). */
  initialBackoffMs?: number;
  /** Longest back-off, also the cap on Retry-After (default 10000). */
  maxBackoffMs?: number;
  /** Per-attempt timeout in ms (default 120000). */
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Called after every failed attempt that will be retried. */
  onRequestEvent?: (event: RequestEvent) => void;
}

/** A chat-completions client. */
export interface OpenAIClient {
  readonly baseURL: string;
  /** POST /chat/completions with retries; resolves with the validated reply. */
  chatCompletion(body: ChatCompletionRequest, options?: { signal?: AbortSignal }): Promise<ChatCompletionResponse>;
}

/** Create a client for an OpenAI-compatible endpoint (core's chat-completions client with the eval's defaults). */
export function createOpenAIClient(options: OpenAIClientOptions): OpenAIClient {
  const maxBackoff = options.maxBackoffMs ?? 10_000;
  const client = createChatCompletionsClient({
    baseURL: options.baseURL,
    apiKey: options.apiKey,
    headers: options.headers,
    fetch: options.fetch,
    timeoutMs: options.timeoutMs ?? 120_000,
    maxRetries: options.maxRetries ?? 5,
    backoff: { initialMs: options.initialBackoffMs ?? 250, maxMs: maxBackoff, jitter: 0 },
    maxRetryAfterMs: maxBackoff,
    onRetry: options.onRequestEvent
      ? (e) => options.onRequestEvent?.({ attempt: e.attempt - 1, status: e.status, error: e.message, retryInMs: e.delayMs })
      : undefined,
  });
  return {
    baseURL: client.baseURL,
    async chatCompletion(body, callOptions = {}) {
      return (await client.complete(body, { signal: callOptions.signal })).response;
    },
  };
}
