/**
 * The composed vision-language model: fit checks, prompt encoding with image spans, the splice of
 * projected image features into text embeddings, generation and scoring.
 */
export {
  composeVisionLanguageModel,
  deriveStopTokenIds,
  type ComposeOptions,
  type ComposedVisionLanguageModel,
} from './compose.js';
export {
  checkComponentsFit,
  checkImageTokens,
  visualTokenCount,
  type ComponentFact,
  type ComponentKind,
  type FitParts,
  type FitReport,
  type ImageTokenExpansion,
} from './fit.js';
export { spliceImageFeatures, type SpliceSpan } from './splice.js';
export {
  checkImageCount,
  encodeGenerationPrompt,
  encodeScoringSequence,
  SCORE_IGNORE_INDEX,
  type EncodedSequence,
  type PromptEncoding,
  type ScoringSequence,
} from './prompt.js';
