/** The trained main job (entry for tests and for the CLI to wire into `vlit demo`). */
export {
  runTrainedMainJob,
  MAIN_JOB_CHAT_TEMPLATE,
  type TrainedMainJobOptions,
  type TrainedMainJobResult,
  type MainJobProgress,
  type SplitScore,
  type MainJobRecord,
} from './main-job.js';
export { QUICK_SETTINGS, FULL_SETTINGS, FULL_VISION_PRETRAIN, type MainJobSettings } from './settings.js';
export { dimensionTable, renderResultsMarkdown, renderMainJobMarkdown, renderMainJobHtml, type DimensionRow } from './report.js';
export { adaptWorldScenes, plantFaults, captionRecords, contentText, type PlantedFault, type PlantedFaultKind, type AdaptedData } from './data.js';
export { patchStatisticsVitConfig, patchStatisticsVitWeights, handSetWidth, pinnedEntries, type LearnedChannels } from './vision.js';
export { pretrainWorldTower, type VisionPretrainSettings, type PretrainedTower } from './vision-pretrain.js';
export {
  runReproduction,
  renderReproductionMarkdown,
  renderVariantTable,
  readingOf,
  seedStats,
  REPRODUCE_VARIANTS,
  REPRODUCE_SETTINGS,
  REPRODUCE_QUICK_SETTINGS,
  RECORDED_RUN_NOTES,
  type ReproduceVariant,
  type ReproductionOptions,
  type ReproductionResult,
  type VariantResult,
  type SeedStats,
} from './reproduce.js';
export {
  scoreOf,
  chanceOf,
  createFrozenTower,
  trainSmallLlava,
  composeTrainedModel,
  evaluateSplits,
  blankImage,
  type FrozenTower,
  type TrainedLlava,
  type MainJobConnectorKind,
} from './pipeline.js';
