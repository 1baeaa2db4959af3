/**
 * The OpenAI-compatible server (node:http): `/v1/chat/completions` and `/v1/models` over any VisionLanguageModel.
 */
export {
  createOpenAIServer,
  startOpenAIServer,
  type OpenAIServer,
  type OpenAIServerOptions,
  type ServerLogEntry,
} from './server.js';
export { BoundedQueue, type QueueStats, type Release } from './queue.js';
export {
  chatCompletionRequestSchema,
  chatRequestContentPartSchema,
  chatRequestImagePartSchema,
  chatRequestMessageSchema,
  chatRequestTextPartSchema,
  type ChatCompletionResponse,
  type ChatCompletionChunk,
  type ChatCompletionRequest,
  type ChatCompletionUsage,
  type FinishReason,
  type ModelListResponse,
  type ChatRequestContentPart,
  type ApiErrorBody,
  type ChatRequestMessage,
} from './schema.js';
