/**
 * A CLIP / SigLIP vision tower from Hugging Face weights as a Vlit VisionEncoder: the graph is built
 * with @vlit/graph (only up to the deepest selected layer), images go through the Pillow-exact
 * processor, and the features are LLaVA's selection (`vision_feature_layer`, `…_select_strategy`).
 * The same tower can be added to a bigger graph (`addToGraph`) or exported whole (`graph`).
 */
import { InvalidArgumentError, canonicalJson, type InferenceBackend, type SessionOptions, type Tensor, type VisionEncoder } from '@vlit/core';
import { createGraph, encodeModel, type GraphBuilder, type OnnxModel, type Value } from '@vlit/graph';
import {
  clipProcessorSettings,
  isProcessorSettings,
  settingsFromPreprocessorConfig,
  type ImageProcessorSettings,
  type PreprocessorConfig,
} from '../preprocess/config.js';
import { processedSize } from '../preprocess/pipeline.js';
import { contentHash } from '../encoders/hash.js';
import { encodeFixedSize, runPixelBatches } from '../encoders/pixel-batches.js';
import type { HfVisionTowerSpec } from './config.js';
import { addFeatureSelection, addHfVisionTower, resolveFeatureLayers, selectedFeatureShape, type HfFragmentOptions, type HfSelectStrategy } from './graph.js';
import { checkHfWeights, visionTowerWeightShapes, type HfWeights } from './weights.js';

/** Input name of the tower graphs. */
export const HF_PIXEL_INPUT = 'pixel_values';
/** Output name of the selected features. */
export const HF_FEATURES_OUTPUT = 'image_features';

/** Options of buildHfVisionModel. */
export interface BuildHfVisionModelOptions extends HfFragmentOptions {
  featureLayer?: number | readonly number[];
  selectStrategy?: HfSelectStrategy;
  /** Also output every `hidden_states.{i}` (all layers are then built). Default false. */
  hiddenStates?: boolean;
  /** Graph name. */
  name?: string;
}

/** The default selection for a family: LLaVA's layer -2; CLIP drops its class token, SigLIP (no class token) keeps every token. */
export function defaultHfSelection(spec: HfVisionTowerSpec): { featureLayer: number; selectStrategy: HfSelectStrategy } {
  return { featureLayer: -2, selectStrategy: spec.family === 'clip' ? 'default' : 'full' };
}

/**
 * The tower as a standalone ONNX model: input `pixel_values` [batch, C, S, S], output
 * `image_features` [batch, tokens, width·layers] (and `hidden_states.{i}` on request).
 */
export function buildHfVisionModel(spec: HfVisionTowerSpec, weights: HfWeights, options: BuildHfVisionModelOptions = {}): OnnxModel {
  checkHfWeights(
    weights,
    visionTowerWeightShapes(spec).filter(([n]) => !n.startsWith('head.') && !n.startsWith('post_layernorm')),
  );
  const def = defaultHfSelection(spec);
  const layers = resolveFeatureLayers(spec, options.featureLayer ?? def.featureLayer);
  const g = createGraph({ name: options.name ?? `vlit-hf-${spec.family}-vision`, opset: 20, producerName: 'vlit' });
  const pixels = g.input(HF_PIXEL_INPUT, 'float32', ['batch', spec.numChannels, spec.imageSize, spec.imageSize]);
  const { hiddenStates } = addHfVisionTower(g, pixels, spec, weights, {
    namePrefix: options.namePrefix,
    upToLayer: options.hiddenStates ? spec.numLayers : Math.max(...layers),
  });
  g.output(addFeatureSelection(g, hiddenStates, layers, options.selectStrategy ?? def.selectStrategy, { namePrefix: options.namePrefix }), HF_FEATURES_OUTPUT);
  if (options.hiddenStates) hiddenStates.forEach((h, i) => g.output(g.identity(h), `hidden_states.${i}`));
  return g.toModel();
}

/** The SiglipImageProcessor defaults (resize to the square input, bicubic, mean/std 0.5, no crop). */
export function siglipProcessorSettings(size = 224): ImageProcessorSettings {
  return {
    convertRgb: true,
    padToSquare: null,
    resize: { height: size, width: size },
    resample: 'bicubic',
    centerCrop: null,
    rescaleFactor: 1 / 255,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
  };
}

/**
 * Processor settings from a `preprocessor_config.json`; a SigLIP processor (which has no crop step,
 * so its config omits `do_center_crop`) is read without CLIP's default crop.
 */
export function hfProcessorSettings(config: PreprocessorConfig): ImageProcessorSettings {
  const siglip = typeof config.image_processor_type === 'string' && config.image_processor_type.startsWith('Siglip');
  return settingsFromPreprocessorConfig(siglip && config.do_center_crop === undefined ? { ...config, do_center_crop: false } : config);
}

/**
 * The settings a tower's images go through: the caller's settings or config, else the family's
 * processor at the tower's size; refused unless they give the tower's square input.
 */
export function towerProcessorSettings(spec: HfVisionTowerSpec, preprocessor?: PreprocessorConfig | ImageProcessorSettings): ImageProcessorSettings {
  const settings = preprocessor
    ? isProcessorSettings(preprocessor)
      ? { ...preprocessor }
      : hfProcessorSettings(preprocessor)
    : spec.family === 'clip'
      ? clipProcessorSettings(spec.imageSize)
      : siglipProcessorSettings(spec.imageSize);
  // Any input size will do: a tower's processor must end at its fixed square size.
  const out = processedSize({ width: 97, height: 61 }, settings);
  if (out.width !== spec.imageSize || out.height !== spec.imageSize) {
    throw new InvalidArgumentError(`the image processor gives ${out.width}x${out.height} images but the tower takes ${spec.imageSize}x${spec.imageSize}`, {
      details: { field: 'preprocessor', expected: spec.imageSize, actual: [out.width, out.height] },
    });
  }
  return settings;
}

/** Options of createHfVisionEncoder. */
export interface HfVisionEncoderOptions {
  backend: InferenceBackend;
  spec: HfVisionTowerSpec;
  /** Weights relative to the tower root (`embeddings.patch_embedding.weight`, …). */
  weights: HfWeights;
  /** A parsed `preprocessor_config.json` or resolved settings; default the family's processor at the tower's image size. */
  preprocessor?: PreprocessorConfig | ImageProcessorSettings;
  /** LLaVA's `vision_feature_layer`: a hidden-state index (negative from the end) or a list to concatenate. Default -2. */
  featureLayer?: number | readonly number[];
  /** LLaVA's `vision_feature_select_strategy`. Default `default` for CLIP, `full` for SigLIP. */
  selectStrategy?: HfSelectStrategy;
  /** Largest batch per session run (default 8). */
  maxBatch?: number;
  session?: SessionOptions;
  id?: string;
}

/** A vision tower loaded from Hugging Face weights, with the facts and handles composition needs. */
export interface HfVisionEncoder extends VisionEncoder {
  readonly spec: HfVisionTowerSpec;
  /** Resolved hidden-state indices (0..L) and strategy. */
  readonly selection: { readonly featureLayers: readonly number[]; readonly selectStrategy: HfSelectStrategy };
  /** The tower's weights, relative names (what saving writes). */
  readonly weights: HfWeights;
  readonly settings: ImageProcessorSettings;
  /** Stable string of the preprocessing and selection, for feature-cache keys. */
  readonly preprocessingKey: string;
  /** Tokens per image after selection (fixed: the processor always gives the tower's input size). */
  readonly tokens: number;
  /** Run preprocessed pixels [N, C, S, S] and return the selected features [N, tokens, outputDim]. */
  encodePixels(pixels: Tensor<'float32'>): Promise<Tensor<'float32'>>;
  /** The tower as a standalone ONNX model (`pixel_values` -> `image_features`). */
  graph(options?: Omit<BuildHfVisionModelOptions, 'featureLayer' | 'selectStrategy'>): OnnxModel;
  /** Add the tower to a caller's graph reading `pixels`; returns the selected-features value. */
  addToGraph(g: GraphBuilder, pixels: Value, options?: HfFragmentOptions): Value;
  release(): Promise<void>;
}

/** Build the tower's graph, start a session on the backend and return it as a VisionEncoder. */
export async function createHfVisionEncoder(options: HfVisionEncoderOptions): Promise<HfVisionEncoder> {
  const { spec, weights, backend } = options;
  const def = defaultHfSelection(spec);
  const selectStrategy = options.selectStrategy ?? def.selectStrategy;
  if (selectStrategy !== 'default' && selectStrategy !== 'full') {
    throw new InvalidArgumentError(`selectStrategy must be default or full, got ${String(selectStrategy)}`, { details: { field: 'selectStrategy' } });
  }
  const featureLayer = options.featureLayer ?? def.featureLayer;
  const featureLayers = resolveFeatureLayers(spec, featureLayer);
  const settings = towerProcessorSettings(spec, options.preprocessor);
  const model = encodeModel(buildHfVisionModel(spec, weights, { featureLayer: featureLayers, selectStrategy }));
  const { tokens, width } = selectedFeatureShape(spec, { featureLayer: featureLayers, selectStrategy });
  const maxBatch = Math.max(1, options.maxBatch ?? 8);
  const id = options.id ?? `hf:${spec.family}:${contentHash(model)}:layer:${featureLayers.join(',')}:${selectStrategy}`;
  const session = await backend.createSession(model, options.session);
  const S = spec.imageSize;
  const C = spec.numChannels;

  const run = { session, input: HF_PIXEL_INPUT, output: HF_FEATURES_OUTPUT, imageDims: [C, S, S], features: [tokens, width], maxBatch, what: 'tower' } as const;
  const encodePixels = (pixels: Tensor<'float32'>): Promise<Tensor<'float32'>> => runPixelBatches(pixels, run);

  return {
    id,
    outputDim: width,
    spec,
    selection: { featureLayers, selectStrategy },
    weights,
    settings,
    preprocessingKey: canonicalJson({ settings, featureLayers, selectStrategy }),
    tokens,
    tokensPerImage: () => tokens,
    encodePixels,
    encode: encodeFixedSize(settings, [C, S, S], 'tower', encodePixels),
    graph: (o = {}) => buildHfVisionModel(spec, weights, { ...o, featureLayer: featureLayers, selectStrategy }),
    addToGraph(g, pixels, o = {}) {
      const { hiddenStates } = addHfVisionTower(g, pixels, spec, weights, { ...o, upToLayer: Math.max(...featureLayers) });
      return addFeatureSelection(g, hiddenStates, featureLayers, selectStrategy, o);
    },
    release: () => session.release(),
  };
}
