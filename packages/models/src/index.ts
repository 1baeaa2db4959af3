/**
 * @vlit/models: language models (ONNX decoders in the Hugging Face Optimum layout with KV cache,
 * the Llama-style decoder built by @vlit/graph, OpenAI-compatible remote models), generation and
 * scoring. File loading is at `@vlit/models/node`.
 * @packageDocumentation
 */
// Language models in the Optimum layout.
export { OPTIMUM_FILES, OPTIMUM_NAMES, SLOT_CACHE_NAMES } from './language-model/optimum-layout.js';
export { createFetchSource, createMemorySource, type ModelFileSource } from './language-model/sources.js';
export {
  decoderFactsFromConfig,
  loadOptimumDecoder,
  positionsFromMask,
  type DecoderFacts,
  type LoadOptimumDecoderOptions,
  type OnnxLanguageModel,
} from './language-model/optimum-decoder.js';
// The Llama-style decoder.
export {
  SUPPORTED_LLAMA_FAMILIES,
  fromHfLlamaConfig,
  normalizeLlamaConfig,
  ropeInverseFrequencies,
  tinyLlamaConfig,
  toHfLlamaConfig,
  type LlamaConfig,
  type LlamaConfigInput,
  type LlamaFamily,
  type RopeScaling,
} from './decoder/llama-config.js';
export {
  LLAMA_METADATA_KEY,
  checkLlamaWeights,
  initLlamaWeights,
  llamaWeightShapes,
  llamaWeightsFromSafetensors,
  llamaWeightsToSafetensors,
  type LlamaWeights,
} from './decoder/llama-weights.js';
export { buildEmbedTokensModel, buildLlamaDecoderModel, type LlamaGraphOptions } from './decoder/llama-graph.js';
export {
  LLAMA_DECODER_FILE,
  buildLlamaOnnx,
  createLlamaDecoder,
  llamaOnnxFiles,
  llamaSessionCache,
  type CreateLlamaDecoderOptions,
  type LlamaDecoder,
  type LlamaOnnxExport,
} from './decoder/llama.js';
// Generation and scoring.
export {
  applyRepetitionPenalty,
  argmax,
  checkSamplingOptions,
  isGreedy,
  logSoftmax,
  samplingDistribution,
  selectNextToken,
  type SamplingOptions,
} from './generation/sampling.js';
export {
  generate,
  scoreContinuations,
  type GenerateInput,
  type GenerateOptions,
  type GenerateResult,
  type ScoreOptions,
  type TokenEvent,
} from './generation/generate.js';
export { generateBatch, type BatchRow, type GenerateBatchOptions } from './generation/generate-batch.js';
// Remote models.
export {
  createOpenAICompatibleModel,
  type ChatCompletionOptions,
  type ChatCompletionResult,
  type OpenAICompatibleOptions,
  type RemoteChatModel,
} from './remote/openai-compatible.js';
export * from './compose/index.js';
// LLaVA / LLaVA-NeXT checkpoints (config reading, NeXT packing); folder loading is at @vlit/models/node.
export * from './hf/llava-config.js';
export * from './hf/llava-next.js';
