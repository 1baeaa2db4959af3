/**
 * LlavaForConditionalGeneration and LlavaNextForConditionalGeneration from Hugging Face checkpoint folders,
 * as Vlit parts: the CLIP/SigLIP tower (@vlit/encoders' HF tower with LLaVA's feature selection), the
 * projector (@vlit/connectors' MLP under `multi_modal_projector.*`), the decoder (the Llama-style graph over
 * the `language_model` weights) and, for NeXT, `image_newline`. Node-only (reads files).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, createTensor, type InferenceBackend, type SessionOptions, type Tensor, type VlitRuntime } from '@vlit/core';
import { openCheckpointFolder, type CheckpointFolder } from '@vlit/core/node';
import { createMlpConnector, type GraphConnector } from '@vlit/connectors';
import {
  createHfVisionEncoder,
  findVisionTowerPrefix,
  parsePreprocessorConfig,
  readHfWeights,
  visionTowerWeightShapes,
  type HfVisionEncoder,
  type PreprocessorConfig,
} from '@vlit/encoders';
import { encodeModel, type OnnxModel } from '@vlit/graph';
import { saveModel } from '@vlit/graph/node';
import { toHfLlamaConfig, type LlamaConfig } from '../decoder/llama-config.js';
import { buildEmbedTokensModel, buildLlamaDecoderModel } from '../decoder/llama-graph.js';
import { LLAMA_DECODER_FILE, llamaSessionCache } from '../decoder/llama.js';
import { llamaWeightShapes, type LlamaWeights } from '../decoder/llama-weights.js';
import { loadOptimumDecoder, type OnnxLanguageModel } from '../language-model/optimum-decoder.js';
import { OPTIMUM_FILES } from '../language-model/optimum-layout.js';
import { createBuiltDecoderSource } from '../language-model/sources.js';
import { detectLlavaLayout, llavaDecoderTensorName, llavaSpecFromConfig, type LlavaLayout, type LlavaSpec } from './llava-config.js';

/** Options of the LLaVA part loaders. */
export interface LoadLlavaPartsOptions {
  /** The runtime whose backend runs every part. */
  runtime: VlitRuntime;
  session?: SessionOptions;
  /** Keep the float32 weights on the parts (to save or train them again); default false. */
  keepWeights?: boolean;
  /** Override the config's `vision_feature_layer`. */
  featureLayer?: number | readonly number[];
  /** Override the config's `vision_feature_select_strategy`. */
  selectStrategy?: 'default' | 'full';
}

/** The language model of a LLaVA folder. */
export interface LlavaLanguageModel extends OnnxLanguageModel {
  readonly llamaConfig: LlamaConfig;
  /** Decoder weights under Llama names (`model.layers.0...`), when loaded with keepWeights. */
  readonly weights?: Readonly<LlamaWeights>;
}

/** Every part of a LLaVA(-NeXT) folder, loaded and ready to compose or to use alone. */
export interface LlavaParts {
  readonly checkpointDir: string;
  readonly spec: LlavaSpec;
  readonly layout: LlavaLayout;
  readonly tower: HfVisionEncoder;
  readonly projector: GraphConnector;
  readonly languageModel: LlavaLanguageModel;
  /** LLaVA-NeXT's `image_newline` [hidden]. */
  readonly imageNewline?: Tensor<'float32'>;
  /** The image processor config (preprocessor_config.json, or processor_config.json's `image_processor`). */
  readonly processorConfig?: PreprocessorConfig;
  /** processor_config.json, when the folder has one (image_token, patch_size, ...). */
  readonly processor?: Record<string, unknown>;
  /** Release every session. */
  dispose(): Promise<void>;
}

/** The image processor config of a folder: preprocessor_config.json (transformers 4) or processor_config.json's `image_processor` (transformers 5). */
export async function readLlavaProcessorConfig(
  folder: CheckpointFolder,
): Promise<{ processorConfig?: PreprocessorConfig; processor?: Record<string, unknown> }> {
  const processor = await folder.readJson('processor_config.json');
  const legacy = await folder.readJson('preprocessor_config.json');
  if (legacy)
    return { processorConfig: parsePreprocessorConfig(legacy, { file: join(folder.dir, 'preprocessor_config.json') }), ...(processor ? { processor } : {}) };
  const nested = processor?.image_processor;
  if (processor && typeof nested === 'object' && nested !== null) {
    return { processorConfig: parsePreprocessorConfig(nested, { file: join(folder.dir, 'processor_config.json') }), processor };
  }
  return processor ? { processor } : {};
}

function backendOf(options: { runtime?: VlitRuntime }): InferenceBackend {
  const backend = options.runtime?.backend;
  if (!backend || typeof backend.createSession !== 'function') {
    throw new InvalidArgumentError('loading a LLaVA model needs options.runtime', { details: { field: 'runtime' } });
  }
  return backend;
}

/**
 * Build the decoder of a LLaVA folder with the Llama-style graph, reading each weight under its LLaVA name
 * as the graph builder asks for it, and load it through the Optimum loader (same KV-cache handling as every decoder).
 */
async function loadDecoder(
  folder: CheckpointFolder,
  spec: LlavaSpec,
  layout: LlavaLayout,
  backend: InferenceBackend,
  options: LoadLlavaPartsOptions,
): Promise<LlavaLanguageModel> {
  const config = spec.text;
  const shapes = Object.entries(llamaWeightShapes(config));
  const read = (name: string, dims: number[]): Tensor<'float32'> =>
    createTensor('float32', dims, folder.readFloat32Sync(llavaDecoderTensorName(name, layout), dims));
  let kept: LlamaWeights | undefined;
  let weights: LlamaWeights;
  if (options.keepWeights) {
    kept = {};
    for (const [name, dims] of shapes) kept[name] = read(name, dims);
    weights = kept;
  } else {
    // Read when the builder asks, so only one float32 weight exists outside the graph at a time.
    weights = {};
    for (const [name, dims] of shapes) Object.defineProperty(weights, name, { enumerable: true, get: () => read(name, dims) });
  }
  const models: Record<string, OnnxModel | undefined> = {
    [LLAMA_DECODER_FILE]: buildLlamaDecoderModel(config, weights, { cache: llamaSessionCache(config) }),
    [OPTIMUM_FILES.embedTokens]: buildEmbedTokensModel(config, weights['model.embed_tokens.weight']),
  };
  const generation = (await folder.readJson(OPTIMUM_FILES.generationConfig)) ?? {};
  // Native sessions load from a scratch folder with the weights as ONNX external data; web sessions take bytes.
  const scratch = backend.platform === 'node' ? await mkdtemp(join(tmpdir(), 'vlit-llava-decoder-')) : undefined;
  const source = createBuiltDecoderSource(folder.dir, { config: toHfLlamaConfig(config), generationConfig: generation }, async (file) => {
    const model = models[file];
    if (!model) return undefined;
    models[file] = undefined;
    if (!scratch) return encodeModel(model);
    const path = join(scratch, file);
    await saveModel(model, path, { externalData: { location: `${file}.data` } });
    return path;
  });
  try {
    const model = await loadOptimumDecoder(source, {
      backend,
      session: options.session,
      id: `${folder.dir}#language_model`,
      decoderFile: LLAMA_DECODER_FILE,
      embedFile: OPTIMUM_FILES.embedTokens,
    });
    return Object.assign(model, { llamaConfig: config, ...(kept ? { weights: Object.freeze(kept) as Readonly<LlamaWeights> } : {}) });
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

async function readProjector(
  folder: CheckpointFolder,
  spec: LlavaSpec,
  layout: LlavaLayout,
  backend: InferenceBackend,
  options: LoadLlavaPartsOptions,
): Promise<GraphConnector> {
  const layers = typeof spec.featureLayer === 'number' ? 1 : spec.featureLayer.length;
  const inputDim = spec.vision.hiddenSize * layers;
  const h = spec.text.hiddenSize;
  const shapes: Record<string, number[]> = { 'linear_1.weight': [h, inputDim], 'linear_1.bias': [h], 'linear_2.weight': [h, h], 'linear_2.bias': [h] };
  const weights: Record<string, Tensor<'float32'>> = {};
  for (const [name, dims] of Object.entries(shapes)) {
    // Without multimodal_projector_bias the projector has no biases: zeros compute the same.
    weights[name] =
      name.endsWith('.bias') && !spec.projectorBias
        ? createTensor('float32', dims)
        : createTensor('float32', dims, await folder.readFloat32(layout.projector + name, dims));
  }
  return createMlpConnector(
    { inputDim, hiddenDim: h, outputDim: h },
    { backend, weights, session: options.session, id: `${folder.dir}#multi_modal_projector` },
  );
}

/**
 * Load every part of a LlavaForConditionalGeneration / LlavaNextForConditionalGeneration folder (either tensor
 * layout; F32/F16/BF16; sharded or not). Typed errors: UnsupportedError for another model_type (naming it and
 * listing the supported ones), FormatError naming a missing config field, NotFoundError naming a missing
 * tensor or shard, TensorShapeError naming a tensor whose shape disagrees with the config.
 */
export async function loadLlavaParts(dir: string, options: LoadLlavaPartsOptions): Promise<LlavaParts> {
  const backend = backendOf(options);
  const folder = await openCheckpointFolder(dir);
  const made: Array<{ dispose?: () => Promise<unknown>; release?: () => Promise<unknown> }> = [];
  const disposeAll = async (): Promise<void> => {
    for (const p of made.reverse()) await (p.dispose ?? p.release)?.call(p);
  };
  try {
    const configFile = join(folder.dir, 'config.json');
    const spec = llavaSpecFromConfig(folder.config, configFile);
    const names = folder.tensorNames();
    const layout = detectLlavaLayout(names, folder.dir);
    const { processorConfig, processor } = await readLlavaProcessorConfig(folder);
    const prefix = findVisionTowerPrefix(names, { file: folder.dir });
    const optional = (n: string): boolean => n.startsWith('post_layernorm') || n.startsWith('head.');
    const all = visionTowerWeightShapes(spec.vision);
    const source = {
      file: folder.dir,
      tensorNames: () => names,
      shapeOf: (name: string) => folder.info(name)?.shape,
      readFloat32: (name: string) => folder.readFloat32(name),
    };
    const towerWeights = await readHfWeights(
      source,
      all.filter(([n]) => !optional(n)),
      { prefix },
    );
    for (const [k, v] of await readHfWeights(
      source,
      all.filter(([n]) => optional(n) && folder.info(prefix + n) !== undefined),
      { prefix },
    ))
      towerWeights.set(k, v);
    const tower = await createHfVisionEncoder({
      backend,
      spec: spec.vision,
      weights: towerWeights,
      preprocessor: processorConfig,
      featureLayer: options.featureLayer ?? spec.featureLayer,
      selectStrategy: options.selectStrategy ?? spec.selectStrategy,
      session: options.session,
    });
    made.push(tower);
    const projector = await readProjector(folder, spec, layout, backend, options);
    made.push(projector);
    const languageModel = await loadDecoder(folder, spec, layout, backend, options);
    made.push(languageModel);
    const imageNewline =
      spec.modelType === 'llava_next'
        ? createTensor('float32', [spec.text.hiddenSize], await folder.readFloat32(layout.imageNewline, [spec.text.hiddenSize]))
        : undefined;
    return {
      checkpointDir: folder.dir,
      spec,
      layout,
      tower,
      projector,
      languageModel,
      ...(imageNewline ? { imageNewline } : {}),
      ...(processorConfig ? { processorConfig } : {}),
      ...(processor ? { processor } : {}),
      dispose: disposeAll,
    };
  } catch (err) {
    await disposeAll();
    throw err;
  } finally {
    await folder.close();
  }
}

/**
 * Load only the language model of a LLaVA(-NeXT) folder, as a LanguageModel with KV cache, to pair it with
 * another vision encoder or connector.
 */
export async function loadLlavaLanguageModel(
  dir: string,
  options: Omit<LoadLlavaPartsOptions, 'featureLayer' | 'selectStrategy'>,
): Promise<LlavaLanguageModel> {
  const backend = backendOf(options);
  const folder = await openCheckpointFolder(dir);
  try {
    const spec = llavaSpecFromConfig(folder.config, join(folder.dir, 'config.json'));
    return await loadDecoder(folder, spec, detectLlavaLayout(folder.tensorNames(), folder.dir), backend, options);
  } finally {
    await folder.close();
  }
}
