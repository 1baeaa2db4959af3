/**
 * Configuration of the Llama-style decoder, and its Hugging Face `config.json` form
 * (LlamaForCausalLM field names), so exported files load in any Optimum-layout loader.
 */
import { InvalidArgumentError } from '@vlit/core';

/** Widths and constants of a Llama-style decoder. */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  /** SwiGLU inner width. */
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Grouped-query attention: key/value heads (divides numAttentionHeads; equal = multi-head attention). */
  numKeyValueHeads: number;
  /** Per-head width (default hiddenSize / numAttentionHeads). */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  /** lm_head shares model.embed_tokens.weight. */
  tieWordEmbeddings: boolean;
  bosTokenId?: number;
  eosTokenId?: number | number[];
}

/** Fields one may leave out of a LlamaConfig. */
export type LlamaConfigInput = Pick<LlamaConfig, 'vocabSize' | 'hiddenSize' | 'numHiddenLayers' | 'numAttentionHeads'> & Partial<LlamaConfig>;

function positiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new InvalidArgumentError(`decoder ${field} must be a positive integer, got ${String(value)}`, { details: { field } });
  }
  return value;
}

/** Fill defaults and check consistency; throws InvalidArgumentError naming the field. */
export function normalizeLlamaConfig(input: LlamaConfigInput): LlamaConfig {
  const hiddenSize = positiveInt(input.hiddenSize, 'hiddenSize');
  const numAttentionHeads = positiveInt(input.numAttentionHeads, 'numAttentionHeads');
  const numKeyValueHeads = positiveInt(input.numKeyValueHeads ?? numAttentionHeads, 'numKeyValueHeads');
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new InvalidArgumentError(`numAttentionHeads ${numAttentionHeads} is not a multiple of numKeyValueHeads ${numKeyValueHeads}`, {
      details: { field: 'numKeyValueHeads' },
    });
  }
  if (input.headDim === undefined && hiddenSize % numAttentionHeads !== 0) {
    throw new InvalidArgumentError(`hiddenSize ${hiddenSize} is not divisible by numAttentionHeads ${numAttentionHeads}; give headDim`, {
      details: { field: 'headDim' },
    });
  }
  const headDim = positiveInt(input.headDim ?? hiddenSize / numAttentionHeads, 'headDim');
  if (headDim % 2 !== 0) throw new InvalidArgumentError(`headDim ${headDim} must be even for rotary embeddings`, { details: { field: 'headDim' } });
  const rmsNormEps = input.rmsNormEps ?? 1e-6;
  const ropeTheta = input.ropeTheta ?? 10000;
  if (!(rmsNormEps > 0)) throw new InvalidArgumentError('rmsNormEps must be > 0', { details: { field: 'rmsNormEps' } });
  if (!(ropeTheta > 0)) throw new InvalidArgumentError('ropeTheta must be > 0', { details: { field: 'ropeTheta' } });
  return {
    vocabSize: positiveInt(input.vocabSize, 'vocabSize'),
    hiddenSize,
    intermediateSize: positiveInt(input.intermediateSize ?? 2 * hiddenSize, 'intermediateSize'),
    numHiddenLayers: positiveInt(input.numHiddenLayers, 'numHiddenLayers'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    rmsNormEps,
    ropeTheta,
    maxPositionEmbeddings: positiveInt(input.maxPositionEmbeddings ?? 2048, 'maxPositionEmbeddings'),
    tieWordEmbeddings: input.tieWordEmbeddings ?? false,
    ...(input.bosTokenId !== undefined ? { bosTokenId: input.bosTokenId } : {}),
    ...(input.eosTokenId !== undefined ? { eosTokenId: input.eosTokenId } : {}),
  };
}

/** The Hugging Face `config.json` object of a LlamaForCausalLM with this configuration. */
export function toHfLlamaConfig(config: LlamaConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    head_dim: config.headDim,
    hidden_act: 'silu',
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: 'float32',
    use_cache: true,
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}),
  };
}

/** A LlamaConfig from a Hugging Face `config.json` object. */
export function fromHfLlamaConfig(json: Record<string, unknown>, file?: string): LlamaConfig {
  const num = (key: string): number | undefined => (typeof json[key] === 'number' ? (json[key] as number) : undefined);
  try {
    return normalizeLlamaConfig({
      vocabSize: num('vocab_size') as number,
      hiddenSize: num('hidden_size') as number,
      intermediateSize: num('intermediate_size'),
      numHiddenLayers: num('num_hidden_layers') as number,
      numAttentionHeads: num('num_attention_heads') as number,
      numKeyValueHeads: num('num_key_value_heads'),
      headDim: num('head_dim'),
      rmsNormEps: num('rms_norm_eps'),
      ropeTheta: num('rope_theta'),
      maxPositionEmbeddings: num('max_position_embeddings'),
      tieWordEmbeddings: json.tie_word_embeddings === true,
      bosTokenId: num('bos_token_id'),
      eosTokenId: Array.isArray(json.eos_token_id) ? (json.eos_token_id as number[]) : num('eos_token_id'),
    });
  } catch (err) {
    if (err instanceof InvalidArgumentError && file) (err.details as Record<string, unknown>).file = file;
    throw err;
  }
}

/**
 * A tiny Llama-style configuration for tests and demos: 2 layers, 4 attention heads, 2 key/value
 * heads (grouped-query attention), SwiGLU width 2 x hidden, RoPE theta 10000.
 */
export function tinyLlamaConfig(options: Partial<LlamaConfig> & { hiddenSize: number; vocabSize: number }): LlamaConfig {
  return normalizeLlamaConfig({ numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 512, ...options });
}
