// Judges: a language model behind an OpenAI-compatible endpoint that maps a free-text answer to an
// option when the extraction cascade cannot. Every prompt and reply is cached and reported.

import { extractChoice, optionLetter } from './mc/extract.js';
import type { ChatCompletionsClient } from '@vlit/core/openai';
import type { KeyValueCache } from './run/cache.js';
import { createMemoryCache } from './run/cache.js';
import { sha256Hex, stableStringify } from './sha256.js';

/** What a judge is asked. */
export interface JudgeRequest {
  question: string;
  options: readonly string[];
  answer: string;
}

/** What a judge said, with the exact prompt and reply. */
export interface JudgeVerdict {
  judge: string;
  /** Chosen option (0-based) or null when the judge found none. */
  index: number | null;
  prompt: string;
  reply: string;
  /** True when the reply came from the cache rather than the endpoint. */
  cached: boolean;
}

/** Something that maps a free-text answer to an option. */
export interface Judge {
  readonly id: string;
  /** Settings that decide the judge's replies (model, prompt template, decoding); recorded in manifests. */
  readonly settings: Record<string, unknown>;
  choose(request: JudgeRequest): Promise<JudgeVerdict>;
}

/** The default judge prompt; `{question}`, `{options}` and `{answer}` are filled in. */
export const DEFAULT_JUDGE_TEMPLATE = [
  'You match an answer to the options of a multiple-choice question.',
  'Question: {question}',
  'Options:',
  '{options}',
  'Answer: {answer}',
  'Reply with only the letter of the option that the answer chooses or means.',
  'If the answer matches none of the options, reply Z.',
].join('\n');

/** Options for `createOpenAIJudge`. */
export interface OpenAIJudgeOptions {
  /** Core's chat-completions client (`createChatCompletionsClient` from `@vlit/core/openai`). */
  client: ChatCompletionsClient;
  model: string;
  /** Prompt template (default `DEFAULT_JUDGE_TEMPLATE`). */
  template?: string;
  /** Where prompts and replies are kept (default: in memory). */
  cache?: KeyValueCache;
  /** Max reply tokens (default 16); temperature is always 0. */
  maxTokens?: number;
}

/** Fill a judge template for a request. */
export function renderJudgePrompt(template: string, request: JudgeRequest): string {
  const options = request.options.map((o, i) => `${optionLetter(i)}. ${o}`).join('\n');
  return template.replace('{question}', request.question).replace('{options}', options).replace('{answer}', request.answer);
}

/** A judge through an OpenAI-compatible chat endpoint, at temperature 0, with cached replies. */
export function createOpenAIJudge(options: OpenAIJudgeOptions): Judge {
  const template = options.template ?? DEFAULT_JUDGE_TEMPLATE;
  const cache = options.cache ?? createMemoryCache();
  const maxTokens = options.maxTokens ?? 16;
  const id = `openai:${options.model}`;
  const settings = { model: options.model, template, temperature: 0, maxTokens };
  return {
    id,
    settings,
    async choose(request) {
      const prompt = renderJudgePrompt(template, request);
      const key = sha256Hex(stableStringify({ judge: settings, prompt }));
      let reply = (await cache.get(key)) as string | undefined;
      const cached = typeof reply === 'string';
      if (!cached) {
        const { response } = await options.client.complete({
          model: options.model,
          messages: [{ role: 'user', content: prompt }],
          temperature: 0,
          max_tokens: maxTokens,
        });
        reply = response.choices[0].message.content ?? '';
        await cache.set(key, reply);
      }
      const text = reply as string;
      const read = /^\W*Z\W*$/.test(text) ? { index: null } : extractChoice(text, request.options);
      const index = read.index;
      return { judge: id, index, prompt, reply: text, cached };
    },
  };
}
