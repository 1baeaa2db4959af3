import { BackendError, InvalidArgumentError, createRng, isVlitError, parseVlitRecord, type ChatMessage, type VlitRecord } from '@vlit/core';
import { createInstructionSampler, type InstructionSampler, type InstructionSplit } from '@vlit/templates';
import type { ImageAnnotations } from '../annotations.js';
import type { ChatCompletionsClient } from '@vlit/core/openai';
import { promptHash } from './hash.js';
import { parseConversationReply } from './parse.js';
import { SELF_INSTRUCT_TYPES, buildSelfInstructMessages, type ChatCompletionParams, type SelfInstructType } from './prompt.js';

/** Where cached replies live: any async key-value store (memory, files, IndexedDB, ...). */
export interface GenerationCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

/** An in-memory GenerationCache. */
export function createMemoryGenerationCache(): GenerationCache & { readonly size: number } {
  const map = new Map<string, string>();
  return {
    get: async (key) => map.get(key),
    set: async (key, value) => void map.set(key, value),
    get size() {
      return map.size;
    },
  };
}

/** One conversation to generate: an image, a type and an index among that image's conversations of the type. */
export interface GenerationUnit {
  /** Stable id, also the record id: `<dataset>:<imageId>:<type>:<index>`. */
  id: string;
  imageId: string;
  type: SelfInstructType;
  index: number;
  /** Seed sent to the model (derived from the job seed and the id). */
  seed: number;
}

/** How a generated record or reject was made. */
export interface GenerationProvenance {
  model: string;
  /** Endpoint URL without credentials or query. */
  endpoint: string;
  /** sha256 of model + messages + params (the cache key). */
  promptHash: string;
  seed: number;
  /** ISO time the reply was obtained (or taken from the cache). */
  time: string;
  type: SelfInstructType;
  cached: boolean;
  attempts: number;
  finishReason?: string;
  /** Instruction template of a detailed-description record. */
  template?: { id: string; family: string; phrasingIndex: number; split: InstructionSplit };
}

/** A reply that is not a valid conversation, kept with its raw text. */
export interface GenerationReject {
  id: string;
  imageId: string;
  type: SelfInstructType;
  reason: string;
  raw: string;
  provenance: GenerationProvenance;
}

/** What generating one unit gave. */
export type GenerationOutcome = { status: 'record'; record: VlitRecord } | { status: 'reject'; reject: GenerationReject };

/** Options of createSelfInstructGenerator. */
export interface SelfInstructGeneratorOptions {
  /** Core's chat-completions client (`createChatCompletionsClient` from `@vlit/core/openai`). */
  client: ChatCompletionsClient;
  /** Model name sent with each request (part of the prompt hash). */
  model: string;
  /** Dataset name for `source.dataset` and record ids. */
  dataset: string;
  /** Seed of per-unit model seeds and instruction sampling. Default 0. */
  seed?: number | string;
  /** Conversations per image for each type. Default one of each. */
  types?: Partial<Record<SelfInstructType, number>>;
  /** Sampling parameters. Default { temperature: 0.7, max_tokens: 1024 }. */
  params?: ChatCompletionParams;
  /** Send each unit's seed as the request's `seed` (part of the prompt hash either way). Default true. */
  sendSeed?: boolean;
  /** Reply cache keyed by prompt hash. */
  cache?: GenerationCache;
  /** Sampler for detailed-description instructions (`caption-detailed` family). Default: built-in pools with `seed`. */
  sampler?: InstructionSampler;
  split?: InstructionSplit;
  /** Replaces the built-in role description (the per-type task text is kept). */
  systemPrompt?: string;
  /** Shortest acceptable detailed description, in characters. Default 40. */
  minDescriptionChars?: number;
  /** Clock for provenance times. */
  now?: () => Date;
}

/** Turns annotations into LLM-written conversations (Self-Instruct), one unit at a time. */
export interface SelfInstructGenerator {
  /** The units of one image, in a stable order. */
  units(image: ImageAnnotations): GenerationUnit[];
  /** Generate one unit; throws BackendError when the endpoint keeps failing (the unit is then not done). */
  generate(unit: GenerationUnit, image: ImageAnnotations, options?: { signal?: AbortSignal }): Promise<GenerationOutcome>;
}

/** Create a Self-Instruct generator over an OpenAI-compatible client. */
export function createSelfInstructGenerator(options: SelfInstructGeneratorOptions): SelfInstructGenerator {
  if (!options.model) throw new InvalidArgumentError('model is required', { details: { field: 'model' } });
  if (!options.dataset) throw new InvalidArgumentError('dataset name is required', { details: { field: 'dataset' } });
  const seed = options.seed ?? 0;
  const mix = options.types ?? { dialogue: 1, 'detailed-description': 1, 'complex-reasoning': 1 };
  for (const [type, n] of Object.entries(mix)) {
    if (!(SELF_INSTRUCT_TYPES as readonly string[]).includes(type)) {
      throw new InvalidArgumentError(`unknown conversation type '${type}'; known: ${SELF_INSTRUCT_TYPES.join(', ')}`, { details: { field: `types.${type}` } });
    }
    if (!(Number.isInteger(n) && (n as number) >= 0)) {
      throw new InvalidArgumentError(`conversation count must be a non-negative integer, got ${n}`, { details: { field: `types.${type}` } });
    }
  }
  const sampler = options.sampler ?? createInstructionSampler({ seed });
  const split = options.split ?? 'train';
  const params = options.params ?? { temperature: 0.7, max_tokens: 1024 };
  const minChars = options.minDescriptionChars ?? 40;
  const now = options.now ?? (() => new Date());
  const root = createRng(seed);
  const { client, model } = options;

  return {
    units(image) {
      return SELF_INSTRUCT_TYPES.flatMap((type) =>
        Array.from({ length: mix[type] ?? 0 }, (_, index) => {
          const id = `${options.dataset}:${image.imageId}:${type}:${index}`;
          // 31 bits: some servers reject seeds outside a signed 32-bit integer.
          return { id, imageId: image.imageId, type, index, seed: root.fork(`generate\u0000${id}`).nextUint32() >>> 1 };
        }),
      );
    },

    async generate(unit, image, generateOptions = {}) {
      const messages = buildSelfInstructMessages(image, unit.type, { systemPrompt: options.systemPrompt });
      const requestParams: ChatCompletionParams = options.sendSeed === false ? { ...params } : { ...params, seed: unit.seed };
      const hash = await promptHash({ model, messages, params: { ...requestParams, seed: unit.seed } });
      let reply: { content: string; finishReason?: string } | undefined;
      let cached = false;
      let attempts = 0;
      const hit = await options.cache?.get(hash);
      if (hit !== undefined) {
        try {
          reply = JSON.parse(hit) as { content: string; finishReason?: string };
          cached = typeof reply.content === 'string';
        } catch {
          reply = undefined;
        }
      }
      if (!cached) {
        const result = await client.complete(
          { ...requestParams, model, messages: messages.map((m) => ({ role: m.role, content: m.content })) },
          { signal: generateOptions.signal },
        );
        const choice = result.response.choices[0];
        if (typeof choice.message.content !== 'string') {
          // A well-formed reply without text (a refusal, a tool call): asking again gives the same.
          throw new BackendError(`chat completion at ${client.endpoint} returned no text content`, {
            details: { field: 'chat.completions', endpoint: client.endpoint, model, reason: 'no-content', attempts: result.attempts },
          });
        }
        reply = { content: choice.message.content, ...(typeof choice.finish_reason === 'string' ? { finishReason: choice.finish_reason } : {}) };
        attempts = result.attempts;
        // Cache before anything is written, so a job killed after this point never pays for the call again.
        await options.cache?.set(hash, JSON.stringify(reply));
      }
      const { content, finishReason } = reply as { content: string; finishReason?: string };
      const provenance: GenerationProvenance = {
        model,
        endpoint: client.endpoint,
        promptHash: hash,
        seed: unit.seed,
        time: now().toISOString(),
        type: unit.type,
        cached,
        attempts,
        ...(finishReason !== undefined ? { finishReason } : {}),
      };
      const reject = (reason: string): GenerationOutcome => ({
        status: 'reject',
        reject: { id: unit.id, imageId: unit.imageId, type: unit.type, reason, raw: content, provenance },
      });
      if (finishReason === 'length') return reject('reply truncated (finish_reason "length")');

      let turns: Array<{ role: 'user' | 'assistant'; content: string }>;
      if (unit.type === 'detailed-description') {
        const text = content
          .trim()
          .replace(/^(?:\*\*)?assistant\s*:\s*(?:\*\*)?/i, '')
          .trim();
        if (text.length < minChars) return reject(`description shorter than ${minChars} characters`);
        if (parseConversationReply(text).ok) return reject('expected a description, got a conversation');
        if (text.includes('<image>')) return reject('reply contains an <image> placeholder');
        const sampled = sampler.sample('caption-detailed', {}, { key: unit.id, split });
        provenance.template = { id: `caption-detailed#${sampled.phrasingIndex}`, family: 'caption-detailed', phrasingIndex: sampled.phrasingIndex, split };
        turns = [
          { role: 'user', content: sampled.text },
          { role: 'assistant', content: text },
        ];
      } else {
        const parsed = parseConversationReply(content);
        if (!parsed.ok) return reject(parsed.reason);
        turns = parsed.turns;
        if (unit.type === 'complex-reasoning' && turns.length !== 2)
          return reject(`complex reasoning needs one question and one answer, got ${turns.length} turns`);
      }
      const chat: ChatMessage[] = turns.map((t, i) => ({ role: t.role, content: i === 0 ? `<image>\n${t.content}` : t.content }));
      try {
        const record = parseVlitRecord(
          {
            id: unit.id,
            images: [{ path: image.file, width: image.width, height: image.height }],
            messages: chat,
            task: unit.type,
            source: { dataset: options.dataset, originalId: image.imageId, method: 'self-instruct' },
            metadata: { imageId: image.imageId, generation: provenance },
          },
          { record: unit.id },
        );
        return { status: 'record', record };
      } catch (error) {
        if (isVlitError(error, 'VLIT_VALIDATION')) return reject(error.message);
        throw error;
      }
    },
  };
}
