/**
 * Node-only: train a LLaVA checkpoint folder (Hugging Face LlavaForConditionalGeneration layout) on VLIT
 * records with a recipe: a stage that keeps the tower frozen reads features the tower computed once per
 * image; a stage whose trainables match the tower (`model.vision_tower.*`) takes pixels through the tower
 * inside the training graph. Each stage runs with trainStageInDirectory (checkpoints, metrics, final
 * outputs in `outDir/stage-<k>`), trained weights carry from stage to stage (LoRA adapters merged in;
 * features are computed again after the tower changed), and the result is saved as a LLaVA folder at
 * `outDir/final-model`.
 */
import { join } from 'node:path';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import {
  InvalidArgumentError,
  createTensor,
  isVlitError,
  parseSafetensors,
  serializeSafetensors,
  type Tensor,
  type Tokenizer,
  type VlitRecord,
  type VlitRuntime,
} from '@vlit/core';
import { resolveUnderRoot, writeFileAtomic } from '@vlit/core/node';
import { createBuiltinTemplate, encodeBatch, type BuiltinTemplateName, type EncodedSample, type SegmentedChatTemplate } from '@vlit/templates';
import { buildConnectorModel, type ConnectorWeights, type MlpConnectorConfig } from '@vlit/connectors';
import { buildEmbedTokensModel, buildLlamaDecoderModel, type LlamaWeights } from '@vlit/models';
import { buildHfVisionModel, createHfVisionEncoder, preprocessBatch } from '@vlit/encoders';
import { createTorchrunEngine, type TorchrunEngineOptions } from '../distributed/torchrun.js';
import type { TorchrunSample } from '../distributed/job.js';
import { loadCheckpointChat, loadLlavaParts, saveLlavaCheckpoint } from '@vlit/models/node';
import { readPeftAdapter } from '../lora/adapter-files.js';
import { mergeLoraAdapter } from '../lora/adapter.js';
import { parseRecipe, resolveTrainables, type Recipe, type RecipeStage } from '../recipe.js';
import { llavaTensorNaming } from '../training/naming.js';
import { trainStageInDirectory } from './directory-store.js';
import type { TrainingModelParts } from '../training/training-graph.js';
import type { TrainingProgressEvent } from './train-stage.js';

/** A record left out of training, with why. */
export interface LlavaFolderReject {
  id: string | number;
  /** The stage it was left out of (encoding is per stage: each stage has its own template). */
  stage: number;
  reason: string;
  field?: string;
}

/** What one stage of trainLlavaFolder did. */
export interface LlavaFolderStageSummary {
  name: string;
  /** The stage's run folder (checkpoints, metrics.jsonl, final/). */
  dir: string;
  /** Optimiser steps done. */
  steps: number;
  /** Samples trained on. */
  samples: number;
  /** Records left out (image missing or unreadable, not encodable, rejected by the engine). */
  rejected: number;
  /** Loss of the last step (null when no step ran). */
  finalLoss: number | null;
  /** Loss of the first step this call ran (null when none). */
  firstLoss: number | null;
}

/** Options of trainLlavaFolder. */
export interface TrainLlavaFolderOptions {
  runtime: VlitRuntime;
  /** A LLaVA checkpoint folder (config.json, safetensors, tokenizer.json, a chat template). */
  modelDir: string;
  /** The records every stage trains on (their `data` sources in the recipe are not read). */
  records: readonly VlitRecord[];
  /** Root of the records' image paths; paths never leave it. */
  imageRoot: string;
  /** The recipe (parsed or raw JSON); its stages run in order. */
  recipe: Recipe | unknown;
  /** Run folder: `stage-<k>/` per stage and `final-model/`. */
  outDir: string;
  /**
   * Run the stages with PyTorch's torchrun (transformers' LLaVA + peft, DDP) instead of the local engine:
   * the same recipe, records, template and label masks, with pixels instead of cached features.
   */
  torchrun?: TorchrunEngineOptions;
  /**
   * Bytes of frozen-tower features kept in memory; the features of images past this budget are written
   * to a fresh `outDir/.features-*` folder (removed when the call ends) and read back for each batch that
   * needs them. Default 2 GiB.
   */
  featureMemoryBytes?: number;
  /** Progress: `encode-images` (done/total images) and one event stream per stage. */
  onProgress?: (event: { stage: string; done: number; total?: number; loss?: number }) => void;
}

/** What trainLlavaFolder returns. */
export interface TrainLlavaFolderResult {
  stages: LlavaFolderStageSummary[];
  /** The trained LLaVA folder (outDir/final-model). */
  savedDir: string;
  /** Records left out, per stage. */
  rejects: LlavaFolderReject[];
}

const PROJECTOR = 'model.multi_modal_projector.';
const LANGUAGE = 'model.language_model.';
const TOWER = 'model.vision_tower.';

function imagePaths(record: VlitRecord): string[] {
  return record.images.map((ref) => (typeof ref === 'string' ? ref : ref.path));
}

/**
 * Train a LLaVA folder on `records` with a recipe and save the result as a LLaVA folder at
 * `outDir/final-model` (loadable by loadVisionLanguageModel and transformers' LlavaForConditionalGeneration).
 * A record whose image is missing or does not decode, or that does not encode, is a reject, not an error.
 */
export async function trainLlavaFolder(options: TrainLlavaFolderOptions): Promise<TrainLlavaFolderResult> {
  const recipe = parseRecipe(options.recipe);
  const parts = await loadLlavaParts(options.modelDir, { runtime: options.runtime, keepWeights: true });
  // Where this call spills features: its own fresh folder under outDir, made on first need, removed at the end.
  let featureDir: string | undefined;
  try {
    const chat = await loadCheckpointChat(options.modelDir);
    const tokenizer = chat.tokenizer;
    const padName = tokenizer.specialTokens.pad ?? tokenizer.specialTokens.eos;
    const padTokenId = padName !== undefined ? tokenizer.tokenToId(padName) : undefined;
    if (padTokenId === undefined) {
      throw new InvalidArgumentError(`the tokenizer of ${options.modelDir} has neither a pad nor an eos token`, {
        details: { file: join(options.modelDir, 'tokenizer_config.json'), field: 'pad_token' },
      });
    }
    const rejects: LlavaFolderReject[] = [];
    // Stages that train the tower (a trained or LoRA rule matches one of its tensors) run it in the graph.
    const modelNames = [
      ...[...parts.tower.weights.keys()].map((n) => llavaTensorNaming('encoder', n) as string),
      ...Object.keys(parts.projector.weights).map((n) => llavaTensorNaming('connector', n) as string),
      ...Object.keys(parts.languageModel.weights ?? {}).flatMap((n) => llavaTensorNaming('decoder', n) ?? []),
    ];
    const trainsTower = recipe.stages.map((stage, k) => {
      const t = resolveTrainables(stage, modelNames, { stageIndex: k });
      return [...t.trained, ...t.lora.map((l) => l.weight)].some((n) => n.startsWith(TOWER));
    });

    // Pixels are read again each time a batch needs them (decode + the tower's preprocessing), as a
    // data loader would, so training the tower never holds every image's pixels in memory.
    const decodeImage = async (rel: string) =>
      options.runtime.images.decode(new Uint8Array(await readFile(await resolveUnderRoot(options.imageRoot, rel))), { source: rel });
    const loadPixels = async (rel: string): Promise<Tensor<'float32'>> => preprocessBatch([await decodeImage(rel)], parts.tower.settings);

    // Features of every image, once, with the tower as the folder holds it: in memory up to the
    // budget, then in files of this call's spill folder (one per image, read back when a batch needs it).
    const features = new Map<string, Tensor<'float32'> | string>();
    const budget = options.featureMemoryBytes ?? 2 * 1024 ** 3;
    if (!(budget >= 0)) {
      throw new InvalidArgumentError(`featureMemoryBytes must be a non-negative number of bytes, got ${budget}`, { details: { field: 'featureMemoryBytes' } });
    }
    // Spilled features live only for this call (a rerun computes them again) in a folder no other call shares.
    let inMemory = 0;
    const storeFeatures = async (rel: string, t: Tensor<'float32'>): Promise<void> => {
      const held = features.get(rel);
      if (typeof held !== 'string' && inMemory + (held ? 0 : t.data.byteLength) <= budget) {
        if (!held) inMemory += t.data.byteLength;
        features.set(rel, t);
        return;
      }
      if (!featureDir) {
        await mkdir(options.outDir, { recursive: true });
        featureDir = await mkdtemp(join(options.outDir, '.features-'));
      }
      const file = typeof held === 'string' ? held : join(featureDir, `image-${features.size}.safetensors`);
      await writeFileAtomic(file, serializeSafetensors(new Map([['features', t]])));
      features.set(rel, file);
    };
    const readFeatures = async (rel: string): Promise<Tensor<'float32'>> => {
      const held = features.get(rel) as Tensor<'float32'> | string;
      if (typeof held !== 'string') return held;
      const entry = parseSafetensors(new Uint8Array(await readFile(held)), { file: held }).get('features');
      return createTensor('float32', [...entry.shape], entry.toFloat32());
    };
    const missing = new Map<string, string>();
    const wanted = [...new Set(options.records.flatMap(imagePaths))];
    let tokensPerImage = 0;
    for (const [i, rel] of wanted.entries()) {
      try {
        const image = await decodeImage(rel);
        const encoded = await parts.tower.encode([image]);
        const [, tokens, dim] = encoded.dims;
        tokensPerImage = tokens;
        // The torchrun engine reads pixels: there the encoding only finds unreadable images and the token count.
        if (!options.torchrun) await storeFeatures(rel, createTensor('float32', [tokens, dim], encoded.data.slice(0, tokens * dim) as Float32Array));
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!isVlitError(err) && code !== 'ENOENT' && code !== 'EISDIR' && code !== 'EACCES') throw err;
        missing.set(rel, code === 'ENOENT' ? `image ${rel} not found under ${options.imageRoot}` : (err as Error).message);
      }
      options.onProgress?.({ stage: 'encode-images', done: i + 1, total: wanted.length });
    }
    if (tokensPerImage === 0) {
      const grid = parts.spec.vision.imageSize / parts.spec.vision.patchSize;
      tokensPerImage = grid * grid;
    }
    const usable: VlitRecord[] = [];
    const imageRejects: Array<{ id: string; reason: string }> = [];
    for (const r of options.records) {
      const bad = imagePaths(r).find((p) => missing.has(p));
      if (bad !== undefined) imageRejects.push({ id: r.id, reason: missing.get(bad) as string });
      else usable.push(r);
    }
    const byId = new Map(usable.map((r) => [r.id, r]));
    const featuresOf = async (sample: EncodedSample): Promise<Tensor<'float32'>[]> =>
      Promise.all(imagePaths(byId.get(sample.id) as VlitRecord).map(readFeatures));
    // A sample's pixels, one [C, S, S] tensor per image.
    const pixelsOf = async (sample: EncodedSample): Promise<Tensor<'float32'>[]> =>
      Promise.all(
        imagePaths(byId.get(sample.id) as VlitRecord).map(async (p) => {
          const batch = await loadPixels(p);
          return createTensor('float32', batch.dims.slice(1), batch.data);
        }),
      );

    // The weights that train, under the training graph's names.
    const connectorConfig = parts.projector.config as MlpConnectorConfig;
    let connectorWeights: ConnectorWeights = { ...(parts.projector.weights as ConnectorWeights) };
    const llama = parts.languageModel.llamaConfig;
    let llamaWeights: LlamaWeights = { ...(parts.languageModel.weights as LlamaWeights) };
    let towerWeights = new Map(parts.tower.weights);
    let towerTrained = false;
    const { selection, spec: towerSpec } = parts.tower;
    const partsOf = (withTower: boolean): TrainingModelParts => ({
      ...(withTower
        ? towerPart(buildHfVisionModel(towerSpec, towerWeights, { featureLayer: selection.featureLayers, selectStrategy: selection.selectStrategy }))
        : {}),
      connector: buildConnectorModel(connectorConfig, connectorWeights),
      embedTokens: buildEmbedTokensModel(llama, llamaWeights['model.embed_tokens.weight']),
      decoder: buildLlamaDecoderModel(llama, llamaWeights),
    });
    // The tower's weights are under names relative to its root, which is how the training graph names them after `model.vision_tower.`.
    const lookup = (name: string): Tensor<'float32'> | undefined =>
      name.startsWith(PROJECTOR)
        ? connectorWeights[name.slice(PROJECTOR.length)]
        : name.startsWith(LANGUAGE)
          ? llamaWeights[`model.${name.slice(LANGUAGE.length)}`]
          : name.startsWith(TOWER)
            ? towerWeights.get(name.slice(TOWER.length))
            : llamaWeights[name];
    const absorb = (weights: ReadonlyMap<string, Tensor<'float32'>>): void => {
      const c: ConnectorWeights = { ...connectorWeights };
      const l: LlamaWeights = { ...llamaWeights };
      const v = new Map(towerWeights);
      for (const [name, t] of weights) {
        if (name.startsWith(PROJECTOR)) c[name.slice(PROJECTOR.length)] = t;
        else if (name.startsWith(LANGUAGE)) l[`model.${name.slice(LANGUAGE.length)}`] = t;
        else if (name.startsWith('lm_head.')) l[name] = t;
        else if (name.startsWith(TOWER)) {
          v.set(name.slice(TOWER.length), t);
          towerTrained = true;
        }
      }
      connectorWeights = c;
      llamaWeights = l;
      towerWeights = v;
    };
    // After a stage changed the tower, a later frozen-tower stage needs the features of the tower as it is now.
    let featuresStale = false;
    const refreshFeatures = async (): Promise<void> => {
      const tower = await createHfVisionEncoder({
        backend: options.runtime.backend,
        spec: towerSpec,
        weights: towerWeights,
        featureLayer: selection.featureLayers,
        selectStrategy: selection.selectStrategy,
        preprocessor: parts.tower.settings,
      });
      try {
        for (const rel of features.keys()) {
          const encoded = await tower.encodePixels(await loadPixels(rel));
          await storeFeatures(rel, createTensor('float32', encoded.dims.slice(1), encoded.data));
        }
      } finally {
        await tower.release();
      }
      featuresStale = false;
    };
    const templateOf = (stage: RecipeStage): SegmentedChatTemplate =>
      stage.template === 'model'
        ? chat.template
        : createBuiltinTemplate(stage.template as BuiltinTemplateName, { imageToken: chat.imageToken, bos: tokenizer.specialTokens.bos ?? '' });

    if (options.torchrun) {
      return await trainWithTorchrunEngine(
        { ...options, torchrun: options.torchrun },
        { recipe, usable, imageRejects, rejects, templateOf, tokenizer, tokensPerImage, padTokenId, pixelsOf },
      );
    }

    const stages: LlavaFolderStageSummary[] = [];
    for (const [k, stage] of recipe.stages.entries()) {
      for (const r of imageRejects) rejects.push({ id: r.id, stage: k, reason: r.reason, field: 'images' });
      const data = encodeBatch(usable, {
        template: templateOf(stage),
        tokenizer,
        imageTokens: tokensPerImage,
        maxLength: stage.maxLength ?? 2048,
        truncation: 'error',
      });
      for (const r of data.rejects) rejects.push({ id: r.id, stage: k, reason: r.reason, field: r.field });
      const dir = join(options.outDir, `stage-${k + 1}`);
      const name = stage.name ?? `stage-${k + 1}`;
      const onStep = (e: TrainingProgressEvent): void => {
        if (e.type === 'step') options.onProgress?.({ stage: name, done: e.step, total: e.totalSteps, loss: e.record.loss });
      };
      const withTower = trainsTower[k] as boolean;
      if (!withTower && featuresStale) await refreshFeatures();
      const result = await trainStageInDirectory(stage, {
        backend: options.runtime.backend,
        model: partsOf(withTower),
        samples: data.encoded,
        imageFeatures: (s) => (withTower ? pixelsOf(s) : featuresOf(s)),
        outDir: dir,
        stageIndex: k,
        padTokenId,
        onProgress: onStep,
      });
      for (const r of result.rejects) rejects.push({ id: r.id, stage: k, reason: r.reason });
      const trained = new Map<string, Tensor<'float32'>>();
      for (const p of result.graph.parameters) if (p.kind === 'trained') trained.set(p.name, result.weights.get(p.name) as Tensor<'float32'>);
      absorb(trained);
      // LoRA: merge each adapter the stage wrote into the weights the next stage starts from.
      for (const adapterDir of result.outputs.adapterDirs) absorb(mergeLoraAdapter(lookup, await readPeftAdapter(adapterDir)));
      if (withTower) featuresStale = true;
      const losses = result.metrics.map((m) => m.loss);
      stages.push({
        name,
        dir,
        steps: result.steps,
        samples: result.counts.used,
        rejected: imageRejects.length + data.rejects.length + result.counts.rejected,
        finalLoss: losses.length ? losses[losses.length - 1] : null,
        firstLoss: losses.length ? losses[0] : null,
      });
    }

    const savedDir = join(options.outDir, 'final-model');
    await saveLlavaCheckpoint(
      savedDir,
      {
        encoder: towerTrained ? { spec: towerSpec, weights: towerWeights, selection, settings: parts.tower.settings } : parts.tower,
        connector: { config: connectorConfig, weights: connectorWeights },
        languageModel: { llamaConfig: llama, weights: llamaWeights },
      },
      { imageTokenId: parts.spec.imageTokenId, imageToken: chat.imageToken, tokenizerDir: options.modelDir, chatTemplate: chat.templateSource },
    );
    return { stages, savedDir, rejects };
  } finally {
    await parts.dispose();
    // A failure to remove the spill folder must not hide the call's own error.
    if (featureDir) await rm(featureDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The tower as a training-graph part: pixels in, its selected features (`image_features`, the graph's one output) out. */
function towerPart(encoder: ReturnType<typeof buildHfVisionModel>): Pick<TrainingModelParts, 'encoder' | 'names'> {
  const output = encoder.graph?.output?.[0]?.name;
  return { encoder, names: { encoderOutput: output ?? 'image_features' } };
}

/** Files of a checkpoint folder besides its weights that a trained folder keeps (tokenizer, chat template, processor). */
const SIDE_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
  'preprocessor_config.json',
  'processor_config.json',
  'generation_config.json',
];

/** The torchrun path of trainLlavaFolder: every stage's data encoded as the local engine would, pixels per image, one engine run. */
async function trainWithTorchrunEngine(
  options: TrainLlavaFolderOptions & { torchrun: TorchrunEngineOptions },
  prepared: {
    recipe: Recipe;
    usable: VlitRecord[];
    imageRejects: Array<{ id: string; reason: string }>;
    rejects: LlavaFolderReject[];
    templateOf: (stage: RecipeStage) => SegmentedChatTemplate;
    tokenizer: Tokenizer;
    tokensPerImage: number;
    padTokenId: number;
    pixelsOf: (sample: EncodedSample) => Promise<Tensor<'float32'>[]>;
  },
): Promise<TrainLlavaFolderResult> {
  const { recipe, usable, imageRejects, rejects } = prepared;
  const data: Record<string, TorchrunSample[]> = {};
  const counts: Array<{ samples: number; rejected: number }> = [];
  for (const [k, stage] of recipe.stages.entries()) {
    for (const r of imageRejects) rejects.push({ id: r.id, stage: k, reason: r.reason, field: 'images' });
    const encoded = encodeBatch(usable, {
      template: prepared.templateOf(stage),
      tokenizer: prepared.tokenizer,
      imageTokens: prepared.tokensPerImage,
      maxLength: stage.maxLength ?? 2048,
      truncation: 'error',
    });
    for (const r of encoded.rejects) rejects.push({ id: r.id, stage: k, reason: r.reason, field: r.field });
    // Pixels are read as each shard is written (writeDataShards), not all up front.
    data[String(k)] = encoded.encoded.map((sample) => ({ ...sample, loadImages: () => prepared.pixelsOf(sample) }));
    counts.push({ samples: encoded.encoded.length, rejected: imageRejects.length + encoded.rejects.length });
  }
  const engine = createTorchrunEngine(options.torchrun);
  const result = await engine.train(recipe, {
    model: options.modelDir,
    data,
    outputDir: join(options.outDir, 'torchrun'),
    padTokenId: prepared.padTokenId,
    onProgress: (e) => {
      if (e.type === 'step') options.onProgress?.({ stage: e.stage, done: e.step, total: e.totalSteps, loss: e.metrics.loss });
    },
  });
  const stages: LlavaFolderStageSummary[] = result.stages.map((st, k) => {
    const losses = st.metrics.map((m) => m.loss);
    return {
      name: st.name,
      dir: st.runDir,
      steps: st.metrics.length ? Math.max(...st.metrics.map((m) => m.step)) : 0,
      samples: counts[st.index]?.samples ?? counts[k]?.samples ?? 0,
      rejected: counts[st.index]?.rejected ?? 0,
      finalLoss: losses.length ? (losses[losses.length - 1] as number) : null,
      firstLoss: losses.length ? (losses[0] as number) : null,
    };
  });
  // The engine's merged folder holds config and weights; the trained folder also keeps the tokenizer,
  // chat template and processor of the folder it started from, so it loads as a whole model.
  const savedDir = join(options.outDir, 'final-model');
  await mkdir(savedDir, { recursive: true });
  for (const f of await readdir(result.model)) await copyFile(join(result.model, f), join(savedDir, f));
  for (const f of SIDE_FILES) {
    if (existsSync(join(options.modelDir, f)) && !existsSync(join(savedDir, f))) await copyFile(join(options.modelDir, f), join(savedDir, f));
  }
  return { stages, savedDir, rejects };
}
