/**
 * The Llama-style decoder: deterministic or loaded weights, exported as files in the Optimum layout
 * (`config.json`, `generation_config.json`, `decoder_model_merged.onnx`, `embed_tokens.onnx`) and run
 * through the same loader as any Optimum export.
 */
import { encodeModel, type OnnxModel } from '@vlit/graph';
import { loadOptimumDecoder, type LoadOptimumDecoderOptions, type OnnxLanguageModel } from '../language-model/optimum-decoder.js';
import { OPTIMUM_FILES } from '../language-model/optimum-layout.js';
import { createMemorySource } from '../language-model/sources.js';
import { normalizeLlamaConfig, toHfLlamaConfig, type LlamaConfig, type LlamaConfigInput } from './llama-config.js';
import { buildEmbedTokensModel, buildLlamaDecoderModel } from './llama-graph.js';
import { checkLlamaWeights, initLlamaWeights, llamaWeightsToSafetensors, type LlamaWeights } from './llama-weights.js';

/** The decoder file Vlit writes: one model for every step, past_key_values always fed (zero-length at the first step). */
export const LLAMA_DECODER_FILE = 'decoder_model_merged.onnx';

/**
 * The cache protocol of a decoder session Vlit builds for itself: the in-place 'slots' protocol (no copy of
 * the cache per step) unless the model uses sliding-window attention, which only Optimum's protocol expresses.
 */
export function llamaSessionCache(config: LlamaConfig): 'slots' | 'returned' {
  return config.slidingWindow === undefined ? 'slots' : 'returned';
}

function llamaGenerationConfig(c: LlamaConfig): Record<string, unknown> {
  const generationConfig: Record<string, unknown> = {};
  if (c.bosTokenId !== undefined) generationConfig.bos_token_id = c.bosTokenId;
  if (c.eosTokenId !== undefined) generationConfig.eos_token_id = c.eosTokenId;
  return generationConfig;
}

/** The models and JSON files of an export. */
export interface LlamaOnnxExport {
  config: LlamaConfig;
  decoder: OnnxModel;
  embedTokens: OnnxModel;
  /** config.json contents (Hugging Face LlamaForCausalLM fields). */
  hfConfig: Record<string, unknown>;
  /** generation_config.json contents. */
  generationConfig: Record<string, unknown>;
}

/** Build the Optimum-layout models of a Llama-style decoder. */
export function buildLlamaOnnx(config: LlamaConfigInput, weights: LlamaWeights): LlamaOnnxExport {
  const c = normalizeLlamaConfig(config);
  checkLlamaWeights(c, weights);
  return {
    config: c,
    decoder: buildLlamaDecoderModel(c, weights),
    embedTokens: buildEmbedTokensModel(c, weights['model.embed_tokens.weight']),
    hfConfig: toHfLlamaConfig(c),
    generationConfig: llamaGenerationConfig(c),
  };
}

/** The export as file name -> bytes/text, ready for a memory source or to be written to a folder. */
export function llamaOnnxFiles(exported: LlamaOnnxExport): Record<string, Uint8Array | string> {
  return {
    [OPTIMUM_FILES.config]: JSON.stringify(exported.hfConfig, null, 2),
    [OPTIMUM_FILES.generationConfig]: JSON.stringify(exported.generationConfig, null, 2),
    [LLAMA_DECODER_FILE]: encodeModel(exported.decoder),
    [OPTIMUM_FILES.embedTokens]: encodeModel(exported.embedTokens),
  };
}

/** A Llama-style decoder built by Vlit: an OnnxLanguageModel with its configuration and weights. */
export interface LlamaDecoder extends OnnxLanguageModel {
  readonly llamaConfig: LlamaConfig;
  readonly weights: Readonly<LlamaWeights>;
  /** The Optimum-layout files of this model. */
  toFiles(): Record<string, Uint8Array | string>;
  /** Weights as safetensors with Hugging Face Llama names. */
  toSafetensors(): Uint8Array;
}

/** Options of createLlamaDecoder. */
export interface CreateLlamaDecoderOptions extends Omit<LoadOptimumDecoderOptions, 'decoderFile' | 'embedFile'> {
  config: LlamaConfigInput;
  /** Seed of deterministic weights (default 0), used when `weights` is absent. */
  seed?: number | string;
  /** Weights by Hugging Face name (e.g. from llamaWeightsFromSafetensors). */
  weights?: LlamaWeights;
}

/**
 * Build a Llama-style decoder and load it through the Optimum loader, from files in memory: the same
 * code path as a model exported to disk or published by Optimum.
 */
export async function createLlamaDecoder(options: CreateLlamaDecoderOptions): Promise<LlamaDecoder> {
  const config = normalizeLlamaConfig(options.config);
  const weights = Object.freeze(options.weights ?? initLlamaWeights(config, options.seed ?? 0));
  checkLlamaWeights(config, weights);
  // The session runs the in-place cache variant of the decoder; toFiles writes the Optimum layout.
  const sessionFiles: Record<string, Uint8Array | string> = {
    [OPTIMUM_FILES.config]: JSON.stringify(toHfLlamaConfig(config)),
    [OPTIMUM_FILES.generationConfig]: JSON.stringify(llamaGenerationConfig(config)),
    [LLAMA_DECODER_FILE]: encodeModel(buildLlamaDecoderModel(config, weights, { cache: llamaSessionCache(config) })),
    [OPTIMUM_FILES.embedTokens]: encodeModel(buildEmbedTokensModel(config, weights['model.embed_tokens.weight'])),
  };
  let files: Record<string, Uint8Array | string> | undefined;
  const id =
    options.id ?? `llama-h${config.hiddenSize}-l${config.numHiddenLayers}-q${config.numAttentionHeads}-kv${config.numKeyValueHeads}-v${config.vocabSize}`;
  const model = await loadOptimumDecoder(createMemorySource(sessionFiles, id), { backend: options.backend, session: options.session, id });
  return Object.assign(model, {
    llamaConfig: config,
    weights,
    toFiles: () => {
      files ??= llamaOnnxFiles(buildLlamaOnnx(config, weights));
      return { ...files };
    },
    toSafetensors: () => llamaWeightsToSafetensors(config, weights),
  });
}
