/**
 * The streaming form of a chat completion reply: server-sent `chat.completion.chunk` events as the
 * tokens come, then the finish chunk, the usage chunk when asked for, and `[DONE]`.
 */
import type { ServerResponse } from 'node:http';
import type { GenerationResult } from '@vlit/core';
import { toHttpError } from './errors.js';
import { finishReasonOf, untilAborted, usageOf, type CompletionRun } from './reply.js';
import type { ChatCompletionChunk, FinishReason } from './schema.js';

/** How a stream reports to the request it serves. */
export interface StreamHooks {
  /** Whether the client has closed the connection. */
  clientGone(): boolean;
  /** An error ended the stream after its headers; called with the error's code (for the log) before the stream ends. */
  failed(code: string): void;
}

/**
 * Generate and stream the reply. An error before the first token is thrown (it still gets a proper
 * status); after it, the stream ends with an error event unless the client has gone.
 */
export async function streamCompletion(res: ServerResponse, run: CompletionRun, hooks: StreamHooks): Promise<void> {
  const { prepared: p, signal } = run;
  const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finishReason: FinishReason | null, extra: Partial<ChatCompletionChunk> = {}): string => {
    const c: ChatCompletionChunk = {
      id: run.id,
      object: 'chat.completion.chunk',
      created: run.created,
      model: p.model.id,
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
      ...extra,
    };
    return `data: ${JSON.stringify(c)}\n\n`;
  };
  // Headers wait for the first token, so errors found while preparing the prompt still get a proper status.
  const open = (): void => {
    if (res.headersSent) return;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(chunk({ role: 'assistant', content: '' }, null, p.includeUsage ? { usage: null } : {}));
  };
  let result: GenerationResult;
  try {
    result = await untilAborted(
      run.generate(run.request, {
        ...p.generation,
        signal,
        onToken: (text) => {
          if (signal.aborted || text === '') return;
          open();
          res.write(chunk({ content: text }, null, p.includeUsage ? { usage: null } : {}));
        },
      }),
      signal,
    );
    if (signal.aborted) throw signal.reason;
  } catch (err) {
    if (!res.headersSent) throw err;
    const e = toHttpError(err);
    hooks.failed(e.code);
    if (!hooks.clientGone()) res.end(`data: ${JSON.stringify(e.body())}\n\ndata: [DONE]\n\n`);
    return;
  }
  open();
  res.write(chunk({}, finishReasonOf(result), p.includeUsage ? { usage: null } : {}));
  if (p.includeUsage) {
    const c: ChatCompletionChunk = {
      id: run.id,
      object: 'chat.completion.chunk',
      created: run.created,
      model: p.model.id,
      choices: [],
      usage: usageOf(result),
    };
    res.write(`data: ${JSON.stringify(c)}\n\n`);
  }
  res.end('data: [DONE]\n\n');
}
