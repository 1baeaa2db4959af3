/**
 * @vlit/templates: instruction template pools, chat templates (Hugging Face Jinja + built-ins),
 * tokenizers, conversation encoding with label masks from rendered-segment offsets, truncation,
 * packing and the template linter. Browser-safe; file loading lives at `@vlit/templates/node`.
 * @packageDocumentation
 */
export {
  boxFormatSchema,
  builtinInstructionPools,
  createInstructionSampler,
  fillInstruction,
  formatBox,
  instructionPoolSchema,
  parseInstructionPool,
  type BoxFormat,
  type InstructionPool,
  type InstructionPoolInput,
  type InstructionSampler,
  type InstructionSamplerOptions,
  type InstructionSplit,
  type PixelBox,
  type SampledInstruction,
} from './instruction-pools.js';
export {
  VICUNA_SYSTEM_PROMPT,
  assistantGlueSchema,
  builtinTemplateNames,
  checkAlternation,
  createBuiltinTemplate,
  createChatTemplate,
  turnFormatSchema,
  turnGlueSchema,
  type BuiltinTemplateName,
  type BuiltinTemplateOptions,
  type SegmentedChatTemplate,
  type TurnFormat,
  type TurnFormatInput,
} from './chat-template.js';
export { chatTemplateFromConfig, createJinjaChatTemplate, type ChatTemplateFromConfigOptions, type JinjaChatTemplateOptions } from './jinja-template.js';
export {
  createHfTokenizer,
  specialTokenText,
  tokenizerConfigSchema,
  tokenizerJsonSchema,
  type HfTokenizerOptions,
  type TokenizerConfig,
  type TokenizerJson,
} from './hf-tokenizer.js';
export {
  buildWordLevelTokenizer,
  createWordLevelTokenizer,
  wordLevelTokenizerJsonSchema,
  type BuildWordLevelOptions,
  type WordLevelTokenizer,
  type WordLevelTokenizerJson,
} from './word-level-tokenizer.js';
export {
  encodeBatch,
  encodeConversation,
  trainedMessages,
  truncateSample,
  withRecord,
  type AssistantTurnPolicy,
  type BoundaryIssue,
  type EncodeBatchOptions,
  type EncodeBatchResult,
  type EncodeOptions,
  type EncodeReject,
  type EncodedSample,
  type ImageSpan,
  type ImageTokenCount,
  type MessageSpan,
} from './encode.js';
export { packSamples, type BlockDiagonalAttention, type PackOptions, type PackResult, type PackedSampleSlot, type PackedSequence } from './pack.js';
export {
  assertLintClean,
  formatLintReport,
  lintTemplate,
  type LintIssue,
  type LintIssueCode,
  type LintOptions,
  type LintReport,
  type LintSampleReport,
  type LintToken,
} from './lint.js';
export { messageText } from './content.js';
