/**
 * @vlit/eval: benchmarks (multiple choice by likelihood or generation, VQA, captioning, POPE),
 * metrics that match the reference implementations, answer extraction, judges, runs with caches
 * and manifests, and reports (JSON, markdown, HTML with charts). Browser-safe; file I/O is at
 * `@vlit/eval/node`.
 * @packageDocumentation
 */
export { VLIT_VERSION } from './version.js';
export { bytesToBase64, base64ToBytes } from './sha256.js';

export {
  VQA_CONTRACTIONS,
  VQA_NUMBER_WORDS,
  normalizeVqaAnswer,
  scoreVqa,
  vqaAccuracy,
  vqaProcessDigitArticle,
  vqaProcessPunctuation,
  type VqaGroundTruth,
  type VqaScores,
} from './metrics/vqa.js';
export { COCO_PUNCTUATIONS, ptbTokenize, tokenizeCaption } from './metrics/ptb-tokenize.js';
export {
  bleuCoco,
  ciderDCoco,
  lcsLength,
  ngramCounts,
  rougeLCoco,
  scoreCaptions,
  type BleuResult,
  type CaptionExample,
  type CaptionPair,
  type CaptionScores,
  type CiderResult,
} from './metrics/caption.js';
export {
  buildPopeQuestions,
  coOccurrence,
  objectFrequencies,
  parsePopeAnswer,
  popeScores,
  type PopeBuildOptions,
  type PopeImage,
  type PopeQuestion,
  type PopeScores,
  type PopeStrategy,
} from './metrics/pope.js';

export { extractChoice, normalizeOptionText, optionLetter, type Extraction, type ExtractionMethod } from './mc/extract.js';
export {
  SEED_DIMENSIONS,
  benchmarkImageSchema,
  multipleChoiceItemSchema,
  parseMmbenchTsv,
  parseSeedBench,
  parseTsv,
  seedDimensionCode,
  type BenchmarkImage,
  type MultipleChoiceFile,
  type MultipleChoiceItem,
  type SkippedRecord,
} from './mc/datasets.js';
export { annotationBenchmarkItems, type AnnotatedImageForItems } from './items/annotation-items.js';
export { cocoImageName, parseCocoCaptions, parsePopeJsonl, parseVqaV2 } from './formats.js';

export {
  DEFAULT_JUDGE_TEMPLATE,
  createOpenAIJudge,
  renderJudgePrompt,
  type Judge,
  type JudgeRequest,
  type JudgeVerdict,
  type OpenAIJudgeOptions,
} from './judge.js';

export {
  type Benchmark,
  type BenchmarkKind,
  type BenchmarkResult,
  type EvalUnit,
  type GroupScore,
  type ItemResult,
  type Prediction,
  type ScoringContext,
} from './run/types.js';
export { createMemoryCache, type KeyValueCache } from './run/cache.js';
export {
  benchmarkDescriptionSchema,
  decodingSettingsSchema,
  diffManifests,
  evalManifestSchema,
  hashContent,
  manifestHash,
  normalizeDecoding,
  type BenchmarkDescription,
  type DecodingSettings,
  type EvalManifest,
  type ModelDescription,
} from './run/manifest.js';
export {
  DEFAULT_CAPTION_TEMPLATE,
  DEFAULT_MC_GENERATE_TEMPLATE,
  DEFAULT_MC_LIKELIHOOD_TEMPLATE,
  DEFAULT_POPE_TEMPLATE,
  DEFAULT_VQA_TEMPLATE,
  captionItemSchema,
  createCaptionBenchmark,
  createMultipleChoiceBenchmark,
  createPopeBenchmark,
  createVqaBenchmark,
  rotation,
  vqaItemSchema,
  type CaptionItem,
  type MultipleChoiceBenchmarkOptions,
  type MultipleChoiceMethod,
  type VqaItem,
} from './run/benchmarks.js';
export { buildManifest, evaluate, type EvalRun, type EvaluateOptions, type ImageLoader, type RunStats } from './run/evaluate.js';
export { createImageLoader } from './images.js';

export {
  KIND_METRICS,
  RESULT_COLUMNS,
  benchmarkIds,
  findResult,
  formatMetric,
  formatPercent,
  metricLabel,
  renderBenchmarkTable,
  renderMarkdownReport,
  renderResultsTable,
  type ResultsTableOptions,
} from './report/markdown.js';
export { toJsonReport, type JsonReport } from './report/json.js';
export { facetedBarSpec, groupedBarSpec, renderVegaLite, type RenderedChart } from './report/charts.js';
export {
  buildReportCharts,
  dataQualitySection,
  escapeHtml,
  renderHtmlReport,
  type DataQualityReportLike,
  type DataQualitySection,
  type HtmlReportOptions,
} from './report/html.js';
