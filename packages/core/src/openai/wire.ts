/**
 * The OpenAI chat-completions wire format, defined once: the client (`createChatCompletionsClient`)
 * checks what it sends and parses what it receives with these schemas, and Vlit's own server
 * (`@vlit/models/node`) parses requests with the same request schema (making `model` optional).
 * Requests list the fields Vlit knows with OpenAI's ranges; every other provider field passes through.
 * Replies are read leniently (servers differ in what they add or leave out).
 */
import { z } from 'zod';

/** A text part of a chat-completions message. */
export const chatCompletionsTextPartSchema = z.looseObject({ type: z.literal('text'), text: z.string() });

/** An image part: `image_url.url` is usually a data URL or an http(s) URL; a bare string is accepted as the URL. */
export const chatCompletionsImagePartSchema = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.union([z.string().min(1), z.looseObject({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() })]),
});

/** One content part of a chat-completions message. */
export const chatCompletionsContentPartSchema = z.discriminatedUnion('type', [chatCompletionsTextPartSchema, chatCompletionsImagePartSchema]);
export type ChatCompletionsContentPart = z.infer<typeof chatCompletionsContentPartSchema>;

/** One chat-completions message (`developer` is OpenAI's newer name for `system`). */
export const chatCompletionsMessageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(chatCompletionsContentPartSchema).min(1)]),
  name: z.string().optional(),
});
export type ChatCompletionsMessage = z.infer<typeof chatCompletionsMessageSchema>;

/** The request body of `POST /chat/completions`; unknown fields pass through (OpenAI clients send many). */
export const chatCompletionsRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(chatCompletionsMessageSchema),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: z.number().int().nonnegative().nullish(),
  max_completion_tokens: z.number().int().nonnegative().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  /** Not in OpenAI's API; vLLM and llama.cpp accept it. */
  top_k: z.number().int().nonnegative().nullish(),
  /** Not in OpenAI's API; vLLM accepts it. */
  repetition_penalty: z.number().positive().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
  seed: z.number().int().nullish(),
  n: z.number().int().positive().nullish(),
});
export type ChatCompletionsRequest = z.infer<typeof chatCompletionsRequestSchema>;

/** Token counts of a reply (all optional when reading; Vlit's server always sends all three). */
export const chatCompletionsUsageSchema = z.looseObject({
  prompt_tokens: z.number().optional(),
  completion_tokens: z.number().optional(),
  total_tokens: z.number().optional(),
});
export type ChatCompletionsUsage = z.infer<typeof chatCompletionsUsageSchema>;

// What a reply and a streamed chunk have in common; they differ only in what a choice carries
// (`message` or `delta`) and whether the choices may be empty.
const replyEnvelopeFields = {
  id: z.string().optional(),
  object: z.string().optional(),
  created: z.number().optional(),
  model: z.string().optional(),
};
const choiceIndex = z.number().optional();
const choiceFinishReason = z.string().nullable().optional();
const replyMessageFields = { role: z.string().optional(), content: z.string().nullable().optional() };
const replyUsage = chatCompletionsUsageSchema.nullable().optional();

/** A non-streamed reply: at least one choice with a message. */
export const chatCompletionsResponseSchema = z.looseObject({
  ...replyEnvelopeFields,
  choices: z.array(z.looseObject({ index: choiceIndex, message: z.looseObject(replyMessageFields), finish_reason: choiceFinishReason })).min(1),
  usage: replyUsage,
});
export type ChatCompletionsResponse = z.infer<typeof chatCompletionsResponseSchema>;

/** One streamed chunk (`data:` payload of a server-sent event); the last may carry only `usage`. */
export const chatCompletionsChunkSchema = z.looseObject({
  ...replyEnvelopeFields,
  choices: z.array(z.looseObject({ index: choiceIndex, delta: z.looseObject(replyMessageFields).optional(), finish_reason: choiceFinishReason })).default([]),
  usage: replyUsage,
});
export type ChatCompletionsChunk = z.infer<typeof chatCompletionsChunkSchema>;

/** OpenAI's error body (`error.message` is what clients show). */
export const chatCompletionsErrorSchema = z.looseObject({
  error: z.looseObject({
    message: z.string(),
    type: z.string().optional(),
    param: z.string().nullable().optional(),
    code: z.string().nullable().optional(),
  }),
});
export type ChatCompletionsError = z.infer<typeof chatCompletionsErrorSchema>;
