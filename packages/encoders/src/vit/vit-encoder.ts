/**
 * The ViT as a VisionEncoder: built with @vlit/graph, serialised to real ONNX bytes, and loaded by
 * the same code that loads any exported CLIP-style model (createOnnxVisionEncoder), so that code
 * path is exercised by every ViT test.
 */
import { serializeSafetensors, type InferenceBackend, type SessionOptions } from '@vlit/core';
import { encodeModel } from '@vlit/graph';
import { clipProcessorSettings, preprocessorConfigFromSettings, type ImageProcessorSettings, type PreprocessorConfig } from '../preprocess/config.js';
import { createOnnxVisionEncoder, type EncoderTiling, type OnnxVisionEncoder } from '../encoders/onnx-encoder.js';
import type { FeatureSelect } from '../planner.js';
import { buildVitModel } from './build.js';
import { resolveVitConfig, vitConfigToHf, type VitConfig, type VitConfigInput } from './config.js';
import { createVitWeights, type VitWeights } from './weights.js';

/** A ViT in the files a Hugging Face-style export has. */
export interface VitExport {
  config: VitConfig;
  /** `model.onnx` bytes (ViT layout: pixel_values -> hidden_states.{i}, last_hidden_state, pooler_output). */
  model: Uint8Array;
  /** `preprocessor_config.json` (CLIPImageProcessor fields). */
  preprocessorConfig: PreprocessorConfig;
  /** `config.json` (CLIPVisionConfig fields). */
  hfConfig: Record<string, unknown>;
  /** `model.safetensors` bytes under CLIPVisionModel names. */
  safetensors: Uint8Array;
}

/** Options of exportVitModel / createVitEncoder. */
export interface VitModelOptions {
  config: VitConfigInput | VitConfig;
  /** Weights by Hugging Face name; default deterministic weights from `seed`. */
  weights?: VitWeights;
  /** Seed for createVitWeights when no weights are given (default 0). */
  seed?: number | string;
  /** Preprocessing; default CLIP's at the model's image size (shortest edge, bicubic, centre crop, CLIP mean/std). */
  preprocessor?: ImageProcessorSettings;
}

/** Build the ViT and everything an export directory holds. */
export function exportVitModel(options: VitModelOptions): VitExport {
  const config = resolveVitConfig(options.config);
  const weights = options.weights ?? createVitWeights(config, options.seed ?? 0);
  const model = encodeModel(buildVitModel(config, weights));
  const settings = options.preprocessor ?? clipProcessorSettings(config.imageSize);
  const tensors: Record<string, VitWeights extends Map<string, infer T> ? T : never> = Object.fromEntries(weights);
  return {
    config,
    model,
    preprocessorConfig: preprocessorConfigFromSettings(settings),
    hfConfig: vitConfigToHf(config),
    safetensors: serializeSafetensors(tensors, { format: 'pt' }),
  };
}

/** Options of createVitEncoder. */
export interface VitEncoderOptions extends VitModelOptions {
  backend: InferenceBackend;
  featureLayer?: number;
  featureSelect?: FeatureSelect;
  tiling?: EncoderTiling;
  maxBatch?: number;
  session?: SessionOptions;
  id?: string;
}

/** The ViT as a VisionEncoder on the given backend. */
export async function createVitEncoder(options: VitEncoderOptions): Promise<OnnxVisionEncoder> {
  const exp = exportVitModel(options);
  return createOnnxVisionEncoder({
    backend: options.backend,
    model: exp.model,
    preprocessor: options.preprocessor ?? clipProcessorSettings(exp.config.imageSize),
    featureLayer: options.featureLayer,
    featureSelect: options.featureSelect,
    tiling: options.tiling,
    maxBatch: options.maxBatch,
    session: options.session,
    clsToken: exp.config.clsToken,
    patchSize: exp.config.patchSize,
    id: options.id,
  });
}
