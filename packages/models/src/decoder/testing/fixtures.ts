/**
 * Test fixtures shared by the decoder and generation tests: two decoder configurations with
 * different hidden sizes (and attention layouts), a character tokenizer, and a model view that records its
 * forward passes. Not exported.
 */
import type { KvCache, LanguageModel, LanguageModelInput, Tokenizer } from '@vlit/core';
import { tinyLlamaConfig, type LlamaConfig } from '../llama-config.js';

/** 0 is the end-of-sequence token; 1..95 are the printable ASCII characters ' '..'~'. */
export const CHAR_VOCAB = 96;
export const EOS = 0;

/** Two configurations the composer can mix: GQA at hidden 48, multi-head attention at hidden 64 with untied/tied heads. */
export const CONFIGS: Record<string, LlamaConfig> = {
  'gqa-h48': tinyLlamaConfig({ hiddenSize: 48, vocabSize: CHAR_VOCAB, numAttentionHeads: 4, numKeyValueHeads: 2, intermediateSize: 96, eosTokenId: EOS }),
  'mha-h64-tied': tinyLlamaConfig({
    hiddenSize: 64,
    vocabSize: CHAR_VOCAB,
    numAttentionHeads: 4,
    numKeyValueHeads: 4,
    numHiddenLayers: 3,
    intermediateSize: 160,
    tieWordEmbeddings: true,
    ropeTheta: 500,
    eosTokenId: EOS,
  }),
};

/** A character-level tokenizer over CHAR_VOCAB, implementing core's Tokenizer. */
export function charTokenizer(): Tokenizer {
  const idToToken = (id: number): string | undefined => (id === EOS ? '</s>' : id > 0 && id < CHAR_VOCAB ? String.fromCharCode(31 + id) : undefined);
  return {
    id: 'char-96',
    vocabSize: CHAR_VOCAB,
    specialTokens: { eos: '</s>' },
    encode(text) {
      const ids: number[] = [];
      const offsets: [number, number][] = [];
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c >= 32 && c <= 126) {
          ids.push(c - 31);
          offsets.push([i, i + 1]);
        }
      }
      return { ids, offsets };
    },
    decode(ids, options) {
      return ids
        .filter((id) => !(options?.skipSpecialTokens && id === EOS))
        .map((id) => idToToken(id) ?? '')
        .join('');
    },
    tokenToId: (token) => (token === '</s>' ? EOS : token.length === 1 && token >= ' ' && token <= '~' ? token.charCodeAt(0) - 31 : undefined),
    idToToken,
  };
}

/** What a recording model saw: each forward pass's `[batch, seq]` and `maxCacheLength`, and each `stackCaches` hint. */
export interface ForwardRecord {
  passes: number[][];
  hints: (number | undefined)[];
}

/**
 * The same model seen through a view that records its forward passes (and `stackCaches` calls, when the model
 * has them) before running them unchanged; `before` runs first on each pass (e.g. to abort mid-batch).
 */
export function recordingModel<M extends LanguageModel>(model: M, before?: () => void): { model: M; record: ForwardRecord } {
  const record: ForwardRecord = { passes: [], hints: [] };
  const stack = (model as Partial<{ stackCaches(c: readonly KvCache[], o?: { maxCacheLength?: number }): KvCache }>).stackCaches;
  const view = Object.create(model, {
    forward: {
      value: (input: LanguageModelInput) => {
        record.passes.push([...(input.inputIds ?? input.inputsEmbeds)!.dims.slice(0, 2)]);
        record.hints.push(input.maxCacheLength);
        before?.();
        return model.forward(input);
      },
    },
    ...(stack
      ? {
          stackCaches: {
            value: (caches: readonly KvCache[], o?: { maxCacheLength?: number }) => {
              record.hints.push(o?.maxCacheLength);
              return stack.call(model, caches, o);
            },
          },
        }
      : {}),
  }) as M;
  return { model: view, record };
}
