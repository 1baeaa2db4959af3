/**
 * The steps the trained main job and the reproduction share: caching the frozen tower's features,
 * training a small LLaVA (projector + tiny Llama, word-level tokenizer) in LLaVA's two stages on a
 * dataset, composing the trained model, and scoring it on the world benchmark with chance beside it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, createTensor, type RawImage, type Tensor, type VlitRecord } from '@vlit/core';
import type { createNodeRuntime, createSharpCodec } from '@vlit/runtime/node';
import {
  buildWordLevelTokenizer,
  createBuiltinTemplate,
  createJinjaChatTemplate,
  encodeBatch,
  type SegmentedChatTemplate,
  type EncodedSample,
  type WordLevelTokenizer,
} from '@vlit/templates';
import { createHfVisionEncoder } from '@vlit/encoders';
import { buildConnectorModel, createConnector, initConnectorWeights, type ConnectorConfig, type ConnectorWeights } from '@vlit/connectors';
import {
  buildEmbedTokensModel,
  buildLlamaDecoderModel,
  composeVisionLanguageModel,
  createLlamaDecoder,
  initLlamaWeights,
  tinyLlamaConfig,
  type LlamaConfig,
  type LlamaWeights,
} from '@vlit/models';
import { vitAsHfVisionTower } from '@vlit/models/node';
import { llavaRecipe, type RecipeStage, type TrainingModelParts, type TrainingProgressEvent, type TrainStageResult } from '@vlit/trainer';
import { trainStageInDirectory } from '@vlit/trainer/node';
import { createMemoryCache, createMultipleChoiceBenchmark, evaluate, type EvalRun, type MultipleChoiceItem } from '@vlit/eval';
import { contentText } from './data.js';
import { patchStatisticsVitConfig, patchStatisticsVitWeights } from './vision.js';
import type { MainJobSettings } from './settings.js';
import type { PretrainedTower } from './vision-pretrain.js';

/** The image placeholder token of every main-job model. */
export const IMAGE_TOKEN = '<image>';
const SPECIALS = ['<pad>', '<s>', '</s>', IMAGE_TOKEN];

/**
 * The conversation template of stage 2 (Vicuna-style turns, no system prompt to keep samples short). It is a
 * Jinja template so that the saved checkpoint folder carries exactly the template the model was trained with.
 */
export const MAIN_JOB_CHAT_TEMPLATE =
  "<s>{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }} {% elif message['role'] == 'user' %}USER: {{ message['content'] }} {% else %}ASSISTANT: {{ message['content'] }}</s>{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}";

/** Accuracy of one run on one split, with chance from the options. */
export interface SplitScore {
  accuracy: number;
  chance: number;
  questions: number;
  byDimension: Record<string, { accuracy: number; chance: number; questions: number }>;
}

/** Mean of 1 / options over the questions (the accuracy of guessing). */
export function chanceOf(items: readonly MultipleChoiceItem[]): number {
  return items.length ? items.reduce((s, it) => s + 1 / it.options.length, 0) / items.length : 0;
}

/** One benchmark of an evaluation run as a SplitScore: accuracy overall and per dimension, chance of the same questions beside each. */
export function scoreOf(run: EvalRun, index: number, items: readonly MultipleChoiceItem[]): SplitScore {
  const result = run.benchmarks[index];
  const byDimension: SplitScore['byDimension'] = {};
  for (const [dim, g] of Object.entries(result.groups)) {
    const members = items.filter((it) => it.dimension === dim);
    byDimension[dim] = { accuracy: g.accuracy, chance: chanceOf(members), questions: members.length };
  }
  return { accuracy: result.metrics.accuracy, chance: chanceOf(items), questions: items.length, byDimension };
}

type Runtime = ReturnType<typeof createNodeRuntime>;
type Codec = ReturnType<typeof createSharpCodec>;

/** The frozen tower and the features of the images it has encoded (by path under the world folder). */
export interface FrozenTower {
  tower: Awaited<ReturnType<typeof createHfVisionEncoder>>;
  parts: ReturnType<typeof vitAsHfVisionTower>;
  vit: ReturnType<typeof patchStatisticsVitConfig>;
  visualTokens: number;
  features: Map<string, Tensor<'float32'>>;
  /** LLaVA's vision_feature_layer: -2 for the hand-set tower (hidden state 0 of one layer), -1 for a pretrained one. */
  featureLayer: number;
}

/**
 * Build the patch-statistics ViT (CLIP layout, frozen), or take the one stage 0 pretrained, and cache its
 * features for `imagePaths` under `worldDir`.
 */
export async function createFrozenTower(options: {
  runtime: Runtime;
  codec: Codec;
  settings: MainJobSettings;
  seed: number | string;
  worldDir: string;
  imagePaths: readonly string[];
  /** Stage 0's tower (`pretrainWorldTower`): its last layer's output are the features. */
  pretrained?: Pick<PretrainedTower, 'vit' | 'weights'>;
  onProgress?: (done: number, total: number) => void;
}): Promise<FrozenTower> {
  const { settings, codec } = options;
  const given = options.pretrained?.vit;
  if (given && (given.imageSize !== settings.imageSize || given.patchSize !== settings.patchSize)) {
    throw new InvalidArgumentError(
      `the pretrained tower takes ${given.imageSize} px images in ${given.patchSize} px patches, the settings ${settings.imageSize} px in ${settings.patchSize} px`,
      { details: { field: 'pretrained.vit', expected: [settings.imageSize, settings.patchSize], actual: [given.imageSize, given.patchSize] } },
    );
  }
  const vit = given ?? patchStatisticsVitConfig(settings.imageSize, settings.patchSize);
  const parts = vitAsHfVisionTower(vit, options.pretrained?.weights ?? patchStatisticsVitWeights(vit, `${options.seed}:vit`));
  const featureLayer = options.pretrained ? -1 : -2;
  const tower = await createHfVisionEncoder({
    backend: options.runtime.backend,
    spec: parts.spec,
    weights: parts.weights,
    featureLayer,
    selectStrategy: 'default',
  });
  const features = new Map<string, Tensor<'float32'>>();
  const paths = [...options.imagePaths].sort();
  for (let i = 0; i < paths.length; i += 32) {
    const chunk = paths.slice(i, i + 32);
    const images = await Promise.all(chunk.map(async (p) => codec.decode(await readFile(join(options.worldDir, p)), { source: p })));
    const encoded = await tower.encode(images);
    const [, tokens, dim] = encoded.dims;
    chunk.forEach((p, k) => features.set(p, createTensor('float32', [tokens, dim], encoded.data.slice(k * tokens * dim, (k + 1) * tokens * dim))));
    options.onProgress?.(Math.min(i + 32, paths.length), paths.length);
  }
  const grid = settings.imageSize / settings.patchSize;
  return { tower, parts, vit, visualTokens: grid * grid, features, featureLayer };
}

/** Path of a record's first image ('' when it has none). */
export function firstImagePath(record: VlitRecord): string {
  const ref = record.images[0];
  return ref === undefined ? '' : typeof ref === 'string' ? ref : ref.path;
}

/** What training a small LLaVA gives: the weights, the model's configuration and the data it was trained on. */
export interface TrainedLlava {
  tokenizer: WordLevelTokenizer;
  conversation: SegmentedChatTemplate;
  connectorConfig: ConnectorConfig;
  connectorWeights: ConnectorWeights;
  llama: LlamaConfig;
  llamaWeights: LlamaWeights;
  imageTokenId: number;
  /** Per stage: the engine's result, samples encoded, samples rejected (encoding + engine), its folder, seconds taken. */
  stage1: { result: TrainStageResult; samples: number; rejected: number; dir: string; seconds: number };
  stage2: { result: TrainStageResult; samples: number; rejected: number; dir: string; seconds: number };
}

/** Connector kinds the main job's model can use (LLaVA-1.5's MLP, LLaVA-1's linear projection). */
export type MainJobConnectorKind = 'mlp' | 'linear';

/**
 * Train a small LLaVA on `instructions` (stage 2) after aligning the projector on `captions` (stage 1):
 * word-level tokenizer from both, weights seeded by `seed`, data order seeded by the recipe's seed.
 */
export async function trainSmallLlava(options: {
  runtime: Runtime;
  settings: MainJobSettings;
  seed: number;
  tower: FrozenTower;
  captions: readonly VlitRecord[];
  instructions: readonly VlitRecord[];
  outDir: string;
  connector?: MainJobConnectorKind;
  onProgress?: (stage: 'train-stage-1' | 'train-stage-2', event: TrainingProgressEvent) => void;
}): Promise<TrainedLlava> {
  const { settings, seed, tower, captions, instructions, runtime } = options;
  const corpus = [...instructions, ...captions].flatMap((r) => r.messages.map((m) => contentText(m.content))).concat(['USER: ASSISTANT:']);
  const tokenizer = buildWordLevelTokenizer({ corpus, specialTokens: SPECIALS, roles: { bos: '<s>', eos: '</s>', pad: '<pad>' } });
  const padId = tokenizer.tokenToId('<pad>') as number;
  const imageTokenId = tokenizer.tokenToId(IMAGE_TOKEN) as number;
  const plain = createBuiltinTemplate('llava-plain', { imageToken: IMAGE_TOKEN, bos: '<s>' });
  const conversation = createJinjaChatTemplate({ source: MAIN_JOB_CHAT_TEMPLATE, name: 'vlit-main-job', imageToken: IMAGE_TOKEN, contentFormat: 'string' });
  const stage1Data = encodeBatch(captions, { template: plain, tokenizer, imageTokens: tower.visualTokens, maxLength: settings.maxLength, truncation: 'error' });
  const stage2Data = encodeBatch(instructions, {
    template: conversation,
    tokenizer,
    imageTokens: tower.visualTokens,
    maxLength: settings.maxLength,
    truncation: 'error',
  });
  const pathOf = new Map<string, string>();
  for (const r of [...instructions, ...captions]) pathOf.set(r.id, firstImagePath(r));
  const featuresOf = (sample: EncodedSample): Tensor<'float32'>[] => {
    const f = tower.features.get(pathOf.get(sample.id) ?? '');
    if (!f) throw new InvalidArgumentError(`no cached features for sample ${sample.id}`, { details: { record: sample.id, field: 'images.0' } });
    return [f];
  };

  const connectorConfig: ConnectorConfig =
    (options.connector ?? 'mlp') === 'mlp'
      ? { kind: 'mlp', inputDim: tower.vit.hiddenSize, hiddenDim: settings.hidden, outputDim: settings.hidden }
      : { kind: 'linear', inputDim: tower.vit.hiddenSize, outputDim: settings.hidden };
  let connectorWeights: ConnectorWeights = initConnectorWeights(connectorConfig, `${seed}:projector`);
  const llama = tinyLlamaConfig({
    hiddenSize: settings.hidden,
    vocabSize: tokenizer.vocabSize,
    intermediateSize: 2 * settings.hidden,
    numHiddenLayers: settings.layers,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    maxPositionEmbeddings: 256,
    bosTokenId: tokenizer.tokenToId('<s>'),
    eosTokenId: tokenizer.tokenToId('</s>'),
  });
  let llamaWeights: LlamaWeights = initLlamaWeights(llama, `${seed}:decoder`);
  const partsOf = (): TrainingModelParts => ({
    connector: buildConnectorModel(connectorConfig, connectorWeights),
    embedTokens: buildEmbedTokensModel(llama, llamaWeights['model.embed_tokens.weight']),
    decoder: buildLlamaDecoderModel(llama, llamaWeights),
  });
  const absorb = (weights: ReadonlyMap<string, Tensor<'float32'>>): void => {
    const c: ConnectorWeights = { ...connectorWeights };
    const l: LlamaWeights = { ...llamaWeights };
    for (const [name, t] of weights) {
      if (name.startsWith('model.multi_modal_projector.')) c[name.slice('model.multi_modal_projector.'.length)] = t;
      else if (name.startsWith('model.language_model.')) l[`model.${name.slice('model.language_model.'.length)}`] = t;
      else if (name.startsWith('lm_head.')) l[name] = t;
    }
    connectorWeights = c;
    llamaWeights = l;
  };
  const recipe = llavaRecipe({
    pretrainData: [{ name: 'world-captions', path: 'captions' }],
    instructionData: [{ name: 'world-instructions', path: 'kept.jsonl' }],
    seed,
    maxLength: settings.maxLength,
    stage1: { batchSize: settings.stage1.batchSize, gradientAccumulation: 1, lr: settings.stage1.lr },
    stage2: { batchSize: settings.stage2.batchSize, gradientAccumulation: 1, lr: settings.stage2.lr },
  });
  const stage1: RecipeStage = { ...recipe.stages[0], maxSteps: settings.stage1.steps };
  const stage2: RecipeStage = { ...recipe.stages[1], template: 'model', maxSteps: settings.stage2.steps };
  // Each stage trains the current weights and folds what it trained back in before the next one starts.
  const runStage = async (stage: RecipeStage, stageIndex: 0 | 1, data: ReturnType<typeof encodeBatch>): Promise<TrainedLlava['stage1']> => {
    const dir = join(options.outDir, `stage-${stageIndex + 1}`);
    const progressStage = stageIndex === 0 ? 'train-stage-1' : 'train-stage-2';
    const started = performance.now();
    const result = await trainStageInDirectory(stage, {
      backend: runtime.backend,
      model: partsOf(),
      samples: data.encoded,
      imageFeatures: (s) => featuresOf(s),
      outDir: dir,
      stageIndex,
      padTokenId: padId,
      onProgress: (e: TrainingProgressEvent) => options.onProgress?.(progressStage, e),
    });
    absorb(result.weights);
    return {
      result,
      samples: data.encoded.length,
      rejected: data.rejects.length + result.counts.rejected,
      dir,
      seconds: (performance.now() - started) / 1000,
    };
  };
  const trainedStage1 = await runStage(stage1, 0, stage1Data);
  const trainedStage2 = await runStage(stage2, 1, stage2Data);
  return {
    tokenizer,
    conversation,
    connectorConfig,
    connectorWeights,
    llama,
    llamaWeights,
    imageTokenId,
    stage1: trainedStage1,
    stage2: trainedStage2,
  };
}

/** The trained model composed for inference (tower + connector + decoder + template + tokenizer); dispose() frees connector and decoder, not the tower. */
export async function composeTrainedModel(
  runtime: Runtime,
  tower: FrozenTower,
  trained: TrainedLlava,
): Promise<{ model: ReturnType<typeof composeVisionLanguageModel>; dispose: () => Promise<void> }> {
  const connector = createConnector(trained.connectorConfig, { backend: runtime.backend, weights: trained.connectorWeights });
  const languageModel = await createLlamaDecoder({ backend: runtime.backend, config: trained.llama, weights: trained.llamaWeights });
  const model = composeVisionLanguageModel({
    encoder: tower.tower,
    connector,
    languageModel,
    template: trained.conversation,
    tokenizer: trained.tokenizer,
    id: 'vlit-main-job',
  });
  return {
    model,
    dispose: async () => {
      await connector.dispose();
      await languageModel.dispose();
    },
  };
}

/** A flat grey image of the world's size (the blank-image control). */
export function blankImage(size: number): RawImage {
  return { width: size, height: size, channels: 3, data: new Uint8Array(size * size * 3).fill(128) };
}

/** Evaluate a model on benchmarks (SEED-Bench multiple choice by likelihood) and score each split. */
export async function evaluateSplits(options: {
  name: string;
  model: ReturnType<typeof composeVisionLanguageModel>;
  splits: ReadonlyArray<{ id: string; items: readonly MultipleChoiceItem[]; source?: string }>;
  loadImage: (ref: MultipleChoiceItem['images'][number]) => Promise<RawImage>;
  onProgress?: (done: number, total: number) => void;
}): Promise<{ run: EvalRun; scores: SplitScore[] }> {
  const run = await evaluate({
    name: options.name,
    model: options.model,
    benchmarks: options.splits.map((s) => createMultipleChoiceBenchmark({ id: s.id, items: [...s.items], ...(s.source ? { source: s.source } : {}) })),
    loadImage: options.loadImage,
    cache: createMemoryCache(),
    batchSize: 16,
    onProgress: (e) => options.onProgress?.(e.done, e.total ?? 0),
  });
  return { run, scores: options.splits.map((s, i) => scoreOf(run, i, s.items)) };
}
