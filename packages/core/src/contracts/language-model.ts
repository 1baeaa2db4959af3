import type { Tensor } from '../tensor.js';

/** Opaque key/value cache carried between decoding steps; owned by the model that made it. */
export interface KvCache {
  /** Tokens already held by the cache. */
  readonly length: number;
  /** Free any backend memory held by the cache. */
  dispose(): void;
}

/** Input of one forward pass: token ids or precomputed embeddings (exactly one). */
export interface LanguageModelInput {
  /** Token ids, [batch, seq]. */
  inputIds?: Tensor<'int64'>;
  /** Embeddings, [batch, seq, hiddenSize], e.g. text embeddings with image features spliced in. */
  inputsEmbeds?: Tensor<'float32'>;
  /** 1 for real tokens, 0 for padding, [batch, pastLength + seq]. */
  attentionMask?: Tensor<'int64'>;
  /** Positions, [batch, seq]; derived from the mask when absent. */
  positionIds?: Tensor<'int64'>;
  /** Cache from the previous step, if any. */
  cache?: KvCache;
  /**
   * Logits for only the last N positions ([batch, N, vocabSize]), as transformers' `logits_to_keep`:
   * generation asks for 1 when it feeds a prompt, sparing the language-model head seq - 1 rows. An integer
   * from 1 to seq; absent, every position. A model that cannot skip the work returns the same rows sliced.
   */
  logitsToKeep?: number;
  /**
   * The most the cache is expected to reach (prompt + tokens still to come; generation may stop earlier),
   * as a hint: a model that preallocates its cache may size it with this in mind instead of growing it on
   * the way. A positive integer; a cache that outgrows it still grows. `generate` and `generateBatch` pass
   * it on a prompt's pass (`generateBatch` gives it to `stackCaches` when it prefilled in buckets).
   */
  maxCacheLength?: number;
}

/** Output of one forward pass. */
export interface LanguageModelOutput {
  /** Next-token logits, [batch, seq, vocabSize]. */
  logits: Tensor<'float32'>;
  /** Cache including this step's keys and values. */
  cache?: KvCache;
}

/** A causal language model that can take embeddings as input. */
export interface LanguageModel {
  readonly id: string;
  /** Width of token embeddings (must equal the connector's outputDim). */
  readonly hiddenSize: number;
  readonly vocabSize: number;
  /** Longest context it accepts, if bounded. */
  readonly maxContext?: number;
  /** Look up token embeddings, [batch, seq] -> [batch, seq, hiddenSize]. */
  embed(inputIds: Tensor<'int64'>): Promise<Tensor<'float32'>>;
  /** Run the decoder once. */
  forward(input: LanguageModelInput): Promise<LanguageModelOutput>;
}
