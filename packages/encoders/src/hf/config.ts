/**
 * Hugging Face CLIP / SigLIP `config.json` files read into Vlit's tower specs. A vision tower may
 * come from a bare vision config (`clip_vision_model`, `siglip_vision_model`) or from the
 * `vision_config` nested in a CLIPModel, SiglipModel or LLaVA config; the text tower from a dual
 * encoder's `text_config`. Errors name the file and the field.
 */
import { UnsupportedError, ValidationError } from '@vlit/core';

/** The two families of vision towers Vlit builds from checkpoints. */
export type HfTowerFamily = 'clip' | 'siglip';

/** MLP activation as the graph computes it (Hugging Face `hidden_act` names map onto these). */
export type HfActivation = 'gelu' | 'gelu_tanh' | 'quick_gelu';

/** A vision tower's architecture, in Vlit's names. */
export interface HfVisionTowerSpec {
  family: HfTowerFamily;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  layerNormEps: number;
  hiddenAct: HfActivation;
  /** SigLIP's attention-pool head (`vision_use_head`); CLIP has none. */
  useHead: boolean;
  /** The `hidden_act` string as the config spelled it, written back on save. */
  hfHiddenAct: string;
}

/** A dual encoder's text tower. */
export interface HfTextTowerSpec {
  family: HfTowerFamily;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  maxPositions: number;
  layerNormEps: number;
  hiddenAct: HfActivation;
  hfHiddenAct: string;
  /** CLIP pools the first EOS token (or, for the legacy id 2, the highest id); SigLIP the last token. */
  eosTokenId: number;
  padTokenId: number;
  /** SigLIP's text head width (`projection_size`). */
  projectionSize: number;
}

/** A CLIPModel / SiglipModel. */
export interface HfDualEncoderSpec {
  family: HfTowerFamily;
  vision: HfVisionTowerSpec;
  text: HfTextTowerSpec;
  /** CLIP's projection width (`projection_dim`); SigLIP's embeddings are the heads' outputs. */
  projectionDim: number;
}

/** model_type values the vision loader accepts. */
export const SUPPORTED_VISION_MODEL_TYPES = ['clip_vision_model', 'siglip_vision_model', 'clip', 'siglip', 'llava', 'llava_next'] as const;
/** model_type values the dual-encoder loader accepts. */
export const SUPPORTED_DUAL_MODEL_TYPES = ['clip', 'siglip'] as const;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function activation(act: string, file: string | undefined, field: string): HfActivation {
  if (act === 'quick_gelu') return 'quick_gelu';
  if (act === 'gelu') return 'gelu';
  // gelu_new and gelu_pytorch_tanh are the same tanh formula in transformers' ACT2FN.
  if (act === 'gelu_pytorch_tanh' || act === 'gelu_new') return 'gelu_tanh';
  throw new UnsupportedError(`hidden_act ${act} is not supported; supported: quick_gelu, gelu, gelu_pytorch_tanh, gelu_new`, { details: { file, field } });
}

function reader(obj: Json, file: string | undefined, prefix: string) {
  const field = (k: string) => (prefix ? `${prefix}.${k}` : k);
  const int = (k: string, fallback?: number): number => {
    const v = obj[k];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ValidationError(`config is missing the required field ${field(k)}`, { details: { file, field: field(k) } });
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw new ValidationError(`config field ${field(k)} must be a non-negative integer, got ${JSON.stringify(v)}`, { details: { file, field: field(k) } });
    }
    return v;
  };
  const num = (k: string, fallback: number): number => {
    const v = obj[k];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !(v > 0))
      throw new ValidationError(`config field ${field(k)} must be a positive number`, { details: { file, field: field(k) } });
    return v;
  };
  const str = (k: string, fallback: string): string => {
    const v = obj[k];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') throw new ValidationError(`config field ${field(k)} must be a string`, { details: { file, field: field(k) } });
    return v;
  };
  return { int, num, str, field };
}

function familyOf(modelType: string): HfTowerFamily | undefined {
  if (modelType === 'clip_vision_model' || modelType === 'clip' || modelType === 'clip_text_model') return 'clip';
  if (modelType === 'siglip_vision_model' || modelType === 'siglip' || modelType === 'siglip_text_model') return 'siglip';
  return undefined;
}

function modelTypeOf(config: Json, file: string | undefined, field = 'model_type'): string {
  const t = config.model_type;
  if (typeof t !== 'string') throw new ValidationError(`config is missing the required field ${field}`, { details: { file, field } });
  return t;
}

/** Read a vision tower's spec from the parts of a config that describe it; `prefix` names nested fields in errors. */
export function visionTowerSpecFromJson(obj: Json, family: HfTowerFamily, options: { file?: string; prefix?: string } = {}): HfVisionTowerSpec {
  const { int, num, str, field } = reader(obj, options.file, options.prefix ?? '');
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const imageSize = int('image_size');
  const patchSize = int('patch_size');
  for (const [k, v] of [
    ['hidden_size', hiddenSize],
    ['num_attention_heads', numHeads],
    ['image_size', imageSize],
    ['patch_size', patchSize],
  ] as const) {
    if (v === 0) throw new ValidationError(`config field ${field(k)} must be positive`, { details: { file: options.file, field: field(k) } });
  }
  if (hiddenSize % numHeads !== 0) {
    throw new ValidationError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`, {
      details: { file: options.file, field: field('num_attention_heads') },
    });
  }
  if (imageSize % patchSize !== 0) {
    throw new ValidationError(`image_size ${imageSize} is not a multiple of patch_size ${patchSize}`, {
      details: { file: options.file, field: field('patch_size') },
    });
  }
  const hfHiddenAct = str('hidden_act', family === 'clip' ? 'quick_gelu' : 'gelu_pytorch_tanh');
  const useHead = obj.vision_use_head;
  return {
    family,
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    imageSize,
    patchSize,
    numChannels: int('num_channels', 3),
    layerNormEps: num('layer_norm_eps', family === 'clip' ? 1e-5 : 1e-6),
    hiddenAct: activation(hfHiddenAct, options.file, field('hidden_act')),
    hfHiddenAct,
    useHead: family === 'siglip' && useHead !== false,
  };
}

/**
 * The vision tower of a config.json: a CLIPVisionModel / SiglipVisionModel config, or the
 * `vision_config` of a CLIPModel, SiglipModel or LLaVA(-NeXT) config. An unsupported model_type is
 * an UnsupportedError naming it and listing what is supported.
 */
export function visionTowerSpecFromConfig(config: unknown, options: { file?: string } = {}): HfVisionTowerSpec {
  const file = options.file;
  if (!isObject(config)) throw new ValidationError('config.json is not a JSON object', { details: { file } });
  const modelType = modelTypeOf(config, file);
  if (modelType === 'clip_vision_model' || modelType === 'siglip_vision_model') return visionTowerSpecFromJson(config, familyOf(modelType)!, { file });
  if ((SUPPORTED_VISION_MODEL_TYPES as readonly string[]).includes(modelType)) {
    const vc = config.vision_config;
    if (!isObject(vc))
      throw new ValidationError(`a ${modelType} config is missing the required field vision_config`, { details: { file, field: 'vision_config' } });
    const inner = modelTypeOf(vc, file, 'vision_config.model_type');
    const family = familyOf(inner);
    if (!family || inner.endsWith('text_model')) {
      throw new UnsupportedError(`vision_config.model_type ${inner} is not a supported vision tower; supported: clip_vision_model, siglip_vision_model`, {
        details: { file, field: 'vision_config.model_type', modelType: inner, supported: ['clip_vision_model', 'siglip_vision_model'] },
      });
    }
    return visionTowerSpecFromJson(vc, family, { file, prefix: 'vision_config' });
  }
  throw new UnsupportedError(`model_type ${modelType} is not a supported vision tower; supported: ${SUPPORTED_VISION_MODEL_TYPES.join(', ')}`, {
    details: { file, field: 'model_type', modelType, supported: [...SUPPORTED_VISION_MODEL_TYPES] },
  });
}

/** Read a text tower's spec (`text_config` of a CLIPModel / SiglipModel). */
export function textTowerSpecFromJson(obj: Json, family: HfTowerFamily, options: { file?: string; prefix?: string } = {}): HfTextTowerSpec {
  const { int, num, str, field } = reader(obj, options.file, options.prefix ?? '');
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  if (numHeads === 0 || hiddenSize % numHeads !== 0) {
    throw new ValidationError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`, {
      details: { file: options.file, field: field('num_attention_heads') },
    });
  }
  const hfHiddenAct = str('hidden_act', family === 'clip' ? 'quick_gelu' : 'gelu_pytorch_tanh');
  // transformers' own defaults for these ids (CLIPTextConfig / SiglipTextConfig).
  return {
    family,
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    maxPositions: int('max_position_embeddings'),
    layerNormEps: num('layer_norm_eps', family === 'clip' ? 1e-5 : 1e-6),
    hiddenAct: activation(hfHiddenAct, options.file, field('hidden_act')),
    hfHiddenAct,
    eosTokenId: int('eos_token_id', 49407),
    padTokenId: int('pad_token_id', 1),
    projectionSize: family === 'siglip' ? int('projection_size', hiddenSize) : hiddenSize,
  };
}

/** A CLIPModel / SiglipModel config.json; anything else is an UnsupportedError listing what is. */
export function dualEncoderSpecFromConfig(config: unknown, options: { file?: string } = {}): HfDualEncoderSpec {
  const file = options.file;
  if (!isObject(config)) throw new ValidationError('config.json is not a JSON object', { details: { file } });
  const modelType = modelTypeOf(config, file);
  if (modelType !== 'clip' && modelType !== 'siglip') {
    throw new UnsupportedError(`model_type ${modelType} is not a supported dual encoder; supported: ${SUPPORTED_DUAL_MODEL_TYPES.join(', ')}`, {
      details: { file, field: 'model_type', modelType, supported: [...SUPPORTED_DUAL_MODEL_TYPES] },
    });
  }
  const vc = config.vision_config;
  const tc = config.text_config;
  if (!isObject(vc))
    throw new ValidationError(`a ${modelType} config is missing the required field vision_config`, { details: { file, field: 'vision_config' } });
  if (!isObject(tc)) throw new ValidationError(`a ${modelType} config is missing the required field text_config`, { details: { file, field: 'text_config' } });
  const vision = visionTowerSpecFromJson(vc, modelType, { file, prefix: 'vision_config' });
  const text = textTowerSpecFromJson(tc, modelType, { file, prefix: 'text_config' });
  if (modelType === 'siglip' && !vision.useHead) {
    throw new UnsupportedError('a SiglipModel needs the vision attention-pool head (vision_use_head false gives no image embedding)', {
      details: { file, field: 'vision_config.vision_use_head' },
    });
  }
  const projectionDim = modelType === 'clip' ? reader(config, file, '').int('projection_dim', 512) : vision.hiddenSize;
  if (modelType === 'siglip' && text.projectionSize !== vision.hiddenSize) {
    throw new ValidationError(`text_config.projection_size ${text.projectionSize} differs from vision_config.hidden_size ${vision.hiddenSize}`, {
      details: { file, field: 'text_config.projection_size' },
    });
  }
  return { family: modelType, vision, text, projectionDim };
}

/** Tokens the tower emits per image (CLIP's class token included). */
export function visionTowerTokens(spec: HfVisionTowerSpec): { grid: number; patches: number; tokens: number } {
  const grid = spec.imageSize / spec.patchSize;
  return { grid, patches: grid * grid, tokens: grid * grid + (spec.family === 'clip' ? 1 : 0) };
}

/** The spec as a CLIPVisionConfig / SiglipVisionConfig `config.json`. */
export function visionTowerSpecToConfig(spec: HfVisionTowerSpec): Record<string, unknown> {
  const clip = spec.family === 'clip';
  return {
    architectures: [clip ? 'CLIPVisionModel' : 'SiglipVisionModel'],
    model_type: clip ? 'clip_vision_model' : 'siglip_vision_model',
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.numLayers,
    num_attention_heads: spec.numHeads,
    image_size: spec.imageSize,
    patch_size: spec.patchSize,
    num_channels: spec.numChannels,
    layer_norm_eps: spec.layerNormEps,
    hidden_act: spec.hfHiddenAct,
    ...(clip ? {} : { vision_use_head: spec.useHead }),
    attention_dropout: 0,
    dtype: 'float32',
  };
}
