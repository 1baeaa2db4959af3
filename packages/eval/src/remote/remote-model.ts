// A VisionLanguageModel behind any OpenAI-compatible chat-completions endpoint: images travel as
// PNG data URLs, decoding settings as the standard fields (top_k / repetition_penalty as the common
// extensions). The chat API exposes no prompt log-likelihoods, so `score` is unsupported: evaluate
// remote models by generation.

import {
  toChatCompletionsMessages,
  UnsupportedError,
  type ChatMessage,
  type GenerationOptions,
  type GenerationResult,
  type ImageCodec,
  type ImageFormat,
  type RawImage,
  type VisionLanguageModel,
  type VisionLanguageRequest,
} from '@vlit/core';
import type { ChatCompletionRequest, OpenAIChatMessage, OpenAIClient } from './openai-client.js';

/** Options for `createRemoteVisionLanguageModel`. */
export interface RemoteModelOptions {
  client: OpenAIClient;
  /** Model name sent in each request. */
  model: string;
  /** Codec used to encode request images (from `@vlit/runtime`); required when requests carry images. */
  images?: ImageCodec;
  /** Image encoding (default png: lossless, so the server sees the same pixels). */
  imageFormat?: ImageFormat;
  /** Id reported by the model (default `remote:<model>`). */
  id?: string;
}

/** Convert Vlit chat messages (with `<image>` markers or image parts) to OpenAI messages with data-URL images (core's `toChatCompletionsMessages`). */
export async function toOpenAIMessages(
  messages: readonly ChatMessage[],
  images: readonly RawImage[],
  codec: ImageCodec | undefined,
  format: ImageFormat = 'png',
): Promise<OpenAIChatMessage[]> {
  return toChatCompletionsMessages(messages, images, { codec, format });
}

/** A VisionLanguageModel served by an OpenAI-compatible endpoint (generation only). */
export function createRemoteVisionLanguageModel(options: RemoteModelOptions): VisionLanguageModel {
  const format = options.imageFormat ?? 'png';
  return {
    id: options.id ?? `remote:${options.model}`,
    async generate(request: VisionLanguageRequest, gen: GenerationOptions = {}): Promise<GenerationResult> {
      const body: ChatCompletionRequest = {
        model: options.model,
        messages: await toOpenAIMessages(request.messages, request.images ?? [], options.images, format),
      };
      if (gen.maxNewTokens !== undefined) body.max_tokens = gen.maxNewTokens;
      if (gen.temperature !== undefined) body.temperature = gen.temperature;
      if (gen.topP !== undefined) body.top_p = gen.topP;
      if (gen.topK !== undefined) body.top_k = gen.topK;
      if (gen.repetitionPenalty !== undefined) body.repetition_penalty = gen.repetitionPenalty;
      if (gen.seed !== undefined) body.seed = gen.seed;
      if (gen.stop?.length) body.stop = [...gen.stop];
      const extra = gen.providerOptions?.openai;
      if (extra && typeof extra === 'object') Object.assign(body, extra);
      const reply = await options.client.chatCompletion(body, { signal: gen.signal });
      const choice = reply.choices[0];
      const text = choice.message.content ?? '';
      gen.onToken?.(text);
      return {
        text,
        tokenIds: [],
        finishReason: choice.finish_reason === 'length' ? 'length' : 'stop',
        usage: { promptTokens: reply.usage?.prompt_tokens ?? 0, completionTokens: reply.usage?.completion_tokens ?? 0 },
      };
    },
    async score(): Promise<never> {
      throw new UnsupportedError('the OpenAI chat-completions API gives no prompt log-likelihoods; score a remote model by generation', {
        details: { field: 'score', model: options.model },
      });
    },
  };
}
