/**
 * The JSON form of a chat completion reply: generate to the end, then answer `chat.completion` once.
 */
import type { ServerResponse } from 'node:http';
import { finishReasonOf, sendJson, untilAborted, usageOf, type CompletionRun } from './reply.js';
import type { ChatCompletionResponse } from './schema.js';

/** Generate the whole reply and send it as one `chat.completion` object. */
export async function sendCompletion(res: ServerResponse, run: CompletionRun): Promise<void> {
  const { prepared: p, signal } = run;
  const result = await untilAborted(run.generate(run.request, { ...p.generation, signal }), signal);
  if (signal.aborted) throw signal.reason;
  const reply: ChatCompletionResponse = {
    id: run.id,
    object: 'chat.completion',
    created: run.created,
    model: p.model.id,
    choices: [{ index: 0, message: { role: 'assistant', content: result.text }, finish_reason: finishReasonOf(result), logprobs: null }],
    usage: usageOf(result),
  };
  sendJson(res, 200, reply);
}
