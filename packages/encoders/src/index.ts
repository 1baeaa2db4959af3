/**
 * @vlit/encoders: image preprocessing, visual-token planning and vision encoders over ONNX.
 * @packageDocumentation
 */
export { PIL_RESAMPLE_CODES, resizeImage, type ResampleFilter, type ResizeOptions } from './preprocess/resample.js';
export { centerCrop, convertToRgb, cropImage, imageToTensor, meanFillColor, normalizeTable, padImage, padToSquare, writeImageTensor, type CropOptions, type NormalizeOptions, type Rgb } from './preprocess/ops.js';
export { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, clipProcessorSettings, parsePreprocessorConfig, parsePreprocessorConfigText, preprocessorConfigFromSettings, preprocessorConfigSchema, settingsFromPreprocessorConfig, type ImageProcessorSettings, type PreprocessorConfig, type ResizeSpec, type SettingsOptions } from './preprocess/config.js';
export { fusedSpec, normalizeTables, preprocessBatch, preprocessEncodedBatch, preprocessImage, preprocessPixels, processedSize, resizeOutputSize, settingsKey, type EncodedBatchOptions } from './preprocess/pipeline.js';
export { anyresLayout, anyresResizedSize, anyresViews, roundHalfEven, selectBestResolution, smartResize, type AnyresLayout, type AnyresOptions, type HeightWidth, type SmartResizeOptions } from './preprocess/tiling.js';
export { llavaNextLanguageTokens, planBatch, planVisualTokens, type AnyresTokenPlan, type BatchTokenPlan, type FeatureSelect, type FixedTokenPlan, type SmartTokenPlan, type TokenPlan, type VisualTokenEstimate } from './planner.js';
export { resolveVitConfig, vitActivationSchema, vitConfigFromHf, vitConfigSchema, vitConfigToHf, vitTokenCounts, type VitActivation, type VitConfig, type VitConfigInput } from './vit/config.js';
export { checkVitWeights, createVitWeights, vitWeightShapes, vitWeightsFromSafetensors, type VitWeights } from './vit/weights.js';
export { VIT_INPUT, VIT_LAST_HIDDEN, VIT_POOLER, buildVitModel, hiddenStateName } from './vit/build.js';
export { createOnnxVisionEncoder, type EncoderTiling, type OnnxEncoderInfo, type OnnxVisionEncoder, type OnnxVisionEncoderOptions } from './encoders/onnx-encoder.js';
export { PPOCR_REC_FEATURES, createOcrRecognitionEncoder, type OcrRecognitionEncoder, type OcrRecognitionEncoderOptions } from './encoders/ocr-encoder.js';
export { createVitEncoder, exportVitModel, type VitEncoderOptions, type VitExport, type VitModelOptions } from './vit/vit-encoder.js';
export { SUPPORTED_DUAL_MODEL_TYPES, SUPPORTED_VISION_MODEL_TYPES, addFeatureSelection, addHfImageEmbedding, addHfTextTower, addHfVisionTower, addL2Normalize, buildHfImageEmbeddingModel, buildHfTextEmbeddingModel, buildHfVisionModel, createHfDualEncoder, createHfVisionEncoder, dualEncoderSpecFromConfig, dualEncoderWeightShapes, findVisionTowerPrefix, hfProcessorSettings, readHfWeights, siglipProcessorSettings, textTowerSpecFromJson, textTowerWeightShapes, visionTowerSpecFromConfig, visionTowerSpecToConfig, visionTowerWeightShapes, type BuildHfVisionModelOptions, type HfActivation, type HfDualEncoder, type HfDualEncoderOptions, type HfDualEncoderSpec, type HfFeatureSelection, type HfFragmentOptions, type HfImageEmbedder, type HfSelectStrategy, type HfTensorSource, type HfTextEmbedder, type HfTextTowerSpec, type HfTowerFamily, type HfVisionEncoder, type HfVisionEncoderOptions, type HfVisionTowerSpec, type HfVisionTowerValues, type HfWeights } from './hf/index.js';
