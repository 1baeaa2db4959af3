/**
 * Saving a Vlit vision-language model (a CLIP-style tower with LLaVA's feature selection, an MLP connector and
 * a Llama-style decoder, trained or not) as a LlavaForConditionalGeneration folder that transformers 4 and 5
 * load with `from_pretrained`: config.json, safetensors under the names save_pretrained writes
 * (`vision_tower.vision_model.*`, `multi_modal_projector.*`, `language_model.model.*`,
 * `language_model.lm_head.weight`), generation_config.json, the tokenizer files and chat template, and the
 * image processor (preprocessor_config.json and transformers 5's processor_config.json). Node-only.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError, UnsupportedError, createTensor, type Tensor } from '@vlit/core';
import { writeCheckpointFolder } from '@vlit/core/node';
import type { ConnectorConfig, ConnectorWeights, MlpConnectorConfig } from '@vlit/connectors';
import {
  preprocessorConfigFromSettings,
  resolveVitConfig,
  visionTowerSpecToConfig,
  visionTowerWeightShapes,
  type HfSelectStrategy,
  type HfVisionTowerSpec,
  type HfWeights,
  type ImageProcessorSettings,
  type VitConfig,
} from '@vlit/encoders';
import { toHfLlamaConfig, type LlamaConfig } from '../decoder/llama-config.js';
import { checkLlamaWeights, llamaWeightShapes, type LlamaWeights } from '../decoder/llama-weights.js';

/** A tower that can be saved: its spec, weights (names relative to the tower root), selection and processor. */
export interface LlavaTowerToSave {
  readonly spec: HfVisionTowerSpec;
  readonly weights: HfWeights;
  /** Hidden-state indices (0..layers) and strategy, as an HfVisionEncoder states them. */
  readonly selection: { readonly featureLayers: readonly number[]; readonly selectStrategy: HfSelectStrategy };
  readonly settings?: ImageProcessorSettings;
}

/** What saveLlavaCheckpoint writes: a composed model's parts (e.g. a ComposedVisionLanguageModel built from Vlit parts). */
export interface LlavaModelToSave {
  readonly encoder: object;
  readonly connector: object;
  readonly languageModel: object;
}

/** Options of saveLlavaCheckpoint. */
export interface SaveLlavaCheckpointOptions {
  /** The image placeholder's token id in the tokenizer (config.json `image_token_index`). */
  imageTokenId: number;
  /** The placeholder text (default `<image>`). */
  imageToken?: string;
  /** Copy the tokenizer files and chat template from this folder (tokenizer.json, tokenizer_config.json, special_tokens_map.json, chat_template.jinja, chat_template.json). */
  tokenizerDir?: string;
  /** The chat template's Jinja source, written as chat_template.jinja (overrides one copied from tokenizerDir). */
  chatTemplate?: string;
  /** Weight dtype in the files (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Shard the weights, as save_pretrained(max_shard_size). */
  maxShardBytes?: number;
  /** More files for the folder, by name. */
  files?: Record<string, string | Uint8Array>;
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json'];

function towerOf(encoder: object): LlavaTowerToSave {
  const e = encoder as Partial<LlavaTowerToSave>;
  if (!e.spec || !(e.weights instanceof Map) || !e.selection) {
    throw new UnsupportedError(
      'saving as LLaVA needs a CLIP/SigLIP tower with its spec, weights and selection (an HfVisionEncoder, or vitAsHfVisionTower of a Vlit ViT)',
      {
        details: { field: 'encoder' },
      },
    );
  }
  return e as LlavaTowerToSave;
}

function projectorOf(connector: object): { config: MlpConnectorConfig; weights: Readonly<ConnectorWeights> } {
  const c = connector as { config?: ConnectorConfig; weights?: Readonly<ConnectorWeights> };
  if (!c.config || !c.weights)
    throw new UnsupportedError('saving as LLaVA needs a connector with its config and weights (a GraphConnector)', { details: { field: 'connector' } });
  if (c.config.kind !== 'mlp') {
    throw new UnsupportedError(`LLaVA's projector is a two-layer GELU MLP; a '${c.config.kind}' connector has no LlavaForConditionalGeneration form`, {
      details: { field: 'connector.kind' },
    });
  }
  return { config: c.config, weights: c.weights };
}

function decoderOf(languageModel: object): { config: LlamaConfig; weights: Readonly<LlamaWeights> } {
  const m = languageModel as { llamaConfig?: LlamaConfig; weights?: Readonly<LlamaWeights> };
  if (!m.llamaConfig)
    throw new UnsupportedError('saving as LLaVA needs a Llama-style decoder with its configuration (createLlamaDecoder, loadHfLanguageModel)', {
      details: { field: 'languageModel' },
    });
  if (!m.weights)
    throw new InvalidArgumentError('the language model holds no weights to save; load it with keepWeights: true', {
      details: { field: 'languageModel.weights' },
    });
  return { config: m.llamaConfig, weights: m.weights };
}

/** A Vlit ViT (CLIP layout: class token, pre-LayerNorm, Hugging Face `vision_model.*` names) as a tower spec + weights. */
export function vitAsHfVisionTower(config: VitConfig, weights: ReadonlyMap<string, Tensor<'float32'>>): { spec: HfVisionTowerSpec; weights: HfWeights } {
  const c = resolveVitConfig(config);
  if (!c.clsToken) throw new UnsupportedError('a ViT without a class token has no CLIPVisionModel form', { details: { field: 'clsToken' } });
  const spec: HfVisionTowerSpec = {
    family: 'clip',
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    imageSize: c.imageSize,
    patchSize: c.patchSize,
    numChannels: c.numChannels,
    layerNormEps: c.layerNormEps,
    hiddenAct: c.hiddenAct,
    hfHiddenAct: c.hiddenAct === 'gelu_tanh' ? 'gelu_pytorch_tanh' : c.hiddenAct,
    useHead: false,
  };
  const out = new Map<string, Tensor<'float32'>>();
  for (const [name, t] of weights) out.set(name.startsWith('vision_model.') ? name.slice('vision_model.'.length) : name, t);
  return { spec, weights: out };
}

/** The config.json of a LlavaForConditionalGeneration with these parts. */
export function llavaConfigJson(tower: LlavaTowerToSave, text: LlamaConfig, imageTokenId: number): Record<string, unknown> {
  const layers = tower.selection.featureLayers.map((i) => i - (tower.spec.numLayers + 1));
  const { architectures: _a, dtype: _d, ...vision } = visionTowerSpecToConfig(tower.spec);
  const { architectures: _t, torch_dtype: _td, ...textConfig } = toHfLlamaConfig(text);
  const grid = tower.spec.imageSize / tower.spec.patchSize;
  return {
    architectures: ['LlavaForConditionalGeneration'],
    model_type: 'llava',
    image_token_index: imageTokenId,
    image_seq_length: grid * grid + (tower.spec.family === 'clip' && tower.selection.selectStrategy === 'full' ? 1 : 0),
    projector_hidden_act: 'gelu',
    multimodal_projector_bias: true,
    vision_feature_layer: layers.length === 1 ? layers[0] : layers,
    vision_feature_select_strategy: tower.selection.selectStrategy,
    tie_word_embeddings: text.tieWordEmbeddings,
    text_config: textConfig,
    vision_config: vision,
  };
}

/**
 * Save a composed model (tower + MLP connector + Llama-style decoder) as a LlavaForConditionalGeneration
 * checkpoint folder. Parts that have no LLaVA form are an UnsupportedError naming the part.
 */
export async function saveLlavaCheckpoint(dir: string, model: LlavaModelToSave, options: SaveLlavaCheckpointOptions): Promise<void> {
  const tower = towerOf(model.encoder);
  const projector = projectorOf(model.connector);
  const decoder = decoderOf(model.languageModel);
  checkLlamaWeights(decoder.config, decoder.weights);
  const width = tower.spec.hiddenSize * tower.selection.featureLayers.length;
  if (
    projector.config.inputDim !== width ||
    projector.config.hiddenDim !== decoder.config.hiddenSize ||
    projector.config.outputDim !== decoder.config.hiddenSize
  ) {
    throw new UnsupportedError(
      `LLaVA's projector maps ${width} -> ${decoder.config.hiddenSize} -> ${decoder.config.hiddenSize}; this connector is ${projector.config.inputDim} -> ${projector.config.hiddenDim} -> ${projector.config.outputDim}`,
      {
        details: {
          field: 'connector',
          left: [projector.config.inputDim, projector.config.hiddenDim, projector.config.outputDim],
          right: [width, decoder.config.hiddenSize, decoder.config.hiddenSize],
        },
      },
    );
  }
  if (!Number.isInteger(options.imageTokenId) || options.imageTokenId < 0 || options.imageTokenId >= decoder.config.vocabSize) {
    throw new InvalidArgumentError(`imageTokenId ${options.imageTokenId} is not a token of the vocabulary of ${decoder.config.vocabSize}`, {
      details: { field: 'imageTokenId' },
    });
  }
  const tensors = new Map<string, Tensor>();
  const D = tower.spec.hiddenSize;
  for (const [name, dims] of visionTowerWeightShapes(tower.spec)) {
    if (name.startsWith('head.')) continue;
    let t = tower.weights.get(name);
    // The post-LayerNorm is unused by LLaVA; an identity one keeps the folder complete when the tower has none.
    if (!t && name === 'post_layernorm.weight') t = createTensor('float32', [D], new Float32Array(D).fill(1));
    if (!t && name === 'post_layernorm.bias') t = createTensor('float32', [D]);
    if (!t) throw new NotFoundError(`tower weight ${name} is missing`, { details: { field: name } });
    if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
      throw new InvalidArgumentError(`tower weight ${name} is [${t.dims.join(', ')}], the spec needs [${dims.join(', ')}]`, { details: { field: name } });
    }
    tensors.set(`vision_tower.vision_model.${name}`, t);
  }
  for (const name of ['linear_1.weight', 'linear_1.bias', 'linear_2.weight', 'linear_2.bias']) {
    const t = projector.weights[name];
    if (!t) throw new NotFoundError(`connector weight ${name} is missing`, { details: { field: name } });
    tensors.set(`multi_modal_projector.${name}`, t);
  }
  for (const name of Object.keys(llamaWeightShapes(decoder.config))) {
    tensors.set(name === 'lm_head.weight' ? 'language_model.lm_head.weight' : `language_model.${name}`, decoder.weights[name]);
  }

  const files: Record<string, string | Uint8Array> = {};
  if (options.tokenizerDir) {
    for (const f of TOKENIZER_FILES) {
      try {
        files[f] = await readFile(join(options.tokenizerDir, f));
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err;
      }
    }
    if (!files['tokenizer.json'])
      throw new NotFoundError(`tokenizer.json not found in ${options.tokenizerDir}`, { details: { file: join(options.tokenizerDir, 'tokenizer.json') } });
  }
  if (options.chatTemplate !== undefined) files['chat_template.jinja'] = options.chatTemplate;
  const imageToken = options.imageToken ?? '<image>';
  if (tower.settings) {
    if (tower.settings.padToSquare) {
      throw new UnsupportedError('the tower pads images to a square first, which CLIPImageProcessor cannot express', {
        details: { field: 'encoder.settings.padToSquare' },
      });
    }
    const imageProcessor = preprocessorConfigFromSettings(tower.settings);
    files['preprocessor_config.json'] = `${JSON.stringify(imageProcessor, null, 2)}\n`;
    const processor = {
      processor_class: 'LlavaProcessor',
      image_processor: imageProcessor,
      image_token: imageToken,
      patch_size: tower.spec.patchSize,
      vision_feature_select_strategy: tower.selection.selectStrategy,
      num_additional_image_tokens: tower.spec.family === 'clip' ? 1 : 0,
    };
    files['processor_config.json'] = `${JSON.stringify(processor, null, 2)}\n`;
  }
  const generation: Record<string, unknown> = {
    ...(decoder.config.bosTokenId !== undefined ? { bos_token_id: decoder.config.bosTokenId } : {}),
    ...(decoder.config.eosTokenId !== undefined ? { eos_token_id: decoder.config.eosTokenId } : {}),
  };
  files['generation_config.json'] = `${JSON.stringify(generation, null, 2)}\n`;
  await writeCheckpointFolder(dir, {
    config: llavaConfigJson(tower, decoder.config, options.imageTokenId),
    tensors,
    dtype: options.dtype,
    maxShardBytes: options.maxShardBytes,
    files: { ...files, ...options.files },
  });
}
