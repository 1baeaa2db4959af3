/**
 * Names of the Hugging Face Optimum ONNX layout for decoder-only language models, shared by the
 * loader (./optimum-decoder.ts) and Vlit's exporter (../decoder/llama.ts).
 */

/** File names a decoder directory may hold, in the order the loader tries them. */
export const OPTIMUM_FILES = {
  config: 'config.json',
  generationConfig: 'generation_config.json',
  /** One model for every step: always takes past_key_values (zero-length at the first step); Optimum's merged export may add `use_cache_branch`. */
  decoderCandidates: ['decoder_model_merged.onnx', 'model.onnx', 'decoder_with_past_model.onnx'],
  embedTokens: 'embed_tokens.onnx',
} as const;

/** Input and output names of an Optimum decoder. */
export const OPTIMUM_NAMES = {
  inputIds: 'input_ids',
  inputsEmbeds: 'inputs_embeds',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  useCacheBranch: 'use_cache_branch',
  logits: 'logits',
  pastKey: (i: number) => `past_key_values.${i}.key`,
  pastValue: (i: number) => `past_key_values.${i}.value`,
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
} as const;

/**
 * Outputs of Vlit's in-place cache protocol (LlamaGraphOptions.cache 'slots'): only this step's keys and
 * values, [batch, kv_heads, sequence_length, head_dim]; `past_key_values.{i}.*` are then slot buffers.
 */
export const SLOT_CACHE_NAMES = {
  appendedKey: (i: number) => `appended_key_values.${i}.key`,
  appendedValue: (i: number) => `appended_key_values.${i}.value`,
  /** int64 [1]: logits are computed for the last this many positions only (LanguageModelInput.logitsToKeep). */
  logitsToKeep: 'logits_to_keep',
} as const;
