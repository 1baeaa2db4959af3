/**
 * Remote models behind any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM, llama.cpp
 * server, SGLang, Vlit's own server, ...). Typed errors, retries with exponential backoff on 429
 * and 5xx (honouring Retry-After), streaming over server-sent events. The API key goes only into the
 * Authorization header: it never appears in errors (server messages are redacted too).
 */
import {
  BackendError,
  IMAGE_PLACEHOLDER,
  InvalidArgumentError,
  UnsupportedError,
  type CandidateScore,
  type ChatMessage,
  type GenerationOptions,
  type GenerationResult,
  type ImageCodec,
  type RawImage,
  type VisionLanguageModel,
  type VisionLanguageRequest,
} from '@vlit/core';

/** One content part of an OpenAI chat message. */
export type OpenAIContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: 'auto' | 'low' | 'high' } };

/** One OpenAI chat message. */
export interface OpenAIChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | OpenAIContentPart[];
}

/** Options of createOpenAICompatibleModel. */
export interface OpenAICompatibleOptions {
  /** Base URL including the version path, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`. */
  baseURL: string;
  /** Sent as `Authorization: Bearer <key>`; never logged or put in errors. */
  apiKey?: string;
  /** Model name sent in each request. */
  model: string;
  /** Id reported by the VisionLanguageModel (default `openai-compatible:<model>`). */
  id?: string;
  /** fetch implementation (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Retries after a 429, a 5xx, a network error or a timeout (default 3). */
  maxRetries?: number;
  /** First backoff in ms, doubled per retry (default 500). */
  retryDelayMs?: number;
  /** Cap of one backoff, Retry-After included (default 8000). */
  maxRetryDelayMs?: number;
  /** Limit of one attempt in ms (default 60000). */
  timeoutMs?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
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
  chat(messages: readonly OpenAIChatMessage[], options?: ChatCompletionOptions): Promise<ChatCompletionResult>;
}

function publicUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
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

class OpenAICompatibleModel implements RemoteChatModel {
  readonly id: string;
  readonly model: string;
  readonly baseURL: string;
  private readonly endpoint: string;
  private readonly doFetch: typeof fetch;

  constructor(private readonly options: OpenAICompatibleOptions) {
    if (!options || typeof options.baseURL !== 'string' || !/^https?:\/\//.test(options.baseURL)) {
      throw new InvalidArgumentError('baseURL must be an http(s) URL', { details: { field: 'baseURL' } });
    }
    if (typeof options.model !== 'string' || !options.model) throw new InvalidArgumentError('model must be a non-empty string', { details: { field: 'model' } });
    this.model = options.model;
    this.baseURL = options.baseURL.replace(/\/+$/, '');
    this.endpoint = `${this.baseURL}/chat/completions`;
    this.id = options.id ?? `openai-compatible:${options.model}`;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new UnsupportedError('no fetch implementation available; pass options.fetch', { details: { field: 'fetch' } });
    this.doFetch = f;
  }

  private redact(text: string): string {
    const key = this.options.apiKey;
    return key ? text.split(key).join('[redacted]') : text;
  }

  private fail(message: string, details: Record<string, unknown>, cause?: unknown): BackendError {
    // The cause may quote request headers in some fetch implementations: keep only its message, redacted.
    const safeCause = cause === undefined ? undefined : new Error(this.redact(cause instanceof Error ? cause.message : String(cause)));
    return new BackendError(this.redact(`remote model ${this.model} at ${publicUrl(this.endpoint)}: ${message}`), {
      cause: safeCause,
      details: { field: 'chat.completions', endpoint: publicUrl(this.endpoint), ...details },
    });
  }

  /** POST with retries; returns the first response that is neither 429 nor 5xx (or throws). */
  private async post(body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<{ response: Response; attempts: number }> {
    const maxRetries = this.options.maxRetries ?? 3;
    const baseDelay = this.options.retryDelayMs ?? 500;
    const maxDelay = this.options.maxRetryDelayMs ?? 8000;
    const timeoutMs = this.options.timeoutMs ?? 60_000;
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: body.stream ? 'text/event-stream' : 'application/json', ...this.options.headers };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    const payload = JSON.stringify(body);
    let lastProblem = '';
    let lastStatus: number | undefined;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw this.fail('aborted', { aborted: true, attempts: attempt });
      const controller = new AbortController();
      const onAbort = (): void => controller.abort(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => controller.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      let retryAfter: number | undefined;
      try {
        const response = await this.doFetch(this.endpoint, { method: 'POST', headers, body: payload, signal: controller.signal });
        if (response.status !== 429 && response.status < 500) return { response, attempts: attempt + 1 };
        lastStatus = response.status;
        lastProblem = `HTTP ${response.status}${await this.errorText(response)}`;
        retryAfter = retryAfterMs(response.headers.get('retry-after'));
      } catch (err) {
        if (signal?.aborted) throw this.fail('aborted', { aborted: true, attempts: attempt + 1 }, err);
        lastStatus = undefined;
        lastProblem = controller.signal.aborted ? `timed out after ${timeoutMs} ms` : `network error: ${err instanceof Error ? err.message : String(err)}`;
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }
      if (attempt >= maxRetries) {
        throw this.fail(`${lastProblem} (gave up after ${attempt + 1} attempts)`, { status: lastStatus, attempts: attempt + 1, retryable: true });
      }
      const delay = Math.min(maxDelay, retryAfter ?? baseDelay * 2 ** attempt);
      try {
        await sleep(delay, signal);
      } catch (err) {
        throw this.fail('aborted', { aborted: true, attempts: attempt + 1 }, err);
      }
    }
  }

  private async errorText(response: Response): Promise<string> {
    try {
      const text = await response.text();
      try {
        const json = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
        const m = typeof json.error === 'string' ? json.error : (json.error?.message ?? json.message);
        if (typeof m === 'string') return `: ${m.slice(0, 500)}`;
      } catch {
        // not JSON
      }
      return text ? `: ${text.slice(0, 200)}` : '';
    } catch {
      return '';
    }
  }

  async chat(messages: readonly OpenAIChatMessage[], options: ChatCompletionOptions = {}): Promise<ChatCompletionResult> {
    if (!Array.isArray(messages) || messages.length === 0) throw new InvalidArgumentError('chat needs at least one message', { details: { field: 'messages' } });
    const stream = typeof options.onToken === 'function';
    const body: Record<string, unknown> = { model: this.model, messages, stream };
    if (options.maxTokens !== undefined) body.max_tokens = options.maxTokens;
    if (options.temperature !== undefined) body.temperature = options.temperature;
    if (options.topP !== undefined) body.top_p = options.topP;
    if (options.topK !== undefined) body.top_k = options.topK;
    if (options.repetitionPenalty !== undefined) body.repetition_penalty = options.repetitionPenalty;
    if (options.stop?.length) body.stop = [...options.stop];
    if (options.seed !== undefined) body.seed = options.seed;
    Object.assign(body, options.extraBody ?? {});
    const { response, attempts } = await this.post(body, options.signal);
    if (!response.ok) {
      throw this.fail(`HTTP ${response.status}${await this.errorText(response)}`, { status: response.status, attempts, retryable: false });
    }
    return stream ? this.readStream(response, options, attempts) : this.readJson(response, attempts);
  }

  private async readJson(response: Response, attempts: number): Promise<ChatCompletionResult> {
    let json: { choices?: { message?: { content?: unknown }; finish_reason?: unknown }[]; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } };
    try {
      json = (await response.json()) as typeof json;
    } catch (cause) {
      throw this.fail('the reply is not JSON', { status: response.status, attempts }, cause);
    }
    const choice = json.choices?.[0];
    if (!choice || typeof choice.message?.content !== 'string') {
      throw this.fail('the reply has no choices[0].message.content', { status: response.status, attempts });
    }
    return {
      text: choice.message.content,
      finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : 'stop',
      usage: this.usage(json.usage),
      attempts,
    };
  }

  private usage(u: { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined): ChatCompletionResult['usage'] {
    if (!u || typeof u.prompt_tokens !== 'number' || typeof u.completion_tokens !== 'number') return undefined;
    return { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens };
  }

  private async readStream(response: Response, options: ChatCompletionOptions, attempts: number): Promise<ChatCompletionResult> {
    if (!response.body) throw this.fail('the streamed reply has no body', { attempts });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let text = '';
    let finishReason = '';
    let usage: ChatCompletionResult['usage'];
    let done = false;
    const handle = (event: string): void => {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) return;
      if (data === '[DONE]') {
        done = true;
        return;
      }
      let chunk: { choices?: { delta?: { content?: unknown }; finish_reason?: unknown }[]; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown }; error?: { message?: unknown } };
      try {
        chunk = JSON.parse(data) as typeof chunk;
      } catch (cause) {
        throw this.fail('a streamed event is not JSON', { attempts }, cause);
      }
      if (chunk.error) throw this.fail(`stream error: ${String(chunk.error.message ?? 'unknown')}`, { attempts });
      const choice = chunk.choices?.[0];
      const piece = choice?.delta?.content;
      if (typeof piece === 'string' && piece) {
        text += piece;
        options.onToken?.(piece);
      }
      if (typeof choice?.finish_reason === 'string') finishReason = choice.finish_reason;
      usage = this.usage(chunk.usage) ?? usage;
    };
    try {
      while (!done) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buffer += decoder.decode(value, { stream: true });
        let cut: RegExpExecArray | null;
        while (!done && (cut = /\r?\n\r?\n/.exec(buffer))) {
          const event = buffer.slice(0, cut.index);
          buffer = buffer.slice(cut.index + cut[0].length);
          handle(event);
        }
      }
      if (!done && buffer.trim()) handle(buffer);
    } catch (err) {
      if (options.signal?.aborted) return { text, finishReason: 'abort', usage, attempts };
      if (err instanceof BackendError) throw err;
      throw this.fail('the stream broke', { attempts }, err);
    } finally {
      reader.cancel().catch(() => undefined);
    }
    return { text, finishReason: finishReason || 'stop', usage, attempts };
  }

  private async toOpenAIMessages(request: VisionLanguageRequest): Promise<OpenAIChatMessage[]> {
    const images = request.images ?? [];
    let next = 0;
    const imagePart = async (): Promise<OpenAIContentPart> => {
      const image: RawImage | undefined = images[next++];
      if (!image) throw new InvalidArgumentError(`the messages refer to more images than the ${images.length} given`, { details: { field: 'images' } });
      if (!this.options.images) {
        throw new InvalidArgumentError('sending images needs an ImageCodec (options.images, e.g. runtime.images)', { details: { field: 'images' } });
      }
      const format = this.options.imageFormat ?? 'png';
      const bytes = await this.options.images.encode(image, format);
      return { type: 'image_url', image_url: { url: `data:image/${format};base64,${base64(bytes)}` } };
    };
    const out: OpenAIChatMessage[] = [];
    for (const m of request.messages as readonly ChatMessage[]) {
      const parts: OpenAIContentPart[] = [];
      if (typeof m.content === 'string') {
        const pieces = m.content.split(IMAGE_PLACEHOLDER);
        for (let i = 0; i < pieces.length; i++) {
          if (i > 0) parts.push(await imagePart());
          if (pieces[i]) parts.push({ type: 'text', text: pieces[i] });
        }
      } else {
        for (const p of m.content) parts.push(p.type === 'image' ? await imagePart() : { type: 'text', text: p.text });
      }
      const onlyText = parts.every((p) => p.type === 'text');
      out.push({ role: m.role, content: onlyText ? parts.map((p) => (p as { text: string }).text).join('') : parts });
    }
    if (next !== images.length) {
      throw new InvalidArgumentError(`${images.length} images given but the messages refer to ${next}`, { details: { field: 'images' } });
    }
    return out;
  }

  async generate(request: VisionLanguageRequest, options: GenerationOptions = {}): Promise<GenerationResult> {
    const messages = await this.toOpenAIMessages(request);
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
