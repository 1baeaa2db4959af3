/**
 * The server's request side: a chat completion body becomes the model it names, core chat messages
 * with image placeholders, the image URLs still to load and the generation settings, or an HttpError
 * (400, 404) naming what is wrong, all before the request waits for a slot.
 */
import type { ChatMessage, ContentPart, GenerationOptions, VisionLanguageModel } from '@vlit/core';
import { HttpError } from './errors.js';
import { checkPromptLength, type PromptLimits } from './prompt-limits.js';
import { chatCompletionRequestSchema, type ChatCompletionRequest } from './schema.js';

/** A parsed and checked request; its images are loaded after it has a slot. */
export interface PreparedRequest {
  model: VisionLanguageModel;
  messages: ChatMessage[];
  imageUrls: Array<{ url: string; param: string }>;
  generation: GenerationOptions;
  stream: boolean;
  includeUsage: boolean;
}

/** What the server accepts: its models and the limits a request must stay within. */
export interface RequestLimits {
  /** The served models; a request without `model` gets the first. */
  models: readonly VisionLanguageModel[];
  promptLimits: ReadonlyMap<VisionLanguageModel, PromptLimits>;
  maxImages: number;
  defaultMaxTokens: number;
  maxTokensLimit: number;
}

function convertMessages(request: ChatCompletionRequest): { messages: ChatMessage[]; imageUrls: PreparedRequest['imageUrls'] } {
  const imageUrls: PreparedRequest['imageUrls'] = [];
  const messages = request.messages.map((m, i): ChatMessage => {
    const role = m.role === 'developer' ? 'system' : m.role;
    // Text always goes in parts, so an `<image>` typed by a user is text, never an image placeholder.
    if (typeof m.content === 'string') return { role, content: [{ type: 'text', text: m.content }] };
    const parts: ContentPart[] = m.content.map((p, j) => {
      if (p.type === 'text') return { type: 'text', text: p.text };
      const url = typeof p.image_url === 'string' ? p.image_url : p.image_url.url;
      imageUrls.push({ url, param: `messages[${i}].content[${j}].image_url` });
      return { type: 'image' };
    });
    if (role !== 'user' && parts.some((p) => p.type === 'image')) {
      throw new HttpError(
        400,
        'invalid_request_error',
        'invalid_request',
        `images are accepted in user messages only (message ${i} is '${m.role}')`,
        `messages[${i}].content`,
      );
    }
    return { role, content: parts };
  });
  return { messages, imageUrls };
}

/** Parse a chat completion body and check it against the server's models and limits; HttpError for anything it cannot serve. */
export function parseChatRequest(body: string, limits: RequestLimits): PreparedRequest {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'invalid_request_error', 'invalid_json', 'the request body is not valid JSON');
  }
  const parsed = chatCompletionRequestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    throw new HttpError(400, 'invalid_request_error', 'invalid_request', `invalid request: ${issue.message}${param ? ` at ${param}` : ''}`, param || null);
  }
  const request = parsed.data;
  if (request.n != null && request.n !== 1) {
    throw new HttpError(400, 'invalid_request_error', 'unsupported', 'only n = 1 is supported', 'n');
  }
  const model = request.model === undefined ? limits.models[0] : limits.models.find((m) => m.id === request.model);
  if (!model) {
    throw new HttpError(404, 'not_found_error', 'model_not_found', `the model '${request.model}' is not served here; see /v1/models`, 'model');
  }
  const { messages, imageUrls } = convertMessages(request);
  checkPromptLength(messages, limits.promptLimits.get(model)!);
  if (imageUrls.length > limits.maxImages) {
    throw new HttpError(400, 'invalid_request_error', 'too_many_images', `at most ${limits.maxImages} images per request, got ${imageUrls.length}`, 'messages');
  }
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? limits.defaultMaxTokens;
  if (maxTokens > limits.maxTokensLimit) {
    throw new HttpError(
      400,
      'invalid_request_error',
      'invalid_argument',
      `max_tokens ${maxTokens} exceeds this server's limit of ${limits.maxTokensLimit}`,
      'max_tokens',
    );
  }
  const stop = request.stop == null ? undefined : typeof request.stop === 'string' ? [request.stop] : request.stop;
  const generation: GenerationOptions = {
    maxNewTokens: maxTokens,
    ...(request.temperature != null ? { temperature: request.temperature } : {}),
    ...(request.top_p != null ? { topP: request.top_p } : {}),
    ...(request.top_k != null ? { topK: request.top_k } : {}),
    ...(request.repetition_penalty != null ? { repetitionPenalty: request.repetition_penalty } : {}),
    ...(request.seed != null ? { seed: request.seed } : {}),
    ...(stop ? { stop } : {}),
  };
  return {
    model,
    messages,
    imageUrls,
    generation,
    stream: request.stream === true,
    includeUsage: request.stream_options?.include_usage === true,
  };
}
