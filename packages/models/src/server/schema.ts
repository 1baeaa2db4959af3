/**
 * Wire formats of the OpenAI-compatible server: the chat completion request (core's zod wire schema
 * from `@vlit/core/openai`, the single source of truth for what is sent and accepted) and the shapes
 * of replies, chunks and errors (core's reply types, narrowed to what this server always sends).
 */
import {
  chatCompletionsContentPartSchema,
  chatCompletionsImagePartSchema,
  chatCompletionsMessageSchema,
  chatCompletionsRequestSchema,
  chatCompletionsTextPartSchema,
  type ChatCompletionsChunk,
  type ChatCompletionsResponse,
  type ChatCompletionsUsage,
} from '@vlit/core/openai';
import { z } from 'zod';

// The request parts are core's wire schema (`@vlit/core/openai`), the one definition the client
// sends with; the server only names them and relaxes what a server must accept.

/** A text part of an OpenAI message (core's `chatCompletionsTextPartSchema`). */
export const chatRequestTextPartSchema = chatCompletionsTextPartSchema;

/** An image part (core's `chatCompletionsImagePartSchema`): `image_url.url` is a data URL, a `file://` URL or a file path under the server's image root. */
export const chatRequestImagePartSchema = chatCompletionsImagePartSchema;

/** One content part of an OpenAI message (core's `chatCompletionsContentPartSchema`). */
export const chatRequestContentPartSchema = chatCompletionsContentPartSchema;
export type ChatRequestContentPart = z.infer<typeof chatRequestContentPartSchema>;

/** One message of a chat completion request (core's `chatCompletionsMessageSchema`; `developer` is treated as `system`). */
export const chatRequestMessageSchema = chatCompletionsMessageSchema;
export type ChatRequestMessage = z.infer<typeof chatRequestMessageSchema>;

/**
 * A `/v1/chat/completions` request: core's `chatCompletionsRequestSchema` with `model` optional (the
 * server serves one model) and at least one message; unknown fields are accepted and ignored.
 */
export const chatCompletionRequestSchema = chatCompletionsRequestSchema.extend({
  model: chatCompletionsRequestSchema.shape.model.optional(),
  messages: z.array(chatCompletionsMessageSchema).min(1),
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/** OpenAI's finish reasons that Vlit produces. */
export type FinishReason = 'stop' | 'length';

/** Token counts of one completion (core's `ChatCompletionsUsage`, all three always sent). */
export interface ChatCompletionUsage extends ChatCompletionsUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A non-streaming reply (`object: 'chat.completion'`): core's `ChatCompletionsResponse` with every field Vlit sends made definite. */
export interface ChatCompletionResponse extends ChatCompletionsResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{ index: number; message: { role: 'assistant'; content: string }; finish_reason: FinishReason; logprobs: null }>;
  usage: ChatCompletionUsage;
}

/** One streamed chunk (`object: 'chat.completion.chunk'`): core's `ChatCompletionsChunk` made definite. */
export interface ChatCompletionChunk extends ChatCompletionsChunk {
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
