/**
 * What both forms of a chat completion reply share (JSON in complete.ts, server-sent events in
 * stream.ts): the admitted request they answer, JSON responses, and OpenAI's usage and finish reason.
 */
import type { ServerResponse } from 'node:http';
import type { GenerationOptions, GenerationResult, VisionLanguageRequest } from '@vlit/core';
import type { PreparedRequest } from './parse.js';
import type { ChatCompletionUsage, FinishReason } from './schema.js';

/** A request that holds a slot and has its images: everything a reply needs to generate and answer. */
export interface CompletionRun {
  prepared: PreparedRequest;
  /** The messages with their loaded images. */
  request: VisionLanguageRequest;
  /** Generates through the slot the request holds: with the requests it was batched with, or alone. */
  generate: (request: VisionLanguageRequest, generation: GenerationOptions) => Promise<GenerationResult>;
  /** Aborted when the client leaves, the deadline passes or the server closes. */
  signal: AbortSignal;
  /** The reply's `chatcmpl-…` id. */
  id: string;
  /** Unix seconds. */
  created: number;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

/** Send a JSON reply with its length, unless headers went out already. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** Settle with `work`, or reject with the signal's reason as soon as it aborts (the work is left to finish alone). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      // A model that ignores `signal` may still settle later; nobody is listening then.
      work.catch(() => undefined);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** A generation's token counts in OpenAI's terms. */
export function usageOf(r: GenerationResult): ChatCompletionUsage {
  return {
    prompt_tokens: r.usage.promptTokens,
    completion_tokens: r.usage.completionTokens,
    total_tokens: r.usage.promptTokens + r.usage.completionTokens,
  };
}

/** OpenAI's finish reason: `length` when the token budget ran out, else `stop`. */
export function finishReasonOf(r: GenerationResult): FinishReason {
  return r.finishReason === 'length' ? 'length' : 'stop';
}
