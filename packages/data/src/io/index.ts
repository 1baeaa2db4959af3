/**
 * Browser-safe readers and writers for every dataset dialect (streaming, typed, lossless).
 * File-system helpers are in `./node.ts`.
 */
export * from './source.js';
export * from './json-stream.js';
export * from './paths.js';
export {
  CARRIER_FIELD,
  NOT_EXPRESSIBLE,
  decodeRecord,
  encodeRecord,
  normalizeRecord,
  jsonEqual,
  type RecordLayout,
  type RecordDialect,
  type DecodeContext,
  type EncodeContext,
  type EncodedNative,
  type EncodedRecord,
  type DraftRecord,
  type RecordCarrier,
  type RecordPosition,
  type RecordDecodeOptions,
  type RecordEncodeOptions,
} from './codec.js';
export * from './dialects/llava.js';
export * from './dialects/sharegpt.js';
export * from './dialects/openai.js';
export * from './dialects/mimicit.js';
export * from './dialects/review.js';
export * from './dialects/canonical.js';
export * from './dialects/image-ids.js';
export * from './records.js';
export * from './coco.js';
