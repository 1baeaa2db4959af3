/**
 * @vlit/core: the contracts every Vlit package shares. Depends on zod only. The OpenAI-compatible
 * chat-completions client and wire schema live at `@vlit/core/openai`.
 * @packageDocumentation
 */
export * from './errors.js';
export * from './warnings.js';
export * from './tensor.js';
export * from './safetensors.js';
export * from './checkpoint-files.js';
export * from './rng.js';
export { canonicalJson, sha256Hex } from './hash.js';
export * from './schemas/record.js';
export type * from './contracts/inference-backend.js';
export type * from './contracts/image-codec.js';
export type * from './contracts/runtime.js';
export type * from './contracts/vision-encoder.js';
export type * from './contracts/text-embedder.js';
export type * from './contracts/connector.js';
export type * from './contracts/language-model.js';
export type * from './contracts/tokenizer.js';
export type * from './contracts/chat-template.js';
export type * from './contracts/vision-language-model.js';
