/**
 * Remote models behind any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM, llama.cpp
 * server, SGLang, Vlit's own server, ...). The wire work is core's chat-completions client
 * (`@vlit/core/openai`, with its option names and defaults): typed
 * errors, retries with exponential backoff on 408/409/425/429, 5xx, timeouts and network errors
 * (honouring Retry-After), server-sent event streams, and an API key that never appears in errors.
 */
import {
  BackendError,
  InvalidArgumentError,
  UnsupportedError,
  type CandidateScore,
  type ChatMessage,
  type GenerationOptions,
  type GenerationResult,
  type VisionLanguageModel,
  type VisionLanguageRequest,
  type ImageCodec,
} from '@vlit/core';
import {
  createChatCompletionsClient,
  toChatCompletionsMessages,
  type ChatCompletionsClient,
  type ChatCompletionsClientOptions,
  type ChatCompletionsMessage,
  type ChatCompletionsRequest,
} from '@vlit/core/openai';

/**
 * Options of createOpenAICompatibleModel: core's client options (`baseURL`, `apiKey`, `headers`,
 * `timeoutMs`, `maxRetries`, `backoff`, `maxRetryAfterMs`, `maxConcurrency`, `fetch`, `sleep`,
 * `random`, `onRetry`, with core's defaults) plus the model to call and how images are sent.
 */
export interface OpenAICompatibleOptions extends ChatCompletionsClientOptions {
  /** Model name sent in each request. */
  model: string;
  /** Id reported by the VisionLanguageModel (default `openai-compatible:<model>`). */
  id?: string;
  /** Encodes RawImage requests into data URLs (e.g. `runtime.images`); needed only for images. */
  images?: ImageCodec;
  /** Format images are sent in (default png). */
  imageFormat?: 'png' | 'jpeg' | 'webp';
}

/** Options of one chat completion. */
export interface ChatCompletionOptions {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  /** Not in OpenAI's API; sent as `top_k` (vLLM, llama.cpp) only when set. */
  topK?: number;
  /** Not in OpenAI's API; sent as `repetition_penalty` only when set. */
  repetitionPenalty?: number;
  stop?: readonly string[];
  seed?: number;
  signal?: AbortSignal;
  /** Stream: called with each piece of text as it arrives. */
  onToken?: (text: string) => void;
  /** Merged into the request body (provider-specific fields). */
  extraBody?: Record<string, unknown>;
}

/** A completed chat request. */
export interface ChatCompletionResult {
  text: string;
  /** As the server said it (`stop`, `length`, `content_filter`, ...). */
  finishReason: string;
  usage?: { promptTokens: number; completionTokens: number };
  /** Attempts made (1 without retries). */
  attempts: number;
}

/** A VisionLanguageModel served remotely, plus plain chat. */
export interface RemoteChatModel extends VisionLanguageModel {
  readonly model: string;
  readonly baseURL: string;
  /** One chat completion with OpenAI-format messages. */
  chat(messages: readonly ChatCompletionsMessage[], options?: ChatCompletionOptions): Promise<ChatCompletionResult>;
}

type Usage = { prompt_tokens?: number; completion_tokens?: number } | null | undefined;

function usageOf(u: Usage): ChatCompletionResult['usage'] {
  if (!u || typeof u.prompt_tokens !== 'number' || typeof u.completion_tokens !== 'number') return undefined;
  return { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens };
}

class OpenAICompatibleModel implements RemoteChatModel {
  readonly id: string;
  readonly model: string;
  readonly baseURL: string;
  private readonly client: ChatCompletionsClient;

  constructor(private readonly options: OpenAICompatibleOptions) {
    if (!options || typeof options.baseURL !== 'string' || !/^https?:\/\//.test(options.baseURL)) {
      throw new InvalidArgumentError('baseURL must be an http(s) URL', { details: { field: 'baseURL' } });
    }
    if (typeof options.model !== 'string' || !options.model)
      throw new InvalidArgumentError('model must be a non-empty string', { details: { field: 'model' } });
    const { model: _model, id: _id, images: _images, imageFormat: _imageFormat, ...clientOptions } = options;
    this.client = createChatCompletionsClient(clientOptions);
    this.model = options.model;
    this.baseURL = this.client.baseURL;
    this.id = options.id ?? `openai-compatible:${options.model}`;
  }

  async chat(messages: readonly ChatCompletionsMessage[], options: ChatCompletionOptions = {}): Promise<ChatCompletionResult> {
    if (!Array.isArray(messages) || messages.length === 0)
      throw new InvalidArgumentError('chat needs at least one message', { details: { field: 'messages' } });
    const stream = typeof options.onToken === 'function';
    const body: ChatCompletionsRequest = { model: this.model, messages: [...messages], stream };
    if (options.maxTokens !== undefined) body.max_tokens = options.maxTokens;
    if (options.temperature !== undefined) body.temperature = options.temperature;
    if (options.topP !== undefined) body.top_p = options.topP;
    if (options.topK !== undefined) body.top_k = options.topK;
    if (options.repetitionPenalty !== undefined) body.repetition_penalty = options.repetitionPenalty;
    if (options.stop?.length) body.stop = [...options.stop];
    if (options.seed !== undefined) body.seed = options.seed;
    Object.assign(body, options.extraBody ?? {});
    return stream ? this.streamChat(body, options) : this.completeChat(body, options);
  }

  private async completeChat(body: ChatCompletionsRequest, options: ChatCompletionOptions): Promise<ChatCompletionResult> {
    const { response, attempts } = await this.client.complete(body, { signal: options.signal });
    const choice = response.choices[0];
    if (typeof choice.message.content !== 'string') {
      throw new BackendError(`remote model ${this.model} at ${this.client.endpoint}: the reply has no choices[0].message.content`, {
        details: { field: 'chat.completions', endpoint: this.client.endpoint, attempts, retryable: false },
      });
    }
    return { text: choice.message.content, finishReason: choice.finish_reason ?? 'stop', usage: usageOf(response.usage), attempts };
  }

  private async streamChat(body: ChatCompletionsRequest, options: ChatCompletionOptions): Promise<ChatCompletionResult> {
    const stream = await this.client.stream(body, { signal: options.signal });
    let text = '';
    let finishReason = '';
    let usage: ChatCompletionResult['usage'];
    try {
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        const piece = choice?.delta?.content;
        if (typeof piece === 'string' && piece) {
          text += piece;
          options.onToken?.(piece);
        }
        if (typeof choice?.finish_reason === 'string') finishReason = choice.finish_reason;
        usage = usageOf(chunk.usage) ?? usage;
      }
    } catch (err) {
      // An abort mid-stream keeps what arrived, like a local model stopped early.
      if (options.signal?.aborted) return { text, finishReason: 'abort', usage, attempts: stream.attempts };
      throw err;
    }
    return { text, finishReason: finishReason || 'stop', usage, attempts: stream.attempts };
  }

  async generate(request: VisionLanguageRequest, options: GenerationOptions = {}): Promise<GenerationResult> {
    const messages = await toChatCompletionsMessages(request.messages as readonly ChatMessage[], request.images ?? [], {
      codec: this.options.images,
      format: this.options.imageFormat,
    });
    const extra = options.providerOptions?.openai;
    const r = await this.chat(messages, {
      maxTokens: options.maxNewTokens,
      temperature: options.temperature,
      topP: options.topP,
      topK: options.topK,
      repetitionPenalty: options.repetitionPenalty,
      stop: options.stop,
      seed: options.seed,
      signal: options.signal,
      onToken: options.onToken,
      extraBody: typeof extra === 'object' && extra !== null ? (extra as Record<string, unknown>) : undefined,
    });
    const finishReason: GenerationResult['finishReason'] = r.finishReason === 'length' ? 'length' : r.finishReason === 'abort' ? 'abort' : 'stop';
    return { text: r.text, tokenIds: [], finishReason, usage: r.usage ?? { promptTokens: 0, completionTokens: 0 } };
  }

  async score(_request: VisionLanguageRequest, _candidates: readonly string[]): Promise<CandidateScore[]> {
    throw new UnsupportedError(`remote model ${this.model}: chat completions give no log-probabilities of given text; score with a local model`, {
      details: { field: 'score' },
    });
  }
}

/** A remote model behind an OpenAI-compatible chat completions endpoint. */
export function createOpenAICompatibleModel(options: OpenAICompatibleOptions): RemoteChatModel {
  return new OpenAICompatibleModel(options);
}
