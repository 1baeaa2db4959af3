// A LLaVA checkpoint folder, opened from files in memory and composed into a VisionLanguageModel, all in
// the page: the same parts @vlit/models/node's loadVisionLanguageModel builds from a directory.
import { CompatibilityError, createTensor, openCheckpointFiles, type CheckpointFolder, type Tensor, type Tokenizer, type VlitRuntime } from '@vlit/core';
import { buildConnectorModel, createMlpConnector, type GraphConnector, type MlpConnectorConfig } from '@vlit/connectors';
import {
  createHfVisionEncoder,
  findVisionTowerPrefix,
  parsePreprocessorConfig,
  readHfWeights,
  visionTowerWeightShapes,
  type HfVisionEncoder,
} from '@vlit/encoders';
import { encodeModel } from '@vlit/graph';
import {
  LLAMA_DECODER_FILE,
  OPTIMUM_FILES,
  buildEmbedTokensModel,
  buildLlamaDecoderModel,
  composeVisionLanguageModel,
  createMemorySource,
  detectLlavaLayout,
  llamaWeightShapes,
  llavaDecoderTensorName,
  llavaSpecFromConfig,
  loadOptimumDecoder,
  toHfLlamaConfig,
  type ComposedVisionLanguageModel,
  type LlamaConfig,
  type LlamaWeights,
  type LlavaSpec,
} from '@vlit/models';
import { chatTemplateFromConfig, createHfTokenizer, specialTokenText, type SegmentedChatTemplate } from '@vlit/templates';

/** The text files a checkpoint folder may have besides its weights. */
const SIDE_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
  'preprocessor_config.json',
  'processor_config.json',
  'model.safetensors.index.json',
];

/** A loaded model: the composed VLM plus what training the connector needs. */
export interface LoadedModel {
  vlm: ComposedVisionLanguageModel;
  tokenizer: Tokenizer;
  template: SegmentedChatTemplate;
  imageToken: string;
  tower: HfVisionEncoder;
  spec: LlavaSpec;
  llama: LlamaConfig;
  llamaWeights: LlamaWeights;
  projector: { config: MlpConnectorConfig; weights: Record<string, Tensor<'float32'>> };
  /** Rebuild the composed model with new projector weights (after training). */
  withProjector(weights: Record<string, Tensor<'float32'>>): ComposedVisionLanguageModel;
}

/** Fetch a folder's files from a base URL: the known side files (absent ones skipped), then its weights. */
export async function fetchModelFiles(baseUrl: string): Promise<Map<string, Uint8Array>> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const files = new Map<string, Uint8Array>();
  const get = async (name: string): Promise<void> => {
    const response = await fetch(new URL(name, new URL(base, location.href)));
    if (response.ok) files.set(name, new Uint8Array(await response.arrayBuffer()));
  };
  await Promise.all(SIDE_FILES.map(get));
  const index = files.get('model.safetensors.index.json');
  const shards = index
    ? [...new Set(Object.values((JSON.parse(new TextDecoder().decode(index)) as { weight_map: Record<string, string> }).weight_map))]
    : ['model.safetensors'];
  await Promise.all(shards.map(get));
  return files;
}

/** The files of an `<input webkitdirectory>` pick, by plain name (the folder prefix dropped). */
export async function pickedModelFiles(list: FileList): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const file of Array.from(list)) {
    const parts = (file.webkitRelativePath || file.name).split('/');
    if (parts.length > 2) continue; // only the folder's own files
    files.set(parts[parts.length - 1], new Uint8Array(await file.arrayBuffer()));
  }
  return files;
}

const text = (files: ReadonlyMap<string, Uint8Array>, name: string): string | undefined => {
  const b = files.get(name);
  return b ? new TextDecoder().decode(b) : undefined;
};

/** Tokenizer and chat template, as transformers' processor uses them (BOS put in front when the tokenizer adds one). */
function loadChat(
  files: ReadonlyMap<string, Uint8Array>,
  folder: CheckpointFolder,
): { tokenizer: Tokenizer; template: SegmentedChatTemplate; imageToken: string } {
  const json = (name: string): Record<string, unknown> | undefined => {
    const t = text(files, name);
    return t === undefined ? undefined : (JSON.parse(t) as Record<string, unknown>);
  };
  const tokenizerConfig = json('tokenizer_config.json') ?? {};
  const tokenizer = createHfTokenizer({ tokenizerJson: json('tokenizer.json'), tokenizerConfig, source: `${folder.dir}/tokenizer.json` });
  const source =
    text(files, 'chat_template.jinja') ??
    (json('chat_template.json')?.chat_template as string | undefined) ??
    (tokenizerConfig.chat_template as string | undefined);
  const imageToken = specialTokenText(json('processor_config.json')?.image_token) ?? specialTokenText(tokenizerConfig.image_token) ?? '<image>';
  const parts = source !== undefined && /\[\s*['"]type['"]\s*\]|\.type\b/.test(source);
  const inner = chatTemplateFromConfig(
    { ...tokenizerConfig, chat_template: source },
    { name: `hf:${folder.dir}`, imageToken, contentFormat: parts ? 'parts' : 'string' },
  );
  const bos = tokenizer.specialTokens.bos;
  const addsBos =
    bos !== undefined &&
    tokenizer.encode('a', { addSpecialTokens: true }).ids[0] === tokenizer.tokenToId(bos) &&
    tokenizer.encode('a', { addSpecialTokens: false }).ids[0] !== tokenizer.tokenToId(bos);
  const template: SegmentedChatTemplate = !addsBos
    ? inner
    : {
        name: inner.name,
        imageToken: inner.imageToken,
        imageText: inner.imageText,
        render: (messages, options) => {
          const t = inner.render(messages, options);
          return t.startsWith(bos) ? t : bos + t;
        },
        renderSegments: (messages, options) => {
          const s = inner.renderSegments(messages, options);
          return s[0]?.text.startsWith(bos) ? s : [{ text: bos, messageIndex: -1, trainable: false }, ...s];
        },
      };
  return { tokenizer, template, imageToken };
}

/** Open a LLaVA folder held in memory and compose it on the given runtime. */
export async function loadLlavaFromFiles(files: ReadonlyMap<string, Uint8Array>, runtime: VlitRuntime, name: string): Promise<LoadedModel> {
  const folder = await openCheckpointFiles(files, { name });
  const spec = llavaSpecFromConfig(folder.config, `${name}/config.json`);
  if (spec.modelType !== 'llava')
    throw new CompatibilityError(`this example loads model_type 'llava'; ${name} is '${spec.modelType}'`, {
      details: { file: `${name}/config.json`, field: 'model_type' },
    });
  const names = folder.tensorNames();
  const layout = detectLlavaLayout(names, name);
  const { tokenizer, template, imageToken } = loadChat(files, folder);
  if (tokenizer.tokenToId(imageToken) !== spec.imageTokenId) {
    throw new CompatibilityError(`the tokenizer's '${imageToken}' is not config.json's image_token_index ${spec.imageTokenId}`, {
      details: { file: `${name}/config.json`, field: 'image_token_index' },
    });
  }

  // Vision tower (CLIP/SigLIP) with LLaVA's feature selection.
  const processor =
    (await folder.readJson('preprocessor_config.json')) ??
    ((await folder.readJson('processor_config.json'))?.image_processor as Record<string, unknown> | undefined);
  const prefix = findVisionTowerPrefix(names, { file: name });
  const source = { file: name, tensorNames: () => names, shapeOf: (n: string) => folder.info(n)?.shape, readFloat32: (n: string) => folder.readFloat32(n) };
  const shapes = visionTowerWeightShapes(spec.vision).filter(([n]) => folder.info(prefix + n) !== undefined);
  const tower = await createHfVisionEncoder({
    backend: runtime.backend,
    spec: spec.vision,
    weights: await readHfWeights(source, shapes, { prefix }),
    ...(processor ? { preprocessor: parsePreprocessorConfig(processor, { file: `${name}/preprocessor_config.json` }) } : {}),
    featureLayer: spec.featureLayer,
    selectStrategy: spec.selectStrategy,
  });

  // Projector: LLaVA's two-layer GELU MLP.
  const layers = typeof spec.featureLayer === 'number' ? 1 : spec.featureLayer.length;
  const h = spec.text.hiddenSize;
  const projectorConfig: MlpConnectorConfig = { kind: 'mlp', inputDim: spec.vision.hiddenSize * layers, hiddenDim: h, outputDim: h };
  const projectorWeights: Record<string, Tensor<'float32'>> = {};
  const projectorShapes: Record<string, number[]> = {
    'linear_1.weight': [h, projectorConfig.inputDim],
    'linear_1.bias': [h],
    'linear_2.weight': [h, h],
    'linear_2.bias': [h],
  };
  for (const [n, dims] of Object.entries(projectorShapes)) {
    projectorWeights[n] =
      n.endsWith('.bias') && !spec.projectorBias
        ? createTensor('float32', dims)
        : createTensor('float32', dims, await folder.readFloat32(layout.projector + n, dims));
  }

  // Language model: the Llama-style graph over the folder's `language_model` weights, kept for training.
  const llama = spec.text;
  const llamaWeights: LlamaWeights = {};
  for (const [n, dims] of Object.entries(llamaWeightShapes(llama)))
    llamaWeights[n] = createTensor('float32', dims, folder.readFloat32Sync(llavaDecoderTensorName(n, layout), dims));
  const generation = (await folder.readJson(OPTIMUM_FILES.generationConfig)) ?? {};
  const languageModel = await loadOptimumDecoder(
    createMemorySource(
      {
        [OPTIMUM_FILES.config]: JSON.stringify(toHfLlamaConfig(llama)),
        [OPTIMUM_FILES.generationConfig]: JSON.stringify(generation),
        [LLAMA_DECODER_FILE]: encodeModel(buildLlamaDecoderModel(llama, llamaWeights)),
        [OPTIMUM_FILES.embedTokens]: encodeModel(buildEmbedTokensModel(llama, llamaWeights['model.embed_tokens.weight'])),
      },
      name,
    ),
    { backend: runtime.backend, id: `${name}#language_model`, decoderFile: LLAMA_DECODER_FILE, embedFile: OPTIMUM_FILES.embedTokens },
  );
  await folder.close();

  let connector: GraphConnector | undefined;
  const withProjector = (weights: Record<string, Tensor<'float32'>>): ComposedVisionLanguageModel => {
    void connector?.dispose();
    connector = createMlpConnector(projectorConfig, { backend: runtime.backend, weights, id: `${name}#multi_modal_projector` });
    return composeVisionLanguageModel({ encoder: tower, connector, languageModel, template, tokenizer });
  };
  const vlm = withProjector(projectorWeights);
  return {
    vlm,
    tokenizer,
    template,
    imageToken,
    tower,
    spec,
    llama,
    llamaWeights,
    projector: { config: projectorConfig, weights: projectorWeights },
    withProjector,
  };
}

/** The projector's forward graph, for the training graph. */
export function projectorModel(model: LoadedModel, weights: Record<string, Tensor<'float32'>>): ReturnType<typeof buildConnectorModel> {
  return buildConnectorModel(model.projector.config, weights);
}
