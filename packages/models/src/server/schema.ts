/**
 * Wire formats of the OpenAI-compatible server: the chat completion request (zod, the single source of
 * truth for what is accepted) and the shapes of replies, chunks and errors.
 */
import { z } from 'zod';

/** A text part of an OpenAI message. */
export const chatRequestTextPartSchema = z.object({ type: z.literal('text'), text: z.string() }).loose();

/** An image part: `image_url.url` is a data URL, a `file://` URL or a file path under the server's image root. */
export const chatRequestImagePartSchema = z
  .object({
    type: z.literal('image_url'),
    image_url: z.union([
      z.string().min(1),
      z.object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }).loose(),
    ]),
  })
  .loose();

/** One content part of an OpenAI message. */
export const chatRequestContentPartSchema = z.discriminatedUnion('type', [chatRequestTextPartSchema, chatRequestImagePartSchema]);
export type ChatRequestContentPart = z.infer<typeof chatRequestContentPartSchema>;

/** One message of a chat completion request (`developer` is treated as `system`). */
export const chatRequestMessageSchema = z
  .object({
    role: z.enum(['system', 'developer', 'user', 'assistant']),
    content: z.union([z.string(), z.array(chatRequestContentPartSchema).min(1)]),
    name: z.string().optional(),
  })
  .loose();
export type ChatRequestMessage = z.infer<typeof chatRequestMessageSchema>;

/** A `/v1/chat/completions` request; unknown fields are accepted and ignored, as OpenAI clients send many. */
export const chatCompletionRequestSchema = z
  .object({
    model: z.string().min(1).optional(),
    messages: z.array(chatRequestMessageSchema).min(1),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).loose().nullish(),
    max_tokens: z.number().int().nonnegative().nullish(),
    max_completion_tokens: z.number().int().nonnegative().nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().gt(0).max(1).nullish(),
    /** Not in OpenAI's API; accepted as vLLM does. */
    top_k: z.number().int().nonnegative().nullish(),
    /** Not in OpenAI's API; accepted as vLLM does. */
    repetition_penalty: z.number().positive().nullish(),
    stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
    seed: z.number().int().nullish(),
    n: z.number().int().positive().nullish(),
  })
  .loose();
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/** OpenAI's finish reasons that Vlit produces. */
export type FinishReason = 'stop' | 'length';

/** Token counts of one completion. */
export interface ChatCompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A non-streaming reply (`object: 'chat.completion'`). */
export interface ChatCompletionResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{ index: number; message: { role: 'assistant'; content: string }; finish_reason: FinishReason; logprobs: null }>;
  usage: ChatCompletionUsage;
}

/** One streamed chunk (`object: 'chat.completion.chunk'`). */
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{ index: number; delta: { role?: 'assistant'; content?: string }; finish_reason: FinishReason | null; logprobs: null }>;
  usage?: ChatCompletionUsage | null;
}

/** `/v1/models`. */
export interface ModelListResponse {
  object: 'list';
  data: Array<{ id: string; object: 'model'; created: number; owned_by: string }>;
}

/** OpenAI's error body. `code` is stable; `vlit_code` carries the Vlit error code where one caused it. */
export interface ApiErrorBody {
  error: {
    message: string;
    type: 'invalid_request_error' | 'authentication_error' | 'permission_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';
    param: string | null;
    code: string;
    vlit_code?: string;
  };
}
