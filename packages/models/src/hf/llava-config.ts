/**
 * LLaVA and LLaVA-NeXT `config.json` files (transformers' LlavaConfig / LlavaNextConfig) read into one
 * spec, and the tensor-name layouts their checkpoints come in: what transformers 4 and 5 write with
 * save_pretrained (`language_model.model.*`, `language_model.lm_head.weight`, `vision_tower.*`,
 * `multi_modal_projector.*`) and transformers 5's module names (`model.language_model.*`, `lm_head.weight`,
 * `model.vision_tower.*`, `model.multi_modal_projector.*`). Browser-safe.
 */
import { FormatError, NotFoundError, UnsupportedError, VlitError, isVlitError } from '@vlit/core';
import { visionTowerSpecFromConfig, type HfSelectStrategy, type HfVisionTowerSpec } from '@vlit/encoders';
import { fromHfLlamaConfig, type LlamaConfig } from '../decoder/llama-config.js';

/** The composite model types Vlit loads. */
export const SUPPORTED_LLAVA_MODEL_TYPES = ['llava', 'llava_next'] as const;
/** One of SUPPORTED_LLAVA_MODEL_TYPES. */
export type LlavaModelType = (typeof SUPPORTED_LLAVA_MODEL_TYPES)[number];

/** A LLaVA(-NeXT) configuration in Vlit's names. */
export interface LlavaSpec {
  modelType: LlavaModelType;
  vision: HfVisionTowerSpec;
  text: LlamaConfig;
  /** The placeholder id in input_ids (`image_token_index`, or transformers 5's alias `image_token_id`). */
  imageTokenId: number;
  featureLayer: number | number[];
  selectStrategy: HfSelectStrategy;
  /** `projector_hidden_act`; the MLP connector computes exact GELU, the only one supported. */
  projectorAct: 'gelu';
  /** `multimodal_projector_bias` (absent biases load as zeros). */
  projectorBias: boolean;
  /** LLaVA-NeXT's anyres canvases, [height, width]. */
  gridPinpoints?: [number, number][];
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Re-raise an error about a nested config with the nested field's full name. */
function nested(err: unknown, prefix: string, file: string | undefined): never {
  if (VlitError.isInstance(err) && typeof err.details.field === 'string' && !err.details.field.startsWith(prefix)) {
    const field = `${prefix}.${err.details.field}`;
    const message = err.message.replace(`'${err.details.field}'`, `'${field}'`);
    if (err.code === 'VLIT_FORMAT') throw new FormatError(message, { cause: err, details: { ...err.details, file, field } });
    if (isVlitError(err, 'VLIT_UNSUPPORTED')) throw new UnsupportedError(message, { cause: err, details: { ...err.details, file, field } });
  }
  throw err;
}

/**
 * Read a LlavaForConditionalGeneration / LlavaNextForConditionalGeneration config.json. An unsupported
 * `model_type` is an UnsupportedError naming it and listing the supported ones; a missing required field
 * (`text_config`, `vision_config`, `image_token_index`, LLaVA-NeXT's `image_grid_pinpoints`, or one of the
 * nested configs' own) is a FormatError naming the field.
 */
export function llavaSpecFromConfig(json: Json, file?: string): LlavaSpec {
  const where = file ?? 'config.json';
  const modelType = json.model_type;
  if (!(SUPPORTED_LLAVA_MODEL_TYPES as readonly unknown[]).includes(modelType)) {
    throw new UnsupportedError(`${where}: model_type '${String(modelType)}' is not supported; supported: ${SUPPORTED_LLAVA_MODEL_TYPES.join(', ')}`, {
      details: { file, field: 'model_type', modelType, supported: [...SUPPORTED_LLAVA_MODEL_TYPES] },
    });
  }
  const missing = (field: string, what: string): never => {
    throw new FormatError(`${where} lacks the required ${what} '${field}'`, { details: { file, field } });
  };
  if (!isObject(json.text_config)) missing('text_config', 'object');
  if (!isObject(json.vision_config)) missing('vision_config', 'object');
  let text: LlamaConfig;
  try {
    text = fromHfLlamaConfig(json.text_config as Json, file);
  } catch (err) {
    nested(err, 'text_config', file);
  }
  let vision: HfVisionTowerSpec;
  try {
    vision = visionTowerSpecFromConfig(json, { file });
  } catch (err) {
    // The encoders' reader says "missing the required field X" with a ValidationError; keep its type, name the field.
    if (VlitError.isInstance(err) && err.code === 'VLIT_VALIDATION' && typeof err.details.field === 'string') {
      throw new FormatError(`${where} lacks the required field '${err.details.field}' (${err.message})`, { cause: err, details: { ...err.details, file } });
    }
    throw err;
  }
  const tokenId = json.image_token_index ?? json.image_token_id;
  if (typeof tokenId !== 'number' || !Number.isInteger(tokenId) || tokenId < 0) missing('image_token_index', 'integer');
  const layer = json.vision_feature_layer ?? -2;
  if (!(typeof layer === 'number' || (Array.isArray(layer) && layer.length > 0 && layer.every((l) => typeof l === 'number')))) {
    throw new FormatError(`${where}: vision_feature_layer must be an integer or a list of integers`, { details: { file, field: 'vision_feature_layer' } });
  }
  const strategy = json.vision_feature_select_strategy ?? 'default';
  if (strategy !== 'default' && strategy !== 'full') {
    throw new UnsupportedError(`${where}: vision_feature_select_strategy '${String(strategy)}' is not supported; supported: default, full`, {
      details: { file, field: 'vision_feature_select_strategy' },
    });
  }
  const act = json.projector_hidden_act ?? 'gelu';
  if (act !== 'gelu') {
    throw new UnsupportedError(`${where}: projector_hidden_act '${String(act)}' is not supported; supported: gelu`, {
      details: { file, field: 'projector_hidden_act' },
    });
  }
  const textTie = (json.text_config as Json).tie_word_embeddings === true || json.tie_word_embeddings === true;
  const spec: LlavaSpec = {
    modelType: modelType as LlavaModelType,
    vision,
    text: { ...text, tieWordEmbeddings: textTie },
    imageTokenId: tokenId as number,
    featureLayer: typeof layer === 'number' ? layer : [...(layer as number[])],
    selectStrategy: strategy,
    projectorAct: 'gelu',
    projectorBias: json.multimodal_projector_bias !== false,
  };
  if (spec.imageTokenId >= text.vocabSize) {
    throw new FormatError(`${where}: image_token_index ${spec.imageTokenId} is outside the vocabulary of ${text.vocabSize}`, {
      details: { file, field: 'image_token_index' },
    });
  }
  if (spec.modelType === 'llava_next') {
    const pins = json.image_grid_pinpoints;
    if (pins === undefined) missing('image_grid_pinpoints', 'list');
    if (!Array.isArray(pins) || pins.length === 0 || !pins.every((p) => Array.isArray(p) && p.length === 2 && p.every((x) => Number.isInteger(x) && x > 0))) {
      throw new FormatError(`${where}: image_grid_pinpoints must be a list of [height, width] pairs`, { details: { file, field: 'image_grid_pinpoints' } });
    }
    spec.gridPinpoints = (pins as number[][]).map(([h, w]) => [h, w]);
  }
  return spec;
}

/** Where each part's tensors live in a LLaVA checkpoint. */
export interface LlavaLayout {
  /** 'saved': what save_pretrained writes (transformers 4 and 5); 'modules': transformers 5's module names. */
  kind: 'saved' | 'modules';
  /** In front of the decoder's `embed_tokens`, `layers.*`, `norm` names. */
  languageModel: string;
  /** The output projection's full name. */
  lmHead: string;
  /** In front of `linear_1.*` / `linear_2.*`. */
  projector: string;
  /** LLaVA-NeXT's newline embedding. */
  imageNewline: string;
}

const LAYOUTS: LlavaLayout[] = [
  {
    kind: 'saved',
    languageModel: 'language_model.model.',
    lmHead: 'language_model.lm_head.weight',
    projector: 'multi_modal_projector.',
    imageNewline: 'image_newline',
  },
  {
    kind: 'modules',
    languageModel: 'model.language_model.',
    lmHead: 'lm_head.weight',
    projector: 'model.multi_modal_projector.',
    imageNewline: 'model.image_newline',
  },
];

/** Which layout a checkpoint's tensor names follow (found from the token embedding); NotFoundError when neither. */
export function detectLlavaLayout(names: readonly string[], file?: string): LlavaLayout {
  const set = new Set(names);
  const found = LAYOUTS.find((l) => set.has(`${l.languageModel}embed_tokens.weight`));
  if (!found) {
    throw new NotFoundError(
      `${file ?? 'the checkpoint'} has no language model embedding: expected ${LAYOUTS.map((l) => `'${l.languageModel}embed_tokens.weight'`).join(' or ')}`,
      { details: { file, field: `${LAYOUTS[0].languageModel}embed_tokens.weight` } },
    );
  }
  return found;
}

/** The checkpoint name of a decoder weight (`model.layers.0...` / `lm_head.weight`) under a layout. */
export function llavaDecoderTensorName(name: string, layout: LlavaLayout): string {
  if (name === 'lm_head.weight') return layout.lmHead;
  return name.startsWith('model.') ? layout.languageModel + name.slice('model.'.length) : name;
}
