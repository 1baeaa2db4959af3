// A small client for the OpenAI chat-completions wire format: the eval's own HTTP path for remote
// models and judges. Retries 408/409/429/5xx and network failures with exponential back-off
// (honouring Retry-After), and times out each attempt; the API key never appears in errors.

import { BackendError, InvalidArgumentError } from '@vlit/core';
import { z } from 'zod';

/** A content part of an OpenAI chat message. */
export type OpenAIContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

/** An OpenAI chat message. */
export interface OpenAIChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | OpenAIContentPart[];
}

/** The request body of `POST /v1/chat/completions` (the fields Vlit sends; extra fields pass through). */
export interface ChatCompletionRequest {
  model: string;
  messages: OpenAIChatMessage[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string[];
  [extra: string]: unknown;
}

/** Schema of the reply fields Vlit reads. */
export const chatCompletionResponseSchema = z.object({
  id: z.string().optional(),
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        index: z.number().optional(),
        message: z.object({ role: z.string().optional(), content: z.string().nullable().optional() }),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .min(1),
  usage: z.object({ prompt_tokens: z.number().optional(), completion_tokens: z.number().optional() }).optional(),
});
export type ChatCompletionResponse = z.infer<typeof chatCompletionResponseSchema>;

/** What happened on one attempt, for callers that want to count retries. */
export interface RequestEvent {
  attempt: number;
  status?: number;
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
  /** Called after every failed attempt. */
  onRequestEvent?: (event: RequestEvent) => void;
}

/** A chat-completions client. */
export interface OpenAIClient {
  readonly baseURL: string;
  /** POST /chat/completions with retries; resolves with the validated reply. */
  chatCompletion(body: ChatCompletionRequest, options?: { signal?: AbortSignal }): Promise<ChatCompletionResponse>;
}

const RETRY_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504]);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/** Create a client for an OpenAI-compatible endpoint. */
export function createOpenAIClient(options: OpenAIClientOptions): OpenAIClient {
  if (!/^https?:\/\//.test(options.baseURL)) throw new InvalidArgumentError(`baseURL must be an http(s) URL, got ${options.baseURL}`, { details: { field: 'baseURL' } });
  const base = options.baseURL.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch;
  const maxRetries = options.maxRetries ?? 5;
  const initial = options.initialBackoffMs ?? 250;
  const maxBackoff = options.maxBackoffMs ?? 10_000;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const url = `${base}/chat/completions`;
  return {
    baseURL: base,
    async chatCompletion(body, callOptions = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
      if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
      const payload = JSON.stringify(body);
      let lastError = '';
      let lastStatus: number | undefined;
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        const controller = new AbortController();
        const onAbort = () => controller.abort(callOptions.signal?.reason);
        callOptions.signal?.addEventListener('abort', onAbort, { once: true });
        const timer = setTimeout(() => controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
        let retryIn: number | undefined;
        try {
          const res = await doFetch(url, { method: 'POST', headers, body: payload, signal: controller.signal });
          const text = await res.text();
          if (res.ok) {
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch (e) {
              throw new BackendError(`${url} replied with invalid JSON`, { cause: e, details: { status: res.status } });
            }
            const parsed = chatCompletionResponseSchema.safeParse(json);
            if (!parsed.success) throw new BackendError(`${url} replied with an unexpected shape`, { cause: parsed.error, details: { status: res.status } });
            return parsed.data;
          }
          lastStatus = res.status;
          lastError = `HTTP ${res.status}: ${text.slice(0, 300)}`;
          if (!RETRY_STATUS.has(res.status)) {
            throw new BackendError(`${url} failed with ${lastError}`, { details: { status: res.status } });
          }
          retryIn = retryAfterMs(res.headers.get('retry-after'));
        } catch (e) {
          if (callOptions.signal?.aborted) throw e;
          if (e instanceof BackendError) throw e;
          lastStatus = undefined;
          lastError = e instanceof Error ? `${e.name}: ${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
        } finally {
          clearTimeout(timer);
          callOptions.signal?.removeEventListener('abort', onAbort);
        }
        if (attempt === maxRetries) break;
        const wait = Math.min(maxBackoff, retryIn ?? initial * 2 ** attempt);
        options.onRequestEvent?.({ attempt, status: lastStatus, error: lastError, retryInMs: wait });
        await sleep(wait, callOptions.signal);
      }
      throw new BackendError(`${url} failed after ${maxRetries + 1} attempts: ${lastError}`, { details: { status: lastStatus, attempts: maxRetries + 1 } });
    },
  };
}
