/**
 * @vlit/core: the contracts every Vlit package shares. Depends on zod only. The OpenAI-compatible
 * chat-completions client and wire schema live at `@vlit/core/openai`.
 * @packageDocumentation
 */
export {
  BackendError,
  CompatibilityError,
  ConflictError,
  FormatError,
  ImageDecodeError,
  InvalidArgumentError,
  LimitExceededError,
  NotFoundError,
  PathEscapeError,
  TensorShapeError,
  UnsupportedError,
  ValidationError,
  VlitError,
  isVlitError,
  type VlitErrorCode,
  type VlitErrorDetails,
  type VlitErrorOptions,
} from './errors.js';
export { WarningCollector, type ProgressCallback, type ProgressEvent, type VlitWarning } from './warnings.js';
// Tensors: the type and its dtypes; making and checking one; converting between dtypes and bytes.
export { DTYPES, dtypeByteSize, elementCount, type DType, type DTypeArrayMap, type Tensor, type TensorData } from './tensor.js';
export { assertFloat32Weight, assertTensor, createTensor, reshapeTensor, sameDims } from './tensor.js';
export { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16, toFloat32, typedArrayFromBytes, typedArrayToBytes } from './tensor.js';
export {
  SAFETENSORS_DTYPES,
  bf16Tensor,
  coreToSafetensorsDType,
  encodeSafetensorsTensor,
  float32TensorOfShape,
  parseSafetensors,
  safetensorsDTypeBits,
  safetensorsToCoreDType,
  serializeSafetensors,
  type ParseSafetensorsOptions,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsFloatDType,
  type SafetensorsHeader,
  type SafetensorsInput,
  type SafetensorsRawTensor,
  type SafetensorsTensorInfo,
} from './safetensors.js';
export { float4E2M1ToFloat32, float8E4M3ToFloat32, float8E5M2ToFloat32, float8E8M0ToFloat32 } from './minifloat.js';
export { openCheckpointFiles, type CheckpointFolder, type CheckpointTensorInfo, type OpenCheckpointFilesOptions } from './checkpoint-files.js';
export { createRng, createRngFromState, type Rng, type RngState } from './rng.js';
export { seededTensors, type SeededInit } from './seeded-tensors.js';
export { canonicalJson, fnv1a32, sha256Hex } from './hash.js';
export {
  IMAGE_PLACEHOLDER,
  chatMessageSchema,
  contentPartSchema,
  countMessageImages,
  imagePartSchema,
  imageRefSchema,
  parseVlitRecord,
  recordSourceSchema,
  roleSchema,
  safeParseVlitRecord,
  textPartSchema,
  vlitRecordSchema,
  type ChatMessage,
  type ContentPart,
  type ImageRef,
  type RecordLocation,
  type RecordSource,
  type Role,
  type VlitRecord,
  type VlitRecordInput,
} from './schemas/record.js';
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
